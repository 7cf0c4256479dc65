//! The request-head parser: aiohttp-strict.

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::{Method, Version};

use super::{
    check_lines, check_request_line,
    fields::{FramingFields, Role, field_pairs, parse_fields},
    httparse_error,
    scan::{HeadScanner, LineEndings},
    take_head,
};
use crate::{
    BodyFraming, Limits,
    error::{Error, ErrorKind},
    head::{FieldSpan, Fields, Flags, RequestHead, Span},
    limits::field_line_len,
    semantics::check_target,
};

/// Header storage on the stack for heads within the default count limit; larger limits
/// allocate per head.
pub(super) const STACK_HEADERS: usize = crate::limits::DEFAULT_MAX_HEADERS;

/// Parses request heads from a connection's read buffer, push-style.
///
/// Feed it the buffer after every read. It returns `Ok(None)` while the head is incomplete
/// ("need more"), the head once it is complete (the head's bytes are split off the front of
/// the buffer, leaving any body or pipelined request behind), or an error. After an error
/// the connection must answer [`Error::status`] and close: the parser's place in the byte
/// stream is lost, and nothing after a bad message may be read as a request.
///
/// ```
/// use bytes::BytesMut;
/// use tandem_proto::{BodyFraming, RequestParser};
///
/// let mut parser = RequestParser::new();
/// let mut buf = BytesMut::from(&b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Len"[..]);
/// assert!(parser.parse(&mut buf).unwrap().is_none());
/// buf.extend_from_slice(b"gth: 5\r\n\r\nhello");
/// let head = parser.parse(&mut buf).unwrap().unwrap();
/// assert_eq!(head.path(), "/echo");
/// assert_eq!(head.framing(), BodyFraming::Length(5));
/// assert_eq!(&buf[..], b"hello");
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestParser {
    limits: Limits,
    scanner: HeadScanner,
}

