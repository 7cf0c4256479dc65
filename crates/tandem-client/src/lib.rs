//! Tandem's HTTP client: `ClientSession`, in the manner of aiohttp's.
//!
//! A [`ClientSession`] holds a connection pool ([`Connector`]), a [`CookieJar`], default
//! headers and a [`ClientTimeout`]; its `get`, `post`, ... methods return a
//! [`RequestBuilder`], and `send` a [`ClientResponse`] whose body is read on demand. Requests
//! are written by `tandem-proto`'s encoder and responses read by its parser, which is
//! lenient where real servers need it and strict where smuggling lives. Over TLS a session
//! speaks HTTP/2 when the server chooses it by ALPN, on the `h2` crate, and by prior knowledge
//! (h2c) when asked ([`Http2`]); requests to one origin then share one connection as streams,
//! and nothing else changes in how they are made or read.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use tandem_client::{ClientSession, ClientTimeout};
//!
//! # async fn demo() -> Result<(), tandem_client::Error> {
//! let session = ClientSession::builder()
//!     .base_url("http://127.0.0.1:8080/api/")
//!     .header("x-client", "docs")
//!     .timeout(ClientTimeout::default().with_sock_read(Duration::from_secs(5)))
//!     .build();
//!
//! // Query pairs are multi-valued and encoded as aiohttp encodes them.
//! let mut resp = session.get("items").query(&[("tag", "a"), ("tag", "b c")]).send().await?;
//! let items: serde_json::Value = resp.json().await?;
//! println!("{} after {} redirects: {items}", resp.status(), resp.history().len());
//!
//! // Bodies: text, bytes, forms, JSON, or a stream.
//! let resp = session.post("items").json(&items).send().await?.error_for_status()?;
//!
//! // A large body, piece by piece; the connection is pooled again at its end.
//! let mut resp = session.get("export").send().await?;
//! while let Some(piece) = resp.content().chunk().await? {
//!     println!("{} bytes", piece.len());
//! }
//! # let _ = resp; Ok(()) }
//! ```
//!
//! The client on its own against a local server (here a Tandem one, on a free loopback
//! port), keeping the cookie the server sets:
//!
//! ```
//! use tandem_client::{ClientSession, CookieJar};
//! use tandem_web::{AppRunner, Application, Request, Response};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut app = Application::new();
//! app.add_get("/visit", |req: Request| async move {
//!     let seen = req.cookie("seen").is_some();
//!     let mut resp = Response::text(if seen { "welcome back" } else { "hello" });
//!     resp.set_cookie("seen", "1", &Default::default()).expect("a valid cookie");
//!     resp
//! });
//! let mut runner = AppRunner::new(app)?;
//! runner.setup().await?;
//! let addr = runner.tcp_site("127.0.0.1", 0).await?;
//!
//! // The default jar ignores IP hosts, as aiohttp's; this one keeps their cookies.
//! let session = ClientSession::builder()
//!     .base_url(&format!("http://{addr}/"))
//!     .cookie_jar(CookieJar::unsafe_hosts())
//!     .build();
//! assert_eq!(session.get("visit").send().await?.text().await?, "hello");
//! assert_eq!(session.get("visit").send().await?.text().await?, "welcome back");
//! runner.cleanup().await;
//! # Ok(()) }
//! ```
//!
//! Every failure is one [`Error`], whose predicates follow aiohttp's exception classes:
//! [`is_connect`](Error::is_connect), [`is_timeout`](Error::is_timeout) with a [`Phase`],
//! [`is_payload`](Error::is_payload), [`is_status`](Error::is_status),
//! [`is_invalid_url`](Error::is_invalid_url),
//! [`is_too_many_redirects`](Error::is_too_many_redirects),
//! [`is_disconnected`](Error::is_disconnected).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `tls` | on | https, through tandem-connect's `tls`. Without it [`TlsConfig`] cannot be built and an https URL fails to connect with "TLS support not compiled in (enable the `tls` feature)". |
//! | `dns` | on | custom nameservers on the [`Connector`], through tandem-connect's `dns`; without it, the system resolver only. |
//! | `compression` | on | decoding gzip, deflate, br and zstd bodies ([`ClientSessionBuilder::auto_decompress`]). Without it the session sends `Accept-Encoding: identity` and hands an encoded body over as it came, as aiohttp does with `auto_decompress=False`; the decompression settings have no effect. |

