//! The HTML pages of `etl serve`: the index of dates, a date's top authors with a chart and
//! where its data came from, and the run status. They read the published Parquet with arrow-rs
//! and the manifest and status file as their types; everything shown is escaped.

use std::fmt::Write;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use axum::http::StatusCode;
use axum::response::Response;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::files::{dates, listing};
use super::server::response;
use crate::layout::{csv_file, date_dir_name, parquet_file, partition_dir, Kind};
use crate::progress::{read_status, RunState};
use crate::schema;
use crate::sinks::manifest::{read_published, Manifest, Sources};

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}\
         table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}}\
         td.n{{text-align:right}}</style></head><body><p><a href=\"/\">dates</a> · \
         <a href=\"/status\">status</a></p><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    response(status, "text/html; charset=utf-8", page)
}

pub(super) fn not_found() -> Response {
    html_page(StatusCode::NOT_FOUND, "Not found", "<p>Nothing here.</p>")
}

pub(super) fn forbidden() -> Response {
    html_page(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "<p>That path is outside the data.</p>",
    )
}

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub(super) fn index(root: &Path) -> Response {
    let mut body = String::new();
    let all = dates(root);
    if all.is_empty() {
        body.push_str("<p>No partitions yet: run <code>etl run</code>.</p>");
    }
    for date in &all {
        let state = match read_published(root, date) {
            Ok(Some(m)) if m.complete => "complete".to_owned(),
            Ok(Some(m)) => format!("{} failure(s)", m.failures.len()),
            Ok(None) => "no manifest".to_owned(),
            Err(_) => "unreadable manifest".to_owned(),
        };
        let _ = write!(
            body,
            "<h2 id=\"d{d}\"><a href=\"/date/{d}\">{d}</a> <small>({s})</small></h2><table><tr><th>file</th><th>size</th></tr>",
            d = escape(date),
            s = escape(&state)
        );
        for kind in Kind::PUBLISHED {
            for (name, size) in listing(root, kind, date) {
                let file = format!("{kind}/{}/{name}", date_dir_name(date));
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/files/{f}\">{f}</a></td><td class=\"n\">{s}</td></tr>",
                    f = escape(&file),
                    s = human_size(size)
                );
            }
        }
        body.push_str("</table>");
    }
    html_page(StatusCode::OK, "medium-etl: dated partitions", &body)
}

/// A column as display strings (numbers as written, lists joined with ", ", nulls empty).
fn strings(column: &ArrayRef) -> Vec<String> {
    let text = match column.data_type() {
        DataType::List(_) | DataType::LargeList(_) => {
            return (0..column.len())
                .map(|i| {
                    if column.is_null(i) {
                        return String::new();
                    }
                    let item = match column.data_type() {
                        DataType::List(_) => column.as_list::<i32>().value(i),
                        _ => column.as_list::<i64>().value(i),
                    };
                    strings(&item).join(", ")
                })
                .collect();
        }
        DataType::Timestamp(..) => return vec![String::new(); column.len()],
        _ => arrow::compute::cast(column, &DataType::Utf8),
    };
    match text {
        Ok(a) => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap_or_default().to_owned())
            .collect(),
        Err(_) => vec![String::new(); column.len()],
    }
}

fn read_columns(path: &Path, wanted: &[&str]) -> Option<Vec<Vec<String>>> {
    let file = std::fs::File::open(path).ok()?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .ok()?
        .build()
        .ok()?;
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); wanted.len()];
    for batch in reader {
        let batch = batch.ok()?;
        for (i, name) in wanted.iter().enumerate() {
            columns[i].extend(strings(batch.column_by_name(name)?));
        }
    }
    Some(columns)
}

