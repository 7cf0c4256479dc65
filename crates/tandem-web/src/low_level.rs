//! aiohttp's low-level server, `web.Server(handler)`: one handler for every request, with
//! no router, for a proxy, a mock, or a protocol of its own.

use std::sync::Arc;

use crate::{Application, Handler, handler::BoxHandler};

/// One handler that answers every request, whatever its method and path (aiohttp's
/// `web.Server`): no routes, no 404 or 405 of the framework's. It becomes an
/// [`Application`] to serve, so `run_app`, `serve` and `AppRunner` run it, and middlewares,
/// signals and state may still be added; a route added to it makes `freeze` fail.
///
/// ```
/// use tandem_web::{AppRunner, Request, Response, Server};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tandem_web::Error> {
/// let server = Server::new(|req: Request| async move {
///     Response::text(format!("{} {}", req.method(), req.path_qs()))
/// });
/// let mut runner = AppRunner::new(server.into())?;
/// runner.setup().await?;
/// let addr = runner.tcp_site("127.0.0.1", 0).await?;
/// # let _ = addr;
/// runner.cleanup().await;
/// # Ok(()) }
/// ```
pub struct Server {
    handler: BoxHandler,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server that answers every request with `handler`.
    pub fn new(handler: impl Handler) -> Self {
        Server { handler: Arc::new(handler) }
    }
}

impl From<Server> for Application {
    fn from(server: Server) -> Application {
        let mut app = Application::new();
        app.low_level = Some(server.handler);
        app
    }
}
