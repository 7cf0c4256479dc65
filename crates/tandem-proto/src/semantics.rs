//! The meaning of the fields that frame a message: RFC 9110 and 9112 rules, applied to
//! values httparse has already checked for forbidden bytes.

use crate::error::{Error, ErrorKind};

/// Parses `Content-Length`: one or more ASCII digits and nothing else (RFC 9110 §8.6).
///
/// Signs, spaces, lists (`5, 5`), hex and non-ASCII digits are refused; leading zeros are
/// fine (`010` is ten). Overflow is checked, so `1000000000000000000000` is an error.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() {
        return Err(ErrorKind::ContentLength.into());
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(ErrorKind::ContentLength.into());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ErrorKind::ContentLength)?;
    }
    Ok(n)
}

/// Transfer codings Tandem recognises before a final `chunked` (RFC 9110 §8.4.1 and the
/// IANA registry). Anything else is refused, as is `identity`, which RFC 9112 removed.
const KNOWN_CODINGS: [&str; 7] =
    ["gzip", "x-gzip", "deflate", "compress", "x-compress", "br", "zstd"];

/// What a `Transfer-Encoding` list says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TransferCoding {
    /// Whether `chunked` is the final coding.
    pub(crate) chunked: bool,
}

/// Parses a `Transfer-Encoding` value (RFC 9112 §6.1): a comma-separated list of codings,
/// empty elements allowed (RFC 9110 §5.6.1). A coding may carry parameters after `;`.
///
/// `strict` (requests) refuses unknown codings, a list with no coding, `chunked` anywhere
/// but last, and `chunked` twice. The final element must be the bare token `chunked`: no
/// empty element after it (`chunked,`) and no parameter on it (`chunked;q=1`, which chunked
/// does not define). Leading empty elements (`,chunked`) stay legal, as llhttp and aiohttp
/// read them. Responses are read leniently (`strict = false`): a list not ending in
/// `chunked` means the body runs until close, as RFC 9112 §6.3 says.
pub(crate) fn parse_transfer_encoding(value: &[u8], strict: bool) -> Result<TransferCoding, Error> {
    let value = std::str::from_utf8(value).map_err(|_| ErrorKind::TransferEncoding)?;
    let mut codings = 0usize;
    let mut chunked_at = None;
    // A request's list is read as llhttp, h11 and aiohttp's Python parser read it: the last
    // element, trimmed, is `chunked` or the body is not chunked. Reading `chunked,` or
    // `chunked;x` as chunked where they do not would frame the same bytes two ways.
    let mut last_is_bare_chunked = false;
    for element in value.split(',') {
        let element = element.trim_matches([' ', '\t']);
        last_is_bare_chunked = element.eq_ignore_ascii_case("chunked");
        if element.is_empty() {
            continue;
        }
        let name = element.split(';').next().unwrap_or_default().trim_end_matches([' ', '\t']);
        if !is_token(name.as_bytes()) {
            return Err(ErrorKind::TransferEncoding.into());
        }
        if name.eq_ignore_ascii_case("chunked") {
            if chunked_at.is_some() && strict {
                return Err(ErrorKind::TransferEncoding.into());
            }
            chunked_at = Some(codings);
        } else if strict && !KNOWN_CODINGS.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            return Err(ErrorKind::TransferEncoding.into());
        }
        codings += 1;
    }
    let chunked = chunked_at.is_some_and(|at| at + 1 == codings);
    if strict && !last_is_bare_chunked {
        return Err(ErrorKind::TransferEncoding.into());
    }
    Ok(TransferCoding { chunked })
}

/// The options a `Connection` field can set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade: bool,
}

impl ConnectionOptions {
    /// Adds the tokens of one `Connection` field (a comma-separated list, any case).
    pub(crate) fn add(&mut self, value: &[u8]) {
        // The values browsers and load generators send, without splitting a list.
        if crate::decode::fields::eq_lowercase(value, b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        if crate::decode::fields::eq_lowercase(value, b"close") {
            self.close = true;
            return;
        }
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            }
        }
    }

    /// RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
    pub(crate) fn keep_alive(self, http11: bool) -> bool {
        if self.close { false } else { http11 || self.keep_alive }
    }
}

