//! Sessions for Tandem servers: `aiohttp_session` for Rust.
//!
//! Install a [`SessionMiddleware`] on the [`Application`](tandem_web::Application) with a
//! storage, then call [`get_session`] in a handler. A session is a map of JSON values; it is
//! loaded on the first [`get_session`] of a request (a request that never asks pays
//! nothing) and saved after the handler returns if it changed.
//!
//! ```no_run
//! use tandem_web::{Application, Request, Response};
//! use tandem_session::{CookieStorage, SessionMiddleware, get_session};
//!
//! async fn counter(req: Request) -> Result<Response, tandem_web::Error> {
//!     let session = get_session(&req).await?;
//!     let visits = session.get_as::<u64>("visits").unwrap_or(0) + 1;
//!     session.insert("visits", visits);
//!     Ok(Response::text(format!("visit {visits}")))
//! }
//!
//! let mut app = Application::new();
//! let secret = b"a secret of at least thirty-two bytes, from configuration";
//! app.middleware(SessionMiddleware::new(CookieStorage::new(secret)?));
//! app.add_get("/", counter);
//! # Ok::<(), tandem_session::Error>(())
//! ```
//!
//! Two storages come with it:
//!
//! - [`CookieStorage`], the default: the whole session sealed into the cookie with
//!   AES-256-GCM (`aiohttp_session`'s `EncryptedCookieStorage`). It needs no server, and a
//!   cookie that was tampered with, sealed under another key, or is plain garbage opens as a
//!   fresh empty session.
//! - [`RedisStorage`]: the cookie holds only a random session id, and the session lives in
//!   Redis under a key prefix with a TTL, so several instances behind a load balancer share
//!   it.
//!
//! When the storage fails (Redis is down), [`get_session`]'s error converts into a
//! `503 Service Unavailable` for the handler's `?`, and so does a session that cannot be
//! saved after the handler: requests that need a session fail at once, clearly, and succeed
//! again as soon as the storage answers, without a restart. [`check_storage`] asks the
//! storage whether it answers, for a `/healthz` route.
//!
//! Log-ins should call [`new_session`]: it starts a session under a new id and deletes the
//! old record, so an id planted before log-in (session fixation) is worth nothing after.

mod cookie_storage;
mod error;
mod middleware;
mod redis_storage;
pub mod security;
mod session;
mod storage;

pub use cookie_storage::{CookieStorage, DEFAULT_MAX_COOKIE_SIZE, MIN_SECRET_LEN};
pub use error::Error;
pub use middleware::{
    DEFAULT_COOKIE_NAME, SessionMiddleware, check_storage, default_cookie_options, get_session,
    new_session, setup,
};
pub use redis_storage::{
    DEFAULT_KEY_PREFIX, DEFAULT_REDIS_CONNECT_TIMEOUT, DEFAULT_REDIS_RESPONSE_TIMEOUT, DEFAULT_TTL,
    RedisStorage,
};
pub use session::Session;
pub use storage::{Storage, StorageFuture, Stored};

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
