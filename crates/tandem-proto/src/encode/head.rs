//! Writing request and response heads.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version, header};

use super::{
    body::BodyEncoder,
    date::{DATE_LEN, with_date},
    is_field_text,
};
use crate::{
    BodyFraming,
    error::{Error, ErrorKind},
    semantics::{ConnectionOptions, is_token},
};

/// A response head to write with [`encode_response_head`]: [`ResponseParts::new`], then a
/// `with_*` method for each part that is not the default. Non-exhaustive, so that a new part
/// is not a breaking change.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ResponseParts<'a> {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase; `None` writes the canonical one (`OK`, `Not Found`, …).
    pub reason: Option<&'a str>,
    /// The version of the request being answered. An HTTP/1.0 peer gets an `HTTP/1.0`
    /// status line and never a chunked body: one is sent until close instead.
    pub version: Version,
    /// The fields to write, in map order. `Content-Length` and `Transfer-Encoding` must
    /// not be among them: the framing below writes them, so they can never disagree.
    pub headers: &'a HeaderMap,
    /// A `Content-Type` to write before `headers`, which must then not hold one: a response
    /// whose only field is its content type needs no map at all.
    pub content_type: Option<&'a str>,
    /// How the body will be delimited.
    pub framing: BodyFraming,
    /// Whether the connection stays open afterwards. `false` writes `Connection: close`
    /// (on HTTP/1.1); `true` on HTTP/1.0 writes `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Whether to write a `Date` field (unless `headers` has one).
    pub date: bool,
}

/// A request head to write with [`encode_request_head`]: [`RequestParts::new`], and
/// [`with_version`](RequestParts::with_version) for HTTP/1.0. Non-exhaustive, so that a new
/// part is not a breaking change.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RequestParts<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request target: a path and query, an absolute URL for a proxy, or an authority
    /// for CONNECT. Only visible ASCII is written; percent-encode anything else.
    pub target: &'a str,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: Version,
    /// The fields to write (including `Host`), without `Content-Length` or
    /// `Transfer-Encoding`: a map, or fields encoded once ([`EncodedFields`]).
    pub headers: RequestFields<'a>,
    /// How the body will be delimited: `Empty` writes no length, `Length(0)` writes
    /// `Content-Length: 0`. A request body cannot run until close.
    pub framing: BodyFraming,
}

impl<'a> ResponseParts<'a> {
    /// A `status` response with `headers` and the body `framing`, for an HTTP/1.1 peer: the
    /// canonical reason, no separate content type, keep-alive, and a `Date` field.
    #[inline]
    pub const fn new(status: StatusCode, headers: &'a HeaderMap, framing: BodyFraming) -> Self {
        ResponseParts {
            status,
            reason: None,
            version: Version::HTTP_11,
            headers,
            content_type: None,
            framing,
            keep_alive: true,
            date: true,
        }
    }

    /// Sets [`reason`](Self::reason).
    #[inline]
    #[must_use]
    pub const fn with_reason(mut self, reason: Option<&'a str>) -> Self {
        self.reason = reason;
        self
    }

    /// Sets [`version`](Self::version).
    #[inline]
    #[must_use]
    pub const fn with_version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Sets [`content_type`](Self::content_type).
    #[inline]
    #[must_use]
    pub const fn with_content_type(mut self, content_type: Option<&'a str>) -> Self {
        self.content_type = content_type;
        self
    }

    /// Sets [`keep_alive`](Self::keep_alive).
    #[inline]
    #[must_use]
    pub const fn with_keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets [`date`](Self::date).
    #[inline]
    #[must_use]
    pub const fn with_date(mut self, date: bool) -> Self {
        self.date = date;
        self
    }
}

impl<'a> RequestParts<'a> {
    /// A `method` request for `target` with `headers` and the body `framing`, as HTTP/1.1.
    #[inline]
    pub const fn new(
        method: &'a Method,
        target: &'a str,
        headers: RequestFields<'a>,
        framing: BodyFraming,
    ) -> Self {
        RequestParts { method, target, version: Version::HTTP_11, headers, framing }
    }

    /// Sets [`version`](Self::version).
    #[inline]
    #[must_use]
    pub const fn with_version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }
}

