//! The crawl: a publication's stream, then every author's stories and followings,
//! concurrently, each page read through the run's raw store ([`super::origin`]) in the format
//! the fallback picks ([`super::fallback`]).
//!
//! Invariants:
//! - An author's streams start as soon as the publication page that lists them arrives, so the
//!   (sequential) publication paging overlaps with the author work.
//! - One stream failing never stops another: its pages so far are kept, the failure is recorded
//!   with its URL, and the rest of the harvest goes on.
//! - Authors are the users of `references.User` across all publication pages, de-duplicated by
//!   id in first-seen order, then capped (SPEC §1).
//! - Unless `refresh` is set, a page already in the run's raw store (in any format of the
//!   chain) is used before anything is requested: a re-run of a date fetches only what is
//!   missing.
//! - An author's stories read through GraphQL get their link counts from the posts' bodies,
//!   a stream of its own (`post_bodies`: batches of 25 posts, named by their ids in listing
//!   order, so a re-run asks for the same batches), read after the stories and merged in.
//!   A batch that fails leaves the stories stream unfinished with that failure.

use std::collections::HashMap;
use std::sync::Arc;

use medium_api::endpoints::{is_safe_segment, PublicationRef, StreamId};
use medium_api::graphql;
use medium_api::models::{CompactString, FollowingPayload, StreamPayload, User};
use medium_api::paging::{StreamEnd, StreamPager};
use medium_api::via::{Via, ViaMode};
use medium_api::StreamPage;

use super::carry::{Carry, Previous};
use super::fallback::{Fallback, Turn};
use super::origin::{Origin, PageRequest, ReadThrough};
use crate::error::FetchError;
use crate::events::{AuthorFound, AuthorHarvested};
use crate::raw_store::RawStore;
use crate::run::{
    AuthorHarvest, AuthorSink, CancelFlag, FetchStats, Harvest, PublicationHarvest, SpentAuthor,
    SpentHarvest, StreamHarvest, Unfinished,
};

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
    /// The run's date, for the rows it observes.
    pub date: String,
    /// What earlier dates read, for an incremental run (`None`: read every stream in full).
    pub previous: Option<Arc<Previous>>,
    /// `--shard K/N`: only this shard's authors are harvested (the cap still counts every
    /// author listed, so the shards of a capped run split the same authors).
    pub shard: Option<crate::config::Shard>,
}

