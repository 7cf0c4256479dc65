//! Finding where a head ends, in time linear in its length however it arrives.
//!
//! httparse re-parses a partial head from its first byte on every call, so a head dribbled
//! one byte per read costs time quadratic in its size (tungstenite's RUSTSEC-2023-0065, and
//! aiohttp's CVE-2026-54277 where `max_line_size` was checked only within one read). The
//! scanner keeps its place between calls, enforces the line, count and size limits on bytes
//! as they arrive, before the head is complete, and hands httparse exactly one complete head.

use memchr::memchr;

use crate::{
    Limits,
    error::{Error, ErrorKind},
};

/// How a scan treats a line ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineEndings {
    /// Only CRLF ends a line; a bare LF is an error (requests, as aiohttp-strict).
    CrlfOnly,
    /// A bare LF also ends a line (responses, lenient as aiohttp's response parser).
    AllowBareLf,
}

/// Checks one complete line (with its line ending) as httparse will check the whole head,
/// given its index (0 for the start line), so that a malformed head is refused as soon as
/// its bad line arrives, however the bytes were split, in time linear in the head.
pub(crate) type LineCheck = fn(usize, &[u8]) -> Result<(), Error>;

/// The place a scan of a partly received head stopped at.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadScanner {
    /// Bytes of the buffer already examined.
    pos: usize,
    /// Where the line being received starts.
    line_start: usize,
    /// Lines completed so far; 0 while the start line is still arriving.
    lines: usize,
}

impl HeadScanner {
    /// Whether the scanner has seen nothing of the current head.
    pub(crate) fn is_fresh(&self) -> bool {
        self.pos == 0
    }

    /// Whether no line of the head has ended yet.
    pub(crate) fn at_start_line(&self) -> bool {
        self.lines == 0
    }