/// The fields of a request head to write: a map, checked and written on every call, or
/// [`EncodedFields`], checked and written once.
#[derive(Clone, Copy, Debug)]
pub enum RequestFields<'a> {
    /// Checked and written by each [`encode_request_head`].
    Map(&'a HeaderMap),
    /// Checked and written already: copied as they are.
    Encoded(&'a EncodedFields),
}

impl<'a> From<&'a HeaderMap> for RequestFields<'a> {
    fn from(map: &'a HeaderMap) -> Self {
        RequestFields::Map(map)
    }
}

impl<'a> From<&'a EncodedFields> for RequestFields<'a> {
    fn from(encoded: &'a EncodedFields) -> Self {
        RequestFields::Encoded(encoded)
    }
}

/// Request fields checked and written once, for a client that sends the same fields on
/// many requests: a head then costs one copy of these bytes instead of a walk over the map
/// that checks and formats every field again.
///
/// ```
/// use bytes::BytesMut;
/// use http::{HeaderMap, Method, Version, header};
/// use tandem_proto::{BodyFraming, EncodedFields, RequestParts, encode_request_head};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, "example.com".parse().unwrap());
/// let fields = EncodedFields::new(headers).unwrap();
/// for path in ["/a", "/b"] {
///     let parts = RequestParts::new(&Method::GET, path, (&fields).into(), BodyFraming::Empty);
///     let mut dst = BytesMut::new();
///     encode_request_head(&parts, &mut dst).unwrap();
///     assert_eq!(dst, format!("GET {path} HTTP/1.1\r\nhost: example.com\r\n\r\n"));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct EncodedFields {
    headers: HeaderMap,
    bytes: Bytes,
    /// Read once here, with the parser's own `Connection` rules, so a client that sends
    /// the same fields again does not look them up each time.
    close: bool,
    expect_continue: bool,
}

impl EncodedFields {
    /// Checks and writes `headers`. Refused as [`encode_request_head`] refuses them: a
    /// `Content-Length` or `Transfer-Encoding` field, or a value with a control byte.
    pub fn new(headers: HeaderMap) -> Result<Self, Error> {
        let mut bytes = BytesMut::with_capacity(checked_fields_len(&headers)?.len);
        put_fields(&headers, &mut |field| bytes.put_slice(field));
        let mut connection = ConnectionOptions::default();
        for value in &headers.get_all(header::CONNECTION) {
            connection.add(value.as_bytes());
        }
        let expect_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Ok(EncodedFields {
            headers,
            bytes: bytes.freeze(),
            close: connection.close,
            expect_continue,
        })
    }

    /// The fields as a map.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Whether a `Connection` field holds the `close` option: the connection is spent
    /// after the request.
    pub fn asks_to_close(&self) -> bool {
        self.close
    }

    /// Whether the (first) `Expect` field is `100-continue`.
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }
}

/// Writes a response head into `dst` and returns the encoder for its body.
///
/// Nothing is written if any part would split the message: the whole head is checked
/// first, then written with one reservation.
///
/// ```
/// use bytes::BytesMut;
/// use http::{HeaderMap, StatusCode, Version, header};
/// use tandem_proto::{BodyFraming, ResponseParts, encode_response_head};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
/// let mut dst = BytesMut::new();
/// let parts =
///     ResponseParts::new(StatusCode::OK, &headers, BodyFraming::Length(5)).with_date(false);
/// let mut body = encode_response_head(&parts, &mut dst).unwrap();
/// body.encode(b"hello", &mut dst).unwrap();
/// body.finish(None, &mut dst).unwrap();
/// assert_eq!(
///     &dst[..],
///     b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
/// );
///
/// let split = parts.with_reason(Some("OK\r\nSet-Cookie: a=b"));
/// let mut dst = BytesMut::new();
/// assert!(encode_response_head(&split, &mut dst).is_err());
/// assert!(dst.is_empty());
/// ```
pub fn encode_response_head(
    parts: &ResponseParts<'_>,
    dst: &mut BytesMut,
) -> Result<BodyEncoder, Error> {
    if !LastHead::covers(parts) {
        return write_response_head(parts, dst);
    }
    let hit = LAST_HEAD.with(|last| {
        let last = last.borrow();
        let hit = last.matches(parts);
        if hit {
            dst.reserve(last.len + DATE_FIELD_LEN + 2);
            dst.extend_from_slice(&last.bytes[..last.len]);
        }
        hit.then_some(last.encoder)
    });
    if let Some(encoder) = hit {
        if parts.date {
            with_date(|value| {
                let mut tail = [0; DATE_FIELD_LEN + 2];
                tail[..6].copy_from_slice(b"date: ");
                tail[6..6 + DATE_LEN].copy_from_slice(value);
                tail[6 + DATE_LEN..].copy_from_slice(b"\r\n\r\n");
                dst.extend_from_slice(&tail);
            });
        } else {
            dst.extend_from_slice(b"\r\n");
        }
        return Ok(BodyEncoder::new(encoder));
    }
    let mark = dst.len();
    let encoder = write_response_head(parts, dst)?;
    // The head up to its `Date` (or its end): the last two bytes are the empty line.
    let end = dst.len() - 2 - if parts.date { DATE_FIELD_LEN } else { 0 };
    LAST_HEAD.with(|last| last.borrow_mut().remember(parts, &dst[mark..end], wire_framing(parts)));
    Ok(encoder)
}