/// `tchar` from RFC 9110 §5.6.2: digits, letters and ``!#$%&'*+-.^_`|~``.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Checks a `Host` value: `uri-host [ ":" port ]` (RFC 9112 §3.2), where the host is a
/// reg-name, an IPv4 address or a bracketed IP literal.
///
/// Whitespace, commas (`Host: a, b` is two hosts), `@`, `/`, `?` and `#` are refused, so a
/// host can never smuggle userinfo or a path past a router that trusts it. An empty value
/// is allowed, as RFC 9112 allows it for targets without an authority.
pub(crate) fn check_host(value: &[u8]) -> Result<(), Error> {
    if value.iter().all(|&b| HOST_BYTES[usize::from(b)]) {
        Ok(())
    } else {
        Err(ErrorKind::Host.into())
    }
}

/// The bytes of `uri-host [ ":" port ]`: unreserved, `%`, the sub-delims but `,`, and the
/// `:`, `[` and `]` of ports and IP literals. A table, because every request is checked.
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'%' | b'!'
            | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b';' | b'=' | b':' | b'[' | b']');
        b += 1;
    }
    table
};

/// Whether a byte may appear in the path of a request target, and in its query.
///
/// Tandem takes visible ASCII less the bytes RFC 3986 says must be percent-encoded and
/// that `http::Uri` refuses (`<`, `>`, and a backtick in the path; `"`, `<` and `>` in the
/// query), and less `#`: a fragment is never part of a request target. Raw UTF-8, spaces
/// and controls are refused, as llhttp does in strict mode.
const fn is_path_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'#' | b'<' | b'>' | b'`')
}

const fn is_query_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'#' | b'"' | b'<' | b'>')
}

const PATH: u8 = 1;
const QUERY: u8 = 2;

/// For each byte, whether it may appear in a path (`PATH`) and in a query (`QUERY`): one
/// table lookup per byte, as every request's target is checked.
const TARGET_BYTES: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (if is_path_byte(b as u8) { PATH } else { 0 })
            | (if is_query_byte(b as u8) { QUERY } else { 0 });
        b += 1;
    }
    table
};

/// Checks the bytes of a target, path bytes up to the first `?` and query bytes after it,
/// and returns where its query starts: the index of that `?`, or the target's length.
fn scan_target_text(target: &[u8]) -> Option<usize> {
    let path_end = target
        .iter()
        .position(|&b| b == b'?' || TARGET_BYTES[usize::from(b)] & PATH == 0)
        .unwrap_or(target.len());
    let query = &target[path_end..];
    if query.first().is_some_and(|&b| b != b'?') {
        return None;
    }
    query.iter().all(|&b| TARGET_BYTES[usize::from(b)] & QUERY != 0).then_some(path_end)
}