/// Runs harvests; shared by the tasks of one run.
#[derive(Debug)]
pub struct Harvester {
    pages: ReadThrough,
    doors: Fallback,
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
        let pages = ReadThrough::new(
            origin,
            store,
            settings.refresh,
            settings.cancel.clone(),
            stats.clone(),
        );
        Harvester {
            doors: Fallback::new(settings.via, pages.is_http()),
            pages,
            settings,
            stats,
        }
    }

    /// Harvests the publications and all their authors. An author's streams start as soon as
    /// the publication page that lists them arrives, so the (sequential) publication paging
    /// overlaps with the author work instead of preceding it. Each author is handed to `sink`
    /// once their streams are read, in first-seen order, and kept spent.
    pub async fn harvest(
        self: Arc<Self>,
        publications: &[PublicationRef],
        sink: Box<dyn AuthorSink>,
    ) -> SpentHarvest {
        let mut authors = AuthorQueue::new(self.clone(), sink);
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
            // authors listed on the pages carried from an earlier date, in their order
            for (_, page) in &stream.carried {
                for user in &page.references.users.0 {
                    if !authors.found_in.contains_key(&user.user_id) {
                        authors.listed_earlier.insert(user.user_id.clone());
                    }
                    authors.found(user, publication);
                }
            }
            let unresolved = unresolved_creators(&stream.pages);
            if !unresolved.is_empty() && stream.end.is_ok() {
                let via = stream.via.unwrap_or_default();
                let path = stream
                    .stream
                    .http_path_via(via, None)
                    .unwrap_or_else(|_| stream.stream.http_path());
                let error = FetchError::AuthorsUnresolved {
                    url: self.pages.url(&path, ""),
                    names: unresolved,
                };
                tracing::warn!(stream = %stream.stream, error = %error, "AuthorsUnresolved");
                stream.end = Err(error.into());
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
                        .find(|c| c.id == cid)
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
        let switches = self.doors.take_switches();
        Harvest {
            date: self.settings.date.clone(),
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
        on_page: impl FnMut(&P),
    ) -> StreamHarvest<P> {
        self.read_stream(stream, username, None, None, on_page)
            .await
    }

    /// An author's following list; `reported` is Medium's following count now and on the
    /// earlier date (a carried list needs them to agree).
    async fn following(
        &self,
        user_id: &str,
        username: Option<&str>,
        reported: Option<(Option<u64>, Option<u64>)>,
    ) -> StreamHarvest<FollowingPayload> {
        let stream = StreamId::Following(user_id.to_owned());
        self.read_stream(stream, username, None, reported, |_| {})
            .await
    }

    /// Reads one stream as [`Harvester::stream`] does; with `listed`, its pages are those
    /// queries, in order, instead of following each page's cursor (batches of post bodies).
    async fn read_stream<P: StreamPage>(
        &self,
        stream: StreamId,
        username: Option<&str>,
        listed: Option<&[String]>,
        reported: Option<(Option<u64>, Option<u64>)>,
        mut on_page: impl FnMut(&P),
    ) -> StreamHarvest<P> {
        let chain = self.doors.chain();
        let family = stream.endpoint();
        // Which formats already have the stream's first page stored (none under --refresh).
        let stored: Vec<bool> = chain
            .iter()
            .map(|via| self.pages.has_first_page(&stream, *via))
            .collect();
        let first = self.doors.first_position(family, &stored);
        // The first real refusal, and the format that gave it.
        let mut closed: Option<(FetchError, Via)> = None;
        for (i, &via) in chain.iter().enumerate().skip(first) {
            let path = match stream.http_path_via(via, username) {
                Ok(path) => path,
                Err(reason) => {
                    let unaddressable = FetchError::Unaddressable {
                        stream: stream.to_string(),
                        reason,
                    };
                    closed.get_or_insert((unaddressable, via));
                    continue;
                }
            };
            let Some(mut turn) = self.doors.turn(family, i, stored[i]).await else {
                // the family moved past this format while we waited
                continue;
            };
            let mut pages = Vec::new();
            let carry: Option<Carry<P>> = match (listed, &self.settings.previous) {
                (None, Some(previous)) => match previous.carry(&stream, via, reported) {
                    Ok(carry) => carry,
                    Err(file) => {
                        // rebuilding: what the date carried must be there
                        let error = FetchError::NotInSource {
                            url: self.pages.url(&path, ""),
                            dir: file.parent().map(Into::into).unwrap_or_default(),
                            file,
                        };
                        turn.done();
                        let end = Err(Unfinished::Failed(error));
                        log_stream_end(&stream, 0, &end);
                        return StreamHarvest {
                            stream,
                            pages: Vec::new(),
                            end,
                            via: Some(via),
                            carried: Vec::new(),
                        };
                    }
                },
                _ => None,
            };
            let end = match listed {
                None => {
                    let at = (&stream, via, path.as_str());
                    self.page_through(at, &mut pages, &mut on_page, &mut turn, carry.as_ref())
                        .await
                }
                Some(queries) => {
                    self.read_listed(&stream, via, &path, queries, &mut pages, &mut turn)
                        .await
                }
            };
            match end {
                Err(Unfinished::Failed(e)) if pages.is_empty() && e.is_closed_door() => {
                    self.doors.refused(turn, &stream, username, i, &e);
                    // Report the first real refusal, not a later format's "cannot address" (nor,
                    // replaying, a later format's missing file).
                    let missing = |e: &FetchError| matches!(e, FetchError::NotInSource { .. });
                    if closed.as_ref().is_none_or(|(c, _)| {
                        matches!(c, FetchError::Unaddressable { .. })
                            || (missing(c) && !missing(&e))
                    }) {
                        closed = Some((e, via));
                    }
                }
                end => {
                    turn.done();
                    log_stream_end(&stream, pages.len(), &end);
                    let carried = match (&end, carry) {
                        (Ok(StreamEnd::Carried), Some(c)) => c.chain,
                        _ => Vec::new(),
                    };
                    return StreamHarvest {
                        stream,
                        pages,
                        end,
                        via: Some(via),
                        carried,
                    };
                }
            }
        }
        let end = Err(self.doors.not_answered(&stream, closed));
        log_stream_end(&stream, 0, &end);
        StreamHarvest {
            stream,
            pages: Vec::new(),
            end,
            via: None,
            carried: Vec::new(),
        }
    }

    /// Pages through `stream` in one format, pushing each page to `pages` after showing it to
    /// `on_page`; the `turn` hears when the first page has answered.
    /// (`at`: the stream, the format, and the path it is requested at.)
    async fn page_through<P: StreamPage>(
        &self,
        (stream, via, path): (&StreamId, Via, &str),
        pages: &mut Vec<P>,
        on_page: &mut impl FnMut(&P),
        turn: &mut Turn<'_>,
        carry: Option<&Carry<P>>,
    ) -> Result<StreamEnd, Unfinished> {
        let mut pager = StreamPager::new(stream.base_query_via(via), self.settings.max_pages)
            .with_rules(via.format().paging);
        let first = PageRequest {
            stream,
            via,
            path,
            index: 1,
            query: &pager.first_query(),
        };
        let mut page: P = self.pages.page(first).await?;
        turn.answered();
        for index in 1.. {
            // carried, the stream must still fit today's --max-pages
            let fits = |c: &Carry<P>| index + c.chain.len() <= self.settings.max_pages;
            let next = match carry.is_some_and(|c| fits(c) && c.stops_after(index, &page)) {
                true => Err(StreamEnd::Carried),
                false => pager.after_page(page.item_ids(), page.paging()),
            };
            let query = match next {
                Ok(query) => query,
                Err(end) => {
                    on_page(&page);
                    pages.push(page);
                    return Ok(end);
                }
            };
            // The next page is asked for before `on_page` sees this one: a page that lists
            // authors starts their requests, and the stream's own request, on the crawl's
            // critical path, usually goes ahead of them (#18): `yield_now` gives the connection
            // the request to write before the authors' tasks exist.
            let next = PageRequest {
                stream,
                via,
                path,
                index: index + 1,
                query: &query,
            };
            let (next, ()) = tokio::join!(self.pages.page(next), async {
                tokio::task::yield_now().await;
                on_page(&page);
            });
            pages.push(page);
            page = next?;
        }
        unreachable!("the page cap ends every stream")
    }

    /// Reads the pages `queries` name, in order (see [`Harvester::read_stream`]).
    async fn read_listed<P: StreamPage>(
        &self,
        stream: &StreamId,
        via: Via,
        path: &str,
        queries: &[String],
        pages: &mut Vec<P>,
        turn: &mut Turn<'_>,
    ) -> Result<StreamEnd, Unfinished> {
        for (i, query) in queries.iter().enumerate() {
            let request = PageRequest {
                stream,
                via,
                path,
                index: i + 1,
                query,
            };
            pages.push(self.pages.page(request).await?);
            turn.answered();
        }
        Ok(StreamEnd::AllListed)
    }

    /// An author's stories read through GraphQL, with their link counts from the posts' bodies
    /// ([`medium_api::graphql`]: batched, [`graphql::BODY_BATCH`] posts a request). The other
    /// formats carry link counts in the posts themselves (or not at all). When a batch fails,
    /// the stories stream is unfinished with that failure (its pages are kept, the counts of
    /// the batches read are set); when no format in use serves bodies, the counts stay null.
    async fn with_link_counts(
        &self,
        mut profile: StreamHarvest<StreamPayload>,
        username: Option<&str>,
    ) -> StreamHarvest<StreamPayload> {
        if profile.via != Some(Via::Graphql) {
            return profile;
        }
        let mut ids: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for page in &profile.pages {
            for post in page.references.posts.iter().flat_map(|p| &p.0) {
                // an id that cannot be named in a batch (empty, a comma) keeps no count
                if is_safe_segment(&post.id) && seen.insert(post.id.as_str()) {
                    ids.push(post.id.as_str());
                }
            }
        }
        if ids.is_empty() {
            return profile;
        }
        let queries: Vec<String> = ids
            .chunks(graphql::BODY_BATCH)
            .map(graphql::bodies_query)
            .collect();
        let bodies = self
            .read_stream::<graphql::BodiesPayload>(
                StreamId::PostBodies(profile.stream.key().to_owned()),
                username,
                Some(&queries),
                None,
                |_| {},
            )
            .await;
        graphql::merge_link_counts(
            profile
                .pages
                .iter_mut()
                .filter_map(|p| p.references.posts.as_mut())
                .flat_map(|p| p.0.iter_mut()),
            &bodies.pages,
        );
        // The stories came through GraphQL, which carries link counts: bodies it would not
        // serve are a failure too, not counts quietly left null.
        let failure = match bodies.end {
            Ok(_) | Err(Unfinished::Stopped { .. }) => None,
            Err(Unfinished::Failed(e)) => Some(e),
            Err(Unfinished::NotCarried { stream, reason }) => {
                Some(FetchError::Unaddressable { stream, reason })
            }
        };
        if let Some(e) = failure {
            if profile.end.is_ok() {
                profile.end = Err(Unfinished::Failed(e));
            }
        }
        profile
    }
}

/// The author as a page of their stories describes them today (its `user`, else the user
/// among its references), with what `listed` (an earlier date's publication page) said kept
/// where today's page says nothing.
fn fresh_user(page: &StreamPayload, listed: &User) -> Option<User> {
    let id = listed.user_id.as_str();
    let fresh = page
        .user
        .as_ref()
        .filter(|u| u.user_id == id)
        .or_else(|| page.references.users.0.iter().find(|u| u.user_id == id))?;
    let pick = |a: &Option<CompactString>, b: &Option<CompactString>| {
        a.clone().filter(|s| !s.is_empty()).or_else(|| b.clone())
    };
    Some(User {
        user_id: listed.user_id.clone(),
        username: pick(&fresh.username, &listed.username),
        name: pick(&fresh.name, &listed.name),
        bio: pick(&fresh.bio, &listed.bio),
        created_at: fresh.created_at.or(listed.created_at),
        medium_member_at: fresh.medium_member_at.or(listed.medium_member_at),
        twitter_screen_name: pick(&fresh.twitter_screen_name, &listed.twitter_screen_name),
        image_id: pick(&fresh.image_id, &listed.image_id),
    })
}

/// Medium's count of whom `user_id` follows, from a page of their stories.
fn following_count(user_id: &str, page: Option<&StreamPayload>) -> Option<u64> {
    page?
        .references
        .social_stats
        .0
        .iter()
        .find(|s| s.user_id == user_id)?
        .users_followed_count
        .and_then(|n| u64::try_from(n).ok())
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

fn log_stream_end(stream: &StreamId, pages: usize, end: &Result<StreamEnd, Unfinished>) {
    match end {
        Ok(StreamEnd::PageCap) => tracing::warn!(
            stream = %stream,
            pages,
            "PageCapReached"
        ),
        Ok(reason) => tracing::debug!(stream = %stream, pages, %reason, "StreamEnded"),
        // Reported once per family in the summary and the manifest, not once per author.
        Err(e @ Unfinished::NotCarried { .. }) => {
            tracing::debug!(stream = %stream, reason = %e, "StreamNotCarried")
        }
        Err(e @ Unfinished::Stopped { .. }) => {
            tracing::debug!(stream = %stream, reason = %e, "StreamStopped")
        }
        Err(e) => tracing::warn!(stream = %stream, error = %e, "StreamFailed"),
    }
}

/// How many authors past the oldest one not yet handed to the sink may be started: the
/// authors that finish out of order wait with their pages (the sink takes them in order), so
/// this bounds those pages, as a multiple of the authors worked on at once.
const WINDOW_PER_TASK: usize = 4;

/// Authors as they are found: de-duplicated, capped, and each one's streams started as soon
/// as the delivery window has room.
struct AuthorQueue {
    users: Vec<User>,
    /// Authors within the cap, this shard's or not.
    listed: usize,
    /// Every distinct author listed so far (beyond the cap too), with where.
    found_in: HashMap<CompactString, Vec<PublicationRef>>,
    capped: bool,
    skipped_ids: Vec<String>,
    /// Authors first found on publication pages carried from an earlier date: their profile
    /// fields are refreshed from today's first page of their stories.
    listed_earlier: std::collections::HashSet<CompactString>,
    shared: Arc<Shared>,
    delivered: tokio::sync::watch::Receiver<usize>,
}

/// What the authors' tasks share: the delivery to the sink, in first-seen order.
struct Shared {
    harvester: Arc<Harvester>,
    /// Bounds the authors being worked on at once (HTTP concurrency itself is the client's).
    slots: Arc<tokio::sync::Semaphore>,
    /// Authors past the oldest undelivered one that may be started.
    window: usize,
    state: std::sync::Mutex<Delivery>,
    /// How many authors have been delivered (or lost to a panic), for `finish`.
    delivered: tokio::sync::watch::Sender<usize>,
}

struct Delivery {
    sink: Box<dyn AuthorSink>,
    /// The index of the next author the sink takes.
    next: usize,
    /// Authors finished out of order; `None`: the author's task panicked.
    finished: std::collections::BTreeMap<usize, Option<AuthorHarvest>>,
    /// Delivered authors, spent, by index, with the author as today's first page of their
    /// stories describes them; `None`: lost to a panic.
    spent: Vec<Option<(SpentAuthor, Option<User>)>>,
    /// Authors found but not started yet (the window was full), in order.
    queued: std::collections::VecDeque<(usize, User)>,
    /// The running authors' tasks by index, aborted if the harvest is dropped before it ends.
    tasks: HashMap<usize, tokio::task::AbortHandle>,
    /// The harvest was dropped: nothing more is delivered or started.
    aborted: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Delivery> {
        // a panic in the sink poisons the lock; what it guards is still consistent
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `index`'s streams now, or queues them until the window has room.
    fn found(self: &Arc<Self>, index: usize, user: User) {
        let ready = {
            let mut state = self.lock();
            state.queued.push_back((index, user));
            self.ready(&mut state)
        };
        for (index, user) in ready {
            self.start(index, user);
        }
    }

    /// The queued authors the window now admits.
    fn ready(&self, state: &mut Delivery) -> Vec<(usize, User)> {
        let mut out = Vec::new();
        while state
            .queued
            .front()
            .is_some_and(|(i, _)| *i < state.next + self.window)
        {
            out.extend(state.queued.pop_front());
        }
        out
    }

    fn start(self: &Arc<Self>, index: usize, listed: User) {
        let shared = self.clone();
        let task = tokio::spawn(async move {
            let mut guard = Undelivered {
                shared: shared.clone(),
                index,
            };
            let _slot = shared.slots.clone().acquire_owned().await;
            let this = &shared.harvester;
            let user_id = listed.user_id.to_string();
            let username = listed.username.as_deref();
            let profile = async {
                let profile = this
                    .stream::<StreamPayload>(StreamId::Profile(user_id.clone()), username)
                    .await;
                this.with_link_counts(profile, username).await
            };
            let (profile, following) = match this.settings.previous.clone() {
                // incremental: the following list is judged against Medium's following count,
                // which comes with the stories' first page
                Some(previous) => {
                    let profile = profile.await;
                    let now = following_count(&user_id, profile.pages.first());
                    let before = profile.via.and_then(|via| {
                        let first = previous
                            .first_page::<StreamPayload>(&StreamId::Profile(user_id.clone()), via);
                        following_count(&user_id, first.as_ref())
                    });
                    let following = this
                        .following(&user_id, username, Some((now, before)))
                        .await;
                    (profile, following)
                }
                None => tokio::join!(profile, this.following(&user_id, username, None)),
            };
            AuthorHarvested { user_id: &user_id }.emit(&this.stats);
            let author = AuthorHarvest {
                user: listed,
                found_in: Vec::new(),
                profile,
                following,
            };
            guard.index = usize::MAX;
            shared.finished(index, Some(author));
        });
        let mut state = self.lock();
        if state.aborted {
            task.abort();
        } else if !task.is_finished() {
            state.tasks.insert(index, task.abort_handle());
        }
    }

    /// Takes a finished author (`None`: lost), and hands the sink every author now in order.
    fn finished(self: &Arc<Self>, index: usize, author: Option<AuthorHarvest>) {
        let ready = {
            let mut state = self.lock();
            state.tasks.remove(&index);
            if state.aborted {
                // the harvest was dropped: deliver nothing more, start nothing more
                return;
            }
            state.finished.insert(index, author);
            let first = state.next;
            while let Some(author) = {
                let next = state.next;
                state.finished.remove(&next)
            } {
                let next = state.next;
                // the count moves on before the sink runs: a sink that panics loses this
                // author, not the harvest
                state.next += 1;
                let delivered = author.and_then(|a| {
                    let fresh = a
                        .profile
                        .pages
                        .first()
                        .and_then(|page| fresh_user(page, &a.user));
                    let sink = &mut state.sink;
                    let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        sink.author(next, &a)
                    }));
                    match fed {
                        Ok(()) => Some((a.spend(), fresh)),
                        Err(_) => {
                            tracing::error!(index = next, "AuthorSinkPanicked");
                            None
                        }
                    }
                });
                state.spent.push(delivered);
            }
            // sent under the lock, so the count the watch holds never goes back
            self.delivered.send_replace(state.next);
            match state.next > first {
                true => self.ready(&mut state),
                false => Vec::new(),
            }
        };
        for (index, user) in ready {
            self.start(index, user);
        }
    }
}

