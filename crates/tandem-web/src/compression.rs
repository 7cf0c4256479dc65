//! Content codings: reading `Accept-Encoding`, and compressing a response body, as aiohttp's
//! `enable_compression()`.
//!
//! The client's `Accept-Encoding` is parsed once per request, before dispatch, into an
//! [`AcceptEncoding`]: a few `Copy` q-values, so nothing is allocated and the request can move
//! into the handler. The writer then asks it for the best coding of those we produce. On a
//! tie in q the server's preference decides: br, then gzip, then deflate (br is smallest).
//!
//! A whole body is compressed in one go (off the runtime's threads when large); a streamed
//! body chunk by chunk, each chunk flushed so that a stream that trickles (server-sent
//! events, progress) still reaches the client as it is produced.
//!
//! Without the `compression` feature there are no encoders and [`apply`] leaves every
//! response as it is; `Accept-Encoding` is still parsed, to pick precompressed static files.

#[cfg(feature = "compression")]
use bytes::Bytes;
#[cfg(feature = "compression")]
use futures_util::StreamExt;
#[cfg(feature = "compression")]
use http::{HeaderMap, HeaderValue, StatusCode, header};
#[cfg(feature = "compression")]
use tandem_io::ContentEncoder;

use crate::response::Response;
#[cfg(feature = "compression")]
use crate::response::{Body, BodyStream};

/// A whole body at least this large is compressed on the blocking pool, so one big response
/// does not stall every other connection on its worker thread.
#[cfg(feature = "compression")]
const BLOCKING_THRESHOLD: usize = 64 * 1024;

/// Brotli quality for on-the-fly compression. 11 (the default) is far too slow for a
/// response; 4 is about as fast as gzip's default level and still smaller.
#[cfg(feature = "compression")]
const BROTLI_QUALITY: u32 = 4;

/// Brotli window, log2: 4 MiB, the library's usual choice.
#[cfg(feature = "compression")]
const BROTLI_WINDOW: u32 = 22;

/// A content coding we can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Br,
    Gzip,
    /// HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2), not raw deflate.
    #[cfg_attr(
        not(feature = "compression"),
        allow(dead_code, reason = "only compressing a response picks it; files have no .deflate")
    )]
    Deflate,
}

impl Coding {
    /// The server's order of preference, used on ties in q.
    #[cfg(feature = "compression")]
    pub(crate) const PREFERENCE: [Coding; 3] = [Coding::Br, Coding::Gzip, Coding::Deflate];

    /// The token in `Content-Encoding`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// The q-values (in thousandths) an `Accept-Encoding` field gives the codings we produce.
/// `None` means not mentioned; an explicit `q=0` is `Some(0)`, a refusal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AcceptEncoding {
    br: Option<u16>,
    gzip: Option<u16>,
    deflate: Option<u16>,
    /// `*`: any coding not named.
    any: Option<u16>,
}

impl AcceptEncoding {
    /// Parses a field value. Malformed elements (a bad q-value, say) are skipped, so a
    /// garbled header degrades to "no compression" rather than an error.
    pub(crate) fn parse(value: &[u8]) -> Self {
        let mut accept = AcceptEncoding::default();
        for element in value.split(|&b| b == b',') {
            let mut parts = element.split(|&b| b == b';');
            let name = parts.next().unwrap_or_default().trim_ascii();
            let mut q = Some(1000);
            for param in parts {
                let param = param.trim_ascii();
                if let Some(value) = param.strip_prefix(b"q=").or_else(|| param.strip_prefix(b"Q="))
                {
                    q = parse_q(value.trim_ascii());
                }
            }
            let Some(q) = q else { continue };
            let slot = if name.eq_ignore_ascii_case(b"br") {
                &mut accept.br
            } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
                &mut accept.gzip
            } else if name.eq_ignore_ascii_case(b"deflate") {
                &mut accept.deflate
            } else if name == b"*" {
                &mut accept.any
            } else {
                continue;
            };
            // Named twice: the more generous reading wins.
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        accept
    }

