//! The raw store: exact response bodies on disk, for resume and offline replay.
//!
//! Since #18 a store writes every page as one record of its page log, `pages.log` (see
//! [`log`]: the body byte for byte, its metadata in the record's header line), beside
//! `_origin.json` and `_harvest.json`. Stores written before hold one file per page and one for
//! its metadata; they are read as they are (replayed, resumed, carried from), and a page
//! fetched again goes to the log, whose record then answers for that position.
//!
//! The older layout under `<out>/raw/date=YYYY-MM-DD/` (or any directory given to `--source`):
//!
//! ```text
//! collections/<collection_id>/stream/page-0001.json        publication stream by id
//! publications/<slug>/latest/page-0001.json                publication stream by slug
//! users/<user_id>/profile_stream/page-0001.json            an author's stories
//! users/<user_id>/following/page-0001.json                 whom an author follows
//! ```
//!
//! Pages of the other formats ([`Via`]) sit beside them as `page-NNNN.graphql.json` (a GraphQL
//! reply), `page-NNNN.html` (an HTML page) and `page-NNNN.xml` (an RSS feed), each with
//! `<body file>.meta.json`; HTML and RSS streams have one page each, stored under the same
//! stream directory (keyed by collection id or slug and user id, whatever the request URL was).
//! GraphQL's batches of post bodies go to `users/<user_id>/post_bodies/`, and a GraphQL page's
//! metadata also records the request posted (operation name, variables, query text). The log
//! names each record's stream by the same directory (`users/<user_id>/profile_stream`).
//!
//! Each `page-NNNN.json` is the response body byte for byte (XSSI guard included) and has a
//! `page-NNNN.meta.json` beside it with the request URL, query, status, fetch time, size and
//! attempts. The body is written first and the metadata last, both atomically, so a page counts
//! as stored only when both exist and the body has the recorded size. A page is looked up by its
//! position in the stream *and* the query that requests it: a stored page fetched with another
//! query is not an answer.

pub mod log;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use medium_api::endpoints::{PublicationRef, StreamId};
use medium_api::via::Via;

use crate::atomic_file::write_atomic;
use crate::error::StoreError;
use crate::layout::{partition_dir, Kind};

/// The file at the top of a run's raw store that says where its pages came from.
pub const ORIGIN_FILE: &str = "_origin.json";

/// Where a raw store's pages came from: the network (any base URL: Medium or a server standing
/// in for it) or one `--source` directory. A run reads its date's stored pages only if they came
/// from where the run reads (#14: `--source B` on a date holding A's pages published A's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreOrigin {
    /// Fetched over HTTP; `base_url` is the first run's, for information (redacted).
    Network { base_url: String },
    /// Replayed from a raw store directory (its canonical path).
    Source { dir: PathBuf },
}

/// What `_origin.json` holds: the origin, and whether a `--refresh` from it is still under way
/// (then the store may still hold pages from before, and only another `--refresh` may use it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginRecord {
    pub origin: StoreOrigin,
    #[serde(default)]
    pub refreshing: bool,
}

impl StoreOrigin {
    /// Whether pages from `self` may answer a run reading from `other`: the same `--source`
    /// directory, or the same scheme and host over the network (any port: a test server
    /// restarted on another port is the same host).
    pub fn same_as(&self, other: &StoreOrigin) -> bool {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .map(|u| (u.scheme().to_owned(), u.host_str().map(str::to_owned)))
        };
        match (self, other) {
            (StoreOrigin::Network { base_url: a }, StoreOrigin::Network { base_url: b }) => {
                host(a) == host(b)
            }
            (StoreOrigin::Source { dir: a }, StoreOrigin::Source { dir: b }) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for StoreOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreOrigin::Network { base_url } => write!(f, "the network ({base_url})"),
            StoreOrigin::Source { dir } => write!(f, "--source {}", dir.display()),
        }
    }
}

/// The file at the top of a date's raw store that records how each stream was harvested (what
/// an incremental run of a later date, and `etl rebuild`, follow).
pub const HARVEST_FILE: &str = "_harvest.json";

/// `_harvest.json`: how a date's streams were read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HarvestRecord {
    /// Whether the run was incremental (else: every stream read to its end).
    pub incremental: bool,
    /// Whether every following list was read in full (not carried).
    pub followings_full: bool,
    /// For an incremental run: the date it carried from, and its cutoff (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutoff_ms: Option<i64>,
    /// What the run was asked for, so that `etl rebuild` asks the same of the raw store:
    /// publications as `--collection-id` / `--publication` flags, `--max-authors`,
    /// `--max-pages` and `--via`.
    pub flags: Vec<String>,
    /// The published date the reports compared with (`author_changes`, the checks), so that a
    /// rebuild compares with the same one even if a date in between was published since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    /// By stream key ([`RawStore::stream_key`]).
    pub streams: std::collections::BTreeMap<String, StreamRecord>,
}

