//! The lake: a run's output on object storage (`--out s3://…`, `gs://…`, `az://…`) or, with
//! `--table-format delta`, in a local directory, through the `object_store` crate.
//!
//! Object storage has no rename and no lock, so a lake is not written the way a local output
//! root is. A run works in a local *work directory* with the local layout ([`crate::layout`]),
//! exactly as a local run does (locks, staging, the raw store, replay, the reports), and this
//! module keeps the lake in step with it ([`sync`]):
//!
//! - before the run, it pulls what the run reads: the published dates' manifests, the date's
//!   raw store (to resume a run killed on another machine), and the previous published date's
//!   tables, reports and raw store (for `author_changes` and `--incremental`);
//! - during the run, the page log's new records are uploaded every few seconds as immutable
//!   segments, so a killed run loses at most those seconds of pages;
//! - after the run, each table and report replaces its date in a Delta table with one commit
//!   ([`delta`]), then the CSV reports and, last, the manifest are put beside them.
//!
//! ```text
//! <lake>/raw/date=D/pages/<run id>-<seq>-<random>.log   the page log, in segments (whole records)
//! <lake>/raw/date=D/_origin.json, _harvest.json
//! <lake>/tables/<table>/                           Delta tables partitioned by date
//! <lake>/reports/<report>/                         Delta tables partitioned by date
//! <lake>/published/date=D/<report>.csv             the CSV reports
//! <lake>/published/date=D/_manifest.json           put last: the date is published
//! <lake>/locks/date=D.json                          the lease of the run writing D (lease.rs)
//! ```
//!
//! The work directory is a cache: deleted, it is rebuilt from the lake by the next run.

pub mod delta;
pub mod lease;
pub mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

use crate::error::LakeError;

/// How the tables and reports are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Hive-partitioned Parquet and CSV files, `tables/date=D/<table>.parquet` (the local
    /// default).
    #[default]
    Parquet,
    /// Delta tables partitioned by `date` (the default on object storage).
    Delta,
}

impl std::fmt::Display for TableFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Delta => "delta",
        })
    }
}

impl std::str::FromStr for TableFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <TableFormat as clap::ValueEnum>::from_str(s, false)
    }
}

/// Where a lake is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSettings {
    /// `s3://bucket/prefix`, `gs://…`, `az://…`, or `file:///abs/dir` for a local lake.
    pub url: url::Url,
    /// `object_store` options (`aws_endpoint`, `aws_region`, …) from the config file's
    /// `[storage]` table; the `AWS_*`, `GOOGLE_*` and `AZURE_*` variables are read as well.
    pub options: Vec<(String, String)>,
    /// How often a running harvest uploads its new pages (`--upload-every`).
    pub upload_every: std::time::Duration,
    /// How long the date's lease lasts unrenewed (`--lease-secs`): how long a killed run
    /// keeps other writers of its date out.
    pub lease_ttl: std::time::Duration,
}

impl LakeSettings {
    /// Shard `index` of `count`'s part of the lake: `<url>/shards/shard=K-of-N`, as a shard's
    /// root is under a local output root.
    pub fn shard_part(&self, index: u32, count: u32) -> LakeSettings {
        let mut part = self.clone();
        let path = format!(
            "{}/{}/{}",
            self.url.path().trim_end_matches('/'),
            crate::layout::SHARDS_DIR,
            crate::layout::shard_dir_name(index, count)
        );
        part.url.set_path(&path);
        part
    }
}

/// Whether `--out` names object storage (a URL with a scheme) rather than a directory.
pub fn is_url(out: &str) -> bool {
    out.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    })
}

/// An open lake: an object store and the prefix under which the output lives.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    root: ObjPath,
    /// The URL, for messages (object storage URLs carry no credentials).
    url: String,
}