impl RequestParser {
    /// A parser with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        RequestParser { limits, scanner: HeadScanner::default() }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses the head at the front of `buf`, if it has all arrived.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, Error> {
        // RFC 9112 §2.2: a server SHOULD ignore empty lines received before a request line
        // (some clients send a CRLF after a POST body).
        if self.scanner.at_start_line() {
            while buf.starts_with(b"\r\n") {
                buf.advance(2);
                self.scanner = HeadScanner::default();
            }
        }
        let limits = &self.limits;
        let head = take_head(
            &mut self.scanner,
            buf,
            limits,
            LineEndings::CrlfOnly,
            check_request_line,
            |bytes| parse_head(bytes, limits),
        )?;
        Ok(head.map(|(raw, parsed)| {
            let Parsed { method, version, target, query_at, spans, framing, flags } = parsed;
            let fields = Fields::new(raw, spans);
            RequestHead { method, version, target, query_at, fields, framing, flags }
        }))
    }

    /// Checks a head that did not arrive as HTTP/1.1 bytes (an HTTP/2 stream's, or one a
    /// tower service or test built) by the same rules and limits as one that did, and
    /// returns it as a [`RequestHead`], read as the same head written out as HTTP/1.1 would
    /// be. Only the version is kept as given, so an HTTP/2 request says `HTTP/2.0`.
    ///
    /// `Host` comes from the URI's authority when the fields have none (as HTTP/2's
    /// `:authority` does); a request with neither is refused, as on the wire, and so is an
    /// HTTP/2 or HTTP/3 one whose `Host` names another authority than its URI's. The body's
    /// framing is read from the fields, and is [`BodyFraming::Empty`] when they declare none.
    ///
    /// ```
    /// use tandem_proto::RequestParser;
    ///
    /// let (parts, ()) = http::Request::post("http://example.test/items?page=2")
    ///     .header("content-length", "5")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let head = RequestParser::new().parse_parts(&parts).unwrap();
    /// assert_eq!((head.path(), head.query()), ("/items", Some("page=2")));
    /// assert_eq!(head.fields().get("host"), Some(&b"example.test"[..]));
    ///
    /// let (bad, ()) = http::Request::get("/").body(()).unwrap().into_parts();
    /// assert!(RequestParser::new().parse_parts(&bad).is_err(), "no Host");
    /// ```
    pub fn parse_parts(&self, parts: &http::request::Parts) -> Result<RequestHead, Error> {
        let limits = &self.limits;
        let method = &parts.method;
        let target = if *method == http::Method::CONNECT {
            parts.uri.authority().map_or("", |a| a.as_str())
        } else {
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        };
        // The request line as HTTP/1.1 would carry it: method SP target SP "HTTP/1.1".
        if method.as_str().len() + target.len() + 10 > limits.get_max_line_size() {
            return Err(ErrorKind::RequestLineTooLong.into());
        }
        let query_at = check_target(method, target.as_bytes())?;
        // Over HTTP/2 and 3 a `Host` that names another authority than the target's makes
        // the request malformed (RFC 9113 8.3.1): whatever vetted the authority in front (a
        // proxy, the TLS name) would otherwise vouch for a host the app never sees.
        let given_host = parts.headers.get(http::header::HOST);
        if matches!(parts.version, http::Version::HTTP_2 | http::Version::HTTP_3)
            && let (Some(authority), Some(host)) = (parts.uri.authority(), given_host)
            && !same_authority(&parts.uri, authority, host.as_bytes())
        {
            return Err(ErrorKind::Host.into());
        }
        let host = parts
            .uri
            .authority()
            .filter(|_| given_host.is_none())
            .map(|authority| (&b"host"[..], authority.as_str().as_bytes()));
        let count = parts.headers.len() + usize::from(host.is_some());
        if count > limits.get_max_headers() {
            return Err(ErrorKind::TooManyHeaders.into());
        }
        let given = parts.headers.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
        let fields = host.into_iter().chain(given);

        // The fields are checked as httparse and `check_lines` would check them written
        // out, and copied into one buffer as a parsed head keeps them. `http` has made each
        // name a token and kept control characters out of values, as httparse would: only
        // the sizes are left to check (each line as written, whitespace and all), and the
        // whitespace around values to drop. `rendered` counts the head's bytes as HTTP/1.1:
        // the request line and the empty line with their CRLFs, then each field line.
        let mut rendered = method.as_str().len() + target.len() + 14;
        let mut raw = BytesMut::with_capacity(256);
        raw.extend_from_slice(target.as_bytes());
        let mut places = Vec::with_capacity(count);
        for (name, value) in fields {
            if limits.field_too_long(name, value) {
                return Err(ErrorKind::FieldTooLong.into());
            }
            rendered += field_line_len(name, value) + 2;
            let value = trim_ows(value);
            places.push((raw.len(), name.len(), value.len()));
            raw.extend_from_slice(name);
            raw.extend_from_slice(value);
        }
        if rendered > limits.head_cap() {
            return Err(ErrorKind::HeadTooLarge.into());
        }
        let raw = raw.freeze();
        let pairs = places
            .iter()
            .map(|&(at, name, value)| (&raw[at..at + name], &raw[at + name..at + name + value]));
        let (spans, found) = parse_fields(&raw, pairs, Role::Request)?;
        // HTTP/1.0 keeps its own rules, as from the wire (no `Host` required, no
        // `Transfer-Encoding` trusted); HTTP/2 and 3 are framed as HTTP/1.1 is.
        let version = match parts.version {
            http::Version::HTTP_10 | http::Version::HTTP_2 | http::Version::HTTP_3 => parts.version,
            _ => Version::HTTP_11,
        };
        let rules = if version == Version::HTTP_10 { version } else { Version::HTTP_11 };
        let (framing, flags) = frame(rules, found)?;
        let target = Span::of(&raw, &raw[..target.len()]);
        Ok(RequestHead {
            method: method.clone(),
            version,
            target,
            query_at: query_at as u32,
            fields: Fields::new(raw, spans),
            framing,
            flags,
        })
    }

    /// Tells the parser the connection has closed: bytes of a head left in `buf` are an
    /// [`ErrorKind::IncompleteHead`]; an empty buffer is a clean end.
    pub fn parse_eof(&self, buf: &BytesMut) -> Result<(), Error> {
        if buf.iter().all(|&b| b == b'\r' || b == b'\n') {
            Ok(())
        } else {
            Err(ErrorKind::IncompleteHead.into())
        }
    }
}

/// Runs httparse on `bytes` with header storage sized by the limits: on the stack within
/// the default count, allocated beyond it.
fn parse_head(bytes: &[u8], limits: &Limits) -> Result<Option<(usize, Parsed)>, Error> {
    let max = limits.get_max_headers();
    if max <= STACK_HEADERS {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_borrowed(bytes, &mut storage[..max], limits)
    } else {
        let mut storage = Vec::with_capacity(max);
        storage.resize_with(max, MaybeUninit::uninit);
        parse_borrowed(bytes, &mut storage, limits)
    }
}

