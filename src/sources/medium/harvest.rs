//! The harvest: a publication's stream, then every author's stories and followings,
//! concurrently, each page stored in the run's raw store as it arrives.
//!
//! Invariants:
//! - A page is parsed once; its typed payload goes to the transform stage, its exact bytes to
//!   the raw store (published atomically before the next page of the stream is requested).
//! - Unless `refresh` is set, a page already in the run's raw store is read from there and no
//!   request is sent for it: a re-run of a date fetches only what is missing.
//! - One stream failing never stops another: its pages so far are kept, the failure is recorded
//!   with its URL, and the rest of the harvest goes on.
//! - Authors are the users of `references.User` across all publication pages, de-duplicated by
//!   id in first-seen order, then capped (SPEC §1).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::{stored_body_error, FetchStats, MediumClient};
use super::endpoints::{PublicationRef, StreamId};
use super::guard::parse_payload;
use super::models::{Collection, FollowingPayload, PageItems, StreamPayload, User};
use super::paging::{StreamEnd, StreamPager};
use crate::error::FetchError;
use crate::raw_store::{Lookup, PageMeta, RawStore};

/// Where pages come from when the run's raw store does not have them.
#[derive(Debug)]
pub enum Origin {
    /// Medium (or a compatible server) over HTTP.
    Http(Box<MediumClient>),
    /// A raw store directory (`--source`): no network at all.
    Replay(RawStore),
}

/// How a harvest runs.
#[derive(Debug, Clone)]
pub struct HarvestSettings {
    /// Ignore pages already in the run's raw store.
    pub refresh: bool,
    /// Page cap per stream.
    pub max_pages: usize,
    /// Cap on the number of authors (first seen first); `None` = all.
    pub max_authors: Option<usize>,
    /// Streams worked on at once when replaying from disk (HTTP concurrency is the client's).
    pub tasks: usize,
}

/// One stream's pages and how it ended.
#[derive(Debug)]
pub struct StreamHarvest<P> {
    pub stream: StreamId,
    pub pages: Vec<P>,
    /// How the stream ended, or the error that stopped it (its pages so far are kept).
    pub end: Result<StreamEnd, FetchError>,
}

impl<P> StreamHarvest<P> {
    pub fn is_complete(&self) -> bool {
        self.end.is_ok()
    }
}

/// A publication's stream.
#[derive(Debug)]
pub struct PublicationHarvest {
    pub publication: PublicationRef,
    /// `payload.collection` of the first page that had one.
    pub collection: Option<Collection>,
    pub stream: StreamHarvest<StreamPayload>,
}

/// An author, where they were found, and their two streams.
#[derive(Debug)]
pub struct AuthorHarvest {
    pub user: User,
    /// The publications (as named by the user) whose stream listed this author.
    pub found_in: Vec<PublicationRef>,
    pub profile: StreamHarvest<StreamPayload>,
    pub following: StreamHarvest<FollowingPayload>,
}

impl AuthorHarvest {
    pub fn is_complete(&self) -> bool {
        self.profile.is_complete() && self.following.is_complete()
    }
}

/// A failed stream, for the summary and the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// What failed: `publication_stream`, `profile_stream` or `following`.
    pub endpoint: &'static str,
    /// The author's user id, for author streams.
    pub user_id: Option<String>,
    pub url: String,
    pub error: String,
}

/// Everything a harvest produced.
#[derive(Debug)]
pub struct Harvest {
    pub publications: Vec<PublicationHarvest>,
    pub authors: Vec<AuthorHarvest>,
    /// Distinct authors found before the cap.
    pub authors_found: usize,
    /// The cap, when it cut the list.
    pub authors_capped_at: Option<usize>,
    /// Streams whose ids could not be used (not a safe path segment), skipped.
    pub skipped_ids: Vec<String>,
    pub duration: Duration,
}

impl Harvest {
    /// Every failed stream, publication streams first, then authors in order.
    pub fn failures(&self) -> Vec<Failure> {
        let mut out = Vec::new();
        for p in &self.publications {
            push_failure(&mut out, &p.stream, None);
        }
        for a in &self.authors {
            push_failure(&mut out, &a.profile, Some(&a.user.user_id));
            push_failure(&mut out, &a.following, Some(&a.user.user_id));
        }
        out
    }
}

fn push_failure<P>(out: &mut Vec<Failure>, s: &StreamHarvest<P>, user: Option<&str>) {
    if let Err(e) = &s.end {
        out.push(Failure {
            endpoint: s.stream.endpoint().name(),
            user_id: user.map(str::to_owned),
            url: e.url(),
            error: e.to_string(),
        });
    }
}