impl Lake {
    /// Opens the lake at `settings.url`. Nothing is requested yet.
    pub fn open(settings: &LakeSettings) -> Result<Lake, LakeError> {
        let url = &settings.url;
        let shown = url.to_string();
        let bad = |reason: String| LakeError::Open {
            url: shown.clone(),
            reason,
        };
        let (store, root): (Arc<dyn ObjectStore>, ObjPath) = match url.scheme() {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|_| bad("not an absolute local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(e.to_string()))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(e.to_string()))?;
                (Arc::new(fs), ObjPath::default())
            }
            "memory" => (
                Arc::new(object_store::memory::InMemory::new()),
                ObjPath::from(url.path().trim_matches('/')),
            ),
            scheme => {
                let (kind, path) = object_store::ObjectStoreScheme::parse(url)
                    .map_err(|e| bad(format!("{e} (expected s3://, gs://, az:// or a path)")))?;
                let options = &settings.options;
                let key = |k: &str| bad(format!("unknown storage option {k:?} for {scheme}://"));
                let store: Arc<dyn ObjectStore> = match kind {
                    object_store::ObjectStoreScheme::AmazonS3 => {
                        let mut b =
                            object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
                        for (k, v) in options {
                            b = b.with_config(k.parse().map_err(|_| key(k))?, v);
                        }
                        Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
                    }
                    object_store::ObjectStoreScheme::GoogleCloudStorage => {
                        let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                            .with_url(url.as_str());
                        for (k, v) in options {
                            b = b.with_config(k.parse().map_err(|_| key(k))?, v);
                        }
                        Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
                    }
                    object_store::ObjectStoreScheme::MicrosoftAzure => {
                        let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                            .with_url(url.as_str());
                        for (k, v) in options {
                            b = b.with_config(k.parse().map_err(|_| key(k))?, v);
                        }
                        Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
                    }
                    _ => return Err(bad("expected s3://, gs://, az:// or a path".into())),
                };
                (store, path)
            }
        };
        Ok(Lake {
            store,
            root,
            url: shown.trim_end_matches('/').to_owned(),
        })
    }

    /// The lake's URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of `rel` in the lake, for messages.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    fn path(&self, rel: &str) -> ObjPath {
        let mut p = self.root.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    fn error(&self, rel: &str, e: object_store::Error) -> LakeError {
        LakeError::Store {
            url: self.url_of(rel),
            message: e.to_string(),
        }
    }

    /// The object at `rel`, or `None` if there is none.
    pub async fn get(&self, rel: &str) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| self.error(rel, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(rel, e)),
        }
    }

    /// Puts `bytes` at `rel`, replacing what was there (one object, never half of it).
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&self.path(rel), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error(rel, e))
    }

    /// Puts `bytes` at `rel` only if nothing is there: `Ok(false)` if something was (another
    /// writer's commit). On S3 this is `If-None-Match: *`.
    pub async fn put_new(&self, rel: &str, bytes: Bytes) -> Result<bool, LakeError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(rel), PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.error(rel, e)),
        }
    }

    /// Uploads the local file `from` to `rel` (in parts when it is large).
    pub async fn upload(&self, from: &Path, rel: &str) -> Result<u64, LakeError> {
        let len = tokio::fs::metadata(from)
            .await
            .map_err(|e| LakeError::Local {
                path: from.to_path_buf(),
                message: e.to_string(),
            })?
            .len();
        self.upload_range(from, 0, len, rel).await
    }

    /// Downloads `rel` to the local file `to`, atomically (streamed into a temporary file
    /// beside it, which is then renamed into place). `Ok(false)` if there is no such object.
    pub async fn download(&self, rel: &str, to: &Path) -> Result<bool, LakeError> {
        let local = |e: std::io::Error| LakeError::Local {
            path: to.to_path_buf(),
            message: e.to_string(),
        };
        let got = match self.store.get(&self.path(rel)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.error(rel, e)),
        };
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(local)?;
        }
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = to.with_file_name(format!(".{name}.{:08x}.tmp", fastrand::u32(..)));
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await.map_err(local)?;
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.error(rel, e))?;
                file.write_all(&chunk).await.map_err(local)?;
            }
            file.sync_all().await.map_err(local)?;
            tokio::fs::rename(&temp, to).await.map_err(local)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result.map(|()| true)
    }

    /// The objects under the prefix `rel`, as paths relative to the lake, sorted.
    pub async fn list(&self, rel: &str) -> Result<Vec<(String, u64)>, LakeError> {
        Ok(self
            .list_versions(rel)
            .await?
            .into_iter()
            .map(|(key, size, _)| (key, size))
            .collect())
    }

    /// As [`Lake::list`], with each object's version: its size and last modification (what
    /// tells a replaced object from the copy already here).
    pub async fn list_versions(&self, rel: &str) -> Result<Vec<(String, u64, String)>, LakeError> {
        let prefix = self.path(rel);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(rel, e))?;
        let root = self.root.as_ref();
        let mut out: Vec<(String, u64, String)> = metas
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                let rel = full
                    .strip_prefix(root)
                    .unwrap_or(full)
                    .trim_start_matches('/')
                    .to_owned();
                let version = format!(
                    "{} {} {}",
                    m.size,
                    m.last_modified.to_rfc3339(),
                    m.e_tag.unwrap_or_default()
                );
                (rel, m.size, version)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes `rel` (nothing if it is not there).
    pub async fn delete(&self, rel: &str) -> Result<(), LakeError> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(rel, e)),
        }
    }
}