/// The response head last written on this thread, up to its `Date`, and the parts it was
/// written from.
///
/// A server answers with the same few heads over and over (`200 OK`, one content type, the
/// same length), and writing one from its parts means looking the reason up, checking the
/// content type and copying every piece in turn; a head whose parts match the last one's is
/// its bytes copied, and a fresh `Date`. Only heads without a caller's reason or fields are
/// kept, so the key is a handful of values and one short comparison.
struct LastHead {
    status: StatusCode,
    version: Version,
    framing: BodyFraming,
    keep_alive: bool,
    date: bool,
    /// The content type, if there was one, and its bytes (of `CONTENT_TYPE_KEPT` at most).
    content_type: Option<([u8; CONTENT_TYPE_KEPT], u8)>,
    /// The framing the head was written with, for the body's encoder.
    encoder: BodyFraming,
    bytes: [u8; LAST_HEAD_KEPT],
    /// How many of `bytes` hold the head; 0 while nothing is kept.
    len: usize,
}

/// The longest content type a kept head may have.
const CONTENT_TYPE_KEPT: usize = 64;

/// The longest head (up to its `Date`) that is kept.
const LAST_HEAD_KEPT: usize = 192;

thread_local! {
    static LAST_HEAD: std::cell::RefCell<LastHead> = const {
        std::cell::RefCell::new(LastHead {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            framing: BodyFraming::Empty,
            keep_alive: false,
            date: false,
            content_type: None,
            encoder: BodyFraming::Empty,
            bytes: [0; LAST_HEAD_KEPT],
            len: 0,
        })
    };
}

impl LastHead {
    /// Whether a head from `parts` may be kept: no reason or fields of the caller's, and a
    /// short content type.
    fn covers(parts: &ResponseParts<'_>) -> bool {
        parts.reason.is_none()
            && parts.headers.is_empty()
            && parts.content_type.is_none_or(|ct| ct.len() <= CONTENT_TYPE_KEPT)
    }

    /// Whether `parts` (which [`covers`](Self::covers) accepted) write the kept head.
    fn matches(&self, parts: &ResponseParts<'_>) -> bool {
        self.len != 0
            && self.status == parts.status
            && self.version == parts.version
            && self.framing == parts.framing
            && self.keep_alive == parts.keep_alive
            && self.date == parts.date
            && match (&self.content_type, parts.content_type) {
                (None, None) => true,
                (Some((bytes, len)), Some(ct)) => &bytes[..usize::from(*len)] == ct.as_bytes(),
                _ => false,
            }
    }

    fn remember(&mut self, parts: &ResponseParts<'_>, head: &[u8], encoder: BodyFraming) {
        let Some(room) = self.bytes.get_mut(..head.len()) else {
            self.len = 0;
            return;
        };
        room.copy_from_slice(head);
        self.len = head.len();
        self.status = parts.status;
        self.version = parts.version;
        self.framing = parts.framing;
        self.keep_alive = parts.keep_alive;
        self.date = parts.date;
        self.encoder = encoder;
        self.content_type = parts.content_type.map(|ct| {
            let mut bytes = [0; CONTENT_TYPE_KEPT];
            bytes[..ct.len()].copy_from_slice(ct.as_bytes());
            (bytes, ct.len() as u8)
        });
    }
}

