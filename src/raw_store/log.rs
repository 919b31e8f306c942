//! The page log: every page of one raw store appended to one file, `pages.log`.
//!
//! A page is one record, readable with `less` or `grep -a '^@page '`:
//!
//! ```text
//! @page {"stream":"users/u1/profile_stream","via":"json","index":1,"crc32":3735928559,"url":"…","query":"","status":200,"fetched_at":"…","bytes":1234,"attempts":1}\n
//! <exactly `bytes` bytes: the response body as it arrived>\n
//! ```
//!
//! Why one file: #18 measured the store's cost on this kind of machine. Two new files a page
//! (body and metadata, each written beside its place and renamed) cost 0.6 to 5.8 s of kernel
//! time in a 5,100-request crawl, most of it ext4 allocating inodes; appending a record costs
//! one `write`. A record is written with one `write` call under the log's lock, and the index
//! (stream, format, position → offsets) learns of it only after the write returned, so a reader
//! in this process never sees half a record.
//!
//! What a kill -9 leaves: whole records, and at most one torn record at the end (a prefix of
//! it). Reading stops at the first record that is not whole (its header line incomplete or not
//! JSON, its body shorter than `bytes`, or no newline after it); the next writer (a run holds
//! the date's lock) cuts the file back to the last whole record before appending, so the torn
//! page is simply fetched again. A body that does not match its `crc32` is reported as
//! unreadable (then fetched again), never returned. A position written twice (`--refresh`, or a
//! page that changed) is answered by its last record.
//!
//! Every `RawStore` of one directory in a process shares one `PageLog` (a registry of weak
//! references, so a log is dropped, index and all, when no store holds it).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use serde::{Deserialize, Serialize};

use medium_api::via::Via;

use super::PageMeta;
use crate::error::StoreError;

/// The log's file name in a raw store directory.
pub const LOG_FILE: &str = "pages.log";

/// What starts every record.
const MARK: &[u8] = b"@page ";

/// A header line longer than this is not a header (a GraphQL page's, with the query text
/// posted, is a few KiB).
const MAX_HEADER: u64 = 1 << 20;

/// Which page a record holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    /// The stream's directory under the store (`RawStore::stream_key`).
    pub stream: String,
    pub via: Via,
    /// 1-based position in the stream.
    pub index: usize,
}

/// A record's header line (after `@page `).
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    stream: String,
    via: Via,
    index: usize,
    crc32: u32,
    #[serde(flatten)]
    meta: PageMeta,
}

/// Where a record's parts are in the file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    header_at: u64,
    header_len: u64,
    body_at: u64,
    body_len: u64,
    /// The body's checksum, as its header records it.
    crc32: u32,
}

#[derive(Debug, Default)]
struct State {
    /// Open for reading (and appending, once `writable`).
    file: Option<Arc<File>>,
    writable: bool,
    /// The file is read (and its records indexed) up to here: the end of the last whole record.
    end: u64,
    /// The file's length when it was last read: unchanged, there is nothing new to read (a
    /// damaged end is not searched again on every miss).
    seen_len: u64,
    index: medium_api::FastHashMap<PageKey, Entry>,
}

/// The log of one raw store directory.
#[derive(Debug)]
pub struct PageLog {
    path: PathBuf,
    state: Mutex<State>,
}

static LOGS: LazyLock<Mutex<HashMap<PathBuf, Weak<PageLog>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The log of the store at `root`, shared with every other store of that directory in this
/// process.
pub fn shared(root: &Path) -> Arc<PageLog> {
    let path = root.join(LOG_FILE);
    // keyed by where the file really is, so that `out/raw/...`, `./out/raw/...` and a symlink
    // to it share one log (two would each believe they know where the file ends)
    let key = canonical(root).join(LOG_FILE);
    let mut logs = LOGS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(log) = logs.get(&key).and_then(Weak::upgrade) {
        return log;
    }
    logs.retain(|_, weak| weak.strong_count() > 0);
    let log = Arc::new(PageLog {
        path,
        state: Mutex::new(State::default()),
    });
    logs.insert(key, Arc::downgrade(&log));
    log
}