/// `/author/<user id>`: the author's trend across every published date: total claps, stories
/// and followers, each as a line chart, and the numbers in a table.
pub(super) fn author_page(root: &Path, user_id: &str) -> Response {
    if !medium_api::endpoints::is_safe_segment(user_id) {
        return not_found();
    }
    const COLUMNS: [&str; 5] = [
        "user_id",
        "username",
        "total_claps",
        "story_count",
        "follower_count",
    ];
    let mut dates_asc = dates(root);
    dates_asc.reverse();
    let mut points: Vec<(String, [String; 3])> = Vec::new();
    let mut username = String::new();
    for date in dates_asc {
        let path =
            partition_dir(root, Kind::Reports, &date).join(parquet_file(schema::AUTHOR_METRICS));
        let Some(cols) = read_columns(&path, &COLUMNS) else {
            continue;
        };
        if let Some(row) = cols[0].iter().position(|id| id == user_id) {
            username = cols[1][row].clone();
            points.push((
                date,
                [
                    cols[2][row].clone(),
                    cols[3][row].clone(),
                    cols[4][row].clone(),
                ],
            ));
        }
    }
    if points.is_empty() {
        return not_found();
    }
    let mut body = format!(
        "<p>user id <code>{}</code>, on {} date(s)</p>",
        escape(user_id),
        points.len()
    );
    for (k, title) in ["total claps", "stories", "followers"].iter().enumerate() {
        let series: Vec<(&str, Option<f64>)> = points
            .iter()
            .map(|(d, v)| (d.as_str(), v[k].parse::<f64>().ok()))
            .collect();
        line_chart(&mut body, title, &series);
    }
    body.push_str("<table id=\"trend\"><tr><th>date</th><th>total claps</th><th>stories</th><th>followers</th></tr>");
    for (d, v) in &points {
        let _ = write!(
            body,
            "<tr><td><a href=\"/date/{d}\">{d}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&v[0]),
            escape(&v[1]),
            escape(&v[2]),
            d = escape(d)
        );
    }
    body.push_str("</table>");
    let title = match username.as_str() {
        "" | "null" => user_id.to_owned(),
        name => name.to_owned(),
    };
    html_page(StatusCode::OK, &title, &body)
}

/// A small SVG line chart of one value over the dates (a missing value is a gap).
fn line_chart(body: &mut String, title: &str, series: &[(&str, Option<f64>)]) {
    let (w, h, pad) = (480.0, 140.0, 30.0);
    let values: Vec<f64> = series.iter().filter_map(|(_, v)| *v).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let step = if series.len() > 1 {
        (w - 2.0 * pad) / (series.len() - 1) as f64
    } else {
        0.0
    };
    let _ = write!(
        body,
        "<h2>{t}</h2><svg class=\"trend\" role=\"img\" aria-label=\"{t} by date\" width=\"{w}\" \
         height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">",
        t = escape(title)
    );
    let point = |i: usize, v: f64| {
        let x = pad + step * i as f64;
        let y = h - pad - (v - lo) / span * (h - 2.0 * pad);
        (x, y)
    };
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (_, v)) in series.iter().enumerate() {
        let Some(v) = v else {
            pen_down = false; // a gap
            continue;
        };
        let (x, y) = point(i, *v);
        let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
        pen_down = true;
        let _ = write!(
            body,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#4a7fb5\"><title>{}: {v}</title></circle>",
            escape(series[i].0)
        );
    }
    if !path.is_empty() {
        let _ = write!(
            body,
            "<path d=\"{}\" fill=\"none\" stroke=\"#4a7fb5\" stroke-width=\"2\"/>",
            path.trim_end()
        );
    }
    if let (Some(first), Some(last)) = (series.first(), series.last()) {
        let _ = write!(
            body,
            "<text x=\"{pad}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            h - 8.0,
            escape(first.0),
            w - pad,
            h - 8.0,
            escape(last.0)
        );
    }
    if !values.is_empty() {
        let _ = write!(
            body,
            "<text x=\"2\" y=\"{}\">{hi}</text><text x=\"2\" y=\"{}\">{lo}</text>",
            pad - 4.0,
            h - pad + 12.0
        );
    }
    body.push_str("</svg>");
}

/// The `author_metrics` columns the date page shows, in order, and whether each is a number
/// (right-aligned). The chart and the order use `total_claps` ([`CLAPS`]), labelled by
/// `username` ([`LABEL`]).
const SHOWN: [(&str, bool); 10] = [
    ("username", false),
    ("name", false),
    ("story_count", true),
    ("total_claps", true),
    ("mean_claps", true),
    ("median_claps", true),
    ("max_claps", true),
    ("mean_word_count", true),
    ("following_count", true),
    ("publication_names", false),
];

