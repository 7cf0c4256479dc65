//! What the encoders write, the parsers read back unchanged; and what would split a message,
//! the encoders refuse without writing a byte (`docs/security.md`, B37 and C44;
//! CVE-2026-34519, CVE-2023-49082).

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use tandem_proto::{
    BodyEncoder, BodyFraming, ErrorKind, RequestParts, ResponseParts, encode_request_head,
    encode_response_head,
};

use crate::support::{Message, try_check_request, try_check_response};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for &(name, value) in pairs {
        map.append(name, HeaderValue::from_static(value));
    }
    map
}

/// Writes `chunks` and then the end of the body, with `trailers` if any.
fn write_body(mut body: BodyEncoder, chunks: &[&[u8]], trailers: &HeaderMap, dst: &mut BytesMut) {
    for chunk in chunks {
        body.encode(chunk, dst).expect("a body within its framing");
    }
    body.finish(Some(trailers), dst).expect("a complete body");
}

/// The fields the encoder was given, compared with those parsed back less the framing
/// fields the encoder adds itself.
fn same_fields(message: &Message, map: &HeaderMap) -> Result<(), String> {
    let framing = ["content-length", "transfer-encoding", "connection", "date"];
    let parsed: Vec<(String, Vec<u8>)> = message
        .fields
        .iter()
        .filter(|(n, _)| {
            !framing.iter().any(|f| n.eq_ignore_ascii_case(f)) || map.contains_key(n.as_str())
        })
        .cloned()
        .collect();
    let sent: Vec<(String, Vec<u8>)> =
        map.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    ensure!(parsed == sent, "fields: sent {sent:?}, parsed {parsed:?}");
    Ok(())
}

/// Method, target, version, framing, body chunks and trailers of a request to write.
type RequestCase<'a> = (Method, &'a str, Version, BodyFraming, &'a [&'a [u8]], &'a HeaderMap);