/// Checks a request target against its method (RFC 9112 §3.2): origin-form for most,
/// authority-form only and always for CONNECT, `*` only for OPTIONS, and absolute-form
/// with an `http` or `https` scheme. An authority with userinfo (`user:pass@host`) is
/// refused, as RFC 9110 §4.2.4 asks of recipients: http URIs must not carry credentials,
/// and a target that did would put them in every access log.
///
/// Returns where the target's query starts (the index of its `?`, or its length), found in
/// the same pass, so that the router's path needs no second search on every request.
#[expect(
    clippy::inline_always,
    reason = "the wire parser runs it on every request, and with `parse_parts` as a second \
              caller the compiler stopped inlining it there"
)]
#[inline(always)]
pub(crate) fn check_target(method: &http::Method, target: &[u8]) -> Result<usize, Error> {
    let query_at = scan_target_text(target).filter(|_| !target.is_empty());
    let Some(query_at) = query_at else { return Err(ErrorKind::Target.into()) };
    let no_userinfo = |authority: &http::uri::Authority| !authority.as_str().contains('@');
    let valid = if *method == http::Method::CONNECT {
        // authority-form: host ":" port, and nothing else.
        !target.contains(&b'/')
            && http::uri::Authority::try_from(target)
                .is_ok_and(|a| a.port_u16().is_some() && no_userinfo(&a))
    } else if target[0] == b'/' {
        // origin-form. `//x` is a legal absolute-path (RFC 9110 §4.1); it reaches the
        // router as a path, never as an authority (see `RequestHead::uri`).
        true
    } else if target == b"*" {
        *method == http::Method::OPTIONS
    } else {
        http::Uri::try_from(target).is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some_and(no_userinfo)
        })
    };
    if valid { Ok(query_at) } else { Err(ErrorKind::Target.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length() {
        assert_eq!(parse_content_length(b"0"), Ok(0));
        assert_eq!(parse_content_length(b"010"), Ok(10));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [&b""[..], b"+5", b"-0", b"0x5", b"1Z", b"4 2", b"5, 5", b"18446744073709551616"]
        {
            assert!(parse_content_length(bad).is_err(), "{bad:?}");
        }
        assert!(parse_content_length("¹".as_bytes()).is_err());
    }

    #[test]
    fn transfer_encoding_strict() {
        let ok = |v: &str| parse_transfer_encoding(v.as_bytes(), true);
        assert_eq!(ok("chunked"), Ok(TransferCoding { chunked: true }));
        assert_eq!(ok("CHUNKED"), Ok(TransferCoding { chunked: true }));
        assert_eq!(ok(",chunked"), Ok(TransferCoding { chunked: true }));
        assert_eq!(ok("gzip, chunked"), Ok(TransferCoding { chunked: true }));
        for bad in [
            "",
            ", ,",
            "chunked, gzip",
            "chunked, chunked",
            "pigeons",
            "chunked123",
            "identity",
            "\"chunked\"",
            "not, chunked",
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
    }

    /// A request's list must end in the bare token `chunked`: a trailing empty element or
    /// a parameter on it is where llhttp, h11 and aiohttp's Python parser all stop reading
    /// `chunked` (they refuse, or a front end ignoring the field reads no body), so
    /// accepting either as chunked is a second reading of the same bytes.
    #[test]
    fn transfer_encoding_strict_ends_in_a_bare_chunked() {
        let ok = |v: &str| parse_transfer_encoding(v.as_bytes(), true);
        for bad in [
            "chunked,",
            "chunked ,",
            "chunked, ",
            "chunked,\t",
            "gzip, chunked,",
            "chunked;q=1",
            "chunked;",
            "chunked ;",
            "chunked; a=b",
            "gzip, chunked;x=1",
            "CHUNKED;x",
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
        for good in [", chunked", " , ,chunked", "gzip;q=1, chunked", "chunked ", "chunked\t"] {
            assert_eq!(ok(good), Ok(TransferCoding { chunked: true }), "{good:?}");
        }
    }

    #[test]
    fn transfer_encoding_lenient_for_responses() {
        let lenient = |v: &str| parse_transfer_encoding(v.as_bytes(), false).unwrap().chunked;
        assert!(lenient("chunked"));
        assert!(!lenient("gzip"));
        assert!(!lenient("chunked, gzip"));
    }

    #[test]
    fn connection_options() {
        let mut opts = ConnectionOptions::default();
        opts.add(b"Keep-Alive, Upgrade");
        assert!(opts.keep_alive && opts.upgrade && !opts.close);
        assert!(opts.keep_alive(false));
        opts.add(b"close");
        assert!(!opts.keep_alive(true));
    }

    #[test]
    fn targets() {
        use http::Method;
        assert!(check_target(&Method::GET, b"/a/b?c=d&e").is_ok());
        assert!(check_target(&Method::GET, b"//evil.example/").is_ok());
        assert!(check_target(&Method::GET, b"http://h.example/x").is_ok());
        assert!(check_target(&Method::OPTIONS, b"*").is_ok());
        assert!(check_target(&Method::CONNECT, b"h.example:443").is_ok());
        for (method, bad) in [
            (Method::GET, &b"!"[..]),
            (Method::GET, b"*"),
            (Method::GET, b"/a#frag"),
            (Method::GET, "/caf\u{e9}".as_bytes()),
            (Method::GET, b"ftp://h/x"),
            (Method::CONNECT, b"/"),
            (Method::CONNECT, b"h.example"),
            (Method::GET, b"http://user:secret@h.example/x"),
            (Method::GET, b"http://user@h.example/x"),
            (Method::CONNECT, b"user:secret@h.example:443"),
        ] {
            assert!(check_target(&method, bad).is_err(), "{method} {bad:?}");
        }
    }

    #[test]
    fn every_target_byte_is_one_uri_accepts() {
        for b in (0u8..=255).filter(|&b| is_path_byte(b) && b != b'?') {
            let target = [b'/', b];
            assert!(http::uri::PathAndQuery::try_from(&target[..]).is_ok(), "path {b:#x}");
        }
        for b in (0u8..=255).filter(|&b| is_query_byte(b)) {
            let target = [b'/', b'?', b];
            assert!(http::uri::PathAndQuery::try_from(&target[..]).is_ok(), "query {b:#x}");
        }
    }
}