mod body;
mod body_encoding;
mod conn;
mod content;
mod cookie_rules;
mod cookies;
mod decompress;
mod digest;
mod error;
mod execute;
mod faults;
mod field_values;
mod file_body;
mod form;
mod har;
mod hop;
mod http2;
mod middleware;
mod multipart;
mod multipart_writer;
mod netrc;
mod oneshot;
mod read_limits;
mod redact;
mod redirect;
mod request;
mod response;
mod retry;
mod session;
mod status_check;
mod timeout;
mod timings;
mod trace;
mod upgrade;
mod wire;

pub use body_encoding::Compression;
pub use content::Content;
pub use cookie_rules::{
    DEFAULT_MAX_COOKIE_SIZE, DEFAULT_MAX_COOKIES, DEFAULT_MAX_COOKIES_PER_DOMAIN,
};
pub use cookies::CookieJar;
pub use decompress::{
    DEFAULT_BROTLI_WINDOW_LOG_MAX, DEFAULT_MAX_DECOMPRESSED_SIZE, DEFAULT_ZSTD_WINDOW_LOG_MAX,
};
pub use digest::DigestAuth;
pub use error::{Error, Phase};
pub use faults::{FaultError, FaultInjection};
pub use field_values::{ContentDisposition, Link};
pub use form::FormData;
pub use har::{HarRecorder, HarReplay};
pub use middleware::{BoxFuture, ClientNext, ClientRequest, Middleware};
pub use multipart::{BodyPart, MultipartReader};
pub use multipart_writer::MultipartWriter;
pub use oneshot::request;
pub use read_limits::{DEFAULT_MAX_INTERIM_RESPONSES, DEFAULT_READ_BUFSIZE};
pub use request::{Body, RequestBuilder};
pub use response::{ClientResponse, RequestInfo, ResponseInfo};
pub use retry::{DEFAULT_RETRY_STATUSES, Retry, RetryBudget};
pub use session::{
    BoxError, ClientSession, ClientSessionBuilder, DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    DEFAULT_MAX_REDIRECTS, USER_AGENT,
};
pub use tandem_connect::{ConnectionInfo, Origin, Scheme, TlsInfo};
pub use tandem_connect::{
    Connector, ConnectorBuilder, Http2, Proxy, ProxyEnv, TlsConfig, parse_proxy_url,
};
#[cfg(feature = "tls")]
pub use tandem_connect::{Fingerprint, SpkiPin};
/// The response head's limits: aiohttp's `max_line_size`, `max_field_size` and `max_headers`.
pub use tandem_proto::{DEFAULT_MAX_FIELD_SIZE, DEFAULT_MAX_HEADERS, DEFAULT_MAX_LINE_SIZE};
pub use timeout::{
    ClientTimeout, DEFAULT_CEIL_THRESHOLD, DEFAULT_SOCK_CONNECT_TIMEOUT,
    DEFAULT_TLS_HANDSHAKE_TIMEOUT,
};
pub use timings::Timings;
pub use trace::{Trace, TraceRequestCtx};
pub use upgrade::Upgraded;
/// The URL type of requests, responses and trace hooks (the `url` crate's).
pub use url::Url;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}

    fn response_is_send(r: ClientResponse) -> impl Send {
        r
    }

    /// Sessions are shared across tasks, and requests and responses move between them.
    #[test]
    fn types_cross_tasks() {
        let session = ClientSession::new();
        send_sync(&session);
        send_sync(&CookieJar::new());
        let request = session.get("http://example.com/");
        send(&request);
        send(&request.send());
        send_sync(&Error::bare(error::Kind::Payload));
        let _ = response_is_send;
    }
}

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