/// `dir` with its existing part resolved (symlinks, `.`, `..`, relative to absolute), the rest
/// as spelled: a store not created yet gets the key it will have once it is.
fn canonical(dir: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    // the longest part that exists, resolved by the file system (symlinks first, then `..`,
    // as the kernel does); the rest, which does not exist yet, by the letter
    let mut rest = Vec::new();
    let mut at = absolute.as_path();
    let mut real = loop {
        if let Ok(real) = fs::canonicalize(at) {
            break real;
        }
        match at.parent() {
            Some(parent) => {
                rest.extend(at.components().next_back());
                at = parent;
            }
            None => break PathBuf::from("/"),
        }
    };
    for part in rest.iter().rev() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                real.pop();
            }
            other => real.push(other),
        }
    }
    real
}

impl PageLog {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the log holds a whole record of `key`.
    pub fn contains(&self, key: &PageKey) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if !state.index.contains_key(key) {
            self.catch_up(&mut state)?;
        }
        Ok(state.index.contains_key(key))
    }

    /// Whether the last whole record of `key` holds exactly `body` (its length and checksum).
    pub fn holds(&self, key: &PageKey, body: &[u8]) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if !state.index.contains_key(key) {
            self.catch_up(&mut state)?;
        }
        Ok(state
            .index
            .get(key)
            .is_some_and(|e| e.body_len == body.len() as u64 && e.crc32 == crc32fast::hash(body)))
    }

    /// The last whole record of `key`: its metadata and body. A body that does not match its
    /// checksum is an error naming the record.
    pub fn get(&self, key: &PageKey) -> Result<Option<(PageMeta, Vec<u8>)>, StoreError> {
        let (file, entry) = {
            let mut state = self.lock();
            if !state.index.contains_key(key) {
                self.catch_up(&mut state)?;
            }
            match (state.index.get(key), &state.file) {
                (Some(entry), Some(file)) => (file.clone(), *entry),
                _ => return Ok(None),
            }
        };
        // read outside the lock: whole records are never rewritten
        let at = || self.describe(key);
        let size = |n: u64| {
            usize::try_from(n).map_err(|_| StoreError::Meta {
                path: at(),
                message: format!("a record of {n} bytes does not fit in memory"),
            })
        };
        let mut header = vec![0; size(entry.header_len)?];
        file.read_exact_at(&mut header, entry.header_at)
            .map_err(|e| StoreError::io(at(), e))?;
        let header: Header =
            serde_json::from_slice(&header[MARK.len()..]).map_err(|e| StoreError::Meta {
                path: at(),
                message: e.to_string(),
            })?;
        let mut body = vec![0; size(entry.body_len)?];
        file.read_exact_at(&mut body, entry.body_at)
            .map_err(|e| StoreError::io(at(), e))?;
        if crc32fast::hash(&body) != header.crc32 {
            return Err(StoreError::Meta {
                path: at(),
                message: format!(
                    "the body's checksum is not the recorded {} (the record is damaged)",
                    header.crc32
                ),
            });
        }
        Ok(Some((header.meta, body)))
    }

    /// Appends a record of `key`: one write, then the index.
    pub fn append(&self, key: &PageKey, meta: &PageMeta, body: &[u8]) -> Result<(), StoreError> {
        let header = Header {
            stream: key.stream.clone(),
            via: key.via,
            index: key.index,
            crc32: crc32fast::hash(body),
            meta: PageMeta {
                bytes: body.len() as u64,
                ..meta.clone()
            },
        };
        let mut record = Vec::with_capacity(body.len() + 512);
        record.extend_from_slice(MARK);
        serde_json::to_writer(&mut record, &header).map_err(|e| StoreError::Meta {
            path: self.describe(key),
            message: e.to_string(),
        })?;
        let header_len = record.len() as u64;
        if header_len >= MAX_HEADER {
            return Err(StoreError::Meta {
                path: self.describe(key),
                message: format!("a header of {header_len} bytes (at most {MAX_HEADER})"),
            });
        }
        record.push(b'\n');
        record.extend_from_slice(body);
        record.push(b'\n');

        let mut state = self.lock();
        let file = self.writer(&mut state)?;
        let start = state.end;
        let written = (&*file).write_all(&record);
        let len = file.metadata().map(|m| m.len());
        match (written, len) {
            (Ok(()), Ok(len)) if len == start + record.len() as u64 => {}
            (Err(e), _) => {
                // a partial record (a full disk): the next append reads the file again from
                // the last record known whole, and cuts what is not whole
                state.writable = false;
                state.seen_len = 0;
                return Err(StoreError::io(self.describe(key), e));
            }
            (Ok(()), _) => {
                // written, but the file does not end where this log thought (someone else
                // appended): read it again from the last record known whole, which indexes
                // this record where it really is
                state.writable = false;
                state.seen_len = 0;
                self.catch_up(&mut state)?;
                return Ok(());
            }
        }
        state.end = start + record.len() as u64;
        state.index.insert(
            key.clone(),
            Entry {
                header_at: start,
                header_len,
                body_at: start + header_len + 1,
                body_len: body.len() as u64,
                crc32: header.crc32,
            },
        );
        Ok(())
    }

    /// Where the last whole record ends: what may be copied without copying half a record
    /// (the lake's uploader copies the log in segments up to here).
    pub fn whole_len(&self) -> Result<u64, StoreError> {
        let mut state = self.lock();
        self.catch_up(&mut state)?;
        Ok(state.end)
    }

    /// Makes the log ready for appending now (read to its end, a torn tail cut), so that the
    /// first append does not do it on an async worker. Creates nothing.
    pub fn prepare(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.writable || !self.path.exists() {
            return Ok(());
        }
        self.writer(&mut state).map(drop)
    }

    /// A record's place, for messages: `<store>/pages.log#users/u1/profile_stream/page-0001.json`.
    pub fn describe(&self, key: &PageKey) -> PathBuf {
        PathBuf::from(format!(
            "{}#{}/{}",
            self.path.display(),
            key.stream,
            super::page_file_name(key.via, key.index)
        ))
    }

    /// The file open for appending: opened (created) on the first append, after the file is
    /// read to its last whole record and cut back to it (what a killed writer left after it).
    fn writer(&self, state: &mut State) -> Result<Arc<File>, StoreError> {
        if state.writable {
            if let Some(file) = &state.file {
                return Ok(file.clone());
            }
        }
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| StoreError::io(&self.path, e))?;
        state.file = Some(Arc::new(file));
        state.writable = false;
        self.catch_up(state)?;
        let file = state.file.clone().ok_or_else(|| {
            StoreError::io(&self.path, std::io::Error::other("the log is not open"))
        })?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        if len > state.end {
            self.cut_tail(&file, state.end, len)?;
        }
        state.writable = true;
        Ok(file)
    }

    /// Cuts what follows the last whole record (a killed writer's torn record, a prefix of it;
    /// catch_up has made sure no whole record follows), keeping the bytes beside the log.
    fn cut_tail(&self, file: &File, end: u64, len: u64) -> Result<(), StoreError> {
        let kept = self.path.with_file_name(format!(
            "{LOG_FILE}.cut-{end}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
        ));
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&kept)
            .map_err(|e| StoreError::io(&kept, e))?;
        let mut buf = vec![0; 64 << 10];
        let mut at = end;
        while at < len {
            let n = usize::try_from((len - at).min(buf.len() as u64)).unwrap_or(buf.len());
            file.read_exact_at(&mut buf[..n], at)
                .map_err(|e| StoreError::io(&self.path, e))?;
            out.write_all(&buf[..n])
                .map_err(|e| StoreError::io(&kept, e))?;
            at += n as u64;
        }
        out.sync_all().map_err(|e| StoreError::io(&kept, e))?;
        tracing::warn!(
            log = %self.path.display(),
            kept_bytes = end,
            cut_bytes = len - end,
            cut_to = %kept.display(),
            "RawLogTailCut"
        );
        file.set_len(end).map_err(|e| StoreError::io(&self.path, e))
    }

    /// Reads the records after `state.end` into the index. The writer's index is whole already
    /// (one process writes a date: the date lock), so it reads nothing. Where a record is not
    /// whole, the next whole record after it is looked for (a header that parses, then a body
    /// of its length and checksum); reading goes on from there, and `state.end` stops before
    /// the damaged part only when none follows (a torn end: the writer cuts it).
    fn catch_up(&self, state: &mut State) -> Result<(), StoreError> {
        if state.writable {
            return Ok(());
        }
        if state.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => state.file = Some(Arc::new(file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StoreError::io(&self.path, e)),
            }
        }
        let Some(file) = state.file.clone() else {
            return Ok(());
        };
        let len = file
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        if len == state.seen_len {
            return Ok(());
        }
        let mut pos = state.end;
        while pos < len {
            match self.record_at(&file, pos, len)? {
                Some((key, entry)) => {
                    pos = entry.body_at + entry.body_len + 1;
                    state.index.insert(key, entry);
                }
                None => match self.next_whole_record(&file, pos, len)? {
                    Some(next) => {
                        tracing::warn!(
                            log = %self.path.display(),
                            from = pos,
                            to = next,
                            "RawLogDamagedRecordSkipped"
                        );
                        pos = next;
                    }
                    None => break,
                },
            }
        }
        state.end = pos;
        state.seen_len = len;
        Ok(())
    }

    /// The whole record at `pos`, if one is (its header line, its body's length and newline;
    /// the checksum is checked when the body is read). Reads by position only.
    fn record_at(
        &self,
        file: &File,
        pos: u64,
        len: u64,
    ) -> Result<Option<(PageKey, Entry)>, StoreError> {
        let io = |e| StoreError::io(&self.path, e);
        // the header line: read in growing chunks up to its newline, at most MAX_HEADER
        let mut line = Vec::new();
        let newline = loop {
            let from = pos + line.len() as u64;
            if from >= len || line.len() as u64 >= MAX_HEADER {
                return Ok(None);
            }
            let want = 4096u64.min(len - from).min(MAX_HEADER - line.len() as u64);
            let mut chunk = vec![0; usize::try_from(want).unwrap_or(4096)];
            file.read_exact_at(&mut chunk, from).map_err(io)?;
            let seen = line.len();
            line.extend_from_slice(&chunk);
            if let Some(i) = line[seen..].iter().position(|b| *b == b'\n') {
                break seen + i;
            }
        };
        if !line.starts_with(MARK) {
            return Ok(None);
        }
        let Ok(header) = serde_json::from_slice::<Header>(&line[MARK.len()..newline]) else {
            return Ok(None);
        };
        let n = newline as u64 + 1;
        let body_at = pos + n;
        let Some(newline_at) = body_at.checked_add(header.meta.bytes) else {
            return Ok(None);
        };
        if newline_at >= len {
            return Ok(None);
        }
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, newline_at).map_err(io)?;
        if last != *b"\n" {
            return Ok(None);
        }
        let key = PageKey {
            stream: header.stream,
            via: header.via,
            index: header.index,
        };
        let entry = Entry {
            header_at: pos,
            header_len: n - 1,
            body_at,
            body_len: header.meta.bytes,
            crc32: header.crc32,
        };
        Ok(Some((key, entry)))
    }

    /// The offset of the first whole record after a damaged one at `pos` whose body matches
    /// its checksum, if any: found by looking for `@page ` (a body may hold those bytes too,
    /// which the header and the checksum tell apart). Reads by position, in 64 KiB chunks; a
    /// candidate's checksum is computed in chunks too.
    fn next_whole_record(
        &self,
        file: &File,
        pos: u64,
        len: u64,
    ) -> Result<Option<u64>, StoreError> {
        const CHUNK: u64 = 64 << 10;
        let io = |e| StoreError::io(&self.path, e);
        let mut at = pos + 1;
        while at < len {
            let want = CHUNK.min(len - at);
            let mut chunk = vec![0; usize::try_from(want).unwrap_or(0)];
            file.read_exact_at(&mut chunk, at).map_err(io)?;
            let mut i = 0;
            while let Some(found) = chunk[i..].windows(MARK.len()).position(|w| w == MARK) {
                let candidate = at + (i + found) as u64;
                if let Some((_, entry)) = self.record_at(file, candidate, len)? {
                    if self.body_matches(file, &entry)? {
                        return Ok(Some(candidate));
                    }
                }
                i += found + 1;
            }
            if want < CHUNK {
                break;
            }
            // the next chunk overlaps this one by a mark's length less one byte, so that a
            // mark across the boundary is found
            at += want - (MARK.len() as u64 - 1);
        }
        Ok(None)
    }

    /// Whether a record's body matches the checksum in its header (read in chunks).
    fn body_matches(&self, file: &File, entry: &Entry) -> Result<bool, StoreError> {
        let io = |e| StoreError::io(&self.path, e);
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0; 64 << 10];
        let mut at = entry.body_at;
        let end = entry.body_at + entry.body_len;
        while at < end {
            let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(buf.len());
            file.read_exact_at(&mut buf[..n], at).map_err(io)?;
            crc.update(&buf[..n]);
            at += n as u64;
        }
        Ok(crc.finalize() == entry.crc32)
    }
}