/// How one stream was read on a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The format its pages are stored in.
    pub via: Via,
    /// Read to its end (or to where its carried rest begins), without failure or cap.
    pub complete: bool,
    /// Pages read on this date (`page-0001` to this), in `via`.
    pub pages: usize,
    /// The date whose pages continue the stream, when the rest was carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<String>,
}

/// What is recorded beside each stored body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageMeta {
    /// The full request URL.
    pub url: String,
    /// The query string of the request (empty for a stream's first page by id).
    pub query: String,
    /// The HTTP status of the stored answer.
    pub status: u16,
    /// When the body was received (RFC 3339, UTC).
    pub fetched_at: String,
    /// The body's size in bytes.
    pub bytes: u64,
    /// How many attempts the request took.
    pub attempts: u32,
    /// What was posted, for a GraphQL page: the operation name, variables and query text of
    /// each operation (absent for a GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<medium_api::graphql::Request>,
}

/// A stored page.
#[derive(Debug, Clone)]
pub struct StoredPage {
    pub body: Vec<u8>,
    pub meta: PageMeta,
    pub body_path: PathBuf,
}

/// The result of looking a page up.
#[derive(Debug)]
pub enum Lookup {
    Found(StoredPage),
    Missing {
        body_path: PathBuf,
    },
    /// A page is stored at that position, but for another query (the stream changed).
    OtherQuery {
        body_path: PathBuf,
        stored: String,
    },
}

/// One raw store directory.
#[derive(Debug, Clone)]
pub struct RawStore {
    root: PathBuf,
    /// Its page log, opened on first use; shared by clones (and, through the registry in
    /// [`log::shared`], by every store of the directory).
    log: Arc<OnceLock<Arc<log::PageLog>>>,
    /// Its canonical path, resolved once (to tell a store replayed into itself).
    canonical: Arc<OnceLock<Option<PathBuf>>>,
    /// Whether it holds pages of the older layout (one file a page), looked at once: a store
    /// that does not is never asked for files.
    legacy: Arc<OnceLock<bool>>,
}