/// The framing a response head is written with, from the one asked for.
fn wire_framing(parts: &ResponseParts<'_>) -> BodyFraming {
    // RFC 9110 §8.6 and §6.4.1: 1xx and 204 carry no body and no framing fields.
    let bodiless = parts.status.is_informational() || parts.status == StatusCode::NO_CONTENT;
    match parts.framing {
        _ if bodiless => BodyFraming::Empty,
        BodyFraming::Chunked if parts.version == Version::HTTP_10 => BodyFraming::UntilClose,
        framing => framing,
    }
}

/// Writes a response head from its parts: [`encode_response_head`] without the kept head.
fn write_response_head(
    parts: &ResponseParts<'_>,
    dst: &mut BytesMut,
) -> Result<BodyEncoder, Error> {
    // A canonical reason is known to be writable; only a caller's is checked.
    let reason = match parts.reason {
        Some(reason) if !is_field_text(reason.as_bytes()) => {
            return Err(ErrorKind::Unwritable.into());
        }
        Some(reason) => reason.as_bytes(),
        None => parts.status.canonical_reason().unwrap_or_default().as_bytes(),
    };
    let http10 = parts.version == Version::HTTP_10;
    let framing = wire_framing(parts);
    let keep_alive = parts.keep_alive && framing != BodyFraming::UntilClose;
    // Most responses have no map of their own (see `content_type`), and walking an empty
    // `HeaderMap` still costs its iterator's setup.
    let fields = if parts.headers.is_empty() {
        FieldsSummary::default()
    } else {
        checked_fields_len(parts.headers)?
    };
    let mut len = fields.len;
    let content_type = parts.content_type.map(str::as_bytes);
    if let Some(value) = content_type {
        if !is_field_text(value) {
            return Err(ErrorKind::Unwritable.into());
        }
        len += CONTENT_TYPE.len() + value.len() + 2;
    }
    let connection: &[u8] = if fields.connection {
        b""
    } else if !keep_alive && !http10 {
        b"connection: close\r\n"
    } else if keep_alive && http10 {
        b"connection: keep-alive\r\n"
    } else {
        b""
    };
    let date = parts.date && !fields.date;
    len += 13 + reason.len() + 2 + framing_len(framing) + connection.len() + 2;
    if date {
        len += DATE_FIELD_LEN;
    }

    dst.reserve(len);
    // The head is gathered on the stack and copied into `dst` once (or a few times, for
    // heads larger than the scratch): a dozen `put_slice`s, each with its own capacity
    // check and `memcpy` call, cost more than the few bytes each copies.
    let mut out = Scratch::new(dst);
    out.put(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    out.put(&status_digits(parts.status));
    out.put(b" ");
    out.put(reason);
    out.put(b"\r\n");
    if let Some(value) = content_type {
        out.put(CONTENT_TYPE);
        out.put(value);
        out.put(b"\r\n");
    }
    if !parts.headers.is_empty() {
        put_fields(parts.headers, &mut |bytes| out.put(bytes));
    }
    put_framing(framing, &mut |bytes| out.put(bytes));
    out.put(connection);
    if date {
        with_date(|value| {
            out.put(b"date: ");
            out.put(value);
            out.put(b"\r\n");
        });
    }
    out.put(b"\r\n");
    out.flush();
    Ok(BodyEncoder::new(framing))
}

/// A status code's three digits, as a fixed-size array so copying them is three stores.
fn status_digits(status: StatusCode) -> [u8; 3] {
    status.as_str().as_bytes().try_into().unwrap_or(*b"500")
}

/// Room on the stack for a typical response head.
const SCRATCH: usize = 256;

/// Bytes gathered on the stack before one copy into the destination buffer.
struct Scratch<'a> {
    dst: &'a mut BytesMut,
    buf: [u8; SCRATCH],
    len: usize,
}

