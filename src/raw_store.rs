//! The raw store: exact response bodies on disk, for resume and offline replay.
//!
//! Layout under `<out>/raw/date=YYYY-MM-DD/` (or any directory given to `--source`):
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
//! metadata also records the request posted (operation name, variables, query text).
//!
//! Each `page-NNNN.json` is the response body byte for byte (XSSI guard included) and has a
//! `page-NNNN.meta.json` beside it with the request URL, query, status, fetch time, size and
//! attempts. The body is written first and the metadata last, both atomically, so a page counts
//! as stored only when both exist and the body has the recorded size. A page is looked up by its
//! position in the stream *and* the query that requests it: a stored page fetched with another
//! query is not an answer.

use std::fs;
use std::path::{Path, PathBuf};

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
}

impl RawStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RawStore { root: root.into() }
    }

    /// The store of one run date under an output root: `<out>/raw/date=YYYY-MM-DD`.
    pub fn for_date(out: &Path, date: &str) -> Self {
        RawStore::new(partition_dir(out, Kind::Raw, date))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the store holds anything but its origin file.
    pub fn has_pages(&self) -> bool {
        fs::read_dir(&self.root)
            .is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| e.file_name() != ORIGIN_FILE)))
    }

    /// The key of a stream in [`HarvestRecord::streams`]: its directory under the store.
    pub fn stream_key(&self, stream: &StreamId) -> String {
        self.stream_dir(stream)
            .strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
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
        let rel = match stream {
            StreamId::Publication(PublicationRef::Id(id)) => format!("collections/{id}/stream"),
            StreamId::Publication(PublicationRef::Slug(s)) => format!("publications/{s}/latest"),
            StreamId::Profile(id) => format!("users/{id}/profile_stream"),
            StreamId::Following(id) => format!("users/{id}/following"),
            StreamId::PostBodies(id) => format!("users/{id}/post_bodies"),
        };
        self.root.join(rel)
    }

    /// The body and metadata paths of page `index` (1-based) of a stream in a format.
    pub fn page_paths(&self, stream: &StreamId, via: Via, index: usize) -> (PathBuf, PathBuf) {
        let dir = self.stream_dir(stream);
        let meta = match via {
            Via::Json => format!("page-{index:04}.meta.json"),
            other => format!("page-{index:04}.{}.meta.json", other.ext()),
        };
        (
            dir.join(format!("page-{index:04}.{}", via.ext())),
            dir.join(meta),
        )
    }

    /// Whether page `index` of `stream` is stored in a format (its metadata exists).
    pub fn has_page(&self, stream: &StreamId, via: Via, index: usize) -> bool {
        self.page_paths(stream, via, index).1.exists()
    }

    /// Looks up page `index` of `stream` in a format, as requested with `query`.
    pub fn load(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
        query: &str,
    ) -> Result<Lookup, StoreError> {
        let (body_path, meta_path) = self.page_paths(stream, via, index);
        let meta_bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lookup::Missing { body_path })
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

    /// Stores a page found in another raw store (`--source`): hard links when both stores are on
    /// one file system (no copy, no new inode; files are never modified in place, only replaced
    /// by rename, so sharing them is safe), else a copy. Body first, metadata last, as in
    /// [`RawStore::save`].
    pub fn save_from(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
        stored: &StoredPage,
        source: &RawStore,
    ) -> Result<(), StoreError> {
        let (src_body, src_meta) = source.page_paths(stream, via, index);
        let (body_path, meta_path) = self.page_paths(stream, via, index);
        if fs::canonicalize(&src_body).ok() == fs::canonicalize(&body_path).ok()
            && body_path.exists()
        {
            // replaying a date's own raw store into itself (`--refresh --source` on it)
            return Ok(());
        }
        if link_atomic(&src_body, &body_path).is_ok() && link_atomic(&src_meta, &meta_path).is_ok()
        {
            return Ok(());
        }
        self.save(stream, via, index, &stored.body, &stored.meta)
    }

    /// Stores a page: the body, then its metadata, each atomically.
    pub fn save(
        &self,
        stream: &StreamId,
        via: Via,
        index: usize,
        body: &[u8],
        meta: &PageMeta,
    ) -> Result<(), StoreError> {
        let (body_path, meta_path) = self.page_paths(stream, via, index);
        write_atomic(&body_path, body, false)?;
        let mut meta_json = serde_json::to_vec_pretty(meta).map_err(|e| StoreError::Meta {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        meta_json.push(b'\n');
        write_atomic(&meta_path, &meta_json, false)
    }
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
    /// Stores captured pages (body, then metadata, each atomically); returns how many.
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

/// Hard-links `from` to `to` under a temporary name, then renames it into place.
fn link_atomic(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = crate::atomic_file::temp_path_for(to);
    fs::hard_link(from, &tmp)?;
    fs::rename(&tmp, to).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
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

    #[test]
    fn saves_and_finds_a_page_by_position_and_query() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::for_date(dir.path(), "2026-11-27");
        let s = StreamId::Profile("abc123".into());
        store
            .save(&s, Via::Json, 2, b"body", &meta("page=2", 4))
            .unwrap();
        assert!(dir
            .path()
            .join("raw/date=2026-11-27/users/abc123/profile_stream/page-0002.json")
            .exists());
        match store.load(&s, Via::Json, 2, "page=2").unwrap() {
            Lookup::Found(p) => assert_eq!(p.body, b"body"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.load(&s, Via::Json, 2, "page=3").unwrap(),
            Lookup::OtherQuery { .. }
        ));
        assert!(matches!(
            store.load(&s, Via::Json, 3, "page=3").unwrap(),
            Lookup::Missing { .. }
        ));
    }

    #[test]
    fn pages_from_another_store_are_linked_or_copied_whole() {
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
    }

    #[test]
    fn a_body_of_the_wrong_size_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::new(dir.path());
        let s = StreamId::Following("u1".into());
        store
            .save(&s, Via::Json, 1, b"body", &meta("", 99))
            .unwrap();
        let err = store.load(&s, Via::Json, 1, "").unwrap_err();
        assert!(err.to_string().contains("page-0001.json"), "{err}");
    }

    #[test]
    fn other_formats_sit_beside_json_with_their_own_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let store = RawStore::new(dir.path());
        let s = StreamId::Profile("u1".into());
        store.save(&s, Via::Json, 1, b"json", &meta("", 4)).unwrap();
        store
            .save(&s, Via::Html, 1, b"<html>", &meta("", 6))
            .unwrap();
        assert!(!store.has_page(&s, Via::Rss, 1));
        store
            .save(&s, Via::Rss, 1, b"<rss/>", &meta("", 6))
            .unwrap();
        let names: std::collections::BTreeSet<_> = fs::read_dir(store.stream_dir(&s))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let expected = [
            "page-0001.json",
            "page-0001.meta.json",
            "page-0001.html",
            "page-0001.html.meta.json",
            "page-0001.xml",
            "page-0001.xml.meta.json",
        ];
        assert_eq!(names, expected.iter().map(|s| s.to_string()).collect());
        for (via, body) in [
            (Via::Json, &b"json"[..]),
            (Via::Html, b"<html>"),
            (Via::Rss, b"<rss/>"),
        ] {
            let Lookup::Found(p) = store.load(&s, via, 1, "").unwrap() else {
                panic!("{via} stored")
            };
            assert_eq!(p.body, body);
        }
    }
}
