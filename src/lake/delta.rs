//! Delta tables, written and read by hand over [`Lake`]: the transaction log's JSON commits
//! (protocol 1/2, no table features), which Spark, Trino, Databricks, DuckDB, polars and
//! `deltalake` read.
//!
//! Why by hand: the Rust `deltalake` crate needs arrow 59 (we are on 60), and `delta_kernel`
//! with arrow 60 pulls a second `object_store`. The part of the protocol a writer of whole
//! date partitions needs is small: a commit is one object `_delta_log/<version:020>.json` of
//! newline-delimited actions, created only if no other writer created it first.
//!
//! A run replaces its date in a table with **one commit**: it uploads its data file under a
//! fresh name (`date=D/part-<run id>-<random>.parquet`, which no reader lists, since readers
//! read the log), then commits `remove` for every file of the date in the snapshot it read and
//! `add` for its own. Readers see the snapshot before or after that commit, never a mix. If
//! another writer took the version first, the commit is rebuilt on the newer snapshot and tried
//! at the next version ([`MAX_ATTEMPTS`] times): two runs of one date both publish whole, and
//! the later commit wins. Removed files stay, so every earlier version can still be read (time
//! travel). Nothing is vacuumed and no checkpoint is written (see docs/architecture.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use serde_json::{json, Value};

use super::Lake;
use crate::error::LakeError;

/// The partition column of every table.
pub const PARTITION_COLUMN: &str = "date";

/// How many versions a commit tries before it gives up (each try reads the commits it lost to).
pub const MAX_ATTEMPTS: u32 = 50;

/// How many times a commit whose outcome is unknown (an error, and no commit at its version)
/// is tried again at the same version.
const MAX_UNCLEAR: u32 = 4;

/// A data file of a table, as its `add` action records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Relative to the table's directory.
    pub path: String,
    pub date: Option<String>,
    pub size: u64,
}

/// A table's state at one version: its schema and its live files.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The version read (`None`: there is no table yet).
    pub version: Option<u64>,
    /// The table's id and schema, from its latest `metaData`.
    pub id: Option<String>,
    pub schema_string: Option<String>,
    /// Live files by path.
    pub files: BTreeMap<String, DataFile>,
    /// The writer version the latest protocol asks for.
    pub min_writer: Option<u64>,
}

impl Snapshot {
    /// The live files of `date`.
    pub fn files_of(&self, date: &str) -> Vec<&DataFile> {
        self.files
            .values()
            .filter(|f| f.date.as_deref() == Some(date))
            .collect()
    }

    /// The dates that have live files, in order.
    pub fn dates(&self) -> Vec<String> {
        let mut dates: Vec<String> = self.files.values().filter_map(|f| f.date.clone()).collect();
        dates.sort();
        dates.dedup();
        dates
    }

    /// Applies one commit's actions.
    fn apply(&mut self, version: u64, commit: &[u8], url: &str) -> Result<(), LakeError> {
        let bad = |reason: String| LakeError::Delta {
            table: url.to_owned(),
            reason: format!("commit {version}: {reason}"),
        };
        for line in commit.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let action: Value =
                serde_json::from_slice(line).map_err(|e| bad(format!("not JSON: {e}")))?;
            if let Some(add) = action.get("add") {
                let file = data_file(add).ok_or_else(|| bad("an add without a path".into()))?;
                self.files.insert(file.path.clone(), file);
            } else if let Some(remove) = action.get("remove") {
                let path = remove
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a remove without a path".into()))?;
                self.files.remove(&decode_path(path));
            } else if let Some(meta) = action.get("metaData") {
                self.id = meta.get("id").and_then(Value::as_str).map(str::to_owned);
                self.schema_string = meta
                    .get("schemaString")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            } else if let Some(protocol) = action.get("protocol") {
                let reader = protocol
                    .get("minReaderVersion")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                self.min_writer = protocol.get("minWriterVersion").and_then(Value::as_u64);
                if reader > 1 {
                    // deletion vectors, column mapping…: files would not mean what they say
                    return Err(bad(format!(
                        "reader version {reader} is needed (this reader knows version 1)"
                    )));
                }
            }
        }
        self.version = Some(version);
        Ok(())
    }
}

