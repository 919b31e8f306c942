//! The process's allocator policy (glibc malloc), set once by `main`.
//!
//! A run's memory is bounded by design (authors are normalized and dropped as they finish,
//! tables are written a batch at a time, queries run on polars' streaming engine), but glibc
//! keeps what is freed: each thread's arena holds on to its high-water mark, and the
//! threshold above which freed memory is given back grows with every large block freed. For
//! the 10,000 × 50 replay of `docs/benchmarks.md` that was a third of the peak RSS (live heap
//! 134 MB under heaptrack, peak RSS 280–300 MB). So:
//! - at most two arenas, shared by the async workers, the writer thread and polars' pool (a
//!   little more contention for much less kept memory: docs/benchmarks.md has both);
//! - freed memory above 1 MiB at the top of the heap is given back, and blocks of 1 MiB or
//!   more are mapped on their own (fixed thresholds: glibc's dynamic ones only grow);
//! - after the harvest, [`release_free`] hands back what the harvest freed before publishing
//!   allocates anew.
//!
//! [`cpu_secs`] reads the CPU the process has used so far, for the manifest's `cpu_secs`.
//!
//! A `MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_` or `MALLOC_MMAP_THRESHOLD_` in the
//! environment wins (glibc's own tunables, for measuring). Elsewhere (musl, macOS) these are
//! no-ops.

/// Sets the allocator policy above; call before other threads start.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MIB: libc::c_int = 1 << 20;
        // SAFETY: mallopt only changes glibc's tunables; it takes plain integers and is
        // called before any other thread exists.
        let unset = |name: &str| std::env::var_os(name).is_none();
        unsafe {
            if unset("MALLOC_ARENA_MAX") {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            if unset("MALLOC_TRIM_THRESHOLD_") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, MIB);
            }
            if unset("MALLOC_MMAP_THRESHOLD_") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MIB);
            }
        }
    }
}

/// Gives the memory freed so far back to the system.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU seconds (user + system, every thread) the process has used so far; 0 where the
/// system does not say.
pub fn cpu_secs() -> f64 {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one rusage into the pointer it is given, which points at
        // zeroed memory of that type; it is read only when the call succeeded.
        let usage = unsafe {
            if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
                return 0.0;
            }
            usage.assume_init()
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }
    #[cfg(not(unix))]
    {
        0.0
    }
}