/// Marks an author's task as lost if it ends without delivering (a panic, which is a bug, or
/// an abort), so the authors after it are still delivered.
struct Undelivered {
    shared: Arc<Shared>,
    /// `usize::MAX` once delivered.
    index: usize,
}

impl Drop for Undelivered {
    fn drop(&mut self) {
        if self.index != usize::MAX {
            // (otherwise the task was aborted: the harvest was dropped)
            if std::thread::panicking() {
                tracing::error!(index = self.index, "AuthorTaskPanicked");
            }
            self.shared.finished(self.index, None);
        }
    }
}

impl Drop for AuthorQueue {
    /// A harvest dropped before its end (its future was dropped) stops its authors' tasks.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.aborted = true;
        for (_, task) in state.tasks.drain() {
            task.abort();
        }
    }
}

impl AuthorQueue {
    fn new(harvester: Arc<Harvester>, sink: Box<dyn AuthorSink>) -> Self {
        let tasks = harvester.settings.tasks.max(1);
        let slots = Arc::new(tokio::sync::Semaphore::new(tasks));
        let (delivered, watch) = tokio::sync::watch::channel(0);
        AuthorQueue {
            users: Vec::new(),
            listed: 0,
            found_in: HashMap::new(),
            capped: false,
            skipped_ids: Vec::new(),
            listed_earlier: std::collections::HashSet::new(),
            shared: Arc::new(Shared {
                harvester,
                slots,
                window: tasks.saturating_mul(WINDOW_PER_TASK),
                state: std::sync::Mutex::new(Delivery {
                    sink,
                    next: 0,
                    finished: std::collections::BTreeMap::new(),
                    spent: Vec::new(),
                    queued: std::collections::VecDeque::new(),
                    tasks: HashMap::new(),
                    aborted: false,
                }),
                delivered,
            }),
            delivered: watch,
        }
    }