/// Runs harvests; shared by the tasks of one run.
#[derive(Debug)]
pub struct Harvester {
    origin: Origin,
    store: RawStore,
    settings: HarvestSettings,
    stats: Arc<FetchStats>,
}

impl Harvester {
    pub fn new(
        origin: Origin,
        store: RawStore,
        settings: HarvestSettings,
        stats: Arc<FetchStats>,
    ) -> Self {
        Harvester {
            origin,
            store,
            settings,
            stats,
        }
    }

    pub fn stats(&self) -> &Arc<FetchStats> {
        &self.stats
    }

    /// Harvests the publications, then all their authors concurrently.
    pub async fn harvest(self: Arc<Self>, publications: &[PublicationRef]) -> Harvest {
        let started = Instant::now();
        let mut pubs = Vec::new();
        for publication in publications {
            let stream = self
                .stream::<StreamPayload>(StreamId::Publication(publication.clone()))
                .await;
            let collection = stream
                .pages
                .iter()
                .find_map(|p| p.collection.clone())
                .or_else(|| {
                    // The API stream by id has no payload.collection on later pages; take the
                    // referenced collection with the requested id.
                    let PublicationRef::Id(id) = publication else {
                        return None;
                    };
                    stream.pages.iter().find_map(|p| {
                        p.references
                            .collections
                            .0
                            .iter()
                            .find(|c| &c.id == id)
                            .cloned()
                    })
                });
            pubs.push(PublicationHarvest {
                publication: publication.clone(),
                collection,
                stream,
            });
        }

        // Authors: first seen first, across publications; remember where each was found.
        let mut order: Vec<User> = Vec::new();
        let mut found_in: HashMap<String, Vec<PublicationRef>> = HashMap::new();
        for p in &pubs {
            for page in &p.stream.pages {
                for user in &page.references.users.0 {
                    let entry = found_in.entry(user.user_id.clone()).or_default();
                    if entry.is_empty() {
                        order.push(user.clone());
                    }
                    if !entry.contains(&p.publication) {
                        entry.push(p.publication.clone());
                    }
                }
            }
        }
        let authors_found = order.len();
        let mut authors_capped_at = None;
        if let Some(cap) = self.settings.max_authors {
            if order.len() > cap {
                tracing::info!(found = order.len(), cap, "author list capped");
                order.truncate(cap);
                authors_capped_at = Some(cap);
            }
        }
        let mut skipped_ids = Vec::new();
        order.retain(|u| {
            let ok = StreamId::Profile(u.user_id.clone()).is_valid();
            if !ok {
                tracing::warn!(user_id = %u.user_id, "author skipped: unusable user id");
                skipped_ids.push(u.user_id.clone());
            }
            ok
        });

        let authors = self.clone().harvest_authors(order, &mut found_in).await;
        Harvest {
            publications: pubs,
            authors,
            authors_found,
            authors_capped_at,
            skipped_ids,
            duration: started.elapsed(),
        }
    }

