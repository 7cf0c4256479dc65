//! Tandem: aiohttp for Rust.
//!
//! One async framework for both sides of HTTP: a client session, a web server with routing
//! and middleware, and WebSockets on both. This crate is the facade users depend on; it
//! re-exports the layered crates below it, each of which is also usable on its own.
//!
//! | module | crate | what it holds | feature |
//! |---|---|---|---|
//! | [`web`] | `tandem-web` | `Application`, routes, `Request`, `Response`, middleware, signals, `run_app` | `server` |
//! | [`client`] | `tandem-client` | `ClientSession`, requests, responses, cookies, timeouts, the connector | `client` |
//! | [`connect`] | `tandem-connect` | the connector on its own: DNS, TCP, TLS, proxies, the pool | `client` |
//! | `ws` | `tandem-ws` | WebSockets for handlers and sessions | `ws` |
//! | [`test`](mod@test) | this crate | [`TestClient`](test::TestClient): an app on a loopback port and a session for it | `client` + `server` |
//! | [`proto`] | `tandem-proto` | the sans-IO HTTP/1.1 wire protocol | always |
//! | [`http`] | `http` | the shared vocabulary: `Method`, `StatusCode`, `HeaderMap`, `Uri` | always |
//! | [`bytes`] | `bytes` | `Bytes` and `BytesMut` | always |
//!
//! [`prelude`] imports the names nearly every program uses.
//!
//! # A tour
//!
//! ## A server
//!
//! An [`Application`](web::Application) maps routes to handlers, which are async functions
//! from a [`Request`](web::Request) to anything that becomes a
//! [`Response`](web::Response). [`run_app`](web::run_app) serves it until Ctrl+C:
//!
//! ```no_run
//! use tandem_http::prelude::*;
//!
//! async fn hello(req: Request) -> Response {
//!     let name = req.match_info("name").unwrap_or("Anonymous");
//!     Response::text(format!("Hello, {name}"))
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     let mut app = Application::new();
//!     app.add_get("/", hello);
//!     app.add_get("/hello/{name}", hello);
//!     run_app(app, "127.0.0.1", 8080)?;
//!     Ok(())
//! }
//! ```
//!
//! ## A client
//!
//! A [`ClientSession`] owns a connection pool and a cookie jar; make one per program, not one
//! per request. Responses are read on demand:
//!
//! ```no_run
//! use tandem_http::ClientSession;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tandem_http::client::Error> {
//! let session = ClientSession::new();
//! let mut resp = session.get("http://127.0.0.1:8080/hello/tandem").send().await?;
//! println!("{} {}", resp.status(), resp.text().await?);
//! # Ok(()) }
//! ```
//!
//! ## Both at once: testing
//!
//! [`TestClient`](test::TestClient) serves an application on a free loopback port and hands
//! back a session whose relative URLs go to it, so a test exercises the real server and the
//! real client. This one runs as a doc test:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tandem_http::prelude::*;
//! use tandem_http::test::TestClient;
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Sum {
//!     total: i64,
//! }
//!
//! async fn add(mut req: Request) -> Result<Response, tandem_http::web::Error> {
//!     let numbers: Vec<i64> = req.json().await?;
//!     Ok(json_response(&Sum { total: numbers.iter().sum() }))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut app = Application::new();
//! app.add_post("/add", add);
//! let client = TestClient::new(app).await?;
//!
//! let mut resp = client.post("/add").json(&[1, 2, 39]).send().await?;
//! assert_eq!(resp.json::<Sum>().await?, Sum { total: 42 });
//!
//! // A body that is not JSON is the client's fault: 400, not a crash.
//! let resp = client.post("/add").body("one, two").send().await?;
//! assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! ## Middleware and errors
//!
//! Handlers may return `Result<_, tandem_http::web::Error>`, `anyhow::Result<_>` or
//! `Result<_, Box<dyn Error + Send + Sync>>`, so `?` works inside: an
//! [`HttpError`](web::HttpError) is answered with its status, anything else with a 500
//! whose details stay in the log. Every Tandem error implements `std::error::Error`, so `?`
//! carries it on into `anyhow` or a boxed error from `main`. Middlewares wrap every handler of an application:
//!
//! ```
//! use tandem_http::prelude::*;
//! use tandem_http::test::TestClient;
//!
//! async fn error_pages(req: Request, next: Next) -> Response {
//!     let response = next.run(req).await;
//!     if response.status() == StatusCode::NOT_FOUND {
//!         return Response::html("<h1>Nothing here</h1>").with_status(StatusCode::NOT_FOUND);
//!     }
//!     response
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut app = Application::new();
//! app.middleware(error_pages);
//! app.add_get("/", |_req: Request| async { "home" });
//! let client = TestClient::new(app).await?;
//! let mut resp = client.get("/missing").send().await?;
//! assert_eq!(resp.status(), 404);
//! assert_eq!(resp.text().await?, "<h1>Nothing here</h1>");
//! # client.close().await;
//! # Ok(()) }
//! ```
//!
//! ## The wire protocol alone
//!
//! [`proto`] parses and writes HTTP/1.1 without any IO, so it works in any runtime, or none:
//!
//! ```
//! use tandem_http::bytes::BytesMut;
//! use tandem_http::proto::RequestParser;
//!
//! let mut buf = BytesMut::from(&b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n"[..]);
//! let head = RequestParser::new().parse(&mut buf)?.expect("a whole head");
//! assert_eq!(head.method(), "GET");
//! # Ok::<(), tandem_http::proto::Error>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `client` | yes | [`client`], [`connect`], [`ClientSession`] |
//! | `server` | yes | [`web`] |
//! | `ws` | yes | `ws`, on the sides that are on: `ws_connect` with `client`, `WebSocketResponse` with `server`, and `WebSocket::from_raw_socket` either way |
//! | `tls` | yes | https in the client: rustls on ring with the webpki roots, `TlsConfig`'s builder, certificate pins. Without it an https URL fails with "TLS support not compiled in (enable the `tls` feature)". |
//! | `dns` | no | custom nameservers for the client's connector (hickory), an extra as aiohttp's aiodns is. Without it names go to the system resolver (`getaddrinfo`) only; the DNS cache works the same. |
//! | `http2` | yes | HTTP/2 in the server (`h2`): h2c by prior knowledge and h2 over TLS by ALPN. Without it every connection is HTTP/1.1 (the h2c preface gets a 400, TLS offers only http/1.1) and `Http2Config` limits nothing. |
//! | `multipart` | yes | the server's multipart forms (multer; part charsets by `encoding_rs`; uploads spooled to temporary files): `Request::multipart`, `MultipartReader`, and `post()` of `multipart/form-data`. Without it such a `post()` is a 415; urlencoded forms are unaffected. |
//! | `anyhow` | yes | handlers may return `anyhow::Result<_>`: `From<anyhow::Error>` for [`web::Error`], keeping an `HttpError`'s status. |
//! | `compression` | yes | the client's decoding of gzip, deflate, br and zstd bodies; the server's `enable_compression` (br, gzip, deflate) and compressed request bodies. Without it the client sends `Accept-Encoding: identity` and hands an encoded body over as it came, as aiohttp with `auto_decompress=False`; the server's `enable_compression` does nothing and a request body in any coding but identity gets 415. Precompressed static files (`.br`, `.gz`) are served either way. |
//!
//! [`test`](mod@test) needs `client` and `server`. With `default-features = false` only [`proto`],
//! [`http`] and [`bytes`] remain. `tls`, `dns`, `compression`, `http2` and `multipart` refine
//! the client and the server and turn neither on by themselves: `features = ["client", "tls"]`
//! is an https client without hickory or decoders, and `features = ["server"]` an HTTP/1.1
//! server without multipart, compression or TLS, the lightest build. WebSocket
//! permessage-deflate is part of `ws`, whatever `compression` says.
//!
//! # The guide
//!
//! `docs/guide/` in the repository follows aiohttp's: client quickstart, client advanced,
//! server quickstart, server advanced, WebSockets, testing, deployment. Its Rust examples are
//! compiled as doc tests (by the repository's `tests/docs` crate). `examples/` holds every
//! snippet of aiohttp's tutorials as a runnable program.

#[doc(no_inline)]
pub use bytes;
#[doc(no_inline)]
pub use http;
#[doc(inline)]
pub use tandem_proto as proto;

/// The HTTP client: aiohttp's `ClientSession` and friends (`tandem-client`), named one by
/// one rather than by glob, so that what `tandem-client` adds is a choice here too.
#[cfg(feature = "client")]
pub mod client {
    #[doc(inline)]
    pub use tandem_client::{
        Body, BoxError, BoxFuture, ClientNext, ClientRequest, ClientResponse, ClientSession,
        ClientSessionBuilder, ClientTimeout, Connector, ConnectorBuilder, Content,
        ContentDisposition, CookieJar, DigestAuth, Error, FaultError, FaultInjection, FormData,
        HarRecorder, HarReplay, Http2, Link, Middleware, Origin, Phase, Proxy, ProxyEnv,
        RequestBuilder, RequestInfo, ResponseInfo, Retry, RetryBudget, Scheme, Timings, TlsConfig,
        Trace, TraceRequestCtx, USER_AGENT, Upgraded, Url, parse_proxy_url, request,
    };
    #[doc(inline)]
    pub use tandem_client::{BodyPart, Compression, MultipartReader, MultipartWriter};
    /// What a response's or WebSocket's `connection_info()` tells.
    #[doc(inline)]
    pub use tandem_client::{ConnectionInfo, TlsInfo};
    /// Pins for [`TlsConfig`]: a leaf certificate's digest (aiohttp's), or public keys.
    #[cfg(feature = "tls")]
    #[doc(inline)]
    pub use tandem_client::{Fingerprint, SpkiPin};
    /// The client's defaults, each with the setting that changes it.
    pub mod defaults {
        #[doc(inline)]
        pub use tandem_client::{
            DEFAULT_BROTLI_WINDOW_LOG_MAX, DEFAULT_CEIL_THRESHOLD, DEFAULT_EXPECT_CONTINUE_TIMEOUT,
            DEFAULT_MAX_DECOMPRESSED_SIZE, DEFAULT_MAX_FIELD_SIZE, DEFAULT_MAX_HEADERS,
            DEFAULT_MAX_LINE_SIZE, DEFAULT_MAX_REDIRECTS, DEFAULT_READ_BUFSIZE,
            DEFAULT_RETRY_STATUSES, DEFAULT_SOCK_CONNECT_TIMEOUT, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            DEFAULT_ZSTD_WINDOW_LOG_MAX,
        };
    }
}

#[cfg(feature = "client")]
#[doc(inline)]
pub use tandem_client::{ClientSession, request};

/// The connector on its own (`tandem-connect`): aiohttp's `TCPConnector`, with its pool
/// statistics, DNS cache and TLS settings. [`client`] re-exports what a session needs.
#[cfg(feature = "client")]
#[doc(inline)]
pub use tandem_connect as connect;

/// The web server: aiohttp's `web` module (`tandem-web`), named one by one rather than by
/// glob, so that what `tandem-web` adds is a choice here too.
#[cfg(feature = "server")]
pub mod web {
    #[doc(inline)]
    pub use tandem_web::context;
    #[doc(inline)]
    pub use tandem_web::{
        AccessLog, AccessLogFormat, AccessLogWriter, App, AppRunner, Application, Body, BodyStream,
        BoxError, BoxFuture, ByteRange, CookieOptions, Cors, CorsOptions, CustomResource, ETag,
        ETagList, Error, ErrorFormat, ErrorRenderer, FileField, FileResponse, Form, FormValue,
        ForwardedElement, Handler, HeaderList, Http2Config, HttpError, IfRange, IntoListener,
        IntoResponse, Middleware, Next, NormalizePath, Overrides, Payload, ProxyHeaders, Request,
        Response, RouteInfo, RouteRef, RouteTable, RunOptions, Serve, Server, ServerConfig,
        ServiceBody, SiteAddr, StaticOptions, StreamResponse, TlsInfo, TrustedProxies, Upgraded,
        View, escape_html, file_response, json_response, run_app, serve,
    };
    #[cfg(feature = "tls")]
    #[doc(inline)]
    pub use tandem_web::{ClientAuth, Identity, TlsConfig, TlsConfigBuilder};
    #[cfg(feature = "multipart")]
    #[doc(inline)]
    pub use tandem_web::{MultipartReader, Part};
    /// The server's defaults and limits, each with the setting that changes it.
    pub mod defaults {
        #[doc(inline)]
        pub use tandem_web::{
            DEFAULT_ACCESS_LOG_FORMAT, DEFAULT_BACKLOG, DEFAULT_BODY_TIMEOUT,
            DEFAULT_BROTLI_WINDOW_LOG_MAX, DEFAULT_CLIENT_MAX_SIZE, DEFAULT_FILE_CHUNK_SIZE,
            DEFAULT_H2_CONNECTION_WINDOW, DEFAULT_H2_MAX_CONCURRENT_RESET_STREAMS,
            DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS,
            DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS, DEFAULT_H2_MAX_SEND_BUFFER_SIZE,
            DEFAULT_H2_STREAM_WINDOW, DEFAULT_HEAD_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT,
            DEFAULT_LINGERING_TIME, DEFAULT_MAX_FORM_FIELDS, DEFAULT_MAX_FORM_FILES,
            DEFAULT_MAX_FORWARDED_ELEMENTS, DEFAULT_MAX_REQUEST_COOKIES, DEFAULT_READ_BUFSIZE,
            DEFAULT_SEND_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, MAX_DRAIN, SPARE_BUFFERS,
        };
        #[cfg(feature = "multipart")]
        #[doc(inline)]
        pub use tandem_web::{MAX_BOUNDARY_LEN, MAX_PART_HEAD};
    }
}

/// WebSockets on both sides (`tandem-ws`).
#[cfg(feature = "ws")]
#[doc(inline)]
pub use tandem_ws as ws;

#[cfg(all(feature = "client", feature = "server"))]
pub mod test;

/// The names nearly every Tandem program uses: `use tandem_http::prelude::*;`.
pub mod prelude {
    #[doc(no_inline)]
    pub use http::{Method, StatusCode};

    #[cfg(feature = "client")]
    #[doc(no_inline)]
    pub use tandem_client::ClientSession;

    #[cfg(feature = "server")]
    #[doc(no_inline)]
    pub use tandem_web::{
        Application, HttpError, IntoResponse, Next, Request, Response, RouteTable, json_response,
        run_app,
    };

    #[cfg(feature = "ws")]
    #[doc(no_inline)]
    pub use tandem_ws::Message;

    #[cfg(all(feature = "ws", feature = "server"))]
    #[doc(no_inline)]
    pub use tandem_ws::WebSocketResponse;

    #[cfg(all(feature = "ws", feature = "client"))]
    #[doc(no_inline)]
    pub use tandem_ws::WsConnectExt;
}

/// README.md's example, compiled as a doc test so that it stays true. The repository's
/// README and guide are compiled by the unpublished `tests/docs` crate: a package holds only
/// what is inside its own folder.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
