//! `etl serve` through a real HTTP client: pages, downloads, content types, path traversal.

use std::net::SocketAddr;

use medium_etl::pipeline;

use crate::support::*;

async fn served() -> (
    medium_etl::serve::Server,
    tempfile::TempDir,
    reqwest::Client,
    String,
) {
    let out = tempfile::tempdir().unwrap();
    let sample = repo().join("data/sample");
    let s = settings(
        "http://127.0.0.1:9",
        out.path(),
        &["--source", sample.to_str().unwrap()],
    );
    pipeline::run(&s).await.unwrap();
    let server = medium_etl::serve::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        out.path().to_path_buf(),
    )
    .await
    .unwrap();
    medium_etl::sources::medium::client::install_crypto_provider();
    let base = format!("http://{}", server.addr);
    (server, out, reqwest::Client::new(), base)
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String, Vec<u8>) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_index_the_date_page_the_status_and_downloads() {
    let (_server, out, client, base) = served().await;
    let (status, ct, body) = get(&client, &format!("{base}/")).await;
    assert_eq!((status, ct.as_str()), (200, "text/html; charset=utf-8"));
    let index = String::from_utf8(body).unwrap();
    assert!(index.contains("/date/2026-11-27"), "{index}");
    let csv_size = std::fs::metadata(
        out.path()
            .join("reports/date=2026-11-27/author_metrics.csv"),
    )
    .unwrap()
    .len();
    assert!(index.contains("reports/date=2026-11-27/author_metrics.csv"));
    assert!(
        index.contains(&format!("{:.1} KiB", csv_size as f64 / 1024.0))
            || index.contains(&format!("{csv_size} B")),
        "{index}"
    );

    let (status, _, body) = get(&client, &format!("{base}/date/2026-11-27")).await;
    assert_eq!(status, 200);
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains("<table id=\"top-authors\">") && page.contains("<svg id=\"claps-chart\"")
    );
    // sorted by total claps: dhrumilcse (313) before annebonner (307)
    let (a, b) = (
        page.find(">dhrumilcse<").unwrap(),
        page.find(">annebonner<").unwrap(),
    );
    assert!(a < b);
    // where the data came from
    assert!(
        page.contains("<p id=\"sources\">--via auto: following json 15; profile_stream json 24; publication_stream json 1</p>"),
        "{page}"
    );

    let (status, ct, body) = get(
        &client,
        &format!("{base}/files/reports/date=2026-11-27/author_metrics.csv"),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(
        body,
        std::fs::read(
            out.path()
                .join("reports/date=2026-11-27/author_metrics.csv")
        )
        .unwrap()
    );
    let (status, ct, body) = get(
        &client,
        &format!("{base}/files/tables/date=2026-11-27/posts.parquet"),
    )
    .await;
    assert_eq!(
        (status, ct.as_str()),
        (200, "application/vnd.apache.parquet")
    );
    assert_eq!(&body[..4], b"PAR1");
    let (_, ct, _) = get(
        &client,
        &format!("{base}/files/reports/date=2026-11-27/_manifest.json"),
    )
    .await;
    assert_eq!(ct, "application/json");

    let (status, _, body) = get(&client, &format!("{base}/status")).await;
    assert_eq!(status, 200);
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("Last finished run: 2026-11-27"), "{page}");

    assert_eq!(
        get(&client, &format!("{base}/date/2026-02-30")).await.0,
        404
    );
    assert_eq!(
        get(&client, &format!("{base}/date/1999-01-01")).await.0,
        404
    );
    assert_eq!(get(&client, &format!("{base}/nope")).await.0, 404);
    let r = client.post(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

/// Sends the path as written (HTTP clients normalize `..` and `%2e%2e` away before sending).
async fn raw_status(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_paths_that_lead_out_of_the_data() {
    let (_server, out, client, base) = served().await;
    std::os::unix::fs::symlink("/etc", out.path().join("reports/escape")).unwrap();
    for path in [
        "/files/raw/date=2026-11-27/collections/7f60cf5620c9/stream/page-0001.json",
        "/files/reports/%2e%2e/raw",
        "/files/reports/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        "/files/reports/date=2026-11-27/..%2f..%2fraw",
        "/files/reports/escape/passwd",
        "/files/reports/date=2026-11-27/%00",
        "/files/reports/../../etc/passwd",
        "/files/../../../../etc/passwd",
    ] {
        assert_eq!(raw_status(_server.addr, path).await, 403, "{path}");
    }
    // and through a real client, which normalizes first: never served either
    for path in [
        "/files/reports/%2E%2E/%2E%2E/etc/passwd",
        "/files/reports/../../etc/passwd",
    ] {
        let (status, _, _) = get(&client, &format!("{base}{path}")).await;
        assert!(status == 403 || status == 404, "{path}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_what_it_shows() {
    let (_server, out, client, base) = served().await;
    // a manifest failure with markup in it is shown as text
    let path = out.path().join("reports/date=2026-11-27/_manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["failures"] = serde_json::json!([{"endpoint": "profile_stream", "user_id": "u1", "url": "x", "error": "<script>alert(1)</script>"}]);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let (_, _, body) = get(&client, &format!("{base}/status")).await;
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>alert"),
        "{page}"
    );
}