fn data_file(add: &Value) -> Option<DataFile> {
    let path = decode_path(add.get("path")?.as_str()?);
    let date = add
        .get("partitionValues")
        .and_then(|p| p.get(PARTITION_COLUMN))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let size = add.get("size").and_then(Value::as_u64).unwrap_or(0);
    Some(DataFile { path, date, size })
}

/// An `add`'s path is a URI reference: percent-decode it (ours never need encoding).
fn decode_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// The log file of a version.
fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

/// One Delta table in a lake: `<lake>/<dir>/`.
#[derive(Debug, Clone)]
pub struct DeltaTable {
    lake: Lake,
    dir: String,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub version: u64,
    /// The data file added, relative to the table.
    pub path: String,
    /// How many files of the date it removed.
    pub removed: usize,
    /// How many versions other writers took first.
    pub conflicts: u32,
}

impl DeltaTable {
    /// The table at `<lake>/<dir>` (it need not exist yet).
    pub fn new(lake: &Lake, dir: &str) -> DeltaTable {
        DeltaTable {
            lake: lake.clone(),
            dir: dir.trim_matches('/').to_owned(),
        }
    }

    /// The table's URL.
    pub fn url(&self) -> String {
        self.lake.url_of(&self.dir)
    }

    fn log(&self) -> String {
        format!("{}/_delta_log", self.dir)
    }

