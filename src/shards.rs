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
use crate::raw_store::RawStore;
use crate::sinks::manifest::read_published;

/// The settings of `etl publish` for `count` shards: `settings` (the shards' own flags, and
/// the output root they were given) turned into a replay over the shards' raw stores, which
/// reads every page again (`--refresh`: a shard re-run since the last publish is read anew).
pub fn publish_settings(mut settings: Settings, count: u32) -> Result<Settings, RunError> {
    let date = settings.date.to_string();
    let refuse = |reason: String| RunError::Shards {
        date: date.clone(),
        count,
        reason,
    };
    if settings.shard.is_some() {
        return Err(refuse(
            "etl publish takes --shards N (all of them), not --shard".into(),
        ));
    }
    if settings.source.is_some() {
        return Err(refuse(
            "etl publish reads the shards' raw stores; --source is for etl run".into(),
        ));
    }
    if count == 0 || count > Shard::MAX {
        return Err(refuse(format!("--shards must be from 1 to {}", Shard::MAX)));
    }
    let mut unfinished = Vec::new();
    let mut stores = Vec::new();
    let mut first: Option<(u32, crate::sinks::manifest::ManifestSettings)> = None;
    for index in 0..count {
        let root = shard_root(&settings.out, index, count);
        let manifest = read_published(&root, &date).map_err(|e| refuse(e.to_string()))?;
        let Some(manifest) = manifest else {
            unfinished.push(index.to_string());
            continue;
        };
        // the shards must have harvested the same publications with the same caps
        let what = crate::sinks::manifest::ManifestSettings {
            publications: manifest.settings.publications.clone(),
            max_authors: manifest.settings.max_authors,
            max_pages: manifest.settings.max_pages,
            ..Default::default()
        };
        match &first {
            None => first = Some((index, what)),
            Some((k, then)) if *then != what => {
                return Err(refuse(format!(
                    "shard {index}/{count} harvested {:?} (--max-authors {:?}, --max-pages {}) \
                     but shard {k}/{count} harvested {:?} (--max-authors {:?}, --max-pages {})",
                    what.publications,
                    what.max_authors,
                    what.max_pages,
                    then.publications,
                    then.max_authors,
                    then.max_pages
                )))
            }
            Some(_) => {}
        }
        stores.push(RawStore::for_date(&root, &date).root().to_path_buf());
    }
    if !unfinished.is_empty() {
        return Err(refuse(format!(
            "shard(s) {} have not committed (no {}/shard=K-of-{count}/reports/{}/_manifest.json); \
             run `etl run --shard K/{count}` for each, then publish again",
            unfinished.join(", "),
            settings.out.join(SHARDS_DIR).display(),
            date_dir_name(&date),
        )));
    }
    settings.source = Some(settings.out.join(SHARDS_DIR));
    settings.shard_sources = stores;
    settings.refresh = true;
    Ok(settings)
}
