//! aiohttp's `UnixConnector`: every origin is dialled at one Unix socket path, while requests
//! still carry the origin's host (for `Host`, cookies and TLS names) and pool by origin.

use std::path::Path;

use crate::{
    Io,
    error::{Error, Kind},
};

/// Opens the socket at `path`.
#[cfg(unix)]
pub(crate) async fn connect(path: &Path) -> Result<Box<dyn Io>, Error> {
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| Error::new(Kind::Connect, format!("{}: {e}", path.display())))?;
    Ok(Box::new(stream))
}

/// Unix sockets exist only on Unix.
#[cfg(not(unix))]
pub(crate) async fn connect(path: &Path) -> Result<Box<dyn Io>, Error> {
    Err(Error::new(
        Kind::Unsupported,
        format!("{}: Unix sockets are not supported here", path.display()),
    ))
}
