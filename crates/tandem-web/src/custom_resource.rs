//! Custom resources: aiohttp's `router.register_resource(AbstractResource)`, routing that
//! the URL patterns cannot express (by a header, a cookie, anything in the request).

use std::sync::Arc;

use crate::{Handler, Request};

/// A resource that decides for itself which requests it answers, and with which handler
/// (aiohttp's `AbstractResource`, registered with
/// [`Application::add_resource`](crate::Application::add_resource)).
///
/// Custom resources are asked, in the order they were added, about each request that no
/// route matched (a path some route has for another method is a 405 first); the first to
/// answer `Some` handles it, inside the middlewares of the application that added it.
///
/// ```
/// use std::sync::Arc;
///
/// use tandem_web::{Application, CustomResource, Handler, Request, Response};
///
/// /// aiohttp's documented example: the handler chosen by `Accept`.
/// struct AcceptChooser {
///     json: Arc<dyn Handler>,
///     html: Arc<dyn Handler>,
/// }
///
/// impl CustomResource for AcceptChooser {
///     fn resolve(&self, req: &Request) -> Option<Arc<dyn Handler>> {
///         if !req.path().starts_with("/report") {
///             return None;
///         }
///         let wants_json = req.header("accept").is_some_and(|a| a.contains("application/json"));
///         Some(Arc::clone(if wants_json { &self.json } else { &self.html }))
///     }
/// }
///
/// let mut app = Application::new();
/// app.add_resource(AcceptChooser {
///     json: Arc::new(|_req: Request| async { Response::text("{}") }),
///     html: Arc::new(|_req: Request| async { Response::html("<p>report</p>") }),
/// });
/// ```
pub trait CustomResource: Send + Sync + 'static {
    /// The handler for `req`, or `None` to leave it to the next resource (and in the end a
    /// 404).
    fn resolve(&self, req: &Request) -> Option<Arc<dyn Handler>>;
}
