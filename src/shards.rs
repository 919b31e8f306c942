//! Sharded harvests: `etl run --shard K/N` harvests the authors whose id hashes to K
//! ([`crate::config::Shard::owns`]) into its own output root under
//! `<out>/shards/shard=K-of-N/` (raw stores, locks, its part of the tables, its manifests:
//! an ordinary run of its own, so a dead shard is re-run alone and resumes from its raw store).
//! `etl publish --shards N` checks that every shard committed (its manifest is published) and
//! that they harvested the same thing, then runs the date as an offline replay over the
//! shards' raw stores ([`crate::sources::medium::origin::Origin::Replay`], the first store
//! holding a page answers: the publication's pages come from shard 0's), so the date's tables
//! and reports are exactly those of one `etl run` that had read the same pages.
//!
//! What sharding does not do: every shard reads the publication's pages itself, so a
//! publication that changes between the shards' reads may list an author that no shard
//! harvested (the publish then reports that author's streams as failed); and N shards behind
//! one egress address share Medium's limit: `--max-rps` is per shard.

use crate::config::{Settings, Shard};
use crate::error::RunError;
use crate::layout::{date_dir_name, shard_root, SHARDS_DIR};
use crate::lock::DateLock;
use crate::raw_store::RawStore;
use crate::sinks::manifest::read_published;

/// What `etl publish` runs: the replay's settings, and the shards' date locks, held until the
/// publish ends (no shard is re-run underneath it).
#[derive(Debug)]
pub struct Publish {
    pub settings: Settings,
    pub locks: Vec<DateLock>,
}

/// The publish of a date from `count` shards: `settings` (the shards' own flags, and the
/// output root they were given) turned into a replay over the shards' raw stores. Refused
/// (nothing published) while a shard has not committed or is being written (exit 11), and
/// when the shards were asked for something else than this publish, or ran incrementally
/// (usage). The replay reads every page again (`--refresh`), appending to the date's own raw
/// store only the pages that changed.
pub fn publish_settings(mut settings: Settings, count: u32) -> Result<Publish, RunError> {
    let date = settings.date.to_string();
    let refuse = |unfinished: bool, reason: String| RunError::Shards {
        date: date.clone(),
        count,
        reason,
        unfinished,
    };
    if settings.shard.is_some() {
        return Err(refuse(
            false,
            "etl publish takes --shards N (all of them), not --shard (is ETL_SHARD set?)".into(),
        ));
    }
    if settings.source.is_some() {
        return Err(refuse(
            false,
            "etl publish reads the shards' raw stores; --source is for etl run".into(),
        ));
    }
    if count == 0 || count > Shard::MAX {
        return Err(refuse(
            false,
            format!("--shards must be from 1 to {}", Shard::MAX),
        ));
    }
    let asked = crate::pipeline::harvest_flags(&settings);
    let mut unfinished = Vec::new();
    let mut stores = Vec::new();
    let mut locks = Vec::new();
    for index in 0..count {
        let root = shard_root(&settings.out, index, count);
        let shard = format!("shard {index}/{count}");
        let store = RawStore::for_date(&root, &date);
        let manifest = read_published(&root, &date).map_err(|e| refuse(false, e.to_string()))?;
        if manifest.is_none() {
            unfinished.push(index.to_string());
            continue;
        }
        let lock = DateLock::try_acquire(&root, &date).map_err(|e| refuse(true, e.to_string()))?;
        let Some(lock) = lock else {
            return Err(refuse(
                true,
                format!("{shard} is being written (a run holds its lock); publish once it ends"),
            ));
        };
        locks.push(lock);
        if store.origin()?.is_some_and(|o| o.refreshing) {
            return Err(refuse(
                true,
                format!("a --refresh of {shard} did not finish; run it again, then publish"),
            ));
        }
        let Some(record) = store.harvest_record()? else {
            return Err(refuse(
                false,
                format!("{shard} has no harvest record ({})", store.root().display()),
            ));
        };
        if record.incremental {
            return Err(refuse(
                false,
                format!(
                    "{shard} ran --incremental (its pages continue on earlier dates); publish \
                     needs shards that read the date in full"
                ),
            ));
        }
        if record.flags != asked {
            return Err(refuse(
                false,
                format!(
                    "{shard} was asked for `{}`, this publish for `{}`: publish with the \
                     shards' flags",
                    record.flags.join(" "),
                    asked.join(" ")
                ),
            ));
        }
        stores.push(store.root().to_path_buf());
    }
    if !unfinished.is_empty() {
        return Err(refuse(
            true,
            format!(
                "shard(s) {} have not committed (no {}/shard=K-of-{count}/reports/{}/_manifest.json); \
                 run `etl run --shard K/{count}` for each, then publish again",
                unfinished.join(", "),
                settings.out.join(SHARDS_DIR).display(),
                date_dir_name(&date),
            ),
        ));
    }
    settings.source = Some(settings.out.join(SHARDS_DIR));
    settings.shard_sources = stores;
    settings.refresh = true;
    Ok(Publish { settings, locks })
}

/// The `shards` section of a date published from the shards whose raw stores are `stores`
/// (`<shard root>/raw/date=D`): each shard's run, as its manifest records it.
pub fn summary(stores: &[std::path::PathBuf], date: &str) -> crate::sinks::manifest::ShardsSummary {
    use crate::sinks::manifest::{ShardRun, ShardsSummary};
    let mut out = ShardsSummary {
        count: u32::try_from(stores.len()).unwrap_or(u32::MAX),
        ..ShardsSummary::default()
    };
    for store in stores {
        let Some(root) = store.parent().and_then(|p| p.parent()) else {
            continue;
        };
        let Ok(Some(m)) = read_published(root, date) else {
            continue;
        };
        out.requests_total += m.requests_total;
        out.bytes_fetched += m.bytes_fetched;
        let shard = root
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("shard="))
            .map(|n| n.replacen("-of-", "/", 1))
            .unwrap_or_default();
        out.runs.push(ShardRun {
            shard,
            run_id: m.run_id.clone(),
            authors: m.authors.harvested,
            requests_total: m.requests_total,
            failures: m.failures.len(),
        });
    }
    out
}
