//! Taking over a connection after `101 Switching Protocols`: the hook WebSockets use.

use std::future::Future;

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use crate::{handler::BoxFuture, payload::ConnRead, server::Writer};

/// What a response's upgrade callback runs with.
pub(crate) type OnUpgrade = Box<dyn FnOnce(Upgraded) -> BoxFuture<()> + Send>;

pub use tandem_io::Upgraded;

/// The server's [`Upgraded`]: the connection's read half, with what was read past the
/// request head, and its write half, tied to the server's graceful shutdown.
pub(crate) fn upgraded(
    read: Box<dyn ConnRead>,
    buffered: BytesMut,
    write: Writer,
    shutdown: CancellationToken,
) -> Upgraded {
    Upgraded::new(tokio::io::join(read, write), buffered).with_shutdown(shutdown)
}

impl crate::Response {
    /// Makes this response switch protocols: once its head (status 101, with the `Upgrade`
    /// and `Connection` fields the handler set) is written, `f` runs with the raw connection.
    /// On any other status the callback is dropped and the response is sent as usual.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tandem_web::{Request, Response};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// async fn upgrade(_req: Request) -> Response {
    ///     Response::new(StatusCode::SWITCHING_PROTOCOLS)
    ///         .with_header("upgrade", "echo")
    ///         .with_header("connection", "upgrade")
    ///         .on_upgrade(|mut io| async move {
    ///             let _ = io.write_all(b"hello from the other protocol").await;
    ///         })
    /// }
    /// ```
    #[must_use]
    pub fn on_upgrade<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner.upgrade = Some(Box::new(move |io| Box::pin(f(io))));
        self
    }
}