impl RawStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RawStore {
            root: root.into(),
            log: Arc::default(),
            canonical: Arc::default(),
            legacy: Arc::default(),
        }
    }

    /// Whether the store has the older layout's stream directories (`collections/`,
    /// `publications/`, `users/`); only such a store is searched for page files.
    fn has_legacy_pages(&self) -> bool {
        *self.legacy.get_or_init(|| {
            ["collections", "publications", "users"]
                .iter()
                .any(|d| self.root.join(d).is_dir())
        })
    }

    /// The page log's file, and where its last whole record ends (0 without a log).
    pub fn log_extent(&self) -> Result<(PathBuf, u64), StoreError> {
        Ok((self.root.join(log::LOG_FILE), self.log().whole_len()?))
    }

    fn log(&self) -> &log::PageLog {
        self.log.get_or_init(|| log::shared(&self.root))
    }

    fn key(&self, stream: &StreamId, via: Via, index: usize) -> log::PageKey {
        log::PageKey {
            stream: self.stream_key(stream),
            via,
            index,
        }
    }

    /// Where page `index` of `stream` is (or would be) stored, for messages: its record in the
    /// log, or its file in a store of the older layout.
    pub fn page_location(&self, stream: &StreamId, via: Via, index: usize) -> PathBuf {
        if self.has_legacy_pages() && !self.log().path().exists() {
            self.page_paths(stream, via, index).0
        } else {
            self.log().describe(&self.key(stream, via, index))
        }
    }

    /// The store of one run date under an output root: `<out>/raw/date=YYYY-MM-DD`.
    pub fn for_date(out: &Path, date: &str) -> Self {
        RawStore::new(partition_dir(out, Kind::Raw, date))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the store holds anything but its origin file (and an empty page log).
    pub fn has_pages(&self) -> bool {
        fs::read_dir(&self.root).is_ok_and(|mut entries| {
            entries.any(|e| {
                e.is_ok_and(|e| {
                    let name = e.file_name();
                    name != ORIGIN_FILE
                        && !(name == log::LOG_FILE && e.metadata().is_ok_and(|m| m.len() == 0))
                })
            })
        })
    }

    /// The key of a stream in [`HarvestRecord::streams`]: its directory under the store.
    pub fn stream_key(&self, stream: &StreamId) -> String {
        stream_rel(stream)
    }

    /// How this date's streams were read, if it says.
    pub fn harvest_record(&self) -> Result<Option<HarvestRecord>, StoreError> {
        self.read_json(HARVEST_FILE)
    }

    /// Records how this date's streams were read.
    pub fn set_harvest_record(&self, record: &HarvestRecord) -> Result<(), StoreError> {
        self.write_json(HARVEST_FILE, record)
    }

    /// Where this store's pages came from, if it says (stores written before #14 do not).
    pub fn origin(&self) -> Result<Option<OriginRecord>, StoreError> {
        self.read_json(ORIGIN_FILE)
    }

    /// Records where this store's pages come from.
    pub fn set_origin(&self, origin: &OriginRecord) -> Result<(), StoreError> {
        self.write_json(ORIGIN_FILE, origin)
    }

    /// A JSON file at the top of the store, if it is there.
    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Meta {
                    path,
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Writes a JSON file at the top of the store, durably.
    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.root.join(name);
        let json = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Meta {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &json, true)
    }

    /// The directory of a stream's pages.
    pub fn stream_dir(&self, stream: &StreamId) -> PathBuf {
        self.root.join(stream_rel(stream))
    }

    /// The body and metadata paths of page `index` (1-based) of a stream in a format, in a
    /// store of the older layout (one file a page).
    pub fn page_paths(&self, stream: &StreamId, via: Via, index: usize) -> (PathBuf, PathBuf) {
        let dir = self.stream_dir(stream);
        let meta = match via {
            Via::Json => format!("page-{index:04}.meta.json"),
            other => format!("page-{index:04}.{}.meta.json", other.ext()),
        };
        (dir.join(page_file_name(via, index)), dir.join(meta))
    }

    /// Whether page `index` of `stream` is stored in a format (a whole record in the log, or
    /// its metadata file).
    pub fn has_page(&self, stream: &StreamId, via: Via, index: usize) -> bool {
        self.log()
            .contains(&self.key(stream, via, index))
            .unwrap_or(false)
            || (self.has_legacy_pages() && self.page_paths(stream, via, index).1.exists())
    }

    /// Looks up page `index` of `stream` in a format, as requested with `query`.
    pub fn load(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
        query: &str,
    ) -> Result<Lookup, StoreError> {
        let key = self.key(stream, via, index);
        if let Some((meta, body)) = self.log().get(&key)? {
            let body_path = self.log().describe(&key);
            if meta.query != query {
                return Ok(Lookup::OtherQuery {
                    body_path,
                    stored: meta.query,
                });
            }
            return Ok(Lookup::Found(StoredPage {
                body,
                meta,
                body_path,
            }));
        }
        if !self.has_legacy_pages() {
            return Ok(Lookup::Missing {
                body_path: self.log().describe(&key),
            });
        }
        let (body_path, meta_path) = self.page_paths(stream, via, index);
        let meta_bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lookup::Missing {
                    body_path: self.page_location(stream, via, index),
                })
            }
            Err(e) => return Err(StoreError::io(&meta_path, e)),
        };
        let meta: PageMeta = serde_json::from_slice(&meta_bytes).map_err(|e| StoreError::Meta {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        if meta.query != query {
            return Ok(Lookup::OtherQuery {
                body_path,
                stored: meta.query,
            });
        }
        let body = match fs::read(&body_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lookup::Missing { body_path })
            }
            Err(e) => return Err(StoreError::io(&body_path, e)),
        };
        if body.len() as u64 != meta.bytes {
            return Err(StoreError::Meta {
                path: body_path,
                message: format!(
                    "body has {} bytes, its metadata says {}",
                    body.len(),
                    meta.bytes
                ),
            });
        }
        Ok(Lookup::Found(StoredPage {
            body,
            meta,
            body_path,
        }))
    }

    /// Page `index` of `stream` in a format, whatever query requested it (an earlier date's
    /// page, carried forward); `None` when it is not stored whole.
    pub fn load_any(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
    ) -> Result<Option<StoredPage>, StoreError> {
        let key = self.key(stream, via, index);
        if let Some((meta, body)) = self.log().get(&key)? {
            return Ok(Some(StoredPage {
                body,
                meta,
                body_path: self.log().describe(&key),
            }));
        }
        if !self.has_legacy_pages() {
            return Ok(None);
        }
        let (_, meta_path) = self.page_paths(stream, via, index);
        let meta_bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&meta_path, e)),
        };
        let meta: PageMeta = serde_json::from_slice(&meta_bytes).map_err(|e| StoreError::Meta {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        match self.load(stream, via, index, &meta.query)? {
            Lookup::Found(page) => Ok(Some(page)),
            _ => Ok(None),
        }
    }

    /// Stores a page found in another raw store (`--source`): a record of its own in this
    /// store's log (a copy of the body; a replayed date is as complete as a fetched one). A
    /// store replayed into itself (`--refresh --source` on its own directory) already has it.
    pub fn save_from(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
        stored: &StoredPage,
        source: &RawStore,
    ) -> Result<(), StoreError> {
        if self.same_directory(source) {
            return Ok(());
        }
        // a replay read again (`etl publish` after a shard's re-run, a `--refresh` replay)
        // appends only the pages that changed
        if self
            .log()
            .holds(&self.key(stream, via, index), &stored.body)?
        {
            return Ok(());
        }
        self.save(stream, via, index, &stored.body, &stored.meta)
    }

    /// Whether two stores are one directory (the same path, or paths to the same place).
    fn same_directory(&self, other: &RawStore) -> bool {
        let canonical = |s: &RawStore| {
            s.canonical
                .get_or_init(|| fs::canonicalize(&s.root).ok())
                .clone()
        };
        self.root == other.root || canonical(self).is_some_and(|a| canonical(other) == Some(a))
    }

    /// Reads the page log to its end now, and cuts a torn last record (see [`log`]), so that
    /// appending later does no more than write. Creates nothing.
    pub fn prepare_for_appending(&self) -> Result<(), StoreError> {
        self.log().prepare()
    }

    /// Stores a page: one record appended to the log.
    pub fn save(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
        body: &[u8],
        meta: &PageMeta,
    ) -> Result<(), StoreError> {
        self.log().append(&self.key(stream, via, index), meta, body)
    }
}

