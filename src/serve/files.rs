//! What `etl serve` may read, and how it names it: files under the published partitions only
//! (see the module docs of [`super`]), their content types, and the dates on disk.

use std::fs;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use super::pages::not_found;
use super::server::response;
use crate::layout::{date_of_dir_name, partition_dir, Kind};

pub(super) enum Resolved {
    File(PathBuf),
    Missing,
    Refused,
}

/// Maps a URL path under `/files/` to a file under `root/{tables,reports}`, refusing anything
/// that could lead elsewhere.
pub(super) fn resolve(root: &Path, rel: &str) -> Resolved {
    let Ok(decoded) = percent_encoding::percent_decode_str(rel).decode_utf8() else {
        return Resolved::Refused;
    };
    let segments: Vec<&str> = decoded.split('/').collect();
    let bad =
        |s: &&str| s.is_empty() || *s == "." || *s == ".." || s.contains('\\') || s.contains('\0');
    if segments.iter().any(bad) || Kind::published(segments[0]).is_none() || segments.len() < 2 {
        return Resolved::Refused;
    }
    let mut path = root.to_path_buf();
    path.extend(&segments);
    // Contained to the kind's own directory, not the data root: a symlink inside `reports/`
    // to `../raw` must not serve the raw store.
    let Ok(kind_root) = fs::canonicalize(root.join(segments[0])) else {
        return Resolved::Missing;
    };
    match fs::canonicalize(&path) {
        Ok(real) if real.starts_with(&kind_root) && real.is_file() => Resolved::File(real),
        Ok(real) if !real.starts_with(&kind_root) => Resolved::Refused,
        _ => Resolved::Missing,
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => "application/vnd.apache.parquet",
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A file's response, streamed from the open file in 64 KiB chunks (never read whole), with
/// its length. The open file keeps the bytes of the version being sent even if the date is
/// republished meanwhile.
pub(super) fn download(path: &Path) -> Response {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        // out of file descriptors, or the like: try again later, not "there is no such file"
        Err(_) => {
            return response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "cannot open the file right now; try again\n",
            )
        }
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return not_found();
    };
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 16);
    let mut r = response(
        StatusCode::OK,
        content_type(path),
        Body::from_stream(stream),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        if let Ok(v) = format!("inline; filename=\"{name}\"").parse() {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}

/// The dates that have a partition of any kind, newest first.
pub(super) fn dates(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Kind::PUBLISHED
        .iter()
        .filter_map(|k| fs::read_dir(root.join(k.dir_name())).ok())
        .flat_map(|d| d.flatten())
        .filter_map(|e| date_of_dir_name(e.file_name().to_str()?).map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out.reverse();
    out
}

/// The files of a date's published partition of `kind`, by name, with their sizes (hidden
/// files left out).
pub(super) fn listing(root: &Path, kind: Kind, date: &str) -> Vec<(String, u64)> {
    let Ok(entries) = fs::read_dir(partition_dir(root, kind, date)) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.to_owned(), e.metadata().ok()?.len())))
        .filter(|(n, _)| !n.starts_with('.'))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_inside_tables_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir_all(root.join("reports/date=2026-11-27")).unwrap();
        fs::write(root.join("reports/date=2026-11-27/a.csv"), b"x").unwrap();
        fs::create_dir_all(root.join("raw")).unwrap();
        fs::write(root.join("raw/secret.json"), b"x").unwrap();
        assert!(matches!(
            resolve(&root, "reports/date=2026-11-27/a.csv"),
            Resolved::File(_)
        ));
        assert!(matches!(
            resolve(&root, "reports/date=2026-11-27/b.csv"),
            Resolved::Missing
        ));
        for bad in [
            "raw/secret.json",
            "reports/../raw/secret.json",
            "reports/%2e%2e/raw/secret.json",
            "reports/%2E%2E/%2E%2E/etc/passwd",
            "reports/date=2026-11-27/..%2f..%2fraw%2fsecret.json",
            "/etc/passwd",
            "reports\\..\\raw",
            "reports/date=2026-11-27/%00",
            "%ff",
        ] {
            assert!(matches!(resolve(&root, bad), Resolved::Refused), "{bad}");
        }
        std::os::unix::fs::symlink("/etc", root.join("reports/escape")).unwrap();
        assert!(matches!(
            resolve(&root, "reports/escape/passwd"),
            Resolved::Refused
        ));
        // #14: inside the data root, but outside tables/ and reports/
        std::os::unix::fs::symlink("../raw", root.join("reports/raw")).unwrap();
        assert!(matches!(
            resolve(&root, "reports/raw/secret.json"),
            Resolved::Refused
        ));
    }
}
