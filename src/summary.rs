//! The report `etl run` prints when it finishes: the publications, the authors, the requests
//! per family, where the data came from ([`crate::sinks::manifest::Sources::report`], shared
//! with `etl serve`), where it was written, and every failure with its URL.

use std::fmt::Write;

use crate::layout::MANIFEST_FILE;
use crate::pipeline::RunOutcome;
use crate::schema;

/// The run summary printed at the end of `etl run`.
pub fn summary(outcome: &RunOutcome) -> String {
    let mut s = String::new();
    let stage = |k: &str| outcome.manifest.stages.get(k).copied().unwrap_or(0.0);
    let _ = writeln!(
        s,
        "run {} finished in {:.1}s (harvest {:.1}s, normalize + aggregate + publish {:.1}s)",
        outcome.date,
        outcome.duration.as_secs_f64(),
        stage("harvest"),
        stage("publish")
    );
    harvested(&mut s, outcome);
    sources(&mut s, outcome);
    written(&mut s, outcome);
    rejected(&mut s, outcome);
    checks(&mut s, outcome);
    incremental(&mut s, outcome);
    failures(&mut s, outcome);
    s
}

/// The quality checks: how many passed, and each failure with its first items.
fn checks(s: &mut String, outcome: &RunOutcome) {
    let checks = &outcome.manifest.checks;
    let failed: Vec<_> = outcome.manifest.failed_checks().collect();
    let _ = writeln!(
        s,
        "  checks: {} of {} passed",
        checks.len() - failed.len(),
        checks.len()
    );
    for c in failed {
        let shown: Vec<&str> = c.items.iter().take(3).map(String::as_str).collect();
        let more = c.items.len().saturating_sub(3);
        let more = match more {
            0 => String::new(),
            n => format!("; and {n} more in the manifest"),
        };
        let _ = writeln!(
            s,
            "    {} failed: {}: {}{more}",
            c.name,
            c.detail,
            shown.join("; ")
        );
    }
}

/// What an incremental run fetched and carried.
fn incremental(s: &mut String, outcome: &RunOutcome) {
    if let Some(i) = &outcome.manifest.incremental {
        let _ = writeln!(
            s,
            "  incremental from {} (stories before {} taken as unchanged): {} streams carried \
             ({} pages), {} read in full; posts {} fetched, {} carried; followings {} fetched, \
             {} carried",
            i.previous_date,
            i.cutoff,
            i.streams_carried,
            i.pages_carried,
            i.streams_read_in_full,
            i.posts_fetched,
            i.posts_carried,
            i.followings_fetched,
            i.followings_carried
        );
    }
}

/// Values left null because they did not fit their column: the first few, and how many.
fn rejected(s: &mut String, outcome: &RunOutcome) {
    let values = &outcome.manifest.rejected_values;
    if values.is_empty() {
        return;
    }
    let shown: Vec<String> = values
        .iter()
        .take(5)
        .map(|r| format!("{}.{} of {} = {}", r.table, r.column, r.id, r.value))
        .collect();
    let more = values.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(", and {more} more")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "  {} value(s) out of range or malformed, left null (manifest rejected_values): {}{more}",
        values.len(),
        shown.join("; ")
    );
}

fn harvested(s: &mut String, outcome: &RunOutcome) {
    let h = &outcome.harvest;
    for p in &h.publications {
        let name = p
            .collection
            .as_ref()
            .and_then(|c| c.name.as_deref())
            .filter(|n| !n.is_empty())
            .map(|n| format!("({n})"))
            .unwrap_or_default();
        let failed = if p.stream.is_complete() {
            ""
        } else {
            ", FAILED"
        };
        let _ = writeln!(
            s,
            "  {} {name}: {} page(s){failed}",
            p.publication,
            p.stream.pages.len()
        );
    }
    let a = &outcome.manifest.authors;
    let _ = writeln!(
        s,
        "  authors: {} found{}, {} harvested, {} incomplete",
        a.found,
        a.capped_at
            .map(|c| format!(" (capped at {c})"))
            .unwrap_or_default(),
        a.complete,
        a.harvested - a.complete
    );
    for (endpoint, c) in &outcome.requests {
        let _ = writeln!(
            s,
            "  {:<18} requests {:>6}  fetched {:>6}  from store {:>6}  retried {:>4}  failed {:>4}",
            endpoint.name(),
            c.requests,
            c.pages_fetched,
            c.pages_from_store,
            c.retried,
            c.failed
        );
    }
}

fn sources(s: &mut String, outcome: &RunOutcome) {
    let report = outcome.manifest.sources.report();
    let _ = writeln!(s, "  sources (--via {}): {}", report.via, report.families);
    for line in &report.switches {
        let _ = writeln!(s, "  switched {line}");
    }
    for line in &report.not_carried {
        let _ = writeln!(s, "  not harvested: {line}");
    }
    for line in &report.null_columns {
        let _ = writeln!(s, "  {line}");
    }
}

fn written(s: &mut String, outcome: &RunOutcome) {
    let _ = writeln!(s, "  raw store: {}", outcome.raw_store.root().display());
    let rows = |table: &str| outcome.manifest.rows.get(table).copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "  tables:  {} ({} authors, {} posts, {} followings, {} publications)",
        outcome.tables_dir.display(),
        rows(schema::AUTHORS),
        rows(schema::POSTS),
        rows(schema::FOLLOWINGS),
        rows(schema::PUBLICATIONS),
    );
    let _ = writeln!(
        s,
        "  reports: {} ({}, {}, {}, {})",
        outcome.reports_dir.display(),
        schema::AUTHOR_METRICS,
        schema::PUBLICATION_SUMMARY,
        schema::AUTHOR_CHANGES,
        MANIFEST_FILE
    );
    if let Some(lake) = &outcome.lake {
        let versions: Vec<String> = lake
            .versions
            .iter()
            .map(|(table, v)| format!("{} v{v}", table.rsplit('/').next().unwrap_or(table)))
            .collect();
        let conflicts = match lake.conflicts {
            0 => String::new(),
            n => format!("; {n} commit(s) retried after another writer's"),
        };
        let _ = writeln!(
            s,
            "  lake: {} (Delta: {}{conflicts})",
            lake.url,
            versions.join(", ")
        );
    }
}

fn failures(s: &mut String, outcome: &RunOutcome) {
    if outcome.failures.is_empty() {
        return;
    }
    let _ = writeln!(s, "  {} failure(s):", outcome.failures.len());
    for f in &outcome.failures {
        let who = f
            .user_id
            .as_deref()
            .map(|u| format!(" user {u}"))
            .unwrap_or_default();
        let _ = writeln!(s, "    {}{}: {}", f.endpoint.name(), who, f.error);
    }
    let _ = writeln!(s, "  re-run the same --date to fetch only what is missing");
}
