//! Where a page comes from, and the read-through cache in front of it.
//!
//! An [`Origin`] answers pages the run does not have: Medium (or a compatible server) over
//! HTTP, or a raw store directory (`--source`, no network at all). [`ReadThrough`] puts the
//! run's own raw store in front of it: a page stored already (in any format) is read from disk
//! and no request is sent; a page from the origin is stored before it is handed on. This is the
//! only place a page's bytes travel between the network and the disk.
//!
//! Invariants: a page is decoded once; its exact bytes go to the run's raw store (one record of
//! the date's page log, whole or cut off) before the next page of the stream is asked for; a
//! replayed page is copied into the run's own log; once the run is stopped no new page is asked
//! of the origin.

use std::path::PathBuf;
use std::sync::Arc;

use medium_api::endpoints::StreamId;
use medium_api::via::{Addressing, Via};
use medium_api::StreamPage;

use super::client::MediumClient;
use crate::error::FetchError;
use crate::events::{PageFromStore, PageStored, StoredPageUnreadable};
use crate::raw_store::{Lookup, PageMeta, RawStore};
use crate::run::{CancelFlag, FetchStats, Unfinished};

/// Where pages come from when the run's raw store does not have them.
#[derive(Debug)]
pub enum Origin {
    /// Medium (or a compatible server) over HTTP.
    Http(Box<MediumClient>),
    /// Raw store directories (`--source`; `etl publish`: every shard's): no network at all.
    /// A page is answered by the first store that holds it.
    Replay(Vec<RawStore>),
}

/// One page to read: page `index` (1-based) of `stream` in format `via`, requested at `path`
/// with `query`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub stream: &'a StreamId,
    pub via: Via,
    pub path: &'a str,
    pub index: usize,
    pub query: &'a str,
}

/// The run's raw store in front of an origin.
#[derive(Debug)]
pub struct ReadThrough {
    origin: Origin,
    store: RawStore,
    /// Ignore what the run's store holds (`--refresh`).
    refresh: bool,
    cancel: CancelFlag,
    stats: Arc<FetchStats>,
}

impl ReadThrough {
    pub fn new(
        origin: Origin,
        store: RawStore,
        refresh: bool,
        cancel: CancelFlag,
        stats: Arc<FetchStats>,
    ) -> Self {
        ReadThrough {
            origin,
            store,
            refresh,
            cancel,
            stats,
        }
    }

    /// Whether pages come over HTTP (so a closed door costs requests worth sparing).
    pub fn is_http(&self) -> bool {
        matches!(self.origin, Origin::Http(_))
    }

    /// Whether the run's store holds the first page of `stream` in `via` (never under
    /// `--refresh`).
    pub fn has_first_page(&self, stream: &StreamId, via: Via) -> bool {
        !self.refresh && self.store.has_page(stream, via, 1)
    }

    /// The URL a request stands for, for messages: absolute over HTTP, relative to the site
    /// root when replaying. (A GraphQL page's is the endpoint's with the paging query, which
    /// names the page; the operation itself is posted.)
    pub fn url(&self, path: &str, query: &str) -> String {
        match &self.origin {
            Origin::Http(client) => client.url_for_path(path, query).to_string(),
            Origin::Replay(_) if query.is_empty() => path.to_owned(),
            Origin::Replay(_) => format!("{path}?{query}"),
        }
    }

    /// One page: from the run's raw store, else from the origin (then stored).
    pub async fn page<P: StreamPage>(&self, req: PageRequest<'_>) -> Result<P, Unfinished> {
        if let Some(page) = self.stored(&req) {
            return Ok(page);
        }
        if self.cancel.is_cancelled() {
            return Err(Unfinished::Stopped {
                url: self.url(req.path, req.query),
            });
        }
        let page = match &self.origin {
            Origin::Http(client) => self.fetch(client, &req).await?,
            Origin::Replay(sources) => self.replay(sources, &req)?,
        };
        Ok(page)
    }

