//! How the process's allocator treats the buffers that training frees.
//!
//! candle allocates a fresh buffer for every op's output and frees it when
//! the step is done. glibc's `malloc` by default serves blocks above an
//! adaptive threshold (128 KiB at first) with fresh mappings and gives the
//! free space at the top of its heap back to the system once it exceeds
//! another; the next step's buffers then fault in fresh pages, which the
//! kernel zeroes. For the session encoder (activations of 344 KB a layer
//! at batch 64) that was a fifth to a quarter of a training step
//! (`cargo bench --bench catalog -- encoder`, one thread).
//! [`keep_freed_memory`] raises both thresholds, so freed buffers are
//! reused instead: the process keeps its peak heap. Nothing else changes —
//! not a bit of any result.

/// Blocks up to this size come from the heap, not from fresh mappings
/// (glibc's own ceiling for the adaptive threshold).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free space at the heap's top kept rather than returned to the system.
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Asks glibc's `malloc` to keep freed memory for reuse (see the module
/// documentation). Call it once, early in `main`; it applies to the whole
/// process. Returns whether the settings took (false on other C
/// libraries, where it does nothing).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |param: libc::c_int, value: usize| -> bool {
            let Ok(value) = libc::c_int::try_from(value) else {
                return false;
            };
            // SAFETY: `mallopt` only changes glibc malloc's tuning
            // parameters (under its own lock); it reads and writes no
            // memory of ours, and both parameters are ones glibc documents
            // with values in their allowed ranges.
            #[allow(unsafe_code)]
            let ok = unsafe { libc::mallopt(param, value) };
            ok == 1
        };
        set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) & set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc takes both settings (this crate's CI runs on glibc Linux).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_settings() {
        assert!(keep_freed_memory());
        // Calling it again is harmless.
        assert!(keep_freed_memory());
    }
}
