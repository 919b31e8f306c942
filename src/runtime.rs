//! The tokio runtimes the commands run on: one thread for a crawl ([`crawl_runtime`]), tokio's
//! multi-threaded runtime for the rest ([`runtime`]); `TOKIO_WORKER_THREADS`, read here.

use crate::error::RunError;

/// The multi-threaded tokio runtime the subcommands that serve run on (`TOKIO_WORKER_THREADS`
/// workers when set, else one a core).
pub fn runtime() -> Result<tokio::runtime::Runtime, RunError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads()? {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(e.to_string()))
}

/// The runtime a run crawls on (`run`, `publish`, `schedule`, `rebuild`): one thread. A crawl
/// waits on the network; publishing runs on the blocking pool, the Parquet writer is a
/// thread of its own and polars has its pool, so a second async worker mostly added hand-offs
/// between threads: one thread costs 15-25 % less CPU a request at the same wall time, and
/// replays a raw store as fast (docs/benchmarks.md, #18 session 12). An author's
/// normalization does run on this thread, between pages. `TOKIO_WORKER_THREADS=N` asks for
/// tokio's multi-threaded runtime with N workers instead.
pub fn crawl_runtime() -> Result<tokio::runtime::Runtime, RunError> {
    if worker_threads()?.is_some() {
        return runtime();
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(e.to_string()))
}

/// `TOKIO_WORKER_THREADS`, read here rather than by tokio (which panics on a bad value).
fn worker_threads() -> Result<Option<usize>, RunError> {
    const VAR: &str = "TOKIO_WORKER_THREADS";
    let value = match std::env::var(VAR) {
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => v.to_string_lossy().into_owned(),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => return Ok(Some(n)),
            _ => v,
        },
    };
    Err(crate::error::ConfigError::EnvValue {
        var: VAR.into(),
        value,
        reason: "expected a number of worker threads, 1 to 1024".into(),
    }
    .into())
}