/// Above this, an upload goes in parts (S3's minimum part is 5 MiB).
const UPLOAD_PART: usize = 16 << 20;

/// A URL as a relative directory, `<scheme>/<bucket>/<prefix…>` (`.` and `..` dropped, so it
/// stays under whatever it is joined to).
pub fn url_dir(url: &url::Url) -> PathBuf {
    let mut dir = PathBuf::from(url.scheme());
    for part in url
        .host_str()
        .into_iter()
        .chain(url.path().split('/'))
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        dir.push(part);
    }
    dir
}

/// The default work directory of a lake: `$XDG_CACHE_HOME/medium-etl/<scheme>/<bucket>/<prefix>`
/// (`~/.cache` without it), else `.medium-etl-work/…` in the current directory.
pub fn default_work_dir(url: &url::Url) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("medium-etl"))
        .unwrap_or_else(|| PathBuf::from(".medium-etl-work"));
    base.join(url_dir(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://bucket/prefix"));
        assert!(is_url("gs://b"));
        assert!(is_url("file:///tmp/x"));
        assert!(!is_url("data"));
        assert!(!is_url("/tmp/a://b"));
        assert!(!is_url("://x"));
    }

    #[test]
    fn the_work_dir_follows_the_url_without_escaping_it() {
        let url = url::Url::parse("s3://bucket/a/../b/").unwrap();
        let dir = default_work_dir(&url);
        assert!(dir.ends_with("medium-etl/s3/bucket/b"), "{}", dir.display());
    }

    #[tokio::test]
    async fn create_only_puts_refuse_a_second_writer() {
        let lake = Lake::open(&LakeSettings {
            url: url::Url::parse("memory:///lake").unwrap(),
            options: vec![],
            upload_every: std::time::Duration::from_secs(5),
            lease_ttl: std::time::Duration::from_secs(120),
        })
        .unwrap();
        assert!(lake
            .put_new("t/_delta_log/0.json", Bytes::from("a"))
            .await
            .unwrap());
        assert!(!lake
            .put_new("t/_delta_log/0.json", Bytes::from("b"))
            .await
            .unwrap());
        assert_eq!(lake.get("t/_delta_log/0.json").await.unwrap().unwrap(), "a");
        assert_eq!(lake.get("nothing").await.unwrap(), None);
        let listed = lake.list("t").await.unwrap();
        assert_eq!(listed, vec![("t/_delta_log/0.json".to_owned(), 1)]);
    }
}
