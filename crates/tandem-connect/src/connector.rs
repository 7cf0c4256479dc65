//! The connector and its pool.
//!
//! FIRST VERSION: plain TCP, no pooling beyond an idle list per origin. The pool's limits,
//! the DNS cache, TLS and proxies are being built behind this same API.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use crate::{
    Origin, Scheme,
    error::{Error, Kind},
};

/// aiohttp's `limit`: at most 100 connections in all (0 means no limit).
pub const DEFAULT_LIMIT: usize = 100;
/// aiohttp's `limit_per_host`: no per-origin limit by default (0).
pub const DEFAULT_LIMIT_PER_HOST: usize = 0;
/// aiohttp's `keepalive_timeout` for idle pooled connections: 15 s.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// A byte stream a connection runs over: TCP, TLS over TCP, or a Unix socket.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Opens and pools connections: aiohttp's `TCPConnector`. Cheap to clone; clones share the
/// pool.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    idle: Mutex<HashMap<Origin, Vec<Box<dyn Io>>>>,
    force_close: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("force_close", &self.inner.force_close)
            .finish_non_exhaustive()
    }
}

impl Default for Connector {
    fn default() -> Self {
        ConnectorBuilder::default().build()
    }
}

/// Settings for a [`Connector`].
#[derive(Clone, Debug, Default)]
pub struct ConnectorBuilder {
    force_close: bool,
}

impl ConnectorBuilder {
    /// Closes every connection after one request instead of pooling it.
    #[must_use]
    pub fn force_close(mut self, yes: bool) -> Self {
        self.force_close = yes;
        self
    }

    /// The connector.
    pub fn build(self) -> Connector {
        Connector {
            inner: Arc::new(Inner {
                idle: Mutex::new(HashMap::new()),
                force_close: self.force_close,
            }),
        }
    }
}

impl Connector {
    /// A connector with aiohttp's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings for a connector.
    pub fn builder() -> ConnectorBuilder {
        ConnectorBuilder::default()
    }

    /// A connection to `origin`: an idle pooled one if there is one, else a new one.
    pub async fn connect(&self, origin: &Origin) -> Result<Connection, Error> {
        let idle = self.inner.idle.lock().ok().and_then(|mut idle| idle.get_mut(origin)?.pop());
        if let Some(io) = idle {
            return Ok(Connection {
                io,
                origin: origin.clone(),
                connector: self.clone(),
                reused: true,
            });
        }
        if origin.scheme() == Scheme::Https {
            return Err(Error::new(Kind::Unsupported, "https is not supported yet"));
        }
        let stream = TcpStream::connect((origin.host(), origin.port()))
            .await
            .map_err(|e| Error::new(Kind::Connect, e))?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            io: Box::new(stream),
            origin: origin.clone(),
            connector: self.clone(),
            reused: false,
        })
    }
}

/// One connection from a [`Connector`]. Dropping it closes it; [`release`](Self::release)
/// gives it back to the pool.
pub struct Connection {
    io: Box<dyn Io>,
    origin: Origin,
    connector: Connector,
    reused: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("origin", &self.origin)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The byte stream.
    pub fn io(&mut self) -> &mut (dyn Io + 'static) {
        &mut *self.io
    }

    /// The origin it goes to.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether it came from the pool (and so may have been closed by the server meanwhile:
    /// a client retries a request that fails on a reused connection before any response).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Gives the connection back for reuse. Call it only when the last response's body was
    /// read to its end and the response allowed keep-alive.
    pub fn release(self) {
        if self.connector.inner.force_close {
            return;
        }
        if let Ok(mut idle) = self.connector.inner.idle.lock() {
            idle.entry(self.origin).or_default().push(self.io);
        }
    }
}