    /// Scans the bytes added to `buf` since the last call.
    ///
    /// Returns the length of the head, up to and including its empty line, once that line
    /// has arrived. The caller resets the scanner (with `Default`) after each head.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        endings: LineEndings,
        check_line: LineCheck,
    ) -> Result<Option<usize>, Error> {
        let head_cap = limits.head_cap();
        while let Some(offset) = memchr(b'\n', &buf[self.pos..]) {
            let lf = self.pos + offset;
            let content_end = if lf > self.line_start && buf[lf - 1] == b'\r' {
                lf - 1
            } else if endings == LineEndings::CrlfOnly {
                // A bad byte before the bare LF is what a delivery of one byte per read
                // hears first (httparse refuses it before the LF arrives), so it is the
                // verdict whichever way the line was split.
                check_line(self.lines, &buf[self.line_start..lf])?;
                return Err(ErrorKind::LineEnding.into());
            } else {
                lf
            };
            let len = content_end - self.line_start;
            if self.lines == 0 && len == 0 {
                if lf >= head_cap {
                    return Err(ErrorKind::HeadTooLarge.into());
                }
                // Empty lines before the start line are skipped, as httparse skips them
                // (RFC 9112 §2.2), so both paths agree on where a head begins.
                self.line_start = lf + 1;
                self.pos = lf + 1;
                continue;
            }
            if self.lines == 0 {
                if len > limits.get_max_line_size() {
                    return Err(ErrorKind::RequestLineTooLong.into());
                }
            } else if len == 0 {
                return Ok(Some(lf + 1));
            } else if len > limits.get_max_field_size() {
                return Err(ErrorKind::FieldTooLong.into());
            } else if self.lines > limits.get_max_headers() {
                // `self.lines` counts the start line, so it equals the number of fields
                // including this one.
                return Err(ErrorKind::TooManyHeaders.into());
            }
            // Line limits first, then the head cap, in the order `check_lines` applies them
            // to a head that arrived whole.
            if lf >= head_cap {
                return Err(ErrorKind::HeadTooLarge.into());
            }
            check_line(self.lines, &buf[self.line_start..=lf])?;
            self.lines += 1;
            self.line_start = lf + 1;
            self.pos = lf + 1;
        }
        self.pos = buf.len();
        self.check_unterminated(buf, limits)?;
        if buf.len() > head_cap {
            return Err(ErrorKind::HeadTooLarge.into());
        }
        Ok(None)
    }

    /// Applies the line limits to the line still arriving, so that an endless line is
    /// refused as soon as it passes the limit rather than when (if ever) it ends.
    fn check_unterminated(&self, buf: &[u8], limits: &Limits) -> Result<(), Error> {
        let mut len = buf.len() - self.line_start;
        if buf.last() == Some(&b'\r') {
            len -= 1;
        }
        if self.lines == 0 {
            if len > limits.get_max_line_size() {
                return Err(ErrorKind::RequestLineTooLong.into());
            }
        } else if len > limits.get_max_field_size() {
            return Err(ErrorKind::FieldTooLong.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps, reason = "a LineCheck must return a Result")]
    fn no_check(_: usize, _: &[u8]) -> Result<(), Error> {
        Ok(())
    }

    fn scan_dribbled(input: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
        let mut scanner = HeadScanner::default();
        for end in 1..=input.len() {
            if let Some(n) = scanner.scan(&input[..end], limits, LineEndings::CrlfOnly, no_check)? {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    #[test]
    fn finds_the_end_of_a_head_whole_or_dribbled() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
        let mut scanner = HeadScanner::default();
        let whole = scanner.scan(head, &Limits::default(), LineEndings::CrlfOnly, no_check);
        assert_eq!(whole, Ok(Some(head.len() - 4)));
        assert_eq!(scan_dribbled(head, &Limits::default()), Ok(Some(head.len() - 4)));
    }

    #[test]
    fn empty_lines_before_the_start_line_are_skipped() {
        let head = b"\n\nHTTP/1.1 200 OK\nA: b\n\n";
        let mut scanner = HeadScanner::default();
        for end in 1..head.len() {
            let partial =
                scanner.scan(&head[..end], &Limits::default(), LineEndings::AllowBareLf, no_check);
            assert_eq!(partial, Ok(None), "at {end}");
        }
        let whole = scanner.scan(head, &Limits::default(), LineEndings::AllowBareLf, no_check);
        assert_eq!(whole, Ok(Some(head.len())));
    }

    #[test]
    fn refuses_an_endless_line_before_it_ends() {
        let limits = Limits::default().max_line_size(10);
        let mut scanner = HeadScanner::default();
        let long = [b'a'; 11];
        let err = scanner.scan(&long, &limits, LineEndings::CrlfOnly, no_check).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RequestLineTooLong);
    }

    #[test]
    fn bare_lf_is_refused_or_accepted_by_mode() {
        let head = b"HTTP/1.1 200 OK\nA: b\n\n";
        let mut strict = HeadScanner::default();
        let err =
            strict.scan(head, &Limits::default(), LineEndings::CrlfOnly, no_check).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LineEnding);
        let mut lenient = HeadScanner::default();
        let end = lenient.scan(head, &Limits::default(), LineEndings::AllowBareLf, no_check);
        assert_eq!(end, Ok(Some(head.len())));
    }

    /// Whole, the scanner used to answer a bare LF's `LineEnding` for a line whose earlier
    /// byte httparse refuses, while a delivery of one byte per read heard httparse's error
    /// first: the kind depended on the split.
    #[test]
    fn a_bad_byte_before_a_bare_lf_is_the_verdict_whole_or_dribbled() {
        let check = crate::decode::check_request_line;
        for (head, kind) in [
            (&b"G;T / HTTP/1.1\nHost: a\r\n\r\n"[..], ErrorKind::Method),
            (b"GET / HTTP/1.1\r\nX;y: v\nHost: a\r\n\r\n", ErrorKind::HeaderName),
            (b"GET /\nHTTP/1.1\r\n\r\n", ErrorKind::LineEnding),
        ] {
            let whole =
                HeadScanner::default().scan(head, &Limits::default(), LineEndings::CrlfOnly, check);
            assert_eq!(whole.map_err(Error::kind), Err(kind), "{}", head.escape_ascii());
            let mut scanner = HeadScanner::default();
            let dribbled = (1..=head.len())
                .find_map(|end| {
                    scanner
                        .scan(&head[..end], &Limits::default(), LineEndings::CrlfOnly, check)
                        .err()
                })
                .map(Error::kind);
            assert_eq!(dribbled, Some(kind), "{}", head.escape_ascii());
        }
    }

    #[test]
    fn a_large_head_dribbled_one_byte_per_call_is_found() {
        // 60 KiB of fields, one byte per call. The scanner starts each call where the last
        // one stopped; the benchmark `dribbled_head` measures that this stays linear.
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() < 60 * 1024 {
            head.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let limits = Limits::default().max_headers(10_000);
        assert_eq!(scan_dribbled(&head, &limits), Ok(Some(head.len())));
    }
}
