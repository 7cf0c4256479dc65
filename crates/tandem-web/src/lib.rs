//! Tandem's web server: aiohttp's `web` module for Rust.
//!
//! Build an [`Application`] with routes, middlewares and signals, then serve it with
//! [`run_app`] (blocking, like aiohttp's), by awaiting [`serve`] inside your own runtime
//! (`#[tokio::main]`), or with an [`AppRunner`] for finer control.
//! Requests are framed by `tandem-proto`, whose aiohttp-strict parser decides what reaches a
//! handler: a malformed request gets a 4xx and the connection is closed, and nothing after
//! it is dispatched.
//!
//! ```no_run
//! use tandem_web::{Application, Request, Response, run_app};
//!
//! async fn hello(req: Request) -> Response {
//!     let name = req.match_info("name").unwrap_or("Anonymous");
//!     Response::text(format!("Hello, {name}"))
//! }
//!
//! fn main() -> Result<(), tandem_web::Error> {
//!     let mut app = Application::new();
//!     app.add_get("/", hello);
//!     app.add_get("/{name}", hello);
//!     run_app(app, "127.0.0.1", 8080)
//! }
//! ```
//!
//! Inside a runtime of your own, [`AppRunner`] serves the same application; this one
//! listens on a free loopback port and answers a request written by hand:
//!
//! ```
//! use tandem_web::{AppRunner, Application, Request, Response};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut app = Application::new();
//! app.add_get("/hello/{name}", |req: Request| async move {
//!     Response::text(format!("Hello, {}", req.match_info("name").unwrap_or("")))
//! });
//! let mut runner = AppRunner::new(app)?;
//! runner.setup().await?;
//! let addr = runner.tcp_site("127.0.0.1", 0).await?;
//!
//! let mut stream = tokio::net::TcpStream::connect(addr).await?;
//! stream.write_all(b"GET /hello/tandem HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! stream.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
//! assert!(response.ends_with("\r\n\r\nHello, tandem"), "{response}");
//!
//! // Graceful: shutdown signals, requests in flight finished, then cleanup.
//! assert!(runner.cleanup().await);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! `compression` (default on) builds flate2 and brotli for
//! [`Response::enable_compression`] (br, gzip, deflate) and for compressed request bodies.
//! Without it `enable_compression` does nothing and a request body in any coding but
//! `identity` is refused with 415; precompressed static files (`.br`, `.gz`) are served
//! either way.
//!
//! `anyhow` (default on) converts `anyhow::Error` into [`Error`], so a handler may return
//! `anyhow::Result<_>`; an [`HttpError`] inside it keeps its status.
//!
//! `http2` (default on) builds HTTP/2 on the `h2` crate: h2c by prior knowledge, and h2
//! over TLS by ALPN. Without it every connection is HTTP/1.1 and [`Http2Config`] limits
//! nothing.
//!
//! `multipart` (default on) builds multipart forms on multer: `Request::multipart` and
//! `post()` of `multipart/form-data` (uploads spooled to temporary files, part charsets by
//! `encoding_rs`). Without it `post()` answers a multipart form with 415.

mod app;
mod charset;
mod compression;
mod conditional;
pub mod context;
mod cookies;
mod cors;
mod custom_resource;
mod error;
mod expect;
mod extract;
mod file_cache;
mod file_response;
mod form;
mod forwarded;
mod handler;
mod header_params;
mod inflate;
mod log;
mod low_level;
#[cfg(feature = "multipart")]
mod multipart;
mod normalize_path;
mod payload;
mod proxies;
mod range;
mod render;
mod request;
mod response;
mod router;
mod server;
mod service;
mod static_files;
mod stream_response;
mod upgrade;
mod views;

pub use app::{
    App, Application, DEFAULT_CLIENT_MAX_SIZE, DEFAULT_MAX_FORM_FIELDS, DEFAULT_MAX_FORM_FILES,
    RouteRef, RouteTable,
};
pub use conditional::{ETag, ETagList, IfRange};
pub use cookies::{CookieOptions, DEFAULT_MAX_REQUEST_COOKIES};
pub use cors::{Cors, CorsOptions, HeaderList, MethodList};
pub use custom_resource::CustomResource;
pub use error::{Error, HttpError};
pub use expect::ExpectHandler;
pub use file_cache::{OPEN_FILE_CACHE_ENTRIES, SMALL_FILE_BYTES};
pub use file_response::{DEFAULT_FILE_CHUNK_SIZE, FileResponse, file_response};
pub use form::{FileField, Form, FormValue};
pub use forwarded::{DEFAULT_MAX_FORWARDED_ELEMENTS, ForwardedElement};
pub use handler::{BoxFuture, Handler, Middleware, Next};
pub use low_level::Server;
#[cfg(feature = "multipart")]
pub use multipart::{MAX_BOUNDARY_LEN, MAX_PART_HEAD, MultipartReader, Part};
pub use normalize_path::NormalizePath;
pub use payload::{BoxError, Payload};
pub use proxies::{ProxyHeaders, TrustedProxies};
pub use range::ByteRange;
pub use render::{ErrorFormat, ErrorRenderer};
pub use request::{Overrides, Request};
pub use response::{Body, BodyStream, IntoResponse, Response, json_response};
pub use router::RouteInfo;
pub use server::{
    AccessLog, AccessLogFormat, AccessLogWriter, AppRunner, DEFAULT_ACCESS_LOG_FORMAT,
    DEFAULT_BACKLOG, DEFAULT_BODY_TIMEOUT, DEFAULT_HEAD_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_LINGERING_TIME, DEFAULT_SEND_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, IntoListener,
    MAX_DRAIN, RunOptions, SPARE_BUFFERS, Serve, ServerConfig, SiteAddr, TlsInfo, run_app, serve,
};
#[cfg(feature = "tls")]
pub use server::{ClientAuth, Identity, TlsConfig, TlsConfigBuilder};
pub use server::{
    DEFAULT_H2_CONNECTION_WINDOW, DEFAULT_H2_MAX_CONCURRENT_RESET_STREAMS,
    DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS,
    DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS, DEFAULT_H2_MAX_SEND_BUFFER_SIZE,
    DEFAULT_H2_STREAM_WINDOW, DEFAULT_READ_BUFSIZE, Http2Config,
};
pub use service::ServiceBody;
pub use static_files::{StaticOptions, escape_html};
pub use stream_response::StreamResponse;
/// The largest window a `br` request body may declare by default
/// ([`Application::brotli_window_log_max`]); the client's default too.
pub use tandem_io::DEFAULT_BROTLI_WINDOW_LOG_MAX;
pub use upgrade::Upgraded;
pub use views::View;

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
