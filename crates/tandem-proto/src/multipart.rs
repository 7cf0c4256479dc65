//! The bytes of a `multipart/*` body, scanned for what a streaming parser leaves unbounded.
//!
//! multer (the parser Tandem's server and client read multipart bodies with) buffers a part's
//! header block until the blank line that ends it, and the preamble until the first
//! delimiter, with no bound of its own on either. [`MultipartScanner`] is fed the same bytes
//! before the parser, finds the delimiters, and refuses a header block or preamble over
//! [`MAX_PART_HEAD`] bytes (aiohttp CVE-2026-34516), whichever way the body is split.
//!
//! It also refuses a part whose head repeats a field read as one value
//! ([`SINGLE_PART_FIELDS`]): multer keeps the last copy of a field and drops the others, where
//! aiohttp reads the first, so a proxy or an upload filter in front could check another
//! `Content-Disposition` than the reader gets.
//!
//! The scan lives here, without IO, so the server's uploads and the client's responses are
//! held to the same bounds by one piece of code.

use memchr::memmem;

use crate::{Error, ErrorKind};

/// The most bytes a part's header block (or the preamble before the first delimiter) may
/// hold: two maximal header lines of aiohttp's 8190 bytes.
pub const MAX_PART_HEAD: usize = 16 * 1024;

/// The fields of a part's head that are read as one value each: given twice, a part is
/// refused.
const SINGLE_PART_FIELDS: [&[u8]; 5] = [
    b"content-disposition",
    b"content-type",
    b"content-length",
    b"content-transfer-encoding",
    b"content-encoding",
];

/// Where the scan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// Before the first delimiter, which is `--boundary` anywhere.
    Preamble,
    /// In a part's body, looking for `\r\n--boundary`.
    Body,
    /// Just after a delimiter: `--` closes the body, anything else starts a header block.
    AfterDelimiter,
    /// In a header block, looking for the blank line that ends it.
    Head,
    /// After the close delimiter; the parser reads nothing more.
    Done,
}

/// Watches the bytes of a multipart body, fed in whatever pieces they arrive, for a header
/// block or preamble over [`MAX_PART_HEAD`] ([`ErrorKind::PartHeadTooLarge`]) and a part that
/// repeats a field read as one value ([`ErrorKind::DuplicatePartField`]).
///
/// ```
/// use tandem_proto::{ErrorKind, MAX_PART_HEAD, MultipartScanner};
///
/// let mut scanner = MultipartScanner::new("b");
/// scanner.scan(b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b")?;
/// let endless = vec![b'a'; MAX_PART_HEAD];
/// let err = scanner.scan(b"\r\nX: ").and_then(|()| scanner.scan(&endless)).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::PartHeadTooLarge);
/// # Ok::<(), tandem_proto::Error>(())
/// ```
#[derive(Debug)]
pub struct MultipartScanner {
    /// `\r\n--boundary`; the first delimiter is the same without the leading CRLF.
    delimiter: Vec<u8>,
    scan: Scan,
    /// The last bytes of the previous chunk, so a pattern split across reads is found.
    carry: Vec<u8>,
    /// Bytes in the current header block or preamble so far.
    head_bytes: usize,
    /// The current header block's bytes (at most [`MAX_PART_HEAD`]), to check its fields
    /// when it ends.
    head: Vec<u8>,
}

impl MultipartScanner {
    /// A scanner for a body split by `boundary` (the `Content-Type`'s parameter, without
    /// the leading `--`).
    pub fn new(boundary: &str) -> Self {
        MultipartScanner {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            scan: Scan::Preamble,
            carry: Vec::new(),
            head_bytes: 0,
            head: Vec::new(),
        }
    }

