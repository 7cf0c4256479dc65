//! Tandem's web server: aiohttp's `web` module for Rust.
//!
//! Build an [`Application`] with routes, middlewares and signals, then serve it with
//! [`run_app`] (blocking, like aiohttp's) or an [`AppRunner`] inside your own runtime.
//! Requests are framed by `tandem-proto`, whose aiohttp-strict parser decides what reaches a
//! handler: a malformed request gets a 4xx and the connection is closed, and nothing after
//! it is dispatched.
//!
//! ```no_run
//! use tandem_server::{Application, Request, Response, run_app};
//!
//! async fn hello(req: Request) -> Response {
//!     let name = req.match_info("name").unwrap_or("Anonymous");
//!     Response::text(format!("Hello, {name}"))
//! }
//!
//! let mut app = Application::new();
//! app.add_get("/", hello);
//! app.add_get("/{name}", hello);
//! run_app(app, "127.0.0.1", 8080).unwrap();
//! ```

mod app;
mod compression;
mod cookies;
mod error;
mod file_response;
mod handler;
mod inflate;
mod multipart;
mod payload;
mod request;
mod response;
mod router;
mod server;
mod static_files;
mod upgrade;

pub use app::{App, Application, DEFAULT_CLIENT_MAX_SIZE, RouteRef, RouteTable};
pub use cookies::CookieOptions;
pub use error::{Error, HttpError};
pub use file_response::{DEFAULT_FILE_CHUNK_SIZE, FileResponse, file_response};
pub use handler::{BoxFuture, Handler, Middleware, Next};
pub use multipart::{
    FileField, Form, FormValue, MAX_BOUNDARY_LEN, MAX_PART_HEAD, MultipartReader, Part,
};
pub use payload::Payload;
pub use request::Request;
pub use response::{Body, BodyStream, IntoResponse, Response, json_response};
pub use server::{
    AppRunner, DEFAULT_HEAD_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT,
    FLUSH_BYTES, MAX_DRAIN, MAX_PIPELINED_RESPONSES, RunOptions, ServerConfig, run_app,
};
pub use static_files::StaticOptions;
pub use upgrade::Upgraded;