/// A stream's directory under a store (`users/{id}/following`, ...): its key in the page log
/// and in [`HarvestRecord::streams`].
fn stream_rel(stream: &StreamId) -> String {
    match stream {
        StreamId::Publication(PublicationRef::Id(id)) => format!("collections/{id}/stream"),
        StreamId::Publication(PublicationRef::Slug(s)) => format!("publications/{s}/latest"),
        StreamId::Profile(id) => format!("users/{id}/profile_stream"),
        StreamId::Following(id) => format!("users/{id}/following"),
        StreamId::PostBodies(id) => format!("users/{id}/post_bodies"),
    }
}

/// A page's body file in the older layout (`page-0001.json`, `page-0001.graphql.json`, ...),
/// by which the page log's messages name a record too.
pub fn page_file_name(via: Via, index: usize) -> String {
    format!("page-{index:04}.{}", via.ext())
}

/// A JSON page captured elsewhere (a synthetic Medium, a capture made by hand), to store as
/// if it had been fetched with status 200 in one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Captured<'a> {
    pub stream: &'a StreamId,
    /// 1-based position in the stream.
    pub index: usize,
    pub query: &'a str,
    pub url: &'a str,
    pub body: &'a [u8],
    /// RFC 3339, UTC.
    pub fetched_at: &'a str,
}

impl RawStore {
    /// Stores captured pages (a record each); returns how many.
    pub fn import<'a>(
        &self,
        pages: impl IntoIterator<Item = Captured<'a>>,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for p in pages {
            let meta = PageMeta {
                url: p.url.to_owned(),
                query: p.query.to_owned(),
                status: 200,
                fetched_at: p.fetched_at.to_owned(),
                bytes: p.body.len() as u64,
                attempts: 1,
                request: None,
            };
            self.save(p.stream, Via::Json, p.index, p.body, &meta)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_by_directory_or_by_scheme_and_host() {
        let net = |u: &str| StoreOrigin::Network {
            base_url: u.to_owned(),
        };
        assert!(net("http://127.0.0.1:4000/").same_as(&net("http://127.0.0.1:5000/")));
        assert!(!net("http://127.0.0.1:4000/").same_as(&net("https://medium.com/")));
        let dir = |d: &str| StoreOrigin::Source { dir: d.into() };
        assert!(dir("/a").same_as(&dir("/a")));
        assert!(!dir("/a").same_as(&dir("/b")));
        assert!(!dir("/a").same_as(&net("https://medium.com/")));
    }

    fn meta(query: &str, bytes: u64) -> PageMeta {
        PageMeta {
            url: format!("http://127.0.0.1/x?{query}"),
            query: query.into(),
            status: 200,
            fetched_at: "2026-11-27T00:00:00Z".into(),
            bytes,
            attempts: 1,
            request: None,
        }
    }