/// A request head parsed from borrowed bytes, before the head takes ownership of them.
struct Parsed {
    method: Method,
    version: Version,
    target: Span,
    query_at: u32,
    spans: Vec<FieldSpan>,
    framing: BodyFraming,
    flags: Flags,
}

fn parse_borrowed<'b>(
    bytes: &'b [u8],
    storage: &mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
) -> Result<Option<(usize, Parsed)>, Error> {
    // httparse skips a leading bare LF as it skips a CRLF; only CRLFs may be skipped.
    if bytes.first() == Some(&b'\n') {
        return Err(ErrorKind::LineEnding.into());
    }
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, bytes, storage)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(httparse_error(e, bytes)),
    };
    check_lines(&bytes[..len], req.headers, limits, LineEndings::CrlfOnly)?;
    let method = req.method.ok_or(ErrorKind::Method)?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| ErrorKind::Method)?;
    let version = if req.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 };
    let target = req.path.ok_or(ErrorKind::Target)?;
    let query_at = check_target(&method, target.as_bytes())? as u32;
    let target = Span::of(bytes, target.as_bytes());

    let (spans, found) = parse_fields(bytes, field_pairs(req.headers), Role::Request)?;
    let (framing, flags) = frame(version, found)?;
    Ok(Some((len, Parsed { method, version, target, query_at, spans, framing, flags })))
}

/// The body's framing and the connection's flags, from a request's framing fields by the
/// rules of its version; an error for a combination that could smuggle a request.
#[expect(
    clippy::inline_always,
    reason = "the wire parser runs it on every request; with `parse_parts` as its second \
              caller the compiler kept it out of line"
)]
#[inline(always)]
fn frame(version: Version, found: FramingFields) -> Result<(BodyFraming, Flags), Error> {
    let http11 = version == Version::HTTP_11;
    let FramingFields { content_length, transfer_coding, connection, expect, host, upgrade } =
        found;
    if http11 && !host {
        return Err(ErrorKind::Host.into());
    }
    let framing = match (content_length, transfer_coding) {
        (Some(_), Some(_)) => return Err(ErrorKind::ContentLengthWithTransferEncoding.into()),
        // RFC 9112 §6.1: a server MUST NOT trust Transfer-Encoding from HTTP/1.0.
        (None, Some(_)) if !http11 => return Err(ErrorKind::TransferEncoding.into()),
        (None, Some(_)) => BodyFraming::Chunked,
        (Some(0) | None, None) => BodyFraming::Empty,
        (Some(n), None) => BodyFraming::Length(n),
    };
    // RFC 9110 §10.1.1: a server MAY ignore Expect on HTTP/1.0; any expectation other
    // than 100-continue on 1.1 is answered 417.
    let expect_continue = match expect {
        Some(_) if !http11 => false,
        Some(continue_) => continue_.then_some(true).ok_or(ErrorKind::Expectation)?,
        None => false,
    };
    let switch_asked = connection.upgrade && upgrade && http11;
    let flags = Flags {
        // An `Upgrade` field that is not an upgrade by the rules (no `Connection: upgrade`, or
        // HTTP/1.0) still closes the connection after its answer: a proxy in front that
        // tunnels on `Upgrade` alone may send the client's next bytes as a tunnel's, which
        // must never be parsed as requests here.
        keep_alive: connection.keep_alive(http11) && (switch_asked || !upgrade),
        expect_continue,
        upgrade: switch_asked,
    };
    Ok((framing, flags))
}

