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
//! - Formats (`--via`, [`ViaMode`]): every stream is read in one format, whole. Under `auto`, a
//!   stream whose first page answers 403 / 404 / a challenge or error page is read in the next
//!   format (JSON → HTML → RSS); a 403 or a challenge also moves the rest of its request family
//!   on, so a closed door is knocked on once, not once per author. Every switch is recorded
//!   ([`SourceSwitch`]) for the summary and the manifest. A page already stored in any format
//!   of the chain is used before anything is requested, so a re-run requests nothing it has.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::client::{FetchStats, MediumClient};
use super::endpoints::{PublicationRef, StreamId};
use super::models::{Collection, FollowingPayload, StreamPayload, User};
use super::paging::{StreamEnd, StreamPager};
use super::via::{Via, ViaMode};
use super::StreamPage;
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
    /// Once set, no new page is fetched (pages in flight complete and are stored).
    pub cancel: CancelFlag,
    /// Which formats to read (`--via`).
    pub via: ViaMode,
}

/// A flag that stops a harvest from starting new requests (SIGINT / SIGTERM under `etl
/// schedule`).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<std::sync::atomic::AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// One stream's pages and how it ended.
#[derive(Debug)]
pub struct StreamHarvest<P> {
    pub stream: StreamId,
    pub pages: Vec<P>,
    /// How the stream ended, or the error that stopped it (its pages so far are kept).
    pub end: Result<StreamEnd, FetchError>,
    /// The format its pages were read in; `None` when no format answered.
    pub via: Option<Via>,
}

impl<P> StreamHarvest<P> {
    pub fn is_complete(&self) -> bool {
        self.end.is_ok()
    }

    /// Whether the stream was not harvested because no format in use carries it.
    pub fn is_not_carried(&self) -> bool {
        matches!(self.end, Err(FetchError::NotCarried { .. }))
    }
}