    /// The body stored at a page for a query; a page not found is a failure naming it.
    fn stored_body(store: &RawStore, s: &StreamId, via: Via, index: usize, query: &str) -> Vec<u8> {
        match store.load(s, via, index, query) {
            Ok(Lookup::Found(p)) => p.body,
            other => panic!("page {index} of {s:?} ({via}, query {query:?}): {other:?}"),
        }
    }

    /// A page of the older layout, written by hand as a store before #18 held it.
    fn save_as_file(
        store: &RawStore,
        s: &StreamId,
        via: Via,
        index: usize,
        body: &[u8],
        m: &PageMeta,
    ) {
        let (body_path, meta_path) = store.page_paths(s, via, index);
        fs::create_dir_all(body_path.parent().unwrap()).unwrap();
        fs::write(&body_path, body).unwrap();
        fs::write(&meta_path, serde_json::to_vec_pretty(m).unwrap()).unwrap();
    }

    #[test]
    fn saves_and_finds_a_page_by_position_and_query() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::for_date(dir.path(), "2026-11-27");
        let s = StreamId::Profile("abc123".into());
        store
            .save(&s, Via::Json, 2, b"body", &meta("page=2", 4))
            .unwrap();
        let root = dir.path().join("raw/date=2026-11-27");
        assert!(root.join(log::LOG_FILE).exists());
        assert!(!root.join("users").exists(), "no file a page");
        match store.load(&s, Via::Json, 2, "page=2").unwrap() {
            Lookup::Found(p) => assert_eq!(p.body, b"body"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.load(&s, Via::Json, 2, "page=3").unwrap(),
            Lookup::OtherQuery { .. }
        ));
        match store.load(&s, Via::Json, 3, "page=3").unwrap() {
            Lookup::Missing { body_path } => assert!(
                body_path
                    .to_string_lossy()
                    .ends_with("pages.log#users/abc123/profile_stream/page-0003.json"),
                "{}",
                body_path.display()
            ),
            other => panic!("{other:?}"),
        }
        // another store of the directory (a later run, in another process) reads it from disk
        drop(store);
        let again = RawStore::for_date(dir.path(), "2026-11-27");
        assert!(again.has_page(&s, Via::Json, 2));
        assert!(!again.has_page(&s, Via::Json, 1));
    }

    #[test]
    fn a_position_written_again_is_answered_by_its_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = StreamId::Following("u1".into());
        {
            let store = RawStore::new(dir.path());
            store.save(&s, Via::Json, 1, b"old", &meta("", 3)).unwrap();
            store
                .save(&s, Via::Json, 1, b"newer", &meta("q", 5))
                .unwrap();
            assert_eq!(stored_body(&store, &s, Via::Json, 1, "q"), b"newer");
        }
        let store = RawStore::new(dir.path());
        let page = store.load_any(&s, Via::Json, 1).unwrap().unwrap();
        assert_eq!(
            (page.body, page.meta.query),
            (b"newer".to_vec(), "q".to_owned())
        );
    }

    #[test]
    fn pages_from_another_store_are_copied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let source = RawStore::new(dir.path().join("source"));
        let run = RawStore::new(dir.path().join("run"));
        let s = StreamId::Profile("abc123".into());
        source
            .save(&s, Via::Json, 1, b"body", &meta("", 4))
            .unwrap();
        let Lookup::Found(page) = source.load(&s, Via::Json, 1, "").unwrap() else {
            panic!("stored")
        };
        run.save_from(&s, Via::Json, 1, &page, &source).unwrap();
        match run.load(&s, Via::Json, 1, "").unwrap() {
            Lookup::Found(p) => assert_eq!((p.body, p.meta), (b"body".to_vec(), page.meta)),
            other => panic!("{other:?}"),
        }
        // replacing the source page later leaves the run's copy as it was
        source
            .save(&s, Via::Json, 1, b"new!", &meta("", 4))
            .unwrap();
        let Lookup::Found(p) = run.load(&s, Via::Json, 1, "").unwrap() else {
            panic!("stored")
        };
        assert_eq!(p.body, b"body");
        // a store replayed into itself is left as it is
        let log = dir.path().join("source").join(log::LOG_FILE);
        let before = fs::metadata(&log).unwrap().len();
        source
            .save_from(
                &s,
                Via::Json,
                1,
                &p,
                &RawStore::new(dir.path().join("source/.")),
            )
            .unwrap();
        assert_eq!(fs::metadata(&log).unwrap().len(), before);
    }

    #[test]
    fn a_damaged_body_is_an_error_naming_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = StreamId::Following("u1".into());
        RawStore::new(dir.path())
            .save(&s, Via::Json, 1, b"body bytes", &meta("", 10))
            .unwrap();
        let log = dir.path().join(log::LOG_FILE);
        let mut bytes = fs::read(&log).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x20;
        fs::write(&log, bytes).unwrap();
        let err = RawStore::new(dir.path())
            .load(&s, Via::Json, 1, "")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("pages.log#users/u1/following/page-0001.json"),
            "{text}"
        );
        assert!(text.contains("checksum"), "{text}");
    }

    /// What a kill -9 in the middle of a write leaves: whole records, then a prefix of one. The
    /// torn page reads as missing; the next append cuts it off (keeping it beside the log) and
    /// every whole record still answers.
    #[test]
    fn a_torn_last_record_is_missing_and_cut_before_the_next_append() {
        let s = StreamId::Profile("u1".into());
        let body = |i: usize| format!("body of page {i}").into_bytes();
        // three whole records, then the third cut: in its header, just after it, in its body,
        // before its last newline
        for cut_into_third in [1, 30, 200, 0] {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join(log::LOG_FILE);
            let mut ends = vec![];
            {
                let store = RawStore::new(dir.path());
                for i in 1..=3 {
                    store
                        .save(&s, Via::Json, i, &body(i), &meta("", 14))
                        .unwrap();
                    ends.push(fs::metadata(&log).unwrap().len());
                }
            }
            let cut = if cut_into_third == 0 {
                ends[2] - 1
            } else {
                (ends[1] + cut_into_third).min(ends[2] - 1)
            };
            fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let store = RawStore::new(dir.path());
            assert!(store.has_page(&s, Via::Json, 2));
            assert!(!store.has_page(&s, Via::Json, 3), "torn at {cut}");
            store
                .save(&s, Via::Json, 3, b"again", &meta("", 5))
                .unwrap();
            let prefix = format!("pages.log.cut-{}-", ends[1]);
            let kept: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&prefix)
                })
                .collect();
            assert_eq!(kept.len(), 1, "{kept:?}");
            assert_eq!(
                fs::read(&kept[0]).unwrap().len() as u64,
                cut - ends[1],
                "the cut bytes are kept"
            );
            for (i, expected) in [(1, body(1)), (2, body(2)), (3, b"again".to_vec())] {
                assert_eq!(
                    stored_body(&store, &s, Via::Json, i, ""),
                    expected,
                    "page {i} after a cut at {cut}"
                );
            }
            drop(store);
            let reread = RawStore::new(dir.path());
            assert_eq!(stored_body(&reread, &s, Via::Json, 3, ""), b"again");
        }
    }

    /// A damaged record in the middle (a flipped bit in its header) costs that page only: the
    /// whole records after it are found again, nothing is cut, and appending goes on.
    #[test]
    fn a_damaged_record_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let s = StreamId::Profile("u1".into());
        let log = dir.path().join(log::LOG_FILE);
        {
            let store = RawStore::new(dir.path());
            for i in 1..=3 {
                // a body that holds what a record starts with, to be told apart by its checksum
                let body = format!("page {i}\n@page {{\"not\":\"a header\"}}\n");
                store
                    .save(&s, Via::Json, i, body.as_bytes(), &meta("", 0))
                    .unwrap();
            }
        }
        let mut bytes = fs::read(&log).unwrap();
        let second = bytes
            .windows(7)
            .enumerate()
            .filter(|(_, w)| *w == b"\n@page ")
            .map(|(i, _)| i + 1)
            .find(|&i| bytes[i..].starts_with(br#"@page {"stream""#) && i > 10)
            .unwrap();
        bytes[second + 20] = b'#'; // inside the stream name's JSON: the header no longer parses
        fs::write(&log, &bytes).unwrap();
        let len = bytes.len() as u64;
        let store = RawStore::new(dir.path());
        assert!(store.has_page(&s, Via::Json, 1));
        assert!(
            !store.has_page(&s, Via::Json, 2),
            "the damaged page is missing"
        );
        assert!(
            store.has_page(&s, Via::Json, 3),
            "the page after it is found"
        );
        store
            .save(&s, Via::Json, 2, b"again", &meta("", 5))
            .unwrap();
        assert!(
            fs::metadata(&log).unwrap().len() > len,
            "appended, nothing cut"
        );
        drop(store);
        let store = RawStore::new(dir.path());
        for (i, body) in [(1, "page 1"), (2, "again"), (3, "page 3")] {
            let stored = stored_body(&store, &s, Via::Json, i, "");
            assert!(String::from_utf8(stored).unwrap().starts_with(body));
        }
    }

    /// A damaged record followed by a body over the scan's 64 KiB chunk that holds what a
    /// record starts with, then more records: every whole record after the damage is found.
    #[test]
    fn a_damaged_record_before_a_large_body_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let s = StreamId::Profile("u1".into());
        let log = dir.path().join(log::LOG_FILE);
        let big: Vec<u8> = (0..3000)
            .flat_map(|i| {
                format!("<style>@page {{ margin: {i}px }}</style>\n@page {{\"x\":1}}\n")
                    .into_bytes()
            })
            .collect();
        assert!(big.len() > 130 << 10);
        let bodies: Vec<Vec<u8>> = vec![b"one".to_vec(), b"two".to_vec(), big, b"four".to_vec()];
        {
            let store = RawStore::new(dir.path());
            for (i, body) in bodies.iter().enumerate() {
                store
                    .save(&s, Via::Html, i + 1, body, &meta("", 0))
                    .unwrap();
            }
        }
        let mut bytes = fs::read(&log).unwrap();
        let second = bytes
            .windows(b"\"index\":2".len())
            .position(|w| w == b"\"index\":2")
            .unwrap();
        bytes[second + 1] = b'#';
        fs::write(&log, &bytes).unwrap();
        let store = RawStore::new(dir.path());
        // a read-only look first, then a write through the same log
        assert!(!store.has_page(&s, Via::Html, 2));
        for i in [1, 3, 4] {
            assert!(
                store.has_page(&s, Via::Html, i),
                "page {i} after the damage"
            );
        }
        store
            .save(&s, Via::Html, 2, b"again", &meta("", 5))
            .unwrap();
        assert!(
            fs::metadata(&log).unwrap().len() > bytes.len() as u64,
            "nothing cut"
        );
        drop(store);
        let store = RawStore::new(dir.path());
        for (i, body) in [
            (1, &bodies[0]),
            (2, &b"again".to_vec()),
            (3, &bodies[2]),
            (4, &bodies[3]),
        ] {
            assert_eq!(&stored_body(&store, &s, Via::Html, i, ""), body, "page {i}");
        }
    }

    /// A store replayed into itself through a symlink to it is left as it is.
    #[test]
    fn a_store_replayed_into_itself_through_a_symlink_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = StreamId::Following("u1".into());
        let store = RawStore::new(dir.path().join("store"));
        store.save(&s, Via::Json, 1, b"one", &meta("", 3)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("store"), dir.path().join("link")).unwrap();
        let through_link = RawStore::new(dir.path().join("link"));
        let Lookup::Found(page) = through_link.load(&s, Via::Json, 1, "").unwrap() else {
            panic!("stored")
        };
        let log = dir.path().join("store").join(log::LOG_FILE);
        let before = fs::metadata(&log).unwrap().len();
        store
            .save_from(&s, Via::Json, 1, &page, &through_link)
            .unwrap();
        assert_eq!(fs::metadata(&log).unwrap().len(), before);
    }

    /// Two spellings of one directory are one log (each would otherwise believe it knew where
    /// the file ends, and index its records at the wrong offsets).
    #[test]
    fn two_spellings_of_a_directory_share_one_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = StreamId::Following("u1".into());
        let a = RawStore::new(dir.path().join("store"));
        let b = RawStore::new(dir.path().join("x/../store/."));
        a.save(&s, Via::Json, 1, b"one", &meta("", 3)).unwrap();
        b.save(&s, Via::Json, 2, b"two", &meta("", 3)).unwrap();
        a.save(&s, Via::Json, 3, b"three", &meta("", 5)).unwrap();
        for store in [&a, &b] {
            for (i, body) in [(1, &b"one"[..]), (2, b"two"), (3, b"three")] {
                assert_eq!(stored_body(store, &s, Via::Json, i, ""), body);
            }
        }
    }

    #[test]
    fn a_header_too_long_to_find_again_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::new(dir.path());
        let s = StreamId::Following("u1".into());
        let err = store
            .save(&s, Via::Json, 1, b"x", &meta(&"q".repeat(2 << 20), 1))
            .unwrap_err();
        assert!(err.to_string().contains("page-0001.json"), "{err}");
        assert!(!store.has_page(&s, Via::Json, 1));
    }

    #[test]
    fn a_store_of_the_older_layout_is_read_and_a_page_fetched_again_goes_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::new(dir.path());
        let s = StreamId::Profile("u1".into());
        save_as_file(&store, &s, Via::Json, 1, b"file body", &meta("", 9));
        save_as_file(&store, &s, Via::Json, 2, b"short", &meta("p=2", 99));
        assert!(store.has_page(&s, Via::Json, 1));
        assert_eq!(stored_body(&store, &s, Via::Json, 1, ""), b"file body");
        // a body of the wrong size is an error naming the file
        let err = store.load(&s, Via::Json, 2, "p=2").unwrap_err();
        assert!(err.to_string().contains("page-0002.json"), "{err}");
        // missing pages of such a store are named by their file
        let Lookup::Missing { body_path } = store.load(&s, Via::Json, 3, "").unwrap() else {
            panic!("missing")
        };
        assert!(body_path.ends_with("users/u1/profile_stream/page-0003.json"));
        store
            .save(&s, Via::Json, 1, b"fetched again", &meta("", 13))
            .unwrap();
        assert_eq!(stored_body(&store, &s, Via::Json, 1, ""), b"fetched again");
    }

    #[test]
    fn other_formats_sit_beside_json_with_their_own_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::new(dir.path());
        let s = StreamId::Profile("u1".into());
        store.save(&s, Via::Json, 1, b"json", &meta("", 4)).unwrap();
        store
            .save(&s, Via::Html, 1, b"<html>", &meta("h", 6))
            .unwrap();
        assert!(!store.has_page(&s, Via::Rss, 1));
        store
            .save(&s, Via::Rss, 1, b"<rss/>", &meta("r", 6))
            .unwrap();
        for (via, body, query) in [
            (Via::Json, &b"json"[..], ""),
            (Via::Html, b"<html>", "h"),
            (Via::Rss, b"<rss/>", "r"),
        ] {
            assert_eq!(stored_body(&store, &s, via, 1, query), body);
        }
        // one record a page, readable by hand
        let text = String::from_utf8(fs::read(dir.path().join(log::LOG_FILE)).unwrap()).unwrap();
        let headers: Vec<_> = text.lines().filter(|l| l.starts_with("@page ")).collect();
        assert_eq!(headers.len(), 3);
        assert!(
            headers[1].starts_with(
                r#"@page {"stream":"users/u1/profile_stream","via":"html","index":1,"#
            ),
            "{}",
            headers[1]
        );
        assert!(text.contains("\n<html>\n@page "));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever follows the whole records of a log (a torn record, junk, bytes that look
        /// like records), the store neither panics nor loses the records before it, and a page
        /// stored after reads back as it was stored.
        #[test]
        fn any_bytes_after_whole_records_cost_no_whole_record(
            junk in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::prelude::Just(b'@'),
                    proptest::prelude::Just(b'\n'),
                    proptest::prelude::Just(b'{'),
                ],
                0..600,
            ),
            mark in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let s = StreamId::Profile("u1".into());
            {
                let store = RawStore::new(dir.path());
                for i in 1..=2 {
                    store.save(&s, Via::Json, i, format!("body {i}").as_bytes(), &meta("", 6)).unwrap();
                }
            }
            let log = dir.path().join(log::LOG_FILE);
            let mut bytes = fs::read(&log).unwrap();
            if mark {
                bytes.extend_from_slice(b"@page {\"stream\":\"users/u1/profile_stream\",\"via\":\"json\",\"index\":3");
            }
            bytes.extend_from_slice(&junk);
            fs::write(&log, &bytes).unwrap();

            let store = RawStore::new(dir.path());
            for i in 1..=4 {
                let _ = store.has_page(&s, Via::Json, i);
                let _ = store.load(&s, Via::Json, i, "");
                let _ = store.load_any(&s, Via::Json, i);
            }
            for i in 1..=2 {
                let Ok(Lookup::Found(p)) = store.load(&s, Via::Json, i, "") else {
                    panic!("page {i} lost after junk {junk:?}")
                };
                proptest::prop_assert_eq!(p.body, format!("body {i}").into_bytes());
            }
            store.prepare_for_appending().unwrap();
            store.save(&s, Via::Json, 5, b"after", &meta("", 5)).unwrap();
            drop(store);
            let store = RawStore::new(dir.path());
            let Ok(Lookup::Found(p)) = store.load(&s, Via::Json, 5, "") else {
                panic!("the page stored after junk {junk:?} is not read back")
            };
            proptest::prop_assert_eq!(p.body, b"after".to_vec());
            for i in 1..=2 {
                proptest::prop_assert!(store.has_page(&s, Via::Json, i));
            }
        }
    }
}