impl<'a> Scratch<'a> {
    fn new(dst: &'a mut BytesMut) -> Self {
        Scratch { dst, buf: [0; SCRATCH], len: 0 }
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if let Some(room) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.flush();
            if bytes.len() > SCRATCH {
                self.dst.extend_from_slice(bytes);
            } else {
                self.buf[..bytes.len()].copy_from_slice(bytes);
                self.len = bytes.len();
            }
        }
    }

    fn flush(&mut self) {
        self.dst.extend_from_slice(&self.buf[..self.len]);
        self.len = 0;
    }
}

const CONTENT_TYPE: &[u8] = b"content-type: ";

/// `date: ` + an IMF-fixdate + CRLF.
const DATE_FIELD_LEN: usize = 6 + super::date::DATE_LEN + 2;

/// Writes a request head into `dst` and returns the encoder for its body.
///
/// Nothing is written if the method is not a token, the target holds anything but visible
/// ASCII, or a field value holds a control byte.
pub fn encode_request_head(
    parts: &RequestParts<'_>,
    dst: &mut BytesMut,
) -> Result<BodyEncoder, Error> {
    let method = parts.method.as_str().as_bytes();
    let target = parts.target.as_bytes();
    if !is_token(method) || target.is_empty() || !target.iter().all(|&b| matches!(b, 0x21..=0x7e)) {
        return Err(ErrorKind::Unwritable.into());
    }
    if parts.framing == BodyFraming::UntilClose
        || (parts.framing == BodyFraming::Chunked && parts.version == Version::HTTP_10)
    {
        return Err(ErrorKind::Unwritable.into());
    }
    let fields_len = match parts.headers {
        RequestFields::Map(map) => checked_fields_len(map)?.len,
        RequestFields::Encoded(encoded) => encoded.bytes.len(),
    };
    let len = fields_len + method.len() + 1 + target.len() + 11 + framing_len(parts.framing) + 2;
    dst.reserve(len);
    dst.put_slice(method);
    dst.put_u8(b' ');
    dst.put_slice(target);
    dst.put_slice(if parts.version == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    match parts.headers {
        RequestFields::Map(map) => put_fields(map, &mut |bytes| dst.put_slice(bytes)),
        RequestFields::Encoded(encoded) => dst.put_slice(&encoded.bytes),
    }
    put_framing(parts.framing, &mut |bytes| dst.put_slice(bytes));
    dst.put_slice(b"\r\n");
    Ok(BodyEncoder::new(parts.framing))
}

/// Checks every field and returns the bytes they take. Framing fields are refused.
fn checked_fields_len(headers: &HeaderMap) -> Result<FieldsSummary, Error> {
    let mut summary = FieldsSummary::default();
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || !is_field_text(value.as_bytes())
        {
            return Err(ErrorKind::Unwritable.into());
        }
        summary.connection |= name == header::CONNECTION;
        summary.date |= name == header::DATE;
        summary.len += name.as_str().len() + 2 + value.len() + 2;
    }
    Ok(summary)
}

/// What the one pass over the caller's fields found: their size, and whether they already
/// hold the fields the encoder would otherwise add (no second lookup per field needed).
#[derive(Default)]
struct FieldsSummary {
    len: usize,
    connection: bool,
    date: bool,
}

/// Writes each field as `name: value` CRLF through `put`, which appends bytes to a
/// buffer (a `BytesMut`, or a response head's stack [`Scratch`]).
fn put_fields(headers: &HeaderMap, put: &mut impl FnMut(&[u8])) {
    for (name, value) in headers {
        put(name.as_str().as_bytes());
        put(b": ");
        put(value.as_bytes());
        put(b"\r\n");
    }
}

/// The longest framing field: `content-length: ` + 20 digits + CRLF.
const MAX_FRAMING_LEN: usize = 16 + 20 + 2;

fn framing_len(framing: BodyFraming) -> usize {
    match framing {
        BodyFraming::Length(_) => MAX_FRAMING_LEN,
        BodyFraming::Chunked => b"transfer-encoding: chunked\r\n".len(),
        BodyFraming::Empty | BodyFraming::UntilClose => 0,
    }
}