    /// The q-value for `coding`: its own, else `*`'s, else 0 (not acceptable).
    fn q(self, coding: Coding) -> u16 {
        let own = match coding {
            Coding::Br => self.br,
            Coding::Gzip => self.gzip,
            Coding::Deflate => self.deflate,
        };
        own.or(self.any).unwrap_or(0)
    }

    /// The codings of `among` the client accepts, best first: by q, then by their order in
    /// `among`. A coding with `q=0` is never returned.
    pub(crate) fn ranked(self, among: &[Coding]) -> Vec<Coding> {
        let mut ranked: Vec<_> = among.iter().copied().filter(|&c| self.q(c) > 0).collect();
        // A stable sort keeps `among`'s order on ties.
        ranked.sort_by_key(|&c| std::cmp::Reverse(self.q(c)));
        ranked
    }

    /// The best coding we produce that the client accepts.
    #[cfg(feature = "compression")]
    pub(crate) fn preferred(self) -> Option<Coding> {
        self.ranked(&Coding::PREFERENCE).first().copied()
    }
}

/// A q-value in thousandths: `0`, `0.5`, `1.000` (RFC 9110 §12.4.2); anything else is
/// malformed.
fn parse_q(value: &[u8]) -> Option<u16> {
    let (int, frac) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// An incremental compressor for `coding`.
#[cfg(feature = "compression")]
fn encoder(coding: Coding) -> ContentEncoder {
    match coding {
        Coding::Gzip => ContentEncoder::gzip(),
        Coding::Deflate => ContentEncoder::deflate(),
        Coding::Br => ContentEncoder::brotli(BROTLI_QUALITY, BROTLI_WINDOW),
    }
}

/// Compresses `data` and flushes, returning everything produced so far.
#[cfg(feature = "compression")]
fn chunk(encoder: &mut ContentEncoder, data: &[u8]) -> std::io::Result<Bytes> {
    encoder.write(data)?;
    encoder.flush()?;
    Ok(Bytes::from(encoder.take_output()))
}

/// Compresses a whole body.
#[cfg(feature = "compression")]
fn compress_all(coding: Coding, data: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = encoder(coding);
    encoder.write(data)?;
    encoder.finish().map(Bytes::from)
}

/// Compresses a stream chunk by chunk. An error from the inner stream ends it; the writer
/// then cuts the response short.
#[cfg(feature = "compression")]
fn compress_stream(coding: Coding, stream: BodyStream) -> BodyStream {
    let state = (stream, Some(encoder(coding)));
    futures_util::stream::unfold(state, |(mut stream, mut encoder)| async move {
        loop {
            let encoder_ref = encoder.as_mut()?;
            let item = match stream.next().await {
                Some(Ok(data)) => chunk(encoder_ref, &data).map_err(crate::Error::from),
                Some(Err(err)) => Err(err),
                None => encoder.take()?.finish().map(Bytes::from).map_err(crate::Error::from),
            };
            match item {
                Ok(out) if out.is_empty() => {}
                Ok(out) => return Some((Ok(out), (stream, encoder))),
                Err(err) => return Some((Err(err), (stream, None))),
            }
        }
    })
    .boxed()
}

/// Adds `Accept-Encoding` to `Vary`, unless it is there already or `Vary` is `*`.
#[cfg(feature = "compression")]
fn add_vary(headers: &mut HeaderMap) {
    let listed = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !listed {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Compresses `response`'s body if it asked for it (`enable_compression`) and the client
/// accepts a coding we produce. Left alone: HEAD (no body is sent, and compressing only to
/// learn a length would be waste), 1xx, 204, 206 (a range of the identity bytes must not be
/// re-encoded), 304, empty bodies and bodies that already carry a `Content-Encoding`.
#[cfg(feature = "compression")]
pub(crate) async fn apply(
    response: &mut Response,
    accept: Option<AcceptEncoding>,
    head_only: bool,
) {
    let status = response.status();
    if !response.inner.compress
        || head_only
        || status.is_informational()
        || matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
        )
        || matches!(response.inner.body, Body::Empty)
        || response.headers().contains_key(header::CONTENT_ENCODING)
    {
        return;
    }
    // Whether or not this client gets it compressed, the answer depends on Accept-Encoding.
    add_vary(response.headers_mut());
    let Some(coding) = accept.and_then(AcceptEncoding::preferred) else { return };
    let body = match std::mem::replace(&mut response.inner.body, Body::Empty) {
        Body::Full(bytes) => {
            let compressed = if bytes.len() >= BLOCKING_THRESHOLD {
                let input = bytes.clone();
                tokio::task::spawn_blocking(move || compress_all(coding, &input))
                    .await
                    .unwrap_or_else(|err| Err(std::io::Error::other(err)))
            } else {
                compress_all(coding, &bytes)
            };
            match compressed {
                Ok(compressed) => Body::Full(compressed),
                Err(err) => {
                    // Cannot happen writing to a Vec, but if it did, identity is still right.
                    crate::log::error("compression failed", &err);
                    response.inner.body = Body::Full(bytes);
                    return;
                }
            }
        }
        Body::Stream(stream) => {
            // The declared length was of the identity bytes; the stream goes chunked.
            response.headers_mut().remove(header::CONTENT_LENGTH);
            Body::Stream(compress_stream(coding, stream))
        }
        Body::Empty => return,
    };
    response.inner.body = body;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
    // The encoded bytes differ from the identity ones, so a strong validator no longer
    // holds for them (RFC 9110 §8.8.1); nginx weakens it the same way.
    if let Some(etag) = headers.get(header::ETAG)
        && etag.as_bytes().starts_with(b"\"")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(weak) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, weak);
        }
    }
}

