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

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::BytesMut;
use tandem_proto::ResponseParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        let token = STANDARD.encode(format!("{user}:{password}").as_bytes());
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
    Ok(Box::new(tandem_io::Rewind::new(io, buf)))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Proxy, connect_tunnel};
    use crate::{Origin, Scheme};

    #[test]
    fn basic_credentials_are_base64_and_never_printed() {
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
