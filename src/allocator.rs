//! The process's allocator settings, made once at start-up before any thread exists. Only
//! glibc's malloc is tuned: other platforms' allocators are left as they are.
//!
//! Why: a long REPL session's resident memory grew in steps that were not live data but freed
//! memory glibc kept (docs/quality.md, "Leaks"). glibc's trim threshold starts at 128 KiB, but
//! when a mapped block larger than its mmap threshold is freed, both rise (the mmap threshold to
//! that block's size, up to 32 MiB; the trim threshold to twice it), and an arena's free top is
//! only given back above the trim threshold. So one large response body raises it for the rest
//! of the session. Fixing it at 128 KiB (which also stops the rise) gives the free top back; the
//! cost is that blocks above 128 KiB are always mapped and unmapped rather than reused, small
//! beside the network round trip that fills them.
//!
//! A user's own setting wins (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`, or either in
//! `GLIBC_TUNABLES`): glibc has read it already, and then nothing is set here.

/// The trim threshold nuaws runs with: glibc's own starting value, kept fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// Applies the settings above. Call first in `main`, while the process has one thread.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        let user_tuned = ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
            || ["glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold"].iter().any(|name| tunables.contains(name));
        if !user_tuned {
            // SAFETY: mallopt only changes malloc's parameters; it is safe to call at any time,
            // and here no other thread is allocating. A refused value (return 0) leaves
            // glibc's defaults, which is harmless.
            unsafe {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// glibc maps a block over its mmap threshold, and by default raises that threshold to the
    /// size of any mapped block freed: after a 4 MiB block is freed, a 1 MiB one would come from
    /// the heap (and stay resident when freed). With the thresholds fixed it is mapped again.
    #[test]
    fn a_large_block_freed_does_not_raise_the_thresholds() {
        super::tune();
        // The count of mapped blocks is the process's, and other tests run meanwhile: one of a
        // few tries must see exactly this block added.
        // SAFETY: malloc/free pairs of blocks nothing else sees; mallinfo2 only reads counters.
        let mapped = (0..5).any(|_| unsafe {
            libc::free(libc::malloc(4 << 20));
            let before = libc::mallinfo2().hblks;
            let block = libc::malloc(1 << 20);
            let during = libc::mallinfo2().hblks;
            libc::free(block);
            during == before + 1
        });
        assert!(mapped, "the 1 MiB block is mapped, not taken from the heap");
    }
}