const LABEL: usize = 0;
const CLAPS: usize = 3;

pub(super) fn date_page(root: &Path, date: &str) -> Response {
    let path = partition_dir(root, Kind::Reports, date).join(parquet_file(schema::AUTHOR_METRICS));
    let names: Vec<&str> = SHOWN.iter().map(|(name, _)| *name).collect();
    let Some(cols) = read_columns(&path, &names) else {
        return not_found();
    };
    let (labels, claps_text) = (&cols[LABEL], &cols[CLAPS]);
    let user_ids = read_columns(&path, &["user_id"])
        .and_then(|mut c| c.pop())
        .unwrap_or_default();
    let n = labels.len();
    let claps: Vec<i64> = claps_text.iter().map(|c| c.parse().unwrap_or(-1)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| claps[*b].cmp(&claps[*a]).then(labels[*a].cmp(&labels[*b])));

    let mut body = String::new();
    let top: Vec<usize> = order.iter().copied().take(20).collect();
    let max = top.iter().map(|i| claps[*i]).max().unwrap_or(0).max(1);
    let (bar_h, label_w, chart_w) = (18, 160, 480);
    let _ = write!(
        body,
        "<h2>Claps by author</h2><svg id=\"claps-chart\" role=\"img\" aria-label=\"total claps by author\" \
         width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">",
        w = label_w + chart_w + 60,
        h = top.len() * (bar_h + 4) + 4
    );
    for (row, i) in top.iter().enumerate() {
        let y = row * (bar_h + 4) + 2;
        let width = (claps[*i].max(0) as f64 / max as f64 * chart_w as f64).round() as i64;
        let _ = write!(
            body,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{width}\" height=\"{bar_h}\" fill=\"#4a7fb5\"><title>{c}</title></rect>\
             <text x=\"{vx}\" y=\"{ty}\">{c}</text>",
            lx = label_w - 6,
            ty = y + 13,
            vx = label_w as i64 + width + 4,
            name = escape(&labels[*i]),
            c = escape(&claps_text[*i]),
        );
    }
    body.push_str("</svg>");
    let _ = write!(body, "<h2>Top authors</h2><table id=\"top-authors\"><tr>");
    for h in &names {
        let _ = write!(body, "<th>{}</th>", escape(h));
    }
    body.push_str("</tr>");
    for i in order {
        body.push_str("<tr>");
        for (c, (col, (_, numeric))) in cols.iter().zip(SHOWN).enumerate() {
            let class = if numeric { " class=\"n\"" } else { "" };
            let cell = escape(&col[i]);
            match user_ids.get(i).filter(|_| c == LABEL) {
                // each author links to their trend across every date
                Some(id) => {
                    let _ = write!(
                        body,
                        "<td{class}><a href=\"/author/{}\">{cell}</a></td>",
                        escape(id)
                    );
                }
                None => {
                    let _ = write!(body, "<td{class}>{cell}</td>");
                }
            }
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    if let Ok(Some(m)) = read_published(root, date) {
        sources_section(&mut body, &m.sources);
    }
    let csv = csv_file(schema::AUTHOR_METRICS);
    let _ = write!(
        body,
        "<p>Files: <a href=\"/#d{d}\">all files of {d}</a> · <a href=\"/files/{kind}/{dir}/{c}\">{c}</a></p>",
        d = escape(date),
        kind = Kind::Reports,
        dir = escape(&date_dir_name(date)),
        c = escape(&csv),
    );
    html_page(StatusCode::OK, &format!("Top authors on {date}"), &body)
}

/// Where the date's data came from (`--via`): pages per family and format, format switches,
/// families not carried, and the columns each format leaves null, so an empty claps column
/// explains itself. The words are the manifest's own report, as the run summary prints them.
fn sources_section(body: &mut String, sources: &Sources) {
    let report = sources.report();
    let _ = write!(
        body,
        "<h2>Sources</h2><p id=\"sources\">--via {}: {}</p><ul>",
        escape(&report.via),
        escape(&report.families)
    );
    let lines = report
        .switches
        .iter()
        .map(|l| format!("switched {l}"))
        .chain(
            report
                .not_carried
                .iter()
                .map(|l| format!("not harvested: {l}")),
        )
        .chain(report.null_columns.iter().cloned());
    for line in lines {
        let _ = write!(body, "<li>{}</li>", escape(&line));
    }
    body.push_str("</ul>");
}

/// A table of `(label, value)` rows.
fn table(body: &mut String, rows: &[(&str, String)]) {
    body.push_str("<table>");
    for (label, value) in rows {
        let _ = write!(
            body,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    body.push_str("</table>");
}

pub(super) fn status(root: &Path) -> Response {
    let live = read_status(root);
    let mut body = String::new();
    if let Some(s) = live.as_ref().filter(|s| s.state == RunState::Running) {
        let _ = write!(
            body,
            "<h2>Current run: {d} ({stage})</h2>",
            d = escape(&s.date),
            stage = escape(&s.stage.to_string())
        );
        table(
            &mut body,
            &[
                ("started_at", s.started_at.clone()),
                ("updated_at", s.updated_at.clone()),
                ("authors_done", s.authors_done.to_string()),
                ("authors_found", s.authors_found.to_string()),
                ("publication_pages", s.publication_pages.to_string()),
                ("profile_pages", s.profile_pages.to_string()),
                ("following_pages", s.following_pages.to_string()),
                ("requests", s.requests.to_string()),
                ("retried", s.retried.to_string()),
                ("failed", s.failed.to_string()),
                ("rows_written", s.rows_written.to_string()),
            ],
        );
    }
    let last = dates(root)
        .into_iter()
        .find_map(|d| read_published(root, &d).ok().flatten());
    match last {
        Some(m) => last_run(&mut body, &m),
        None if live.is_none() => body.push_str("<p>No run yet.</p>"),
        None => {}
    }
    html_page(StatusCode::OK, "Run status", &body)
}

fn last_run(body: &mut String, m: &Manifest) {
    let _ = write!(body, "<h2>Last finished run: {}</h2>", escape(&m.date));
    let a = &m.authors;
    table(
        body,
        &[
            ("complete", m.complete.to_string()),
            ("started_at", m.started_at.clone()),
            ("finished_at", m.finished_at.clone()),
            ("duration_secs", m.duration_secs.to_string()),
            ("requests_total", m.requests_total.to_string()),
            ("retried_total", m.retried_total.to_string()),
            ("failed_total", m.failed_total.to_string()),
            (
                "authors",
                format!(
                    "{} harvested of {} found, {} complete",
                    a.harvested, a.found, a.complete
                ),
            ),
        ],
    );
    let failed = m.failed_checks().count();
    let _ = write!(
        body,
        "<h3>checks: {} of {} passed</h3><ul>",
        m.checks.len() - failed,
        m.checks.len()
    );
    for c in &m.checks {
        let _ = write!(
            body,
            "<li>{} <b>{}</b>: {}{}</li>",
            if c.passed { "✓" } else { "✗" },
            escape(&c.name),
            escape(&c.detail),
            match c.items.is_empty() {
                true => String::new(),
                false => format!(" — <code>{}</code>", escape(&c.items.join("; "))),
            }
        );
    }
    body.push_str("</ul>");
    let _ = write!(body, "<h3>{} failure(s)</h3><ul>", m.failures.len());
    for f in &m.failures {
        let _ = write!(
            body,
            "<li>{} {}: <code>{}</code></li>",
            escape(f.endpoint.name()),
            escape(f.user_id.as_deref().unwrap_or("")),
            escape(&f.error)
        );
    }
    body.push_str("</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_reads_the_columns_it_names() {
        assert_eq!(SHOWN[LABEL].0, "username");
        assert_eq!(SHOWN[CLAPS].0, "total_claps");
        for (name, _) in SHOWN {
            assert!(schema::AUTHOR_METRICS_COLUMNS.contains(&name), "{name}");
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<script>\"a\"&'b'"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;"
        );
    }
}
