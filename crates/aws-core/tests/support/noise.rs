// Test data shared by the cache's unit tests (included) and integration tests (a module).

/// Deterministic text that brotli cannot shrink much (6 bits of entropy per byte), so entry sizes
/// on disk are predictable.
pub fn noise(len: usize, seed: u64) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
                    [(x % 64) as usize],
            )
        })
        .collect()
}