/// A field value without the whitespace around it, as httparse reads one.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// Whether a `Host` field names the authority of `uri`: the same text ignoring case, or the
/// same host and port once the scheme's default port is filled in on a side that leaves it
/// out (`h:443` and `h` over https are one origin, RFC 9110 4.2). Userinfo on either side
/// never matches: it is refused wherever a host is read.
fn same_authority(uri: &http::Uri, authority: &http::uri::Authority, host: &[u8]) -> bool {
    if authority.as_str().as_bytes().eq_ignore_ascii_case(host) {
        return true;
    }
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => return false,
    };
    let Ok(host) = http::uri::Authority::try_from(host) else {
        return false;
    };
    !authority.as_str().contains('@')
        && !host.as_str().contains('@')
        && authority.host().eq_ignore_ascii_case(host.host())
        && authority.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(request: http::request::Builder) -> http::request::Parts {
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn an_http2_host_must_name_the_authority_up_to_its_default_port() {
        let parser = RequestParser::new();
        let h2 = |uri: &str, host: &str| {
            parts(http::Request::get(uri).version(http::Version::HTTP_2).header("host", host))
        };
        for (uri, host) in [
            ("https://h.test/", "H.test"),
            ("https://h.test/", "h.test:443"),
            ("https://h.test:443/", "h.test"),
            ("http://h.test/", "h.test:80"),
            ("http://[::1]:80/", "[::1]"),
        ] {
            assert!(parser.parse_parts(&h2(uri, host)).is_ok(), "{uri} with Host {host}");
        }
        for (uri, host) in [
            ("https://h.test/", "other.test"),
            ("https://h.test/", "h.test:80"),
            ("http://h.test/", "h.test:443"),
            ("https://h.test/", "u@h.test"),
            ("https://h.test/", "h.test:443:1"),
        ] {
            assert!(parser.parse_parts(&h2(uri, host)).is_err(), "{uri} with Host {host}");
        }
    }

    #[test]
    fn parts_obey_the_wire_rules() {
        let parser = RequestParser::new();
        let refused = [
            parts(
                http::Request::post("http://h.test/")
                    .header("content-length", "1")
                    .header("content-length", "2"),
            ),
            parts(
                http::Request::post("http://h.test/")
                    .header("content-length", "1")
                    .header("transfer-encoding", "chunked"),
            ),
            parts(http::Request::get("http://h.test/").header("host", "a").header("host", "b")),
            parts(http::Request::get("http://h.test/").header("x", "a".repeat(9000))),
        ];
        for parts in refused {
            assert!(parser.parse_parts(&parts).is_err(), "{parts:?}");
        }
    }

    #[test]
    fn parts_keep_their_meaning() {
        let parser = RequestParser::new();
        let mut h2 = parts(http::Request::get("https://h.test/a?b=c").header("x-a", "1"));
        h2.version = Version::HTTP_2;
        let head = parser.parse_parts(&h2).unwrap();
        assert_eq!(head.version(), Version::HTTP_2);
        assert_eq!(head.target(), "/a?b=c");
        assert_eq!(head.framing(), BodyFraming::Empty);
        assert_eq!(head.fields().get("x-a"), Some(&b"1"[..]));

        let connect = parts(http::Request::connect("h.test:443"));
        assert_eq!(parser.parse_parts(&connect).unwrap().target(), "h.test:443");

        let chunked = parts(
            http::Request::post("/up")
                .header("host", "h.test")
                .header("transfer-encoding", "chunked"),
        );
        assert_eq!(parser.parse_parts(&chunked).unwrap().framing(), BodyFraming::Chunked);
    }

    /// An `Upgrade` field that does not make an upgrade (no `Connection: upgrade`, or on
    /// HTTP/1.0) was read as nothing, so the connection stayed open behind a proxy that may
    /// tunnel on `Upgrade` alone.
    #[test]
    fn an_upgrade_field_that_is_no_upgrade_still_ends_the_connection() {
        let head = |bytes: &[u8]| {
            let mut buf = BytesMut::from(bytes);
            let head = RequestParser::new().parse(&mut buf).unwrap().unwrap();
            (head.keep_alive(), head.upgrade().is_some())
        };
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n"),
            (false, false)
        );
        assert_eq!(
            head(b"GET / HTTP/1.0\r\nConnection: keep-alive, upgrade\r\nUpgrade: h2c\r\n\r\n"),
            (false, false)
        );
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
            (true, true),
            "an upgrade proper: the server decides, by switching or not"
        );
        assert_eq!(head(b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: \r\n\r\n"), (true, false));
        assert_eq!(head(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"), (true, false));
    }

    #[test]
    fn http10_parts_keep_http10_rules() {
        let parser = RequestParser::new();
        let old = |request: http::request::Builder| parts(request.version(Version::HTTP_10));
        let head = parser.parse_parts(&old(http::Request::get("/a"))).unwrap();
        assert_eq!((head.version(), head.target()), (Version::HTTP_10, "/a"), "no Host needed");
        let chunked = old(http::Request::post("/up").header("transfer-encoding", "chunked"));
        assert!(parser.parse_parts(&chunked).is_err(), "Transfer-Encoding is not trusted");
        assert!(parser.parse_parts(&parts(http::Request::get("/a"))).is_err(), "1.1 needs Host");
    }

    /// The head `parse_parts` reads, parsed from its HTTP/1.1 rendering: what it must
    /// agree with, field for field and error for error.
    fn parse_rendered(
        parser: &RequestParser,
        parts: &http::request::Parts,
    ) -> Result<RequestHead, Error> {
        let target = if parts.method == http::Method::CONNECT {
            parts.uri.authority().map_or("", |a| a.as_str())
        } else {
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        };
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(format!("{} {target} HTTP/1.1\r\n", parts.method).as_bytes());
        if let Some(authority) = parts.uri.authority()
            && !parts.headers.contains_key(http::header::HOST)
        {
            bytes.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
        }
        for (name, value) in &parts.headers {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        let mut fresh = RequestParser::with_limits(parser.limits);
        fresh.parse(&mut bytes)?.ok_or(ErrorKind::IncompleteHead.into())
    }

    #[test]
    fn parts_read_as_their_http11_rendering_would() {
        let tight = Limits::default()
            .max_headers(4)
            .max_field_size(40)
            .max_line_size(60)
            .max_head_size(120);
        let cases = [
            parts(http::Request::get("http://h.test/a?b=c").header("x-a", "1")),
            parts(http::Request::post("/p").header("host", "h").header("content-length", " 7 ")),
            parts(http::Request::post("/p").header("host", "h").header("content-length", "7, 7")),
            parts(http::Request::get("/p").header("host", "h").header("expect", "100-continue")),
            parts(http::Request::get("/p").header("host", "h").header("expect", "202-accepted")),
            parts(http::Request::get("/p").header("host", "h").header("connection", "close")),
            parts(http::Request::get("/p").header("host", "h").header("transfer-encoding", "gzip")),
            parts(http::Request::get("/p").header("host", "bad host")),
            parts(http::Request::get("/p").header("x-empty", "")),
            parts(http::Request::get("/p").header("host", "h").header("x", "v".repeat(37))),
            parts(http::Request::get("/p").header("host", "h").header("x", "v".repeat(38))),
            parts(
                http::Request::get("/p")
                    .header("host", "h")
                    .header("x", format!(" {} ", "v".repeat(35))),
            ),
            parts(
                http::Request::get("/p")
                    .header("host", "h")
                    .header("x", format!(" {} ", "v".repeat(36))),
            ),
            parts(http::Request::get(format!("/{}", "p".repeat(46))).header("host", "h")),
            parts(http::Request::get(format!("/{}", "p".repeat(47))).header("host", "h")),
            parts((1..=4).fold(http::Request::get("http://h.test/"), |r, i| {
                r.header(format!("x-{i}"), "1")
            })),
            parts((1..=3).fold(http::Request::get("http://h.test/"), |r, i| {
                r.header(format!("x-{i}"), "1")
            })),
            parts((1..=2).fold(http::Request::get("/").header("host", "h"), |r, i| {
                r.header(format!("x-{i}"), "v".repeat(30))
            })),
            parts((1..=3).fold(http::Request::get("/").header("host", "h"), |r, i| {
                r.header(format!("x-{i}"), "v".repeat(30))
            })),
            parts(http::Request::connect("h.test:443")),
            parts(http::Request::connect("h.test")),
            parts(http::Request::options("*").header("host", "h")),
            parts(
                http::Request::get("/a%20b")
                    .header("host", "h")
                    .header("cookie", "a=1")
                    .header("cookie", "b=2"),
            ),
        ];
        let mut refused = Vec::new();
        for limits in [Limits::default(), tight] {
            let parser = RequestParser::with_limits(limits);
            for case in &cases {
                let direct = parser.parse_parts(case);
                let rendered = parse_rendered(&parser, case);
                match (&direct, &rendered) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.target(), b.target(), "{case:?}");
                        assert_eq!(a.framing(), b.framing(), "{case:?}");
                        assert_eq!(
                            (a.keep_alive(), a.expect_continue(), a.upgrade()),
                            (b.keep_alive(), b.expect_continue(), b.upgrade()),
                            "{case:?}"
                        );
                        let fields = |h: &RequestHead| {
                            h.fields()
                                .iter()
                                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                                .collect::<Vec<_>>()
                        };
                        assert_eq!(fields(a), fields(b), "{case:?}");
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!(a.kind(), b.kind(), "{case:?}");
                        refused.push(a.kind());
                    }
                    _ => panic!("{case:?}: direct {direct:?}, rendered {rendered:?}"),
                }
            }
        }
        for limit in [
            ErrorKind::TooManyHeaders,
            ErrorKind::FieldTooLong,
            ErrorKind::RequestLineTooLong,
            ErrorKind::HeadTooLarge,
        ] {
            assert!(refused.contains(&limit), "no case reached {limit:?}: {refused:?}");
        }
    }
}