    /// The versions in the log, in order.
    async fn versions(&self) -> Result<Vec<u64>, LakeError> {
        let prefix = format!("{}/", self.log());
        let mut versions = Vec::new();
        let mut checkpoints = false;
        for (name, _) in self.lake.list(&self.log()).await? {
            let Some(file) = name.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(v) = file
                .strip_suffix(".json")
                .filter(|v| v.len() == 20 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
            {
                versions.push(v);
            } else if file.contains(".checkpoint.") {
                checkpoints = true;
            }
        }
        versions.sort_unstable();
        // a log read from version 0 must have every commit; another writer's checkpoint may
        // have let the early ones expire
        let complete = versions.iter().enumerate().all(|(i, v)| *v == i as u64);
        if !complete {
            return Err(LakeError::Delta {
                table: self.url(),
                reason: if checkpoints {
                    "its early commits expired behind a checkpoint, which this reader does not read"
                        .into()
                } else {
                    format!("its log has gaps (versions {versions:?})")
                },
            });
        }
        Ok(versions)
    }

    /// The table at its latest version, or at `version` (time travel).
    pub async fn snapshot(&self, version: Option<u64>) -> Result<Snapshot, LakeError> {
        let mut snapshot = Snapshot::default();
        self.advance(&mut snapshot, version).await?;
        if let (Some(wanted), got) = (version, snapshot.version) {
            if got != Some(wanted) {
                return Err(LakeError::Delta {
                    table: self.url(),
                    reason: format!("it has no version {wanted} (latest: {got:?})"),
                });
            }
        }
        Ok(snapshot)
    }

    /// Whether version `version` is the commit that adds `path` (ours: the path holds 64 random
    /// bits), as opposed to another writer's.
    async fn commit_is_ours(&self, version: u64, path: &str) -> Result<bool, LakeError> {
        let name = format!("{}/{}", self.log(), commit_name(version));
        let Some(commit) = self.lake.get(&name).await? else {
            return Ok(false);
        };
        let mut probe = Snapshot::default();
        probe.apply(version, &commit, &self.url())?;
        Ok(probe.files.contains_key(path))
    }

    /// Reads the commits after `snapshot`'s version (up to `until`) into it.
    async fn advance(&self, snapshot: &mut Snapshot, until: Option<u64>) -> Result<(), LakeError> {
        let next = snapshot.version.map_or(0, |v| v + 1);
        for v in self.versions().await? {
            if v < next || until.is_some_and(|u| v > u) {
                continue;
            }
            let name = format!("{}/{}", self.log(), commit_name(v));
            let commit = self
                .lake
                .get(&name)
                .await?
                .ok_or_else(|| LakeError::Delta {
                    table: self.url(),
                    reason: format!("commit {v} was listed but is gone"),
                })?;
            snapshot.apply(v, &commit, &self.url())?;
        }
        Ok(())
    }

    /// Replaces `date` in the table with the local Parquet file `data` (which holds the
    /// table's columns but not `date`): uploads it, then commits, retrying on conflicts.
    pub async fn replace_date(
        &self,
        date: &str,
        data: &Path,
        schema: &Schema,
        rows: u64,
        run_id: &str,
    ) -> Result<Committed, LakeError> {
        let schema_string = schema_string(schema).map_err(|reason| LakeError::Delta {
            table: self.url(),
            reason,
        })?;
        let path = format!(
            "{PARTITION_COLUMN}={date}/part-{run_id}-{:016x}.parquet",
            fastrand::u64(..)
        );
        let size = self
            .lake
            .upload(data, &format!("{}/{path}", self.dir))
            .await?;
        let mut snapshot = self.snapshot(None).await?;
        if let Some(writer) = snapshot.min_writer.filter(|w| *w > 2) {
            // appendOnly, invariants, constraints, table features: rules this writer keeps not
            return Err(LakeError::Delta {
                table: self.url(),
                reason: format!("writer version {writer} is needed (this writer knows version 2)"),
            });
        }
        let mut conflicts = 0;
        let mut unclear = 0;
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let version = snapshot.version.map_or(0, |v| v + 1);
            let removed: Vec<&DataFile> = snapshot.files_of(date);
            let mut actions = vec![json!({"commitInfo": {
                "timestamp": now,
                "operation": "WRITE",
                "operationParameters": {
                    "mode": "Overwrite",
                    "partitionBy": format!("[\"{PARTITION_COLUMN}\"]"),
                    "predicate": format!("{PARTITION_COLUMN} = '{date}'"),
                },
                "isBlindAppend": false,
                "engineInfo": concat!("medium-etl/", env!("CARGO_PKG_VERSION")),
                "runId": run_id,
            }})];
            if snapshot.version.is_none() {
                actions.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
            }
            if snapshot.schema_string.as_deref() != Some(schema_string.as_str()) {
                // a new table, or one a newer medium-etl added columns to
                let id = snapshot.id.clone().unwrap_or_else(table_id);
                actions.push(json!({"metaData": {
                    "id": id,
                    "format": {"provider": "parquet", "options": {}},
                    "schemaString": schema_string,
                    "partitionColumns": [PARTITION_COLUMN],
                    "configuration": {},
                    "createdTime": now,
                }}));
            }
            for file in &removed {
                actions.push(json!({"remove": {
                    "path": file.path,
                    "deletionTimestamp": now,
                    "dataChange": true,
                    "extendedFileMetadata": true,
                    "partitionValues": {PARTITION_COLUMN: date},
                    "size": file.size,
                }}));
            }
            actions.push(json!({"add": {
                "path": path,
                "partitionValues": {PARTITION_COLUMN: date},
                "size": size,
                "modificationTime": now,
                "dataChange": true,
                "stats": json!({"numRecords": rows}).to_string(),
            }}));
            let mut body = Vec::new();
            for a in &actions {
                body.extend_from_slice(a.to_string().as_bytes());
                body.push(b'\n');
            }
            let name = format!("{}/{}", self.log(), commit_name(version));
            let won = match self.lake.put_new(&name, Bytes::from(body)).await {
                Ok(true) => true,
                // Lost, or unknown: a PUT that timed out may have landed, and one retried by
                // the store's client after it landed is answered "exists". Whose is it?
                Ok(false) => self.commit_is_ours(version, &path).await?,
                Err(e) => match self.lake.get(&name).await {
                    Ok(None) => {
                        // not there: try the same version again, a few times
                        unclear += 1;
                        if unclear >= MAX_UNCLEAR {
                            return Err(e);
                        }
                        tracing::warn!(table = %self.url(), version, error = %e, "DeltaCommitRetried");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(unclear))).await;
                        continue;
                    }
                    Ok(Some(_)) => self.commit_is_ours(version, &path).await?,
                    Err(_) => return Err(e),
                },
            };
            if won {
                tracing::debug!(table = %self.url(), version, removed = removed.len(), "DeltaCommitted");
                return Ok(Committed {
                    version,
                    path,
                    removed: removed.len(),
                    conflicts,
                });
            }
            conflicts += 1;
            if conflicts >= MAX_ATTEMPTS {
                return Err(LakeError::Delta {
                    table: self.url(),
                    reason: format!("{conflicts} commits lost to other writers in a row"),
                });
            }
            tracing::info!(table = %self.url(), version, "DeltaCommitConflict");
            // back off a little, at random, so that racing writers spread out
            tokio::time::sleep(Duration::from_millis(fastrand::u64(5..50))).await;
            self.advance(&mut snapshot, None).await?;
        }
    }
}