    /// The page from the run's own store, when it is there and readable.
    fn stored<P: StreamPage>(&self, req: &PageRequest<'_>) -> Option<P> {
        if self.refresh {
            return None;
        }
        let stored = match self.store.load(req.stream, req.via, req.index, req.query) {
            Ok(Lookup::Found(stored)) => stored,
            Ok(_) => return None,
            Err(e) => {
                StoredPageUnreadable {
                    file: e.path(),
                    error: &e,
                }
                .emit();
                return None;
            }
        };
        match P::decode(req.via, req.stream, req.query, &stored.body) {
            Ok(page) => {
                self.count_from_store(req);
                Some(page)
            }
            Err(kind) => {
                StoredPageUnreadable {
                    file: &stored.body_path,
                    error: &kind,
                }
                .emit();
                None
            }
        }
    }

    fn count_from_store(&self, req: &PageRequest<'_>) {
        PageFromStore {
            endpoint: req.stream.endpoint(),
            via: req.via,
        }
        .emit(&self.stats);
    }

    async fn fetch<P: StreamPage>(
        &self,
        client: &MediumClient,
        req: &PageRequest<'_>,
    ) -> Result<P, FetchError> {
        let (stream, via, index, query) = (req.stream, req.via, req.index, req.query);
        // GraphQL posts its operation to one URL; the others GET the page's own URL.
        let graphql = (via.format().addressing == Addressing::Graphql)
            .then(|| medium_api::graphql::request(stream, query));
        let posted = graphql.as_ref().map(|r| bytes::Bytes::from(r.body()));
        let url = match posted {
            Some(_) => client.url_for_path(req.path, ""),
            None => client.url_for_path(req.path, query),
        };
        let (fetched, payload) = client
            .fetch_with(stream.endpoint(), &url, posted.as_ref(), |body| {
                P::decode(via, stream, query, body)
            })
            .await
            .map_err(|e| match &graphql {
                Some(r) => e.for_operation(&r.describe()),
                None => e,
            })?;
        let meta = PageMeta {
            request: graphql,
            url: fetched.url.clone(),
            query: req.query.to_owned(),
            status: fetched.status,
            fetched_at: fetched
                .fetched_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            bytes: fetched.body.len() as u64,
            attempts: fetched.attempts,
        };
        // one append to the page log, on this worker: a hand-off to a blocking thread cost
        // more than the write (#18: two thread wake-ups a page)
        self.store.save(stream, via, index, &fetched.body, &meta)?;
        PageStored {
            endpoint: stream.endpoint(),
            via,
        }
        .emit(&self.stats);
        Ok(payload)
    }

    fn replay<P: StreamPage>(
        &self,
        sources: &[RawStore],
        req: &PageRequest<'_>,
    ) -> Result<P, FetchError> {
        let url = self.url(req.path, req.query);
        let mut missing = None;
        let mut found = None;
        for source in sources {
            let not_in_source = |file: PathBuf| FetchError::NotInSource {
                url: url.clone(),
                dir: source.root().to_path_buf(),
                file,
            };
            match source.load(req.stream, req.via, req.index, req.query)? {
                Lookup::Found(stored) => {
                    found = Some((stored, source));
                    break;
                }
                Lookup::Missing { body_path } => {
                    missing.get_or_insert_with(|| not_in_source(body_path));
                }
                Lookup::OtherQuery { body_path, stored } => {
                    missing.get_or_insert_with(|| {
                        not_in_source(PathBuf::from(format!(
                            "{} (it holds the answer to ?{stored})",
                            body_path.display()
                        )))
                    });
                }
            }
        }
        let Some((stored, source)) = found else {
            return Err(missing.unwrap_or_else(|| FetchError::NotInSource {
                url: url.clone(),
                dir: PathBuf::new(),
                file: PathBuf::new(),
            }));
        };
        let payload = P::decode(req.via, req.stream, req.query, &stored.body).map_err(|kind| {
            FetchError::StoredBody {
                url: url.clone(),
                file: stored.body_path.clone(),
                kind,
            }
        })?;
        self.count_from_store(req);
        self.store
            .save_from(req.stream, req.via, req.index, &stored, source)?;
        Ok(payload)
    }
}
