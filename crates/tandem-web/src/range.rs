//! The `Range` field: aiohttp's `request.http_range`, and what file responses serve.

use crate::{HttpError, Request};

/// One byte range of a `Range: bytes=…` field, before it is resolved against the length
/// of what is sent: aiohttp's `http_range`, which reads one range only.
///
/// ```
/// use tandem_web::ByteRange;
///
/// assert_eq!(ByteRange::parse("bytes=0-4"), Some(ByteRange::Inclusive { first: 0, last: 4 }));
/// assert_eq!(ByteRange::parse("bytes=-3").and_then(|r| r.resolve(12)), Some(9..12));
/// // A list of ranges is refused, not answered piece by piece.
/// assert_eq!(ByteRange::parse("bytes=0-0,5-5"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, both positions included.
    Inclusive {
        /// The first byte's position.
        first: u64,
        /// The last byte's position (past the end means up to the end).
        last: u64,
    },
    /// `bytes=first-`: from `first` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` field's value: exactly aiohttp's grammar, `^bytes=(\d*)-(\d*)$`
    /// with ASCII digits, so one range only (a list, as in the "Apache Killer" request
    /// `0-0,0-0,...`, is refused rather than answered with a multipart body). `None` for
    /// anything else, or for a range whose last position comes before its first. A
    /// position of more digits than a `u64` holds means past the end, not an overflow.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.strip_prefix("bytes=")?;
        let (first, last) = spec.split_once('-')?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(first) || !digits(last) {
            return None;
        }
        let number = |s: &str| {
            s.bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => None,
            (true, false) => Some(ByteRange::Suffix(number(last))),
            (false, true) => Some(ByteRange::From(number(first))),
            (false, false) => {
                let (first, last) = (number(first), number(last));
                (first <= last).then_some(ByteRange::Inclusive { first, last })
            }
        }
    }

    /// The positions this range selects in `len` bytes, the end excluded; `None` if it
    /// selects none, which is a 416. Unlike aiohttp, `bytes=-0` selects none (a
    /// zero-length suffix is unsatisfiable, RFC 9110 §14.1.2) where aiohttp sends the
    /// whole file as a 206. A last position past the end is clamped to the end.
    pub fn resolve(self, len: u64) -> Option<std::ops::Range<u64>> {
        match self {
            ByteRange::Suffix(n) => {
                let n = n.min(len);
                (n > 0).then(|| len - n..len)
            }
            ByteRange::From(first) => (first < len).then_some(first..len),
            ByteRange::Inclusive { first, last } => {
                (first < len).then(|| first..last.min(len - 1) + 1)
            }
        }
    }
}

impl Request {
    /// The `Range` field as one [`ByteRange`]: aiohttp's `http_range`. `None` without one;
    /// a 416 error (for `?`) if it is not a single `bytes=` range.
    ///
    /// ```
    /// use tandem_web::{Application, ByteRange, Request};
    ///
    /// let app = Application::new().freeze().unwrap();
    /// let get = |range: &str| {
    ///     let req = http::Request::get("/video").header("host", "h").header("range", range);
    ///     Request::from_http(req.body(String::new()).unwrap(), &app).unwrap()
    /// };
    /// assert_eq!(get("bytes=100-").http_range().unwrap(), Some(ByteRange::From(100)));
    /// assert_eq!(get("lines=1-2").http_range().unwrap_err().status(), 416);
    /// ```
    pub fn http_range(&self) -> Result<Option<ByteRange>, HttpError> {
        let Some(value) = self.header("range") else { return Ok(None) };
        match ByteRange::parse(value) {
            Some(range) => Ok(Some(range)),
            None => Err(HttpError::new(http::StatusCode::RANGE_NOT_SATISFIABLE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    /// What a file of `size` bytes serves for `value`: inclusive positions, as
    /// `Content-Range` names them.
    fn served(value: &str, size: u64) -> Option<(u64, u64)> {
        ByteRange::parse(value)?.resolve(size).map(|r| (r.start, r.end - 1))
    }

    #[test]
    fn ranges() {
        assert_eq!(served("bytes=0-4", 12), Some((0, 4)));
        assert_eq!(served("bytes=6-", 12), Some((6, 11)));
        assert_eq!(served("bytes=-3", 12), Some((9, 11)));
        assert_eq!(served("bytes=-1000", 12), Some((0, 11)));
        assert_eq!(served("bytes=0-999", 12), Some((0, 11)));
        assert_eq!(served("bytes=0-18446744073709551616", 12), Some((0, 11)));
        assert_eq!(served("bytes=11-11", 12), Some((11, 11)));
        for refused in [
            "bytes=-0",
            "bytes=5-1",
            "bytes=12-",
            "bytes=99999999999-",
            "bytes=0-0,0-0",
            "bytes=0-,0-,0-",
            "bytes=¹-²",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes= 0-1",
            "bytes=0-1 ",
            "Bytes=0-1",
            "bytes=+1-2",
        ] {
            assert_eq!(served(refused, 12), None, "{refused}");
        }
        assert_eq!(served("bytes=0-", 0), None);
    }

    #[test]
    fn parsed_before_any_length() {
        assert_eq!(ByteRange::parse("bytes=5-1"), None, "last before first");
        assert_eq!(ByteRange::parse("bytes=-0"), Some(ByteRange::Suffix(0)));
        assert_eq!(ByteRange::parse("bytes=12-"), Some(ByteRange::From(12)));
        assert_eq!(
            ByteRange::parse("bytes=99999999999999999999-"),
            Some(ByteRange::From(u64::MAX))
        );
    }
}
