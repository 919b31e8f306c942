//! Files that appear whole or not at all.
//!
//! Every file this project publishes (tables, reports, manifests, the raw store's `_origin.json`
//! and `_harvest.json`; raw pages go to the page log, `raw_store::log`) is written to a hidden
//! temporary file in the same directory and renamed into place. A rename within one
//! directory is atomic on POSIX file systems, so a reader, a resumed run or a kill -9 never sees
//! half a file; a leftover `.*.tmp-*` file is never read and is swept by [`remove_stale_temps`].

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StoreError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The marker in the names of temporary files.
pub const TEMP_MARKER: &str = ".tmp-";

/// A temporary path beside `path`, unique within this process and across processes.
pub fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}{TEMP_MARKER}{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating parent directories. With `durable`, the data
/// is flushed to disk before the rename (for published outputs; raw pages skip it, since a
/// killed process loses nothing the kernel already has).
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    }
    let tmp = temp_path_for(path);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(path, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}

/// Removes temporary files a killed run left in `dir` and below. Returns how many.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let is_temp =
            name.to_string_lossy().starts_with('.') && name.to_string_lossy().contains(TEMP_MARKER);
        match entry.file_type() {
            Ok(t) if t.is_dir() && is_temp => {
                removed += usize::from(fs::remove_dir_all(&path).is_ok())
            }
            Ok(t) if t.is_dir() => removed += remove_stale_temps(&path),
            Ok(_) if is_temp => removed += usize::from(fs::remove_file(&path).is_ok()),
            _ => {}
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_sweeps_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/page-0001.json");
        write_atomic(&path, b"hello", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        write_atomic(&path, b"again", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"again");
        let leftover = temp_path_for(&path);
        fs::write(&leftover, b"half").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(!leftover.exists());
        assert!(path.exists());
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("page-0001.json")]);
    }

    #[test]
    fn names_the_path_when_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("under/a.json"), b"x", false).unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