/// Writes the framing field, if the framing has one, through `put` (as [`put_fields`]).
fn put_framing(framing: BodyFraming, put: &mut impl FnMut(&[u8])) {
    match framing {
        BodyFraming::Length(n) => {
            put(b"content-length: ");
            put(itoa::Buffer::new().format(n).as_bytes());
            put(b"\r\n");
        }
        BodyFraming::Chunked => put(b"transfer-encoding: chunked\r\n"),
        BodyFraming::Empty | BodyFraming::UntilClose => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_fields_read_close_and_expect_continue() {
        let fields = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(name, value.parse().unwrap());
            }
            EncodedFields::new(map).unwrap()
        };
        let plain = fields(&[(header::HOST, "a")]);
        assert!(!plain.asks_to_close() && !plain.expects_continue());
        for value in ["close", "CLOSE", "keep-alive, Close", " upgrade ,close "] {
            assert!(fields(&[(header::CONNECTION, value)]).asks_to_close(), "{value:?}");
        }
        for value in ["keep-alive", "closed", "upgrade"] {
            assert!(!fields(&[(header::CONNECTION, value)]).asks_to_close(), "{value:?}");
        }
        let second = fields(&[(header::CONNECTION, "keep-alive"), (header::CONNECTION, "close")]);
        assert!(second.asks_to_close());
        assert!(fields(&[(header::EXPECT, "100-Continue")]).expects_continue());
        assert!(!fields(&[(header::EXPECT, "100-continue-ish")]).expects_continue());
    }

    /// Every head written through the kept head is the head written from its parts, hit or
    /// miss, in any order.
    #[test]
    fn kept_heads_are_the_heads_written_from_their_parts() {
        let empty = HeaderMap::new();
        let mut with_field = HeaderMap::new();
        with_field.insert(header::SERVER, "t".parse().unwrap());
        let long_type = "x/".to_owned() + &"y".repeat(CONTENT_TYPE_KEPT);
        let mut all = Vec::new();
        for status in [StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::NO_CONTENT] {
            for version in [Version::HTTP_11, Version::HTTP_10] {
                for content_type in [None, Some("text/plain"), Some("text/html"), Some(&*long_type)]
                {
                    for framing in
                        [BodyFraming::Length(13), BodyFraming::Length(14), BodyFraming::Chunked]
                    {
                        for keep_alive in [true, false] {
                            for reason in [None, Some("Fine")] {
                                for headers in [&empty, &with_field] {
                                    all.push(ResponseParts {
                                        status,
                                        reason,
                                        version,
                                        headers,
                                        content_type,
                                        framing,
                                        keep_alive,
                                        date: false,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        // Each twice in a row (a miss, then a hit), then all again in reverse.
        let order = all.iter().flat_map(|p| [p, p]).chain(all.iter().rev());
        for parts in order {
            let (mut kept, mut written) = (BytesMut::from(&b"before"[..]), BytesMut::new());
            let kept_encoder = encode_response_head(parts, &mut kept).unwrap();
            let written_encoder = write_response_head(parts, &mut written).unwrap();
            assert_eq!(&kept[6..], &written[..], "{parts:?}");
            assert_eq!(format!("{kept_encoder:?}"), format!("{written_encoder:?}"));
        }
    }

    #[test]
    fn kept_heads_get_a_fresh_date_and_refuse_what_the_writer_refuses() {
        let empty = HeaderMap::new();
        let parts = ResponseParts {
            status: StatusCode::OK,
            reason: None,
            version: Version::HTTP_11,
            headers: &empty,
            content_type: Some("text/plain"),
            framing: BodyFraming::Length(2),
            keep_alive: true,
            date: true,
        };
        for _ in 0..3 {
            let mut dst = BytesMut::new();
            encode_response_head(&parts, &mut dst).unwrap();
            let text = std::str::from_utf8(&dst).unwrap();
            assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"));
            let date = text.split("date: ").nth(1).unwrap().trim_end();
            assert!(httpdate::parse_http_date(date).is_ok(), "{text:?}");
            assert!(text.ends_with(" GMT\r\n\r\n"), "{text:?}");
        }
        let split = ResponseParts { content_type: Some("text/plain\r\nx: y"), ..parts };
        let mut dst = BytesMut::new();
        assert!(encode_response_head(&split, &mut dst).is_err());
        assert!(encode_response_head(&split, &mut dst).is_err());
        assert!(dst.is_empty());
    }
}