/// Without the `compression` feature there is nothing to compress with: `enable_compression`
/// has no effect.
#[cfg(not(feature = "compression"))]
#[allow(clippy::unused_async, reason = "the writer awaits it, as it awaits the real one")]
pub(crate) async fn apply(
    _response: &mut Response,
    _accept: Option<AcceptEncoding>,
    _head_only: bool,
) {
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    use super::*;

    fn pick(value: &str) -> Option<Coding> {
        AcceptEncoding::parse(value.as_bytes()).preferred()
    }

    #[test]
    fn preference_and_q_values() {
        assert_eq!(pick("gzip, deflate, br"), Some(Coding::Br));
        assert_eq!(pick("gzip, deflate"), Some(Coding::Gzip));
        assert_eq!(pick("deflate"), Some(Coding::Deflate));
        assert_eq!(pick("br;q=0.1, gzip;q=0.5"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("*"), Some(Coding::Br));
        assert_eq!(pick("*;q=0, deflate"), Some(Coding::Deflate));
        assert_eq!(pick("br;q=0, *"), Some(Coding::Gzip));
        assert_eq!(pick("GZIP ; Q=1.0"), Some(Coding::Gzip));
        assert_eq!(pick("x-gzip"), Some(Coding::Gzip));
        assert_eq!(pick(""), None);
    }

    #[test]
    fn malformed_q_values_are_skipped() {
        assert_eq!(pick("br;q=2, gzip"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0.0001, gzip;q=0.001"), Some(Coding::Gzip));
        assert_eq!(pick("br;q=abc"), None);
        assert_eq!(pick("br;q=1.5"), None);
        assert_eq!(pick("br;q=-1"), None);
        assert_eq!(parse_q(b"0.5"), Some(500));
        assert_eq!(parse_q(b"1."), Some(1000));
        assert_eq!(parse_q(b"0.123"), Some(123));
        assert_eq!(parse_q(b""), None);
    }

    #[test]
    fn streamed_chunks_decode_to_the_input() {
        use std::io::Read;
        let mut encoder = encoder(Coding::Gzip);
        let mut out = chunk(&mut encoder, b"hello ").unwrap().to_vec();
        assert!(!out.is_empty(), "each chunk is flushed");
        out.extend_from_slice(&chunk(&mut encoder, b"world").unwrap());
        out.extend_from_slice(&encoder.finish().unwrap());
        let mut text = String::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello world");
    }

    #[test]
    fn vary_is_added_once() {
        let mut headers = HeaderMap::new();
        add_vary(&mut headers);
        add_vary(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        let mut star = HeaderMap::new();
        star.insert(header::VARY, HeaderValue::from_static("*"));
        add_vary(&mut star);
        assert_eq!(star.get_all(header::VARY).iter().count(), 1);
    }
}
