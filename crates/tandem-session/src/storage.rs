//! The storage interface: where a session's data lives between requests.

use std::{future::Future, pin::Pin};

use serde_json::{Map, Value};

use crate::Error;

/// The boxed future a [`Storage`] returns.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A session as a storage keeps it: `aiohttp_session`'s `{"created": ..., "session": {...}}`.
///
/// Non-exhaustive, so that a new field is not a breaking change: a [`Storage`] of your own
/// builds one with [`Stored::new`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stored {
    /// The session id, for storages that keep sessions server-side; `None` in a cookie.
    pub identity: Option<String>,
    /// When the session was created, in seconds since the Unix epoch.
    pub created: u64,
    /// The session's values.
    pub data: Map<String, Value>,
}

impl Stored {
    /// A session as stored: its id (if the storage keeps sessions server-side), when it was
    /// created (seconds since the Unix epoch), and its values.
    pub fn new(identity: Option<String>, created: u64, data: Map<String, Value>) -> Self {
        Stored { identity, created, data }
    }
}

/// Where sessions live: `aiohttp_session`'s `AbstractStorage`, without the cookie handling,
/// which [`crate::SessionMiddleware`] does the same way for every storage.
///
/// A storage turns the session cookie's value into a session and back. It must treat the
/// value as hostile: anything it cannot open is `Ok(None)`, a fresh session, never a panic
/// and never an error (errors are for a failing backend).
pub trait Storage: Send + Sync + 'static {
    /// Opens the session the cookie value names or holds; `Ok(None)` if there is none.
    fn load<'a>(&'a self, cookie: &'a str) -> StorageFuture<'a, Option<Stored>>;

    /// Saves `session` and returns the cookie value that finds it again. A storage that
    /// keeps sessions server-side gives a session without an identity a new random one and
    /// returns it.
    fn save<'a>(&'a self, session: &'a Stored) -> StorageFuture<'a, String>;

    /// Forgets the session with this identity (a log-in's old id, an invalidated session).
    /// The default does nothing, right for a storage that keeps sessions in the cookie.
    fn delete<'a>(&'a self, identity: &'a str) -> StorageFuture<'a, ()> {
        let _ = identity;
        Box::pin(async { Ok(()) })
    }

    /// Whether the backend answers now, for a health check
    /// ([`check_storage`](crate::check_storage)); an error is [`Error::is_storage`]. The
    /// default, right for a storage with no backend, always succeeds.
    fn check(&self) -> StorageFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}
