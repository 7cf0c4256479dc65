//! Custom resources: aiohttp's `router.register_resource(AbstractResource)`, routing that
//! the URL patterns cannot express (by a header, a cookie, anything in the request).

use std::sync::Arc;

use crate::{Handler, Request};

/// A resource that decides for itself which requests it answers, and with which handler
/// (aiohttp's `AbstractResource`, registered with
/// [`Application::add_resource`](crate::Application::add_resource)).
///
/// Custom resources take their turn in the order they were added among the routes, as
/// aiohttp's router tries its resources in order: one added before a route is asked before
/// that route matches, one added after it only if it does not (a path that route has only
/// for other methods included: a 405 comes when nothing else takes the request). The first
/// to answer `Some` handles the request, inside the middlewares of the application that
/// added it. Where aiohttp first narrows its resources by URL prefix, Tandem matches plain
/// paths before patterns; the order of custom resources among either is kept.
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
