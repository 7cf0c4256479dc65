//! Randomness for the client side: frame masking keys and the handshake's key, from the
//! OS's CSPRNG (`getrandom`) rather than a userspace generator, which would be one more
//! crate tree to build (`rand`'s `ChaCha` pulls in `zerocopy`) for 4 bytes a frame.

use std::io;

/// Keys drawn per `getrandom` call: one call every 64 frames, not one per frame.
const KEYS_PER_FILL: usize = 64;

/// Masking keys for a client's frames, which RFC 6455 §5.3 wants unpredictable ("derived
/// from a strong source of entropy"), handed out one at a time from a batch.
#[derive(Debug)]
pub(crate) struct MaskKeys {
    batch: [u8; KEYS_PER_FILL * 4],
    /// Where the next key starts in `batch`; `batch.len()` when the batch is used up.
    next: usize,
}

impl MaskKeys {
    pub(crate) fn new() -> Self {
        MaskKeys { batch: [0; KEYS_PER_FILL * 4], next: KEYS_PER_FILL * 4 }
    }

    /// The next key: an error only if the OS has no randomness to give.
    pub(crate) fn next_key(&mut self) -> io::Result<[u8; 4]> {
        if self.next == self.batch.len() {
            fill(&mut self.batch)?;
            self.next = 0;
        }
        let mut key = [0; 4];
        key.copy_from_slice(&self.batch[self.next..self.next + 4]);
        self.next += 4;
        Ok(key)
    }
}

/// Fills `bytes` from the OS's CSPRNG.
pub(crate) fn fill(bytes: &mut [u8]) -> io::Result<()> {
    getrandom::fill(bytes).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_within_and_across_batches() {
        let mut keys = MaskKeys::new();
        let drawn: Vec<[u8; 4]> =
            (0..KEYS_PER_FILL * 3).map(|_| keys.next_key().unwrap()).collect();
        let mut distinct = drawn.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // 192 random 32-bit keys: a repeat has odds of about 4 in a million.
        assert!(
            distinct.len() >= drawn.len() - 1,
            "{} distinct of {}",
            distinct.len(),
            drawn.len()
        );
        assert_ne!(drawn[..KEYS_PER_FILL], drawn[KEYS_PER_FILL..KEYS_PER_FILL * 2]);
    }
}
