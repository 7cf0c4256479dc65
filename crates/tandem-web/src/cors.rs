//! Cross-origin resource sharing as aiohttp-cors does it: options per allowed origin
//! ([`CorsOptions`], aiohttp-cors's `ResourceOptions`), for the whole app (a middleware) or
//! for chosen routes (a handler wrapper and the resource's preflight route).
//!
//! Hand-written rather than tower-http's `CorsLayer`, which one policy for every origin and
//! a layer around the whole app: aiohttp-cors keeps options per origin (credentials for one,
//! not another) and per route. `CorsLayer` still runs around a Tandem app through
//! [`Application::layer`](crate::Application::layer) where one policy is all it needs.

use std::{sync::Arc, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use crate::{BoxFuture, Handler, HttpError, Middleware, Next, Request, Response};

/// What one allowed origin may do: aiohttp-cors's `ResourceOptions`, with its defaults
/// (no credentials, nothing exposed, no request headers beyond the simple ones, no max-age,
/// the methods the path's routes answer).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CorsOptions {
    /// Whether the browser may send credentials (cookies, HTTP auth): then
    /// `Access-Control-Allow-Credentials: true` and the origin itself, never `*`, is allowed.
    pub allow_credentials: bool,
    /// The response headers scripts may read (`Access-Control-Expose-Headers`).
    pub expose_headers: HeaderList,
    /// The request headers a preflight may announce (`Access-Control-Allow-Headers`).
    pub allow_headers: HeaderList,
    /// How long the browser may cache a preflight's answer (`Access-Control-Max-Age`).
    pub max_age: Option<Duration>,
    /// The methods a preflight may ask for.
    pub allow_methods: MethodList,
}

/// The methods a preflight may ask for (aiohttp-cors's `allow_methods`). Whichever is
/// chosen, a method some route at the preflight's path answers is allowed, as aiohttp-cors
/// allows the methods of the routes it was added to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MethodList {
    /// Only those (aiohttp-cors's default, `None`).
    #[default]
    Routed,
    /// These as well.
    Some(Vec<Method>),
    /// Any method (`"*"`).
    All,
}

/// A list of header names, or `*` for all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HeaderList {
    /// None.
    #[default]
    None,
    /// These names.
    Some(Vec<HeaderName>),
    /// Every name.
    All,
}

impl HeaderList {
    fn allows(&self, name: &str) -> bool {
        match self {
            HeaderList::None => false,
            HeaderList::Some(names) => names.iter().any(|n| n.as_str().eq_ignore_ascii_case(name)),
            HeaderList::All => true,
        }
    }
}

impl CorsOptions {
    /// Allows credentials.
    #[must_use]
    pub fn allow_credentials(mut self, on: bool) -> Self {
        self.allow_credentials = on;
        self
    }

    /// Exposes these response headers; `["*"]` exposes every one the response has.
    #[must_use]
    pub fn expose_headers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.expose_headers = names_of(names);
        self
    }

    /// Allows these request headers; `["*"]` allows any.
    #[must_use]
    pub fn allow_headers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.allow_headers = names_of(names);
        self
    }

    /// Lets the browser cache a preflight's answer this long.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Allows these methods, besides those the path's routes answer.
    #[must_use]
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.allow_methods = MethodList::Some(methods.into_iter().collect());
        self
    }

    /// Allows any method (aiohttp-cors's `allow_methods="*"`).
    #[must_use]
    pub fn allow_any_method(mut self) -> Self {
        self.allow_methods = MethodList::All;
        self
    }
}

/// `names` as a [`HeaderList`]: `*` among them means all; a name that is not a header name is
/// dropped.
fn names_of<'a>(names: impl IntoIterator<Item = &'a str>) -> HeaderList {
    let mut list = Vec::new();
    for name in names {
        if name == "*" {
            return HeaderList::All;
        }
        list.extend(HeaderName::try_from(name).ok());
    }
    if list.is_empty() { HeaderList::None } else { HeaderList::Some(list) }
}

/// The origins allowed to call the app from a browser, each with its [`CorsOptions`]:
/// aiohttp-cors's `setup(app, defaults={origin: ResourceOptions(...)})`. `"*"` stands for
/// any origin not listed.
///
/// For the whole app, add it as a middleware: it answers every preflight (`OPTIONS` with
/// `Origin` and `Access-Control-Request-Method`) itself and adds the CORS headers to every
/// answer to an allowed origin. For chosen routes only (aiohttp-cors's `cors.add(route)`),
/// wrap their handlers with [`handler`](Self::handler) and add the resource's
/// [`preflight`](Self::preflight) route; another `Cors` may serve other routes.
///
/// ```
/// use std::time::Duration;
/// use tandem_web::{Application, Cors, CorsOptions, Request};
///
/// let api = Cors::new().allow_origin(
///     "https://app.example",
///     CorsOptions::default()
///         .allow_credentials(true)
///         .expose_headers(["x-total"])
///         .allow_headers(["content-type"])
///         .max_age(Duration::from_secs(600)),
/// );
/// let mut app = Application::new();
/// app.add_get("/api/items", api.handler(|_req: Request| async { "[]" }));
/// app.add_route(Some(http::Method::OPTIONS), "/api/items", api.preflight());
///
/// // Or every route, any origin, no credentials:
/// let mut open = Application::new();
/// open.middleware(Cors::new().allow_origin("*", CorsOptions::default()));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cors {
    origins: Arc<Vec<(String, CorsOptions)>>,
}

impl Cors {
    /// No origin allowed yet.
    pub fn new() -> Self {
        Cors::default()
    }

