//! `etl rebuild`: a date's tables and reports derived again from its raw store alone, with no
//! network (after an upgrade changes a definition).
//!
//! A date is rebuilt with what its run recorded in `raw/date=D/_harvest.json`: the same
//! publications, caps and formats, every stream stopped where the run stopped it, and what the
//! run carried from earlier dates taken from those dates' raw stores (the carry chain), its
//! reports compared with the date they were compared with. Neither `ETL_*` variables nor the
//! config file apply. A page that is not in the raw stores is an error naming it, and nothing is
//! published, unless the run failed that stream too. Dates are rebuilt oldest first, each under
//! its own lock.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::cli::{Cli, Command};
use crate::config::Settings;
use crate::error::RunError;
use crate::layout::{date_of_dir_name, Kind};
use crate::raw_store::{RawStore, HARVEST_FILE};

/// The dates to rebuild: `date`, or every date from `from` to `to` (inclusive) that has a raw
/// store, oldest first. A date without its harvest record is an error naming the file.
pub fn dates(
    out: &Path,
    date: Option<NaiveDate>,
    range: Option<(NaiveDate, NaiveDate)>,
) -> Result<Vec<String>, RunError> {
    let wanted: Vec<NaiveDate> = match (date, range) {
        (Some(d), _) => vec![d],
        (None, Some((from, to))) => {
            let mut found: Vec<NaiveDate> = std::fs::read_dir(out.join(Kind::Raw.dir_name()))
                .map_err(|e| crate::error::StoreError::io(out.join(Kind::Raw.dir_name()), e))?
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    NaiveDate::parse_from_str(date_of_dir_name(&name)?, "%Y-%m-%d").ok()
                })
                .filter(|d| (from..=to).contains(d))
                .collect();
            found.sort();
            found
        }
        (None, None) => Vec::new(),
    };
    let texts: Vec<String> = wanted
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let missing: Vec<String> = texts
        .iter()
        .map(|d| RawStore::for_date(out, d).root().join(HARVEST_FILE))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() || texts.is_empty() {
        return Err(RunError::Rebuild {
            date: texts.join(", "),
            missing: match missing.is_empty() {
                true => vec!["no raw store in that range".to_owned()],
                false => missing,
            },
        });
    }
    Ok(texts)
}

/// The settings that rebuild `date` under `out`: its recorded flags, read from its own raw
/// store.
pub fn settings(out: &Path, date: &str, quiet: bool) -> Result<Settings, RunError> {
    let store = RawStore::for_date(out, date);
    let record = store.harvest_record()?.ok_or_else(|| RunError::Rebuild {
        date: date.to_owned(),
        missing: vec![store.root().join(HARVEST_FILE).display().to_string()],
    })?;
    let root: PathBuf = store.root().to_path_buf();
    let mut args: Vec<String> = [
        "etl",
        "run",
        "--date",
        date,
        "--out",
        &out.to_string_lossy(),
        "--source",
        &root.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(record.flags.iter().cloned());
    // what the run recorded, nothing from today's environment or config file
    args.extend(["--config".to_owned(), "/dev/null".to_owned()]);
    if quiet {
        args.push("--quiet".into());
    }
    use clap::Parser;
    let run = match Cli::try_parse_from(&args).map(|c| c.command) {
        Ok(Command::Run(run)) => run,
        _ => {
            return Err(RunError::Rebuild {
                date: date.to_owned(),
                missing: vec![format!(
                    "{}: unreadable flags {:?}",
                    store.root().join(HARVEST_FILE).display(),
                    record.flags
                )],
            })
        }
    };
    let mut settings = Settings::resolve(&run, &|_| None)?;
    settings.rebuild = true;
    settings.arguments = std::env::args().collect();
    Ok(settings)
}