/// A stream that moved on to another format under `--via auto`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSwitch {
    /// The request family: `publication_stream`, `profile_stream` or `following`.
    pub endpoint: &'static str,
    /// The stream, as named in messages.
    pub stream: String,
    pub from: Via,
    /// The next format tried; `None` when no other format carries the stream.
    pub to: Option<Via>,
    /// The request that was refused.
    pub url: String,
    /// What the server answered.
    pub reason: String,
    /// Whether the rest of the family skips `from` as well (403, a challenge page).
    pub family: bool,
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
    /// Whether everything the formats in use carry was harvested: no stream failed (followings
    /// that no format in use carries are not a failure; `following_complete` is still false).
    pub fn is_complete(&self) -> bool {
        self.profile.is_complete()
            && (self.following.is_complete() || self.following.is_not_carried())
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
    /// Format switches under `--via auto`, in the order they happened.
    pub switches: Vec<SourceSwitch>,
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
    if s.is_not_carried() {
        return;
    }
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
    /// Per request family (by [`super::endpoints::Endpoint`] index): the position in the
    /// format chain that the family's streams start at (moves on when a door closes).
    families: [AtomicUsize; 3],
    /// Under `auto` over HTTP: the first stream of a family to try a format goes alone
    /// (`probes`), so that when the door is closed one request finds out, not one per author
    /// already waiting; `probed` marks the (family, format) pairs that have had their answer.
    probes: [tokio::sync::Mutex<()>; 3],
    probed: [[AtomicBool; 3]; 3],
    switches: Mutex<Vec<SourceSwitch>>,
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
            families: Default::default(),
            probes: Default::default(),
            probed: Default::default(),
            switches: Mutex::default(),
        }
    }

    /// Harvests the publications and all their authors. An author's streams start as soon as
    /// the publication page that lists them arrives, so the (sequential) publication paging
    /// overlaps with the author work instead of preceding it.
    pub async fn harvest(self: Arc<Self>, publications: &[PublicationRef]) -> Harvest {
        let mut authors = AuthorQueue::new(self.clone());
        let mut pubs = Vec::new();
        for publication in publications {
            let id = StreamId::Publication(publication.clone());
            let mut stream = self
                .stream_with(id, None, |page: &StreamPayload| {
                    for user in &page.references.users.0 {
                        authors.found(user, publication);
                    }
                })
                .await;
            let unresolved = unresolved_creators(&stream.pages);
            if !unresolved.is_empty() && stream.end.is_ok() {
                let url = self.page_url(&stream.stream, stream.via.unwrap_or_default(), None, "");
                let error = FetchError::AuthorsUnresolved {
                    url,
                    names: unresolved,
                };
                tracing::warn!(stream = %stream.stream, error = %error, "AuthorsUnresolved");
                stream.end = Err(error);
            }
            let pages = &stream.pages;
            let collection = pages.iter().find_map(|p| p.collection.clone()).or_else(|| {
                // Later pages of the stream by id carry no payload.collection; take the
                // referenced collection with the requested id.
                let PublicationRef::Id(cid) = publication else {
                    return None;
                };
                pages.iter().find_map(|p| {
                    p.references
                        .collections
                        .0
                        .iter()
                        .find(|c| &c.id == cid)
                        .cloned()
                })
            });
            pubs.push(PublicationHarvest {
                publication: publication.clone(),
                collection,
                stream,
            });
        }
        let found = authors.found_in.len();
        let capped = authors.capped_at();
        let skipped = std::mem::take(&mut authors.skipped_ids);
        let authors = authors.finish().await;
        let switches = match self.switches.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        Harvest {
            publications: pubs,
            authors,
            authors_found: found,
            authors_capped_at: capped,
            skipped_ids: skipped,
            switches,
        }
    }

    /// Reads one stream to its end, in the first format of the chain that answers (see the
    /// module docs). `username` addresses an author's HTML page and feed.
    pub async fn stream<P: StreamPage>(
        &self,
        stream: StreamId,
        username: Option<&str>,
    ) -> StreamHarvest<P> {
        self.stream_with(stream, username, |_| {}).await
    }

    async fn stream_with<P: StreamPage>(
        &self,
        stream: StreamId,
        username: Option<&str>,
        mut on_page: impl FnMut(&P),
    ) -> StreamHarvest<P> {
        let chain = self.settings.via.chain();
        let family = stream.endpoint() as usize;
        // Which formats already have the stream's first page stored (none under --refresh).
        let stored: Vec<bool> = chain
            .iter()
            .map(|via| !self.settings.refresh && self.store.has_page(&stream, *via, 1))
            .collect();
        // What is stored already wins (no request for a page we have, in any format); else
        // start where the family is.
        let first = stored.iter().position(|s| *s).unwrap_or_else(|| {
            self.families[family]
                .load(Ordering::Relaxed)
                .min(chain.len() - 1)
        });
        let mut closed: Option<FetchError> = None;
        for (i, &via) in chain.iter().enumerate().skip(first) {
            let path = match stream.http_path_via(via, username) {
                Ok(path) => path,
                Err(reason) => {
                    closed.get_or_insert(FetchError::Unaddressable {
                        stream: stream.to_string(),
                        reason,
                    });
                    continue;
                }
            };
            let probed = &self.probed[family][via as usize];
            let probing = chain.len() > 1
                && matches!(self.origin, Origin::Http(_))
                && !stored[i]
                && !probed.load(Ordering::Acquire);
            let mut probe = match probing {
                true => Some(self.probes[family].lock().await),
                false => None,
            };
            if probed.load(Ordering::Acquire) {
                // answered while we waited: no need to go alone
                probe = None;
            }
            if !stored[i] && i < self.families[family].load(Ordering::Acquire) {
                // the family moved past this format while we waited
                continue;
            }
            let mut pages = Vec::new();
            let end = self
                .page_through(
                    &stream,
                    via,
                    &path,
                    &mut pages,
                    &mut on_page,
                    &mut probe,
                    probed,
                )
                .await;
            probed.store(true, Ordering::Release);
            match end {
                Err(e) if pages.is_empty() && e.is_closed_door() => {
                    if i + 1 < chain.len() {
                        self.switched(&stream, username, i, &e);
                    }
                    // Report the first real refusal, not a later format's "cannot address".
                    if closed.as_ref().is_none_or(|c| {
                        matches!(
                            c,
                            FetchError::Unaddressable { .. } | FetchError::NotInSource { .. }
                        )
                    }) {
                        closed = Some(e);
                    }
                }
                end => {
                    log_stream_end(&stream, pages.len(), &end);
                    return StreamHarvest {
                        stream,
                        pages,
                        end,
                        via: Some(via),
                    };
                }
            }
        }
        let end = match closed {
            // Followings under --via html|rss, or under auto once the JSON API refused them
            // (403, a challenge): no format in use carries them. Not harvested, not a failure;
            // under --via json a refusal stays a failure.
            Some(FetchError::Unaddressable { reason, .. })
                if matches!(stream, StreamId::Following(_)) =>
            {
                Err(FetchError::NotCarried {
                    stream: stream.to_string(),
                    reason,
                })
            }
            Some(e)
                if chain.len() > 1
                    && matches!(stream, StreamId::Following(_))
                    && e.closes_family() =>
            {
                Err(FetchError::NotCarried {
                    stream: stream.to_string(),
                    reason: format!("followings exist only in the JSON API, which refused: {e}"),
                })
            }
            Some(e) => Err(e),
            None => Err(FetchError::Unaddressable {
                stream: stream.to_string(),
                reason: format!("no format of --via {} carries {stream}", self.settings.via),
            }),
        };
        log_stream_end(&stream, 0, &end);
        StreamHarvest {
            stream,
            pages: Vec::new(),
            end,
            via: None,
        }
    }

    /// Records that `stream` could not be read in the format at `position` of the chain, and
    /// moves its family on when the door is closed for all of it.
    fn switched(
        &self,
        stream: &StreamId,
        username: Option<&str>,
        position: usize,
        error: &FetchError,
    ) {
        let chain = self.settings.via.chain();
        let via = chain[position];
        // Replaying, or a format that cannot address the stream: nothing was refused.
        if matches!(
            error,
            FetchError::NotInSource { .. } | FetchError::Unaddressable { .. }
        ) {
            return;
        }
        let closes = error.closes_family();
        if closes {
            self.families[stream.endpoint() as usize].fetch_max(position + 1, Ordering::Relaxed);
        }
        let to = chain[position + 1..]
            .iter()
            .copied()
            .find(|v| stream.http_path_via(*v, username).is_ok());
        tracing::warn!(
            stream = %stream,
            from = %via,
            to = to.map_or("none", Via::name),
            family = closes,
            error = %error,
            "SourceSwitched"
        );
        let switch = SourceSwitch {
            endpoint: stream.endpoint().name(),
            stream: stream.to_string(),
            from: via,
            to,
            url: error.url(),
            reason: error.to_string(),
            family: closes,
        };
        match self.switches.lock() {
            Ok(mut s) => s.push(switch),
            Err(poisoned) => poisoned.into_inner().push(switch),
        }
    }

    /// The URL of a stream's page in a format (for messages).
    fn page_url(&self, stream: &StreamId, via: Via, username: Option<&str>, query: &str) -> String {
        let path = stream
            .http_path_via(via, username)
            .unwrap_or_else(|_| stream.http_path());
        match &self.origin {
            Origin::Http(client) => client.url_for_path(&path, query).to_string(),
            Origin::Replay(_) => replay_url(&path, query),
        }
    }

    /// Pages through `stream` in one format, pushing each page to `pages` after showing it to
    /// `on_page`. A `probe` held for the family is let go once the first page has answered
    /// (marking the format `probed`): the door is open, the others may come in. On an error it
    /// stays held, so the family moves on before anyone else knocks.
    #[allow(clippy::too_many_arguments)]
    async fn page_through<P: StreamPage>(
        &self,
        stream: &StreamId,
        via: Via,
        path: &str,
        pages: &mut Vec<P>,
        on_page: &mut impl FnMut(&P),
        probe: &mut Option<tokio::sync::MutexGuard<'_, ()>>,
        probed: &AtomicBool,
    ) -> Result<StreamEnd, FetchError> {
        let base = match via {
            Via::Json => stream.base_query(),
            Via::Html | Via::Rss => Vec::new(),
        };
        let mut pager = StreamPager::new(base, self.settings.max_pages);
        let mut query = pager.first_query();
        for index in 1.. {
            let page: P = self.page(stream, via, path, index, &query).await?;
            if probe.take().is_some() {
                probed.store(true, Ordering::Release);
            }
            on_page(&page);
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
    async fn page<P: StreamPage>(
        &self,
        stream: &StreamId,
        via: Via,
        path: &str,
        index: usize,
        query: &str,
    ) -> Result<P, FetchError> {
        let endpoint = stream.endpoint();
        if !self.settings.refresh {
            match self.store.load(stream, via, index, query) {
                Ok(Lookup::Found(stored)) => match P::decode(via, stream, &stored.body) {
                    Ok(p) => {
                        self.stats.page_from_store(endpoint);
                        self.stats.page_via(endpoint, via);
                        return Ok(p);
                    }
                    Err(kind) => tracing::warn!(
                        file = %stored.body_path.display(),
                        error = %kind,
                        "StoredPageUnreadable"
                    ),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "StoredPageUnreadable"),
            }
        }
        if self.settings.cancel.is_cancelled() {
            return Err(FetchError::Cancelled {
                url: replay_url(path, query),
            });
        }
        match &self.origin {
            Origin::Http(client) => {
                let url = client.url_for_path(path, query);
                let (fetched, payload) = client
                    .fetch_decoded(endpoint, &url, |body| P::decode(via, stream, body))
                    .await?;
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
                // File system work off the async workers: a slow create or rename must not stall
                // the other streams' requests.
                let (store, owned_stream) = (self.store.clone(), stream.clone());
                tokio::task::spawn_blocking(move || {
                    store.save(&owned_stream, via, index, &fetched.body, &meta)
                })
                .await
                .map_err(|e| FetchError::Transfer {
                    url: url.to_string(),
                    message: format!("storing the page failed: {e}"),
                    attempts: 1,
                })??;
                self.stats.page_via(endpoint, via);
                Ok(payload)
            }
            Origin::Replay(source) => {
                let url = replay_url(path, query);
                let stored = match source.load(stream, via, index, query)? {
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
                let payload = P::decode(via, stream, &stored.body).map_err(|kind| {
                    FetchError::StoredBody {
                        url: url.clone(),
                        file: stored.body_path.clone(),
                        kind,
                    }
                })?;
                self.stats.page_from_store(endpoint);
                self.stats.page_via(endpoint, via);
                self.store.save_from(stream, via, index, &stored, source)?;
                Ok(payload)
            }
        }
    }
}

/// The display names an RSS publication feed gave instead of users, in first-seen order.
fn unresolved_creators(pages: &[StreamPayload]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in pages.iter().flat_map(|p| &p.unresolved_creators) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn log_stream_end(stream: &StreamId, pages: usize, end: &Result<StreamEnd, FetchError>) {
    match end {
        Ok(StreamEnd::PageCap) => tracing::warn!(
            stream = %stream,
            pages,
            "PageCapReached"
        ),
        Ok(reason) => tracing::debug!(stream = %stream, pages, %reason, "StreamEnded"),
        // Reported once per family in the summary and the manifest, not once per author.
        Err(e @ FetchError::NotCarried { .. }) => {
            tracing::debug!(stream = %stream, reason = %e, "StreamNotCarried")
        }
        Err(e) => tracing::warn!(stream = %stream, error = %e, "StreamFailed"),
    }
}

type AuthorStreams = (
    usize,
    StreamHarvest<StreamPayload>,
    StreamHarvest<FollowingPayload>,
);

/// Authors as they are found: de-duplicated, capped, and each one's streams started at once.
struct AuthorQueue {
    harvester: Arc<Harvester>,
    users: Vec<User>,
    /// Every distinct author listed so far (beyond the cap too), with where.
    found_in: HashMap<String, Vec<PublicationRef>>,
    capped: bool,
    skipped_ids: Vec<String>,
    /// Bounds the authors being worked on at once, so memory stays flat for large
    /// publications (HTTP concurrency itself is the client's).
    slots: Arc<tokio::sync::Semaphore>,
    tasks: tokio::task::JoinSet<AuthorStreams>,
}

impl AuthorQueue {
    fn new(harvester: Arc<Harvester>) -> Self {
        let slots = Arc::new(tokio::sync::Semaphore::new(harvester.settings.tasks.max(1)));
        AuthorQueue {
            harvester,
            users: Vec::new(),
            found_in: HashMap::new(),
            capped: false,
            skipped_ids: Vec::new(),
            slots,
            tasks: tokio::task::JoinSet::new(),
        }
    }

    fn capped_at(&self) -> Option<usize> {
        self.capped
            .then_some(self.harvester.settings.max_authors)
            .flatten()
    }

    /// Records that `user` is listed by `publication`; starts their streams when new.
    fn found(&mut self, user: &User, publication: &PublicationRef) {
        if let Some(pubs) = self.found_in.get_mut(&user.user_id) {
            if !pubs.contains(publication) {
                pubs.push(publication.clone());
            }
            return;
        }
        self.found_in
            .insert(user.user_id.clone(), vec![publication.clone()]);
        if self
            .harvester
            .settings
            .max_authors
            .is_some_and(|cap| self.users.len() >= cap)
        {
            self.capped = true;
            return;
        }
        if !StreamId::Profile(user.user_id.clone()).is_valid() {
            tracing::warn!(user_id = %user.user_id, "AuthorSkipped");
            self.skipped_ids.push(user.user_id.clone());
            return;
        }
        let index = self.users.len();
        self.users.push(user.clone());
        self.harvester
            .stats
            .authors_found
            .fetch_add(1, Ordering::Relaxed);
        let this = self.harvester.clone();
        let slots = self.slots.clone();
        let user_id = user.user_id.clone();
        let username = user.username.clone();
        self.tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let username = username.as_deref();
            let (profile, following) = tokio::join!(
                this.stream::<StreamPayload>(StreamId::Profile(user_id.clone()), username),
                this.stream::<FollowingPayload>(StreamId::Following(user_id.clone()), username),
            );
            let n = this.stats.authors_done.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(user_id = %user_id, done = n, "AuthorHarvested");
            (index, profile, following)
        });
    }

    /// Waits for every author; returns them in first-seen order.
    async fn finish(mut self) -> Vec<AuthorHarvest> {
        let total = self.users.len();
        if self.capped {
            tracing::info!(found = self.found_in.len(), cap = total, "AuthorListCapped");
        }
        let mut results: Vec<Option<AuthorHarvest>> = (0..total).map(|_| None).collect();
        while let Some(joined) = self.tasks.join_next().await {
            let Ok((index, profile, following)) = joined else {
                // Only a panic (a bug) gets here; that author is then missing from the results.
                tracing::error!("AuthorTaskPanicked");
                continue;
            };
            let user = self.users[index].clone();
            let found_in = self.found_in.remove(&user.user_id).unwrap_or_default();
            results[index] = Some(AuthorHarvest {
                user,
                found_in,
                profile,
                following,
            });
        }
        results.into_iter().flatten().collect()
    }
}

/// The URL a replayed request stands for (for messages), relative to the site root.
fn replay_url(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
