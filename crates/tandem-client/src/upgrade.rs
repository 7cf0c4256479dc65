//! Taking a connection over after `101 Switching Protocols`: the hook `ws_connect` uses.

#[cfg(doc)]
use tandem_connect::ConnectionInfo;

use crate::{
    ClientResponse,
    error::{Error, Kind},
};

pub use tandem_io::Upgraded;

impl ClientResponse {
    /// Takes the connection over after a `101 Switching Protocols`. The bytes the server sent
    /// right after its 101 are read first; the connection's [`ConnectionInfo`] is in the
    /// [`Upgraded`]'s extensions.
    ///
    /// A 101 is accepted only for a request that carried an `Upgrade` field; any other status
    /// is an error of kind response, and the connection is closed.
    pub fn upgrade(self) -> Result<Upgraded, Error> {
        let status = self.status();
        self.into_raw()
            .into_upgraded()
            .map(|(conn, buffered)| {
                // The connection keeps its slot in the connector's limits until the upgraded
                // stream is dropped, as aiohttp counts WebSocket connections against `limit`.
                let info = conn.info().clone();
                let mut upgraded = Upgraded::new(conn, buffered);
                upgraded.extensions_mut().insert(info);
                upgraded
            })
            .ok_or_else(|| {
                Error::new(
                    Kind::Response,
                    format!("expected 101 Switching Protocols, got {status}"),
                )
            })
    }
}
