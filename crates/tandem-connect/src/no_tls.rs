//! The `tls` module when the `tls` feature is off.
//!
//! [`TlsConfig`] stays, as a type with no value: every `tls(...)` setter, here and in the
//! crates built on this one, keeps its signature without a gate of its own, and simply cannot
//! be called. An https origin or https proxy fails when the connector asks for its default
//! settings, with an error saying how to get TLS back.

use std::{convert::Infallible, fmt};

use crate::{
    Http2, Io, TlsInfo,
    error::{Error, Kind},
};

/// TLS settings. Without the `tls` feature no value of this type can exist.
#[derive(Clone)]
pub struct TlsConfig {
    never: Infallible,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.never {}
    }
}

impl TlsConfig {
    pub(crate) fn id(&self) -> u64 {
        match self.never {}
    }
}

/// What a handshake would return: no TLS session can exist.
pub(crate) type TlsStream = Box<dyn Io>;

/// Always fails: there is nothing to build TLS settings with.
pub(crate) fn default_config(_verify_ssl: bool) -> Result<TlsConfig, Error> {
    Err(Error::new(Kind::Unsupported, "TLS support not compiled in (enable the `tls` feature)"))
}

/// Unreachable: there is no `TlsConfig` to call it with.
#[allow(clippy::unused_async, reason = "the connector awaits it, as it awaits the real one")]
pub(crate) async fn handshake(
    config: &TlsConfig,
    _host: &str,
    _io: Box<dyn Io>,
    _http2: Http2,
) -> Result<(TlsStream, TlsInfo), Error> {
    match config.never {}
}
