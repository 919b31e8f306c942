//! Incremental runs: what an earlier date read, so that a run can stop paging a stream where
//! nothing has changed and carry the rest forward.
//!
//! The earlier date is the latest one before the run's date under the same output root that is
//! published (its manifest exists) and says how it read its streams (`_harvest.json` in its raw
//! store, [`HarvestRecord`]). A stream is carried only from a date that read it completely, in
//! the format this run reads it in; anything else gets a full read (when in doubt, fetch).
//!
//! A stream's *chain* is its pages as the earlier date had them: the pages that date fetched,
//! then, if that date carried the rest, the chain of the date it carried from, and so on. The
//! pages are the exact bodies in each date's raw store, decoded again, so a carried row is
//! derived by today's code (what `etl rebuild` relies on).
//!
//! Rules (the issue's):
//! - stories and publication streams: a page whose posts are all in the chain and were all
//!   first published before the cutoff ends the read ([`StreamEnd::Carried`]); the cutoff is
//!   00:00 UTC of (min(run date, earlier date) − lag), since claps change on younger stories
//!   and may have changed on every day since the earlier date's run (the issue says earlier
//!   date + 1 day, which carries a story that was still younger than the lag when that run read
//!   it at some hour of its day);
//! - a stream is never carried through GraphQL's stories (their link counts come from post
//!   bodies fetched with the pages, which a carried page lacks), nor beyond `--max-pages`;
//! - followings: page 1 is read every time; the rest is carried when page 1 lists the same
//!   users as the earlier date's page 1 and Medium's own following count is unchanged.
//!
//! [`StreamEnd::Carried`]: medium_api::paging::StreamEnd::Carried

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};

use medium_api::endpoints::StreamId;
use medium_api::via::Via;
use medium_api::StreamPage;

use crate::config::CarryPolicy;
use crate::layout::{date_of_dir_name, manifest_path, Kind};
use crate::raw_store::{HarvestRecord, RawStore, StreamRecord};

/// The earlier dates a run may carry from.
#[derive(Debug)]
pub struct Previous {
    /// The latest earlier published date.
    pub date: String,
    /// Stories first published before this (epoch ms) are taken as unchanged.
    pub cutoff_ms: i64,
    /// Whether following lists may be carried (not when `--followings-every` is due).
    pub followings: bool,
    out: PathBuf,
    records: HashMap<String, HarvestRecord>,
    /// `etl rebuild`: the rebuilt date and its own record, whose decisions are followed
    /// instead of made again.
    follow: Option<(String, HarvestRecord)>,
    /// The earlier dates' raw stores, opened once each: a store holds its page log's index,
    /// which one read of the log builds (#18; a store per lookup read it again each time).
    stores: std::sync::Mutex<HashMap<String, RawStore>>,
}

/// What a stream may carry: its earlier pages, the items they hold, and when to stop.
#[derive(Debug)]
pub struct Carry<P> {
    pub chain: Vec<(String, P)>,
    known: HashSet<String>,
    rule: Rule,
}

#[derive(Debug)]
enum Rule {
    /// Stop after a page of known posts all first published before the cutoff.
    Stories { cutoff_ms: i64 },
    /// Stop after page 1 when it lists these users, in this order.
    SameFirstPage(Vec<String>),
    /// Stop after this page, as the date being rebuilt did.
    At(usize),
}

impl<P: StreamPage> Carry<P> {
    /// Whether the read may stop after page `index` (1-based), carrying the rest.
    pub fn stops_after(&self, index: usize, page: &P) -> bool {
        let ids = page.item_ids();
        match &self.rule {
            Rule::Stories { cutoff_ms } => {
                let times = page.item_published();
                !ids.is_empty()
                    && times.len() == ids.len()
                    && ids.iter().all(|id| self.known.contains(*id))
                    && times.iter().all(|t| t.is_some_and(|t| t < *cutoff_ms))
            }
            Rule::SameFirstPage(first) => {
                index == 1 && ids.len() == first.len() && ids.iter().zip(first).all(|(a, b)| a == b)
            }
            Rule::At(n) => index == *n,
        }
    }
}