    fn capped_at(&self) -> Option<usize> {
        self.capped
            .then_some(self.shared.harvester.settings.max_authors)
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
            .shared
            .harvester
            .settings
            .max_authors
            .is_some_and(|cap| self.listed >= cap)
        {
            self.capped = true;
            return;
        }
        if !StreamId::Profile(user.user_id.to_string()).is_valid() {
            tracing::warn!(user_id = %user.user_id, "AuthorSkipped");
            self.skipped_ids.push(user.user_id.to_string());
            return;
        }
        self.listed += 1;
        if let Some(shard) = self.shared.harvester.settings.shard {
            if !shard.owns(&user.user_id) {
                return;
            }
        }
        let index = self.users.len();
        self.users.push(user.clone());
        AuthorFound.emit(&self.shared.harvester.stats);
        self.shared.found(index, user.clone());
    }

    /// Waits for every author to be delivered; returns them spent, in first-seen order (the
    /// sink is dropped).
    async fn finish(mut self) -> Vec<SpentAuthor> {
        let total = self.users.len();
        if self.capped {
            tracing::info!(found = self.found_in.len(), cap = total, "AuthorListCapped");
        }
        // every started task delivers, or is marked lost when it ends
        let _ = self.delivered.wait_for(|&n| n >= total).await;
        let spent = {
            let mut state = self.shared.lock();
            state.sink = Box::new(());
            std::mem::take(&mut state.spent)
        };
        let mut authors = Vec::with_capacity(total);
        for (listed, delivered) in std::mem::take(&mut self.users).into_iter().zip(spent) {
            let Some((mut author, fresh)) = delivered else {
                continue;
            };
            // the author as their own stories' first page shows them today (an incremental
            // run may have found them only on pages carried from an earlier date)
            author.user = match self.listed_earlier.contains(&listed.user_id) {
                true => fresh.unwrap_or(listed),
                false => listed,
            };
            author.found_in = self
                .found_in
                .remove(&author.user.user_id)
                .unwrap_or_default();
            authors.push(author);
        }
        authors
    }
}