/// Status, reason, version, framing, keep-alive, body chunks and trailers of a response.
type ResponseCase<'a> =
    (StatusCode, Option<&'a str>, Version, BodyFraming, bool, &'a [&'a [u8]], &'a HeaderMap);

#[test]
fn requests_round_trip() {
    let trailers = headers(&[("x-checksum", "abc"), ("x-more", "1")]);
    let none = HeaderMap::new();
    let plain =
        headers(&[("host", "example.com"), ("accept", "*/*"), ("x-multi", "a"), ("x-multi", "b")]);
    #[rustfmt::skip]
    let cases: [RequestCase<'_>; 6] = [
        (Method::GET, "/a/b?c=d&e", Version::HTTP_11, BodyFraming::Empty, &[], &none),
        (Method::POST, "/upload", Version::HTTP_11, BodyFraming::Length(11), &[b"hello", b" ", b"world"], &none),
        (Method::POST, "/zero", Version::HTTP_11, BodyFraming::Length(0), &[], &none),
        (Method::PUT, "/chunks", Version::HTTP_11, BodyFraming::Chunked, &[b"abc", b"", &[b'x'; 300]], &trailers),
        (Method::OPTIONS, "*", Version::HTTP_11, BodyFraming::Empty, &[], &none),
        (Method::GET, "http://h.example/x", Version::HTTP_10, BodyFraming::Length(2), &[b"ok"], &none),
    ];
    for (method, target, version, framing, chunks, trailers) in cases {
        let parts =
            RequestParts::new(&method, target, (&plain).into(), framing).with_version(version);
        let mut dst = BytesMut::new();
        let body = encode_request_head(&parts, &mut dst).expect("a writable head");
        write_body(body, chunks, trailers, &mut dst);
        let check = |message: &Message| -> Result<(), String> {
            ensure!(message.method == method.as_str() && message.target == target, "{message:?}");
            ensure!(message.version == version, "{message:?}");
            ensure!(message.body == chunks.concat(), "{message:?}");
            let sent: Vec<(String, Vec<u8>)> =
                trailers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect();
            ensure!(message.trailers == sent, "{message:?}");
            same_fields(message, &plain)
        };
        let result = try_check_request(&dst).and_then(|o| o.only().and_then(check));
        assert!(result.is_ok(), "{method} {target} {framing:?}: {}", result.unwrap_err());
    }
}

#[test]
fn responses_round_trip() {
    let trailers = headers(&[("x-checksum", "abc")]);
    let none = HeaderMap::new();
    let fields =
        headers(&[("content-type", "text/plain"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]);
    #[rustfmt::skip]
    let cases: [ResponseCase<'_>; 6] = [
        (StatusCode::OK, None, Version::HTTP_11, BodyFraming::Length(5), true, &[b"hello"], &none),
        (StatusCode::NOT_FOUND, Some("Nope, Not Here"), Version::HTTP_11, BodyFraming::Chunked, true, &[b"ab", b"cd"], &trailers),
        (StatusCode::OK, Some("Fine"), Version::HTTP_11, BodyFraming::Length(2), false, &[b"ok"], &none),
        // HTTP/1.0 is never sent a chunked body: it runs until close instead.
        (StatusCode::OK, None, Version::HTTP_10, BodyFraming::Chunked, true, &[b"until ", b"close"], &none),
        (StatusCode::OK, None, Version::HTTP_10, BodyFraming::Length(2), true, &[b"ok"], &none),
        (StatusCode::NO_CONTENT, None, Version::HTTP_11, BodyFraming::Empty, true, &[], &none),
    ];
    for (status, reason, version, framing, keep_alive, chunks, trailers) in cases {
        let parts = ResponseParts::new(status, &fields, framing)
            .with_reason(reason)
            .with_version(version)
            .with_keep_alive(keep_alive);
        let mut dst = BytesMut::new();
        let body = encode_response_head(&parts, &mut dst).expect("a writable head");
        write_body(body, chunks, trailers, &mut dst);
        let reason = reason.or(status.canonical_reason()).unwrap_or_default();
        let until_close = version == Version::HTTP_10 && framing == BodyFraming::Chunked;
        let check = |message: &Message| -> Result<(), String> {
            ensure!(message.status == status.as_u16() && message.target == reason, "{message:?}");
            ensure!(message.version == version && message.body == chunks.concat(), "{message:?}");
            ensure!(message.keep_alive == (keep_alive && !until_close), "{message:?}");
            ensure!(message.field("date").is_some(), "no Date: {message:?}");
            ensure!(message.trailers.len() == trailers.len(), "{message:?}");
            same_fields(message, &fields)
        };
        let result = try_check_response(&dst, &Method::GET).and_then(|o| o.only().and_then(check));
        assert!(result.is_ok(), "{status} {framing:?}: {}", result.unwrap_err());
    }
}

/// `ResponseHead::reason` holds the reason as sent, obs-text included; httparse alone would
/// return "" for a reason holding any byte over 0x7f.
#[test]
fn obs_text_reason_round_trips() {
    let none = HeaderMap::new();
    let parts = ResponseParts::new(StatusCode::OK, &none, BodyFraming::Length(0))
        .with_reason(Some("Tr\u{e8}s bien"))
        .with_date(false);
    let mut dst = BytesMut::new();
    encode_response_head(&parts, &mut dst).expect("obs-text is writable");
    let outcome = try_check_response(&dst, &Method::GET).expect("deliveries agree");
    let message = outcome.only().expect("one response");
    assert_eq!(message.target, "Tr\u{e8}s bien", "{message:?}");
}

/// Bytes already in the write buffer, which a refused head must leave exactly as they were.
const EARLIER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

#[test]
fn response_splitting_is_refused_before_writing() {
    let none = HeaderMap::new();
    for reason in ["OK\r\nSet-Cookie: a=b", "OK\rX", "OK\nX", "OK\0", "OK\x01", "OK\x7f"] {
        let parts = ResponseParts::new(StatusCode::OK, &none, BodyFraming::Length(0))
            .with_reason(Some(reason))
            .with_date(false);
        let mut dst = BytesMut::from(EARLIER);
        let err = encode_response_head(&parts, &mut dst).expect_err(reason);
        assert_eq!(err.kind(), ErrorKind::Unwritable, "{reason:?}");
        assert_eq!(&dst[..], EARLIER, "{reason:?} wrote bytes");
    }
    // The content type given beside the map is checked the same way.
    for content_type in ["text/plain\r\nSet-Cookie: a=b", "a\nb", "a\0"] {
        let parts = ResponseParts::new(StatusCode::OK, &none, BodyFraming::Length(0))
            .with_content_type(Some(content_type))
            .with_date(false);
        let mut dst = BytesMut::from(EARLIER);
        assert!(encode_response_head(&parts, &mut dst).is_err(), "{content_type:?}");
        assert_eq!(&dst[..], EARLIER, "{content_type:?} wrote bytes");
    }
}

#[test]
fn content_type_beside_the_map_comes_first() {
    let fields = headers(&[("x-a", "1")]);
    let parts = ResponseParts::new(StatusCode::OK, &fields, BodyFraming::Length(2))
        .with_content_type(Some("text/plain"))
        .with_date(false);
    let mut dst = BytesMut::new();
    encode_response_head(&parts, &mut dst).unwrap();
    assert_eq!(
        &dst[..],
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\ncontent-length: 2\r\n\r\n"
    );
}

#[test]
fn request_line_injection_is_refused_before_writing() {
    let host = headers(&[("host", "a")]);
    let targets = ["/\r\nX: y", "/a\rb", "/a\nb", "/a\0b", "/a b", "/caf\u{e9}", "", "/a\x7f"];
    for target in targets {
        let parts = RequestParts::new(&Method::GET, target, (&host).into(), BodyFraming::Empty);
        let mut dst = BytesMut::from(EARLIER);
        let err = encode_request_head(&parts, &mut dst).expect_err(target);
        assert_eq!(err.kind(), ErrorKind::Unwritable, "{target:?}");
        assert_eq!(&dst[..], EARLIER, "{target:?} wrote bytes");
    }
}

/// A framing field set by the caller could disagree with the framing written; a request
/// body until close, or chunked on HTTP/1.0, cannot be delimited.
#[test]
fn framing_the_encoder_cannot_keep_is_refused() {
    let with_cl = headers(&[("host", "a"), ("content-length", "5")]);
    let with_te = headers(&[("host", "a"), ("transfer-encoding", "chunked")]);
    let host = headers(&[("host", "a")]);
    #[rustfmt::skip]
    let cases: [(&HeaderMap, Version, BodyFraming); 4] = [
        (&with_cl, Version::HTTP_11, BodyFraming::Length(5)),
        (&with_te, Version::HTTP_11, BodyFraming::Chunked),
        (&host, Version::HTTP_11, BodyFraming::UntilClose),
        (&host, Version::HTTP_10, BodyFraming::Chunked),
    ];
    for (headers, version, framing) in cases {
        let parts =
            RequestParts::new(&Method::POST, "/", headers.into(), framing).with_version(version);
        let mut dst = BytesMut::from(EARLIER);
        let err = encode_request_head(&parts, &mut dst).expect_err("unwritable");
        assert_eq!(err.kind(), ErrorKind::Unwritable, "{framing:?} {headers:?}");
        assert_eq!(&dst[..], EARLIER);
    }
    let status =
        ResponseParts::new(StatusCode::OK, &with_cl, BodyFraming::Length(5)).with_date(false);
    let mut dst = BytesMut::from(EARLIER);
    assert_eq!(encode_response_head(&status, &mut dst).unwrap_err().kind(), ErrorKind::Unwritable);
    assert_eq!(&dst[..], EARLIER);
}

/// CR, LF and NUL never reach a header value or trailer through safe code: `HeaderValue`'s
/// checked constructors refuse them, and the unchecked one is `unsafe`, which this
/// workspace forbids. The encoders check values again all the same (see `encode/mod.rs`).
#[test]
fn header_values_with_line_breaks_cannot_be_built() {
    for value in [&b"a\r\nX: y"[..], b"a\rb", b"a\nb", b"a\0b"] {
        assert!(HeaderValue::from_bytes(value).is_err(), "{value:?}");
    }
}

#[test]
fn body_encoders_keep_to_their_framing() {
    let mut dst = BytesMut::new();
    let mut length = BodyEncoder::new(BodyFraming::Length(3));
    assert_eq!(length.encode(b"abcd", &mut dst).unwrap_err().kind(), ErrorKind::BodyLength);
    assert!(dst.is_empty(), "a refused write wrote {dst:?}");
    length.encode(b"ab", &mut dst).unwrap();
    assert_eq!(length.finish(None, &mut dst).unwrap_err().kind(), ErrorKind::BodyLength);
    let mut empty = BodyEncoder::new(BodyFraming::Empty);
    assert_eq!(empty.encode(b"x", &mut dst).unwrap_err().kind(), ErrorKind::BodyLength);
    let trailers = headers(&[("x", "y")]);
    let mut done = BodyEncoder::new(BodyFraming::Length(0));
    assert_eq!(done.finish(Some(&trailers), &mut dst).unwrap_err().kind(), ErrorKind::Unwritable);
    assert_eq!(&dst[..], b"ab");
    let mut chunked = BodyEncoder::new(BodyFraming::Chunked);
    chunked.finish(None, &mut dst).unwrap();
    assert!(chunked.is_finished());
    assert_eq!(chunked.encode(b"late", &mut dst).unwrap_err().kind(), ErrorKind::BodyLength);
    assert_eq!(&dst[..], b"ab0\r\n\r\n");
}