/// A new table's id: a random (version 4) UUID.
fn table_id() -> String {
    let h = (fastrand::u128(..) & !(0xf000u128 << 64) & !(0xc << 60))
        | (0x4000u128 << 64)
        | (0x8 << 60);
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The Delta schema of a table whose files have `schema`, with `date` (a partition column)
/// last.
pub fn schema_string(schema: &Schema) -> Result<String, String> {
    let mut fields: Vec<Value> = Vec::new();
    for f in schema.fields() {
        if f.name() == PARTITION_COLUMN {
            return Err(format!(
                "its files hold a column {PARTITION_COLUMN:?}, the partition column"
            ));
        }
        fields.push(field(f)?);
    }
    fields
        .push(json!({"name": PARTITION_COLUMN, "type": "date", "nullable": false, "metadata": {}}));
    Ok(json!({"type": "struct", "fields": fields}).to_string())
}

fn field(f: &Field) -> Result<Value, String> {
    Ok(json!({
        "name": f.name(),
        "type": delta_type(f.data_type()).map_err(|t| format!("column {:?}: {t}", f.name()))?,
        "nullable": f.is_nullable(),
        "metadata": {},
    }))
}

/// The Delta type of an Arrow type (the ones our tables and reports use, and their kin).
fn delta_type(t: &DataType) -> Result<Value, String> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Int64 => json!("long"),
        DataType::Int32 => json!("integer"),
        DataType::Int16 => json!("short"),
        DataType::Int8 => json!("byte"),
        DataType::Float64 => json!("double"),
        DataType::Float32 => json!("float"),
        DataType::Boolean => json!("boolean"),
        DataType::Date32 => json!("date"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => json!("binary"),
        // Delta's timestamp is an instant (stored as UTC); readers take ms or µs in the files
        DataType::Timestamp(_, Some(_)) => json!("timestamp"),
        DataType::List(inner) | DataType::LargeList(inner) | DataType::ListView(inner) => {
            json!({
                "type": "array",
                "elementType": delta_type(inner.data_type())?,
                "containsNull": inner.is_nullable(),
            })
        }
        DataType::Struct(fields) => {
            let fields: Result<Vec<Value>, String> = fields.iter().map(|f| field(f)).collect();
            json!({"type": "struct", "fields": fields?})
        }
        other => return Err(format!("the type {other} has no Delta type here")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LakeSettings;
    use std::sync::Arc;

    fn memory_lake() -> Lake {
        Lake::open(&LakeSettings {
            url: url::Url::parse("memory:///lake").unwrap(),
            options: vec![],
            upload_every: std::time::Duration::from_secs(5),
            lease_ttl: std::time::Duration::from_secs(120),
        })
        .unwrap()
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("user_id", DataType::Utf8, false),
            Field::new("claps", DataType::Int64, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            ),
            Field::new(
                "at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
        ])
    }

    #[test]
    fn the_schema_is_delta_with_the_date_last() {
        let s: Value = serde_json::from_str(&schema_string(&schema()).unwrap()).unwrap();
        let fields = s["fields"].as_array().unwrap();
        assert_eq!(fields[1]["type"], "long");
        assert_eq!(fields[2]["type"]["type"], "array");
        assert_eq!(fields[2]["type"]["elementType"], "string");
        assert_eq!(fields[3]["type"], "timestamp");
        assert_eq!(fields[4]["name"], "date");
        assert_eq!(fields[4]["type"], "date");
        let bad = Schema::new(vec![Field::new("date", DataType::Utf8, false)]);
        assert!(schema_string(&bad).is_err());
        let naive = Schema::new(vec![Field::new(
            "t",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            false,
        )]);
        assert!(schema_string(&naive).unwrap_err().contains("\"t\""));
    }

    #[tokio::test]
    async fn a_date_is_replaced_in_one_commit_and_history_stays() {
        let lake = memory_lake();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.parquet");
        std::fs::write(&file, b"not really parquet").unwrap();
        let table = DeltaTable::new(&lake, "tables/authors");
        let first = table
            .replace_date("2026-12-01", &file, &schema(), 3, "r1")
            .await
            .unwrap();
        assert_eq!((first.version, first.removed), (0, 0));
        table
            .replace_date("2026-12-02", &file, &schema(), 3, "r2")
            .await
            .unwrap();
        let again = table
            .replace_date("2026-12-01", &file, &schema(), 4, "r3")
            .await
            .unwrap();
        assert_eq!((again.version, again.removed), (2, 1));
        let now = table.snapshot(None).await.unwrap();
        assert_eq!(now.version, Some(2));
        assert_eq!(now.dates(), ["2026-12-01", "2026-12-02"]);
        let files = now.files_of("2026-12-01");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, again.path);
        // time travel: version 0 had the first file only
        let then = table.snapshot(Some(0)).await.unwrap();
        assert_eq!(then.files_of("2026-12-01")[0].path, first.path);
        assert!(then.files_of("2026-12-02").is_empty());
        assert!(table.snapshot(Some(7)).await.is_err());
        // the replaced file is still there for time travel
        let old = format!("tables/authors/{}", first.path);
        assert!(lake.get(&old).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn racing_writers_each_commit_whole() {
        let lake = memory_lake();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.parquet");
        std::fs::write(&file, b"x").unwrap();
        let table = DeltaTable::new(&lake, "reports/author_metrics");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (table, file) = (table.clone(), file.clone());
            tasks.push(tokio::spawn(async move {
                table
                    .replace_date("2026-12-01", &file, &schema(), 1, &format!("w{i}"))
                    .await
                    .unwrap()
            }));
        }
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap().version);
        }
        versions.sort_unstable();
        assert_eq!(versions, (0..8).collect::<Vec<u64>>());
        let now = table.snapshot(None).await.unwrap();
        // the date has exactly one live file: the last commit's
        assert_eq!(now.files_of("2026-12-01").len(), 1);
        // protocol and metaData were written once, by version 0's writer
        let mut metas = 0;
        for v in 0..8 {
            let c = lake
                .get(&format!(
                    "reports/author_metrics/_delta_log/{}",
                    commit_name(v)
                ))
                .await
                .unwrap()
                .unwrap();
            metas += String::from_utf8_lossy(&c).matches("\"metaData\"").count();
        }
        assert_eq!(metas, 1);
    }

    #[tokio::test]
    async fn a_log_with_a_gap_or_a_newer_protocol_is_refused() {
        let lake = memory_lake();
        lake.put(
            "t/_delta_log/00000000000000000001.json",
            Bytes::from("{}\n"),
        )
        .await
        .unwrap();
        let err = DeltaTable::new(&lake, "t")
            .snapshot(None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("gaps"), "{err}");
        lake.put(
            "u/_delta_log/00000000000000000000.json",
            Bytes::from("{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7}}\n"),
        )
        .await
        .unwrap();
        let err = DeltaTable::new(&lake, "u")
            .snapshot(None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("reader version 3"), "{err}");
    }
}
