//! HTTP proxies: aiohttp's `proxy=` and `proxy_auth=`.
//!
//! For an https origin the connector opens a `CONNECT` tunnel through the proxy and runs TLS
//! with the origin inside it; the proxy's credentials go on the `CONNECT` request only, never
//! inside the tunnel (requests CVE-2023-32681). For an http origin the connection goes to the
//! proxy itself, and the client writes absolute-form requests carrying
//! [`Proxy::authorization`] on it.
//!
//! A refused `CONNECT` (407, 502, ...) is an error whose body is never read, so it can never be
//! taken for the origin's TLS. Bytes that arrive after a 2xx head belong to the tunnel and are
//! handed on, not dropped.

use std::{
    fmt, io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tandem_proto::ResponseParser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::{
    Io, Origin,
    error::{Error, Kind},
};

/// A proxy to reach origins through. Its credentials take part in pooling: connections made
/// with one set are never reused with another.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    origin: Origin,
    authorization: Option<String>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the credentials.
        f.debug_struct("Proxy")
            .field("origin", &self.origin)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Proxy {
    /// A proxy at `origin`: `http` for a plain proxy, `https` for TLS to the proxy itself.
    pub fn new(origin: Origin) -> Self {
        Proxy { origin, authorization: None }
    }

    /// Sends `Proxy-Authorization: Basic ...` with these credentials (aiohttp's `BasicAuth`,
    /// or credentials in the proxy URL).
    #[must_use]
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        let token = base64(format!("{user}:{password}").as_bytes());
        self.authorization = Some(format!("Basic {token}"));
        self
    }

    /// Sends this `Proxy-Authorization` value as it is.
    #[must_use]
    pub fn authorization(mut self, value: impl Into<String>) -> Self {
        self.authorization = Some(value.into());
        self
    }

    /// Where the proxy is.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The `Proxy-Authorization` value, for a client writing absolute-form requests to it.
    pub fn authorization_value(&self) -> Option<&str> {
        self.authorization.as_deref()
    }
}

/// Asks the proxy on `io` for a tunnel to `target` and returns the tunnel.
pub(crate) async fn connect_tunnel(
    mut io: Box<dyn Io>,
    target: &Origin,
    proxy: &Proxy,
) -> Result<Box<dyn Io>, Error> {
    let authority = if target.host().contains(':') {
        format!("[{}]:{}", target.host(), target.port())
    } else {
        format!("{}:{}", target.host(), target.port())
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        if auth.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Error::new(Kind::Config, "control bytes in Proxy-Authorization"));
        }
        request.push_str("Proxy-Authorization: ");
        request.push_str(auth);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await.map_err(|e| Error::new(Kind::Proxy(None), e))?;
    io.flush().await.map_err(|e| Error::new(Kind::Proxy(None), e))?;

    let mut parser = ResponseParser::new();
    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        if let Some(head) = parser
            .parse(&mut buf, &http::Method::CONNECT)
            .map_err(|e| Error::new(Kind::Proxy(None), e))?
        {
            break head;
        }
        let n = io.read_buf(&mut buf).await.map_err(|e| Error::new(Kind::Proxy(None), e))?;
        if n == 0 {
            return Err(Error::new(Kind::Proxy(None), "proxy closed the connection"));
        }
    };
    let status = head.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(Error::new(
            Kind::Proxy(Some(status)),
            format!("proxy refused CONNECT with {status}"),
        ));
    }
    if buf.is_empty() {
        return Ok(io);
    }
    Ok(Box::new(Prefixed { prefix: buf, io }))
}

/// A stream whose first bytes were already read into `prefix`.
struct Prefixed {
    prefix: BytesMut,
    io: Box<dyn Io>,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Standard base64 with padding (RFC 4648 §4), for Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Proxy, base64, connect_tunnel};
    use crate::{Origin, Scheme};

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        let p = Proxy::new(Origin::new(Scheme::Http, "p", 3128)).basic_auth("user", "pass");
        assert_eq!(p.authorization_value(), Some("Basic dXNlcjpwYXNz"));
        assert!(!format!("{p:?}").contains("dXNlcjpwYXNz"), "credentials are not printed");
    }

    async fn tunnel_with_answer(
        answer: &'static [u8],
    ) -> (Result<Box<dyn crate::Io>, crate::Error>, String) {
        let (client, mut proxy) = tokio::io::duplex(4096);
        let target = Origin::new(Scheme::Https, "::1", 8443);
        let p = Proxy::new(Origin::new(Scheme::Http, "p", 3128)).basic_auth("u", "p");
        let peer = tokio::spawn(async move {
            let mut seen = Vec::new();
            while !seen.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                proxy.read_exact(&mut byte).await.unwrap();
                seen.push(byte[0]);
            }
            proxy.write_all(answer).await.unwrap();
            (String::from_utf8(seen).unwrap(), proxy)
        });
        let tunnel = connect_tunnel(Box::new(client), &target, &p).await;
        let (seen, _proxy) = peer.await.unwrap();
        (tunnel, seen)
    }

    #[tokio::test]
    async fn bytes_after_the_connect_head_belong_to_the_tunnel() {
        let (tunnel, seen) =
            tunnel_with_answer(b"HTTP/1.1 200 Connection established\r\n\r\nEXTRA").await;
        assert_eq!(
            seen,
            "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\
             Proxy-Authorization: Basic dTpw\r\n\r\n"
        );
        let mut got = [0u8; 5];
        tunnel.unwrap().read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"EXTRA");
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_proxy_error_with_its_status() {
        let (tunnel, _) = tunnel_with_answer(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Content-Length: 5\r\n\r\n\x16\x03\x01xx",
        )
        .await;
        let err = tunnel.err().unwrap();
        assert!(err.is_proxy() && err.is_connect(), "{err:?}");
        assert_eq!(err.proxy_status(), Some(407));
    }
}