    /// Allows `origin` (`scheme://host[:port]` as browsers send it, or `"*"` for any) with
    /// `options`.
    #[must_use]
    pub fn allow_origin(mut self, origin: &str, options: CorsOptions) -> Self {
        Arc::make_mut(&mut self.origins).push((origin.to_owned(), options));
        self
    }

    /// The options of `origin`: its own, else those of `"*"`, with whether they are `*`'s.
    fn options_for(&self, origin: &str) -> Option<(&CorsOptions, bool)> {
        let own = self.origins.iter().find(|(o, _)| o == origin).map(|(_, opts)| (opts, false));
        own.or_else(|| self.origins.iter().find(|(o, _)| o == "*").map(|(_, opts)| (opts, true)))
    }

    /// Wraps a route's handler so that its answers carry the CORS headers for an allowed
    /// origin.
    pub fn handler(&self, handler: impl Handler) -> impl Handler {
        let cors = self.clone();
        let handler = Arc::new(handler);
        move |req: Request| {
            let (cors, handler) = (cors.clone(), Arc::clone(&handler));
            async move {
                let origin = req.header("origin").map(str::to_owned);
                let mut response = handler.call(req).await;
                if let Some(origin) = origin {
                    cors.decorate(&origin, &mut response);
                }
                response
            }
        }
    }

    /// The handler of a resource's `OPTIONS` route: answers its preflight requests.
    pub fn preflight(&self) -> impl Handler {
        let cors = self.clone();
        move |req: Request| {
            let answer = cors.answer_preflight(&req);
            async move { answer }
        }
    }

    /// The answer to a preflight: 200 with what it asked for if allowed, else a 403 saying
    /// why, as aiohttp-cors.
    fn answer_preflight(&self, req: &Request) -> Result<Response, HttpError> {
        let refuse = |why: String| {
            HttpError::forbidden().with_text(format!("CORS preflight request failed: {why}"))
        };
        let Some(origin) = req.header("origin") else {
            return Err(refuse("origin header is not specified in the request".into()));
        };
        let Some(method) = req.header("access-control-request-method") else {
            return Err(refuse("'Access-Control-Request-Method' header is not specified".into()));
        };
        let Some((options, _)) = self.options_for(origin) else {
            return Err(refuse(format!("origin '{origin}' is not allowed")));
        };
        let listed = match &options.allow_methods {
            MethodList::Routed => false,
            MethodList::Some(methods) => {
                methods.iter().any(|m| m.as_str().eq_ignore_ascii_case(method.trim()))
            }
            MethodList::All => true,
        };
        let routed = || {
            Method::from_bytes(method.trim().as_bytes())
                .is_ok_and(|method| req.app().finds_handler(&method, req.raw_path()))
        };
        if !listed && !routed() {
            return Err(refuse(format!(
                "request method '{method}' is not allowed for '{origin}' origin"
            )));
        }
        let asked = req.header("access-control-request-headers").unwrap_or("");
        let asked: Vec<String> = asked
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        if let Some(name) = asked.iter().find(|name| !options.allow_headers.allows(name)) {
            return Err(refuse(format!("headers are not allowed: {name}")));
        }
        let mut response = Response::new(http::StatusCode::OK);
        let headers = response.headers_mut();
        insert(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if options.allow_credentials {
            insert(headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if let Some(max_age) = options.max_age {
            insert(headers, header::ACCESS_CONTROL_MAX_AGE, &max_age.as_secs().to_string());
        }
        insert(headers, header::ACCESS_CONTROL_ALLOW_METHODS, method.trim());
        if !asked.is_empty() {
            insert(headers, header::ACCESS_CONTROL_ALLOW_HEADERS, &asked.join(","));
        }
        Ok(response)
    }

    /// Adds the CORS headers of an actual (not preflight) response to `origin`, if allowed.
    fn decorate(&self, origin: &str, response: &mut Response) {
        let Some((options, any)) = self.options_for(origin) else { return };
        let exposed = match &options.expose_headers {
            HeaderList::None => None,
            HeaderList::Some(names) => {
                Some(names.iter().map(HeaderName::as_str).collect::<Vec<_>>())
            }
            // Every field of this response but the CORS-safelisted ones, which are always
            // readable, and the CORS ones themselves.
            HeaderList::All => Some(
                response
                    .headers()
                    .keys()
                    .map(HeaderName::as_str)
                    .filter(|n| !SAFELISTED.contains(n) && !n.starts_with("access-control-"))
                    .collect(),
            ),
        }
        .map(|names| names.join(","));
        let headers = response.headers_mut();
        if any && !options.allow_credentials {
            insert(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        } else {
            insert(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        if options.allow_credentials {
            insert(headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if let Some(exposed) = exposed.filter(|e| !e.is_empty()) {
            insert(headers, header::ACCESS_CONTROL_EXPOSE_HEADERS, &exposed);
        }
    }
}

/// The response fields scripts may always read (the Fetch standard's CORS-safelisted
/// response header names).
const SAFELISTED: &[&str] = &[
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

/// Sets `name` to `value`; a value that cannot be a field (an origin with a control byte,
/// which a parsed request never has) is left out.
fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(name, value);
    }
}

/// The whole app: preflights answered here, every answer to an allowed origin decorated.
impl Middleware for Cors {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        let is_preflight = req.method() == Method::OPTIONS
            && req.header("origin").is_some()
            && req.header("access-control-request-method").is_some();
        if is_preflight {
            let answer = self.answer_preflight(&req);
            return Box::pin(async move { crate::IntoResponse::into_response(answer) });
        }
        let origin = req.header("origin").map(str::to_owned);
        let cors = self.clone();
        Box::pin(async move {
            let mut response = next.run(req).await;
            if let Some(origin) = origin {
                cors.decorate(&origin, &mut response);
            }
            response
        })
    }
}