impl Previous {
    /// The earlier dates `date` may carry from under `out`, or `None` for a full run: no
    /// earlier published date with a harvest record, or a full run is due.
    pub fn find(out: &Path, date: NaiveDate, policy: CarryPolicy) -> Option<Previous> {
        let records = earlier_records(out, date);
        let (latest, _) = records.iter().max_by(|a, b| a.0.cmp(b.0))?;
        let latest = latest.clone();
        let days_since = |pick: &dyn Fn(&HarvestRecord) -> bool| {
            records
                .iter()
                .filter(|(_, r)| pick(r))
                .filter_map(|(d, _)| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .max()
                .map(|d| (date - d).num_days())
        };
        let full_due = days_since(&|r| !r.incremental)
            .is_none_or(|days| days >= i64::from(policy.full_every_days));
        if full_due {
            tracing::info!(date = %date, "FullRunDue");
            return None;
        }
        let followings = policy.followings_every_days.is_none_or(|every| {
            days_since(&|r| r.followings_full).is_some_and(|days| days < i64::from(every))
        });
        let latest_date = NaiveDate::parse_from_str(&latest, "%Y-%m-%d").ok()?;
        // the earlier date's run read young stories at some time of its day, and their claps
        // changed after: count the lag from that day's start, not the next (#15 review)
        let upto = date.min(latest_date);
        let cutoff = upto.checked_sub_days(Days::new(u64::from(policy.lag_days)))?;
        let cutoff_ms = cutoff.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        Some(Previous {
            date: latest,
            cutoff_ms,
            followings,
            out: out.to_path_buf(),
            records,
            follow: None,
            stores: Default::default(),
        })
    }

    /// For `etl rebuild` of `date`, whose own record is `record`: every stream stops where the
    /// date's run stopped it and carries what it carried, from the dates it carried from.
    /// `None` when the date carried nothing (a full run: no chain to follow).
    pub fn follow(out: &Path, date: NaiveDate, record: HarvestRecord) -> Option<Previous> {
        let previous = record.previous_date.clone()?;
        Some(Previous {
            date: previous,
            cutoff_ms: record.cutoff_ms.unwrap_or_default(),
            followings: true,
            out: out.to_path_buf(),
            records: earlier_records(out, date),
            follow: Some((date.format("%Y-%m-%d").to_string(), record)),
            stores: Default::default(),
        })
    }

    /// The raw store of an earlier `date`, the same one for every stream of the run.
    fn store(&self, date: &str) -> RawStore {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores
            .entry(date.to_owned())
            .or_insert_with(|| RawStore::for_date(&self.out, date))
            .clone()
    }

    /// The latest earlier date's record of a stream, if it read it completely in `via`.
    fn record(&self, date: &str, key: &str, via: Via) -> Option<&StreamRecord> {
        self.records
            .get(date)?
            .streams
            .get(key)
            .filter(|r| r.complete && r.via == via && r.pages > 0)
    }

    /// What `stream`, read in `via`, may carry; `Ok(None)`: read it in full. For a following
    /// list, `reported` is Medium's following count now and on the earlier date: they must
    /// agree. `Err` (only when rebuilding, which must carry what the date carried) names the
    /// earlier page or record that is missing.
    pub fn carry<P: StreamPage>(
        &self,
        stream: &StreamId,
        via: Via,
        reported: Option<(Option<u64>, Option<u64>)>,
    ) -> Result<Option<Carry<P>>, PathBuf> {
        if let Some((date, record)) = &self.follow {
            let key = self.store(date).stream_key(stream);
            let Some(from) = record
                .streams
                .get(&key)
                .and_then(|r| r.carried_from.as_ref().map(|f| (f, r.pages)))
            else {
                return Ok(None);
            };
            let chain = self.chain_from::<P>(from.0, stream, via)?;
            return Ok(Some(Carry {
                chain,
                known: HashSet::new(),
                rule: Rule::At(from.1),
            }));
        }
        Ok(self.decide(stream, via, reported))
    }

    /// [`Previous::carry`] for an incremental run: the rules (module docs).
    fn decide<P: StreamPage>(
        &self,
        stream: &StreamId,
        via: Via,
        reported: Option<(Option<u64>, Option<u64>)>,
    ) -> Option<Carry<P>> {
        if via == Via::Graphql && matches!(stream, StreamId::Profile(_)) {
            return None;
        }
        if let StreamId::Following(_) = stream {
            // the cheap test first: Medium's count must agree before the chain is read
            let (now, before) = reported?;
            if !self.followings || now.is_none() || now != before {
                return None;
            }
        }
        let chain = self.chain::<P>(stream, via)?;
        let known: HashSet<String> = chain
            .iter()
            .flat_map(|(_, p)| p.item_ids())
            .map(str::to_owned)
            .collect();
        let rule = match stream {
            StreamId::Following(_) => {
                let first: Vec<String> = chain
                    .first()?
                    .1
                    .item_ids()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                Rule::SameFirstPage(first)
            }
            StreamId::PostBodies(_) => return None,
            _ => Rule::Stories {
                cutoff_ms: self.cutoff_ms,
            },
        };
        // (a following list's earlier page 1 is kept: it equals today's, whose rows win)
        Some(Carry { chain, known, rule })
    }

    /// The first page the latest earlier date read of `stream` in `via`, if it read it.
    pub fn first_page<P: StreamPage>(&self, stream: &StreamId, via: Via) -> Option<P> {
        let store = self.store(&self.date);
        let stored = store.load_any(stream, via, 1).ok()??;
        P::decode(via, stream, &stored.meta.query, &stored.body).ok()
    }

    /// A stream's pages as the latest earlier date had them (see the module docs); `None`
    /// when any link is missing, incomplete, in another format, or unreadable.
    pub fn chain<P: StreamPage>(&self, stream: &StreamId, via: Via) -> Option<Vec<(String, P)>> {
        self.chain_from(&self.date, stream, via).ok()
    }

    /// [`Previous::chain`] from `date` on: `Err` names what is missing or unreadable.
    fn chain_from<P: StreamPage>(
        &self,
        date: &str,
        stream: &StreamId,
        via: Via,
    ) -> Result<Vec<(String, P)>, PathBuf> {
        let mut out = Vec::new();
        let mut date = date.to_owned();
        loop {
            let store = self.store(&date);
            let key = store.stream_key(stream);
            let Some(record) = self.record(&date, &key, via) else {
                return Err(store.root().join(crate::raw_store::HARVEST_FILE));
            };
            for index in 1..=record.pages {
                let stored = match store.load_any(stream, via, index) {
                    Ok(Some(stored)) => stored,
                    _ => return Err(store.page_location(stream, via, index)),
                };
                let page = P::decode(via, stream, &stored.meta.query, &stored.body)
                    .map_err(|_| stored.body_path.clone())?;
                out.push((date.clone(), page));
            }
            match &record.carried_from {
                Some(earlier) if *earlier < date => date = earlier.clone(),
                Some(_) => return Err(store.root().join(crate::raw_store::HARVEST_FILE)),
                None => return Ok(out),
            }
        }
    }
}

/// The harvest records of the published dates before `date` under `out`.
fn earlier_records(out: &Path, date: NaiveDate) -> HashMap<String, HarvestRecord> {
    let mut records = HashMap::new();
    let Ok(entries) = std::fs::read_dir(out.join(Kind::Raw.dir_name())) else {
        return records;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(d) = date_of_dir_name(&name)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .filter(|d| *d < date)
        else {
            continue;
        };
        let text = d.format("%Y-%m-%d").to_string();
        if !manifest_path(out, &text).exists() {
            continue;
        }
        if let Ok(Some(r)) = RawStore::for_date(out, &text).harvest_record() {
            records.insert(text, r);
        }
    }
    records
}