    /// Checks the next piece of the body. After an error the body is to be abandoned: the
    /// scanner's state says nothing about what follows.
    pub fn scan(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.scan {
                Scan::Done => break,
                Scan::AfterDelimiter => {
                    self.carry.push(rest[0]);
                    rest = &rest[1..];
                    if self.carry == b"-" {
                        continue;
                    }
                    if self.carry == b"--" {
                        self.scan = Scan::Done;
                    } else {
                        // The one or two bytes read stay in `carry`: they may begin the
                        // CRLF CRLF that ends an empty header block.
                        self.scan = Scan::Head;
                        self.head_bytes = self.carry.len();
                        self.head.clear();
                        self.head.extend_from_slice(&self.carry);
                    }
                }
                scan => {
                    let pattern: &[u8] = match scan {
                        Scan::Preamble => &self.delimiter[2..],
                        Scan::Body => &self.delimiter,
                        _ => b"\r\n\r\n",
                    };
                    let bounded = scan != Scan::Body;
                    let found = find(&mut self.carry, rest, pattern);
                    if scan == Scan::Head {
                        self.head.extend_from_slice(&rest[..found.unwrap_or(rest.len())]);
                    }
                    if let Some(end) = found {
                        self.head_bytes += end;
                        rest = &rest[end..];
                        self.carry.clear();
                        self.scan =
                            if scan == Scan::Head { Scan::Body } else { Scan::AfterDelimiter };
                    } else {
                        self.head_bytes += rest.len();
                        rest = &[];
                    }
                    if bounded && self.head_bytes > MAX_PART_HEAD {
                        return Err(Error::new(ErrorKind::PartHeadTooLarge));
                    }
                    if scan == Scan::Head && self.scan != scan && repeats_a_single_field(&self.head)
                    {
                        return Err(Error::new(ErrorKind::DuplicatePartField));
                    }
                    if self.scan != scan {
                        self.head_bytes = 0;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a part's header block names one of [`SINGLE_PART_FIELDS`] twice (in any case).
fn repeats_a_single_field(head: &[u8]) -> bool {
    let mut seen = [false; SINGLE_PART_FIELDS.len()];
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let name = line[..colon].trim_ascii();
        if let Some(i) = SINGLE_PART_FIELDS.iter().position(|f| name.eq_ignore_ascii_case(f)) {
            if seen[i] {
                return true;
            }
            seen[i] = true;
        }
    }
    false
}

/// Finds `pattern` in what was carried over from earlier chunks followed by `chunk`, and
/// returns the index in `chunk` just past the match. Without a match, `carry` keeps the last
/// `pattern.len() - 1` bytes seen, the most a later match can start with.
fn find(carry: &mut Vec<u8>, chunk: &[u8], pattern: &[u8]) -> Option<usize> {
    if !carry.is_empty() {
        // `carry` is shorter than the pattern, so a match here ends inside `chunk`.
        let take = chunk.len().min(pattern.len() - 1);
        let mut joined = Vec::with_capacity(carry.len() + take);
        joined.extend_from_slice(carry);
        joined.extend_from_slice(&chunk[..take]);
        if let Some(at) = memmem::find(&joined, pattern) {
            return Some(at + pattern.len() - carry.len());
        }
    }
    if let Some(at) = memmem::find(chunk, pattern) {
        return Some(at + pattern.len());
    }
    let keep = pattern.len() - 1;
    if chunk.len() >= keep {
        carry.clear();
        carry.extend_from_slice(&chunk[chunk.len() - keep..]);
    } else {
        carry.extend_from_slice(chunk);
        let excess = carry.len().saturating_sub(keep);
        carry.drain(..excess);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` to a scanner in pieces of `step` bytes.
    fn run(body: &[u8], step: usize) -> Result<Scan, ErrorKind> {
        let mut scanner = MultipartScanner::new("XyZ");
        for piece in body.chunks(step) {
            scanner.scan(piece).map_err(Error::kind)?;
        }
        Ok(scanner.scan)
    }

    #[test]
    fn follows_parts_split_anywhere() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--XyZ\r\n\r\n\r\n--XyZ--\r\nepilogue";
        for step in 1..body.len() {
            assert_eq!(run(body, step), Ok(Scan::Done), "step {step}");
        }
    }

    #[test]
    fn bounds_header_blocks_and_preamble_not_bodies() {
        let mut long_head = b"--XyZ\r\nX: ".to_vec();
        long_head.extend(std::iter::repeat_n(b'a', MAX_PART_HEAD));
        assert_eq!(run(&long_head, 1000), Err(ErrorKind::PartHeadTooLarge));
        assert_eq!(run(&vec![b'p'; MAX_PART_HEAD + 1], 1000), Err(ErrorKind::PartHeadTooLarge));
        let mut long_body = b"--XyZ\r\n\r\n".to_vec();
        long_body.extend(std::iter::repeat_n(b'a', 10 * MAX_PART_HEAD));
        assert_eq!(run(&long_body, 1000), Ok(Scan::Body));
    }

    #[test]
    fn refuses_a_field_read_as_one_given_twice_split_anywhere() {
        let twice = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: 1\r\n\
                      content-DISPOSITION: form-data; name=b\r\n\r\nv\r\n--XyZ--\r\n";
        let other_fields = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: 1\r\nX: 2\r\n\
                             \r\nContent-Disposition: in the body\r\n--XyZ\r\n\
                             Content-Disposition: form-data; name=b\r\n\r\n\r\n--XyZ--";
        for step in 1..twice.len() {
            assert_eq!(run(twice, step), Err(ErrorKind::DuplicatePartField), "step {step}");
            assert_eq!(run(other_fields, step), Ok(Scan::Done), "step {step}");
        }
    }
}