    async fn harvest_authors(
        self: Arc<Self>,
        users: Vec<User>,
        found_in: &mut HashMap<String, Vec<PublicationRef>>,
    ) -> Vec<AuthorHarvest> {
        let total = users.len();
        let done = Arc::new(AtomicUsize::new(0));
        // HTTP concurrency is bounded by the client's permits; this bounds how many streams are
        // open at once so memory stays flat for large publications.
        let tasks = Arc::new(tokio::sync::Semaphore::new(self.settings.tasks.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (index, user) in users.iter().enumerate() {
            let this = self.clone();
            let tasks = tasks.clone();
            let done = done.clone();
            let user_id = user.user_id.clone();
            set.spawn(async move {
                let _slot = tasks.acquire_owned().await;
                let (profile, following) = tokio::join!(
                    this.stream::<StreamPayload>(StreamId::Profile(user_id.clone())),
                    this.stream::<FollowingPayload>(StreamId::Following(user_id.clone())),
                );
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(user_id = %user_id, done = n, total, "author harvested");
                (index, profile, following)
            });
        }
        let mut results: Vec<Option<AuthorHarvest>> = (0..total).map(|_| None).collect();
        let mut last_report = Instant::now();
        while let Some(joined) = set.join_next().await {
            let Ok((index, profile, following)) = joined else {
                // A panicking task is a bug; the author is then missing from the results and
                // the run reports it below.
                continue;
            };
            let user = users[index].clone();
            let found = found_in.remove(&user.user_id).unwrap_or_default();
            results[index] = Some(AuthorHarvest {
                user,
                found_in: found,
                profile,
                following,
            });
            if last_report.elapsed() >= Duration::from_secs(5) {
                last_report = Instant::now();
                tracing::info!(
                    done = done.load(Ordering::Relaxed),
                    total,
                    requests = self.stats.requests(),
                    "authors harvested"
                );
            }
        }
        results.into_iter().flatten().collect()
    }

    /// Pages through one stream until it ends or fails.
    pub async fn stream<P>(&self, stream: StreamId) -> StreamHarvest<P>
    where
        P: DeserializeOwned + PageItems,
    {
        let mut pages = Vec::new();
        let end = self.page_through(&stream, &mut pages).await;
        match &end {
            Ok(StreamEnd::PageCap) => tracing::warn!(
                stream = %stream,
                pages = pages.len(),
                "page cap reached; the stream may have more pages"
            ),
            Ok(reason) => {
                tracing::debug!(stream = %stream, pages = pages.len(), %reason, "stream ended")
            }
            Err(e) => tracing::warn!(stream = %stream, error = %e, "stream failed"),
        }
        StreamHarvest { stream, pages, end }
    }

    async fn page_through<P>(
        &self,
        stream: &StreamId,
        pages: &mut Vec<P>,
    ) -> Result<StreamEnd, FetchError>
    where
        P: DeserializeOwned + PageItems,
    {
        let mut pager = StreamPager::new(stream.base_query(), self.settings.max_pages);
        let mut query = pager.first_query();
        for index in 1.. {
            let page: P = self.page(stream, index, &query).await?;
            let next = pager.after_page(page.item_ids(), page.paging());
            pages.push(page);
            match next {
                Ok(q) => query = q,
                Err(end) => return Ok(end),
            }
        }
        unreachable!("the page cap ends every stream")
    }

    /// One page: from the run's raw store, else from the origin (then stored).
    async fn page<P: DeserializeOwned>(
        &self,
        stream: &StreamId,
        index: usize,
        query: &str,
    ) -> Result<P, FetchError> {
        let endpoint = stream.endpoint();
        if !self.settings.refresh {
            match self.store.load(stream, index, query) {
                Ok(Lookup::Found(stored)) => match parse_payload::<P>(&stored.body) {
                    Ok(p) => {
                        self.stats.page_from_store(endpoint);
                        return Ok(p);
                    }
                    Err(kind) => tracing::warn!(
                        file = %stored.body_path.display(),
                        error = %kind,
                        "stored page unreadable; fetching it again"
                    ),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "stored page unreadable; fetching it again"),
            }
        }
        match &self.origin {
            Origin::Http(client) => {
                let (fetched, payload) = client.fetch_page::<P>(stream, query).await?;
                let meta = PageMeta {
                    url: fetched.url.clone(),
                    query: query.to_owned(),
                    status: fetched.status,
                    fetched_at: fetched
                        .fetched_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    bytes: fetched.body.len() as u64,
                    attempts: fetched.attempts,
                };
                self.store.save(stream, index, &fetched.body, &meta)?;
                Ok(payload)
            }
            Origin::Replay(source) => {
                let url = replay_url(stream, query);
                let stored = match source.load(stream, index, query)? {
                    Lookup::Found(stored) => stored,
                    Lookup::Missing { body_path } => {
                        return Err(FetchError::NotInSource {
                            url,
                            dir: source.root().to_path_buf(),
                            file: body_path,
                        })
                    }
                    Lookup::OtherQuery { body_path, stored } => {
                        return Err(FetchError::NotInSource {
                            url,
                            dir: source.root().to_path_buf(),
                            file: PathBuf::from(format!(
                                "{} (it holds the answer to ?{stored})",
                                body_path.display()
                            )),
                        })
                    }
                };
                let payload = parse_payload::<P>(&stored.body)
                    .map_err(|kind| stored_body_error(&url, &stored.body_path, kind))?;
                self.stats.page_from_store(endpoint);
                self.store.save(stream, index, &stored.body, &stored.meta)?;
                Ok(payload)
            }
        }
    }
}

/// The URL a replayed request stands for (for messages), relative to the site root.
fn replay_url(stream: &StreamId, query: &str) -> String {
    if query.is_empty() {
        stream.http_path()
    } else {
        format!("{}?{query}", stream.http_path())
    }
}
