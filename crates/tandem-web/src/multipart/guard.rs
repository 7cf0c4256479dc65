//! The byte stream multer parses, watched on its way in.
//!
//! multer buffers a part's header block until the blank line that ends it, and the preamble
//! until the first delimiter, with no bound of its own on either. The guard feeds the same
//! bytes to a [`MultipartScanner`], which refuses a header block or preamble over
//! [`MAX_PART_HEAD`](tandem_proto::MAX_PART_HEAD) bytes, so a part with a 1 MiB header line
//! is a 400 once 16 KiB of it has arrived (aiohttp CVE-2026-34516), and a part whose head
//! repeats a field read as one value (multer keeps the last copy, aiohttp reads the first);
//! multer itself refuses more than 32 fields in a part. The client reads multipart
//! responses through the same scanner.
//!
//! When `post()` reads, the guard also counts the whole body against `client_max_size`, and
//! the 413 comes as soon as the count passes it: the limit is the form's, not each field's
//! (CVE-2025-69228), and it is checked as bytes arrive, not after a field is buffered
//! (CVE-2026-34517).
//!
//! Last, multer pulls from its stream for as long as bytes are ready. The guard yields to
//! the scheduler after [`YIELD_BYTES`], so multer's buffer never holds more than that at
//! once and a fast client cannot make one poll read its whole upload into memory.

use bytes::Bytes;
use futures_util::Stream;
use tandem_proto::{ErrorKind, MultipartScanner};

use crate::{HttpError, payload::Payload};

/// Bytes handed to multer between two yields to the scheduler.
const YIELD_BYTES: usize = 64 * 1024;

/// Watches a multipart body for oversized header blocks and repeated single-value fields
/// and, optionally, a total limit.
#[derive(Debug)]
pub(crate) struct Guard {
    scanner: MultipartScanner,
    total: u64,
    limit: Option<usize>,
}

impl Guard {
    pub(crate) fn new(boundary: &str, limit: Option<usize>) -> Self {
        Guard { scanner: MultipartScanner::new(boundary), total: 0, limit }
    }

    /// Checks the next chunk of the body.
    pub(crate) fn check(&mut self, chunk: &[u8]) -> Result<(), HttpError> {
        self.total += chunk.len() as u64;
        if let Some(limit) = self.limit
            && self.total > limit as u64
        {
            return Err(HttpError::payload_too_large(limit, None));
        }
        self.scanner.scan(chunk).map_err(|err| {
            let text = if err.kind() == ErrorKind::DuplicatePartField {
                "400: a repeated field in a multipart part's headers"
            } else {
                "400: multipart part headers too large"
            };
            HttpError::bad_request().with_text(text)
        })
    }
}

/// The request body as multer's input: checked by `guard`, ending at the first error.
pub(crate) fn guarded(
    payload: Payload,
    guard: Guard,
) -> impl Stream<Item = Result<Bytes, HttpError>> + Send + 'static {
    let state = (payload, guard, 0usize, false);
    futures_util::stream::unfold(
        state,
        |(mut payload, mut guard, mut since_yield, failed)| async move {
            if failed {
                return None;
            }
            if since_yield >= YIELD_BYTES {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            let result = match payload.chunk().await {
                Ok(Some(chunk)) => guard.check(&chunk).map(|()| chunk),
                Ok(None) => return None,
                Err(err) => Err(err),
            };
            let failed = result.is_err();
            if let Ok(chunk) = &result {
                since_yield += chunk.len();
            }
            Some((result, (payload, guard, since_yield, failed)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` to a guard in pieces of `step` bytes: the status and text of its refusal.
    fn run(body: &[u8], step: usize, limit: Option<usize>) -> Result<(), (u16, String)> {
        let mut guard = Guard::new("XyZ", limit);
        for piece in body.chunks(step) {
            guard.check(piece).map_err(|e| (e.status().as_u16(), e.text()))?;
        }
        Ok(())
    }

    #[test]
    fn the_scanners_refusals_are_400s_and_the_total_a_413() {
        let mut long_head = b"--XyZ\r\nX: ".to_vec();
        long_head.extend(std::iter::repeat_n(b'a', tandem_proto::MAX_PART_HEAD));
        let too_large = (400, "400: multipart part headers too large".to_owned());
        assert_eq!(run(&long_head, 1000, None), Err(too_large.clone()));
        assert_eq!(run(&vec![b'p'; tandem_proto::MAX_PART_HEAD + 1], 1000, None), Err(too_large));
        let twice = b"--XyZ\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n";
        let repeated = (400, "400: a repeated field in a multipart part's headers".to_owned());
        assert_eq!(run(twice, 7, None), Err(repeated));
        let mut long_body = b"--XyZ\r\n\r\n".to_vec();
        long_body.extend(std::iter::repeat_n(b'a', 10 * tandem_proto::MAX_PART_HEAD));
        assert_eq!(run(&long_body, 1000, None), Ok(()));
        assert_eq!(run(&long_body, 1000, Some(1000)).map_err(|(status, _)| status), Err(413));
    }
}
