//! Class-based views: aiohttp's `web.View`, a type with one method per HTTP method.
//!
//! A view lists the methods it answers in [`View::METHODS`], and the application adds a
//! route for each, so the router's 405 for any other method carries an `Allow` that lists
//! exactly them, as aiohttp's does for the methods a `View` class defines.

use std::{future::Future, sync::Arc};

use http::Method;

use crate::{Error, HttpError, Request, Response, handler::BoxHandler};

/// A class-based view (aiohttp's `web.View`): made from each request by
/// [`new`](Self::new), then answered by the method named after the request's, as aiohttp
/// calls `get(self)` with `self.request` set. Implement the methods listed in
/// [`METHODS`](Self::METHODS); the rest answer 405.
///
/// ```
/// use http::Method;
/// use tandem_web::{Application, Error, Request, Response, View};
///
/// struct Item {
///     req: Request,
/// }
///
/// impl View for Item {
///     const METHODS: &'static [Method] = &[Method::GET, Method::DELETE];
///
///     fn new(req: Request) -> Self {
///         Item { req }
///     }
///
///     async fn get(self) -> Result<Response, Error> {
///         Ok(Response::text(format!("item {}", self.req.match_info("id").unwrap_or("?"))))
///     }
///
///     async fn delete(self) -> Result<Response, Error> {
///         Ok(Response::text("deleted"))
///     }
/// }
///
/// let mut app = Application::new();
/// app.add_view::<Item>("/items/{id}").name("item"); // POST /items/1: 405, Allow: GET, HEAD, DELETE
/// ```
pub trait View: Sized + Send + 'static {
    /// The methods this view answers; each gets a route. HEAD is answered by
    /// [`get`](Self::get) when GET is listed (the body is dropped).
    const METHODS: &'static [Method];

    /// The view for one request.
    fn new(req: Request) -> Self;

    /// Answers GET (and HEAD).
    fn get(self) -> impl Future<Output = Result<Response, Error>> + Send {
        not_allowed::<Self>()
    }

    /// Answers POST.
    fn post(self) -> impl Future<Output = Result<Response, Error>> + Send {
        not_allowed::<Self>()
    }

    /// Answers PUT.
    fn put(self) -> impl Future<Output = Result<Response, Error>> + Send {
        not_allowed::<Self>()
    }

    /// Answers PATCH.
    fn patch(self) -> impl Future<Output = Result<Response, Error>> + Send {
        not_allowed::<Self>()
    }

    /// Answers DELETE.
    fn delete(self) -> impl Future<Output = Result<Response, Error>> + Send {
        not_allowed::<Self>()
    }

    /// Answers OPTIONS.
    fn options(self) -> impl Future<Output = Result<Response, Error>> + Send {
        not_allowed::<Self>()
    }

    /// Answers any other method listed in [`METHODS`](Self::METHODS) (`PROPFIND`, say).
    fn other(self, method: Method) -> impl Future<Output = Result<Response, Error>> + Send {
        let _ = method;
        not_allowed::<Self>()
    }
}

/// The 405 of a method a view lists but does not implement.
fn not_allowed<V: View>() -> impl Future<Output = Result<Response, Error>> + Send {
    let mut allowed = V::METHODS.to_vec();
    if allowed.contains(&Method::GET) && !allowed.contains(&Method::HEAD) {
        allowed.push(Method::HEAD);
    }
    std::future::ready(Err(HttpError::method_not_allowed(&allowed).into()))
}

/// The handler of `V`'s route for `method`.
pub(crate) fn handler<V: View>(method: Method) -> BoxHandler {
    Arc::new(move |req: Request| {
        let view = V::new(req);
        let method = method.clone();
        async move {
            match method {
                Method::GET => view.get().await,
                Method::POST => view.post().await,
                Method::PUT => view.put().await,
                Method::PATCH => view.patch().await,
                Method::DELETE => view.delete().await,
                Method::OPTIONS => view.options().await,
                other => view.other(other).await,
            }
        }
    })
}
