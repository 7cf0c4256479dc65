//! How a response is read: the head parser's limits (aiohttp's `max_line_size`,
//! `max_field_size`, `max_headers`) and the read buffer's size (`read_bufsize`), set on the
//! session and overridden per request, as aiohttp's `ClientSession(...)` and
//! `session.get(..., max_line_size=...)`.

use tandem_proto::{DEFAULT_MAX_HEAD_SIZE, Limits};

/// The most bytes one read of a response body asks for: 256 KiB, aiohttp 3.14's
/// `read_bufsize` default (`DEFAULT_CHUNK_SIZE`; its documentation still says 64 KiB).
///
/// A body of known length is read as much of the rest as this at a time; one of unknown
/// length in reads that start at 16 KiB and double while the body fills them, up to this. So
/// a large download takes a few reads a megabyte (curl reads about 100 KiB at a time) while
/// a small body reserves no more than it needs. `readline` and `readuntil` are bounded by
/// twice this, aiohttp's high-water mark.
pub const DEFAULT_READ_BUFSIZE: usize = 256 * 1024;

/// The most interim (1xx) responses read before a final one: 32. Each is held to the head's
/// limits, and this bounds how many come, so a server cannot hold a request by sending them
/// without end (each within `sock_read`). RFC 9110 sets no number; real servers send one
/// `100 Continue` or a few `103 Early Hints`. Past it, a response error.
pub const DEFAULT_MAX_INTERIM_RESPONSES: usize = 32;

/// The first read of a body whose length is unknown (chunked, or until the close), and of
/// every response head.
pub(crate) const FIRST_READ: usize = 16 * 1024;

/// The limits one response is read with: the session's, with the request's overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadLimits {
    max_line_size: usize,
    max_field_size: usize,
    max_headers: usize,
    read_bufsize: usize,
    max_interim_responses: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        let head = Limits::default();
        ReadLimits {
            max_line_size: head.get_max_line_size(),
            max_field_size: head.get_max_field_size(),
            max_headers: head.get_max_headers(),
            read_bufsize: DEFAULT_READ_BUFSIZE,
            max_interim_responses: DEFAULT_MAX_INTERIM_RESPONSES,
        }
    }
}

/// A request's overrides of its session's [`ReadLimits`]; `None` keeps the session's.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadOverrides {
    pub(crate) max_line_size: Option<usize>,
    pub(crate) max_field_size: Option<usize>,
    pub(crate) max_headers: Option<usize>,
    pub(crate) read_bufsize: Option<usize>,
}

impl ReadLimits {
    pub(crate) fn set_max_line_size(&mut self, bytes: usize) {
        self.max_line_size = bytes;
    }

    pub(crate) fn set_max_field_size(&mut self, bytes: usize) {
        self.max_field_size = bytes;
    }

    pub(crate) fn set_max_headers(&mut self, count: usize) {
        self.max_headers = count;
    }

    pub(crate) fn set_max_interim_responses(&mut self, count: usize) {
        self.max_interim_responses = count;
    }

    /// At least one byte: a read into no room would look like the connection's end.
    pub(crate) fn set_read_bufsize(&mut self, bytes: usize) {
        self.read_bufsize = bytes.max(1);
    }

    /// These limits with a request's overrides applied.
    pub(crate) fn with(mut self, overrides: &ReadOverrides) -> Self {
        let o = overrides;
        if let Some(bytes) = o.max_line_size {
            self.set_max_line_size(bytes);
        }
        if let Some(bytes) = o.max_field_size {
            self.set_max_field_size(bytes);
        }
        if let Some(count) = o.max_headers {
            self.set_max_headers(count);
        }
        if let Some(bytes) = o.read_bufsize {
            self.set_read_bufsize(bytes);
        }
        self
    }

    /// The response head parser's limits. The whole head stays within tandem-proto's 64 KiB
    /// unless the line and field limits were raised past it: it always has room for one
    /// status line and one field of the sizes allowed, so raising `max_field_size` for one
    /// huge field works as it does in aiohttp, which has no limit on the whole head.
    pub(crate) fn head(&self) -> Limits {
        let head_size = DEFAULT_MAX_HEAD_SIZE
            .max(self.max_line_size.saturating_add(self.max_field_size).saturating_add(4));
        Limits::default()
            .max_line_size(self.max_line_size)
            .max_field_size(self.max_field_size)
            .max_headers(self.max_headers)
            .max_head_size(head_size)
    }

    /// The most interim (1xx) responses read before the final one.
    pub(crate) fn max_interim_responses(&self) -> usize {
        self.max_interim_responses
    }

    /// The most one read of a body asks for.
    pub(crate) fn read_bufsize(&self) -> usize {
        self.read_bufsize
    }

    /// The longest line `readline` and `readuntil` return: twice `read_bufsize`, aiohttp's
    /// high-water mark, past which its `readuntil` raises `LineTooLong`.
    pub(crate) fn max_readline(&self) -> usize {
        self.read_bufsize.saturating_mul(2)
    }
}

/// The size of the next read of a body: as much of the rest as `read_bufsize` when its
/// length is known; when it is not, `last` (the last read's size, 0 before the first)
/// doubled if that read filled it, from [`FIRST_READ`] up to `read_bufsize`. A body that
/// keeps coming faster than it is read gets larger reads, and a trickle stays small.
pub(crate) fn next_read(remaining: Option<u64>, last: usize, filled: bool, cap: usize) -> usize {
    match remaining {
        Some(left) => usize::try_from(left).unwrap_or(usize::MAX).clamp(1, cap),
        None if last == 0 => FIRST_READ.min(cap),
        None if filled => last.saturating_mul(2).min(cap),
        None => last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_proto::DEFAULT_MAX_LINE_SIZE;

    #[test]
    fn overrides_apply_over_the_session() {
        let mut session = ReadLimits::default();
        session.set_max_field_size(100);
        let request = ReadOverrides { max_headers: Some(3), ..ReadOverrides::default() };
        let head = session.with(&request).head();
        assert_eq!(head.get_max_field_size(), 100);
        assert_eq!(head.get_max_headers(), 3);
        assert_eq!(head.get_max_line_size(), DEFAULT_MAX_LINE_SIZE);
        assert_eq!(head.get_max_head_size(), DEFAULT_MAX_HEAD_SIZE);
        let zero = ReadOverrides { read_bufsize: Some(0), ..ReadOverrides::default() };
        assert_eq!(session.with(&zero).read_bufsize(), 1);
    }

    #[test]
    fn a_raised_field_limit_raises_the_head_limit() {
        let mut limits = ReadLimits::default();
        limits.set_max_field_size(1 << 20);
        assert!(limits.head().get_max_head_size() > 1 << 20);
    }

    #[test]
    fn reads_grow_with_the_body() {
        let cap = DEFAULT_READ_BUFSIZE;
        assert_eq!(next_read(Some(10), 0, false, cap), 10);
        assert_eq!(next_read(Some(1 << 30), 0, false, cap), cap);
        assert_eq!(next_read(Some(1 << 30), 0, false, 1000), 1000);
        assert_eq!(next_read(None, 0, false, cap), FIRST_READ);
        assert_eq!(next_read(None, FIRST_READ, true, cap), 2 * FIRST_READ);
        assert_eq!(next_read(None, FIRST_READ, false, cap), FIRST_READ);
        assert_eq!(next_read(None, cap, true, cap), cap);
        assert_eq!(next_read(None, 0, false, 100), 100);
    }
}
