//! `Application`, the thing users build, and `App`, the frozen handle requests carry.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    future::Future,
    sync::{Arc, RwLock},
};

use http::Method;
use tandem_io::DEFAULT_BROTLI_WINDOW_LOG_MAX;

use crate::{
    CustomResource, Error, HttpError, Request, View,
    cookies::DEFAULT_MAX_REQUEST_COOKIES,
    expect::{BoxExpect, ContinueSignal, ExpectHandler},
    handler::{BoxFuture, BoxHandler, Handler, Middleware, Middlewares, Next, catch_panic},
    render::ErrorRenderer,
    response::Response,
    router::{DomainMask, MatchInfo, Resolved, Route, Router},
};

/// aiohttp's `client_max_size` default: 1 MiB of body for `read`, `text`, `json` and `post`.
pub const DEFAULT_CLIENT_MAX_SIZE: usize = 1024 * 1024;

/// The most files one form may upload to `post()` by default (Django's
/// `DATA_UPLOAD_MAX_NUMBER_FILES`): each is spooled to a temporary file, which holds file
/// descriptors while the form lives, so their number needs a bound of its own beside
/// `client_max_size` (a 1 MiB form holds over ten thousand empty file parts).
pub const DEFAULT_MAX_FORM_FILES: usize = 100;

/// The most fields one form may hold for `post()` by default, urlencoded or multipart, files
/// included. Each field costs about a hundred bytes of bookkeeping beyond its own bytes, so
/// their number needs a bound of its own: 1 MiB of `a=&` is 349 000 empty fields, which
/// took 66 MiB to hold; at this bound a form takes a few MB at most.
pub const DEFAULT_MAX_FORM_FIELDS: usize = 10_000;

type StateMap = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;
type Signal = Arc<dyn Fn(App) -> BoxFuture<Result<(), Error>> + Send + Sync>;
type CleanupCtx = Arc<dyn Fn(App) -> BoxFuture<Result<BoxFuture<()>, Error>> + Send + Sync>;
type PrepareHook = Arc<dyn Fn(&Request, &mut Response) + Send + Sync>;

struct RouteDef {
    method: Option<Method>,
    path: String,
    handler: BoxHandler,
    name: Option<String>,
    expect: Option<BoxExpect>,
}

impl RouteDef {
    fn new(method: Option<Method>, path: &str, handler: BoxHandler) -> Self {
        RouteDef { method, path: path.to_owned(), handler, name: None, expect: None }
    }
}

/// A web application: routes, middlewares, signals and state, as aiohttp's
/// `web.Application`. Build it, then serve it with [`crate::run_app`] or
/// [`crate::AppRunner`].
///
/// ```
/// use tandem_web::{Application, Request, Response};
///
/// async fn hello(req: Request) -> Response {
///     let name = req.match_info("name").unwrap_or("Anonymous");
///     Response::text(format!("Hello, {name}"))
/// }
///
/// let mut app = Application::new();
/// app.add_get("/", hello);
/// app.add_get("/hello/{name}", hello).name("hello");
/// ```
#[derive(Default)]
pub struct Application {
    routes: Vec<RouteDef>,
    middlewares: Vec<Arc<dyn Middleware>>,
    subapps: Vec<(String, Application)>,
    /// `add_resource`'s resources, with how many routes were added before each.
    resources: Vec<(usize, Arc<dyn CustomResource>)>,
    /// `add_domain`'s applications, with their host masks.
    domains: Vec<(DomainMask, Application)>,
    state: StateMap,
    on_startup: Vec<Signal>,
    on_shutdown: Vec<Signal>,
    on_cleanup: Vec<Signal>,
    cleanup_ctx: Vec<CleanupCtx>,
    on_response_prepare: Vec<PrepareHook>,
    limits: SetLimits,
    error_renderer: Option<Arc<dyn ErrorRenderer>>,
    /// The one handler of a low-level [`Server`](crate::Server): it answers every request,
    /// in place of the router.
    pub(crate) low_level: Option<BoxHandler>,
    /// `url_for` calls declared with `require_url`, checked at `freeze`.
    required_urls: Vec<(String, Vec<String>)>,
    /// tower layers around the whole app, the first added outermost.
    pub(crate) layers: Vec<crate::service::LayerFn>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("routes", &self.routes.len()).finish_non_exhaustive()
    }
}

/// A route just added (or a view's routes), to name it, `app.add_get("/", h).name("index")`,
/// or give it an [`expect_handler`](Self::expect_handler).
pub struct RouteRef<'a> {
    routes: &'a mut [RouteDef],
}

impl std::fmt::Debug for RouteRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteRef").field("routes", &self.routes.len()).finish()
    }
}

impl RouteRef<'_> {
    /// Names the route, for [`App::url_for`]. Names must be unique; that is checked when the
    /// application is frozen.
    pub fn name(&mut self, name: &str) -> &mut Self {
        if let Some(first) = self.routes.first_mut() {
            first.name = Some(name.to_owned());
        }
        self
    }

    /// Checks `Expect: 100-continue` requests to this route (every method of a view)
    /// before their body is sent: aiohttp's `add_route(..., expect_handler=...)`. See
    /// [`ExpectHandler`](crate::ExpectHandler).
    pub fn expect_handler(&mut self, handler: impl ExpectHandler) -> &mut Self {
        let handler: BoxExpect = Arc::new(handler);
        for route in self.routes.iter_mut() {
            route.expect = Some(Arc::clone(&handler));
        }
        self
    }
}

macro_rules! add_method {
    ($($fn:ident => $method:ident),* $(,)?) => {$(
        #[doc = concat!("Adds a `", stringify!($method), "` route (aiohttp's `router.", stringify!($fn), "`).")]
        pub fn $fn(&mut self, path: &str, handler: impl Handler) -> RouteRef<'_> {
            self.add_route(Some(Method::$method), path, handler)
        }
    )*};
}

impl Application {
    /// An empty application.
    pub fn new() -> Self {
        Self::default()
    }

    add_method!(add_get => GET, add_post => POST, add_put => PUT, add_patch => PATCH, add_delete => DELETE, add_head => HEAD);

    /// Adds a route for `method`, or for any method when `method` is `None` (aiohttp's
    /// `add_route("*", ...)`).
    pub fn add_route(
        &mut self,
        method: Option<Method>,
        path: &str,
        handler: impl Handler,
    ) -> RouteRef<'_> {
        let index = self.routes.len();
        self.routes.push(RouteDef::new(method, path, Arc::new(handler)));
        RouteRef { routes: &mut self.routes[index..] }
    }

    /// Serves the files under `dir` at `prefix`: aiohttp's `add_static`. It adds a GET
    /// route (HEAD too) for `{prefix}/{filename:.*}`; each file is sent as a
    /// [`crate::FileResponse`]. `dir` must be an existing directory, checked now.
    ///
    /// The URL can never reach outside `dir`: `..`, absolute paths, backslashes, drive
    /// letters and NUL are refused, and symlinks may lead out only with
    /// [`StaticOptions::follow_symlinks`](crate::StaticOptions). Every refusal is the same
    /// 404 as a missing file. A directory is 403, or an HTML listing with
    /// [`StaticOptions::show_index`](crate::StaticOptions).
    ///
    /// ```no_run
    /// use tandem_web::{Application, StaticOptions};
    ///
    /// let mut app = Application::new();
    /// app.add_static("/static", "./static", StaticOptions::default())?.name("static");
    /// # Ok::<(), tandem_web::Error>(())
    /// ```
    pub fn add_static(
        &mut self,
        prefix: &str,
        dir: impl AsRef<std::path::Path>,
        options: crate::StaticOptions,
    ) -> Result<RouteRef<'_>, Error> {
        if !prefix.starts_with('/') || prefix.contains(['{', '}']) {
            return Err(Error::new(format!(
                "add_static: prefix {prefix:?} must start with '/' and hold no braces"
            )));
        }
        let files = Arc::new(crate::static_files::StaticDir::new(dir.as_ref(), options)?);
        let path = format!("{}/{{filename:.*}}", prefix.trim_end_matches('/'));
        Ok(self.add_route(Some(Method::GET), &path, move |req: Request| {
            let files = Arc::clone(&files);
            async move { files.handle(req).await }
        }))
    }

    /// Adds a class-based view at `path`: one route for each of [`View::METHODS`], each
    /// answered by a new `V` made from the request (aiohttp's `add_view`). Other methods
    /// get 405 with `Allow` listing these; HEAD is answered by `get` when GET is listed.
    /// `V::METHODS` must not be empty (a view that answers nothing has no route to name).
    /// See [`View`].
    pub fn add_view<V: View>(&mut self, path: &str) -> RouteRef<'_> {
        let first = self.routes.len();
        self.routes.extend(view_routes::<V>(path));
        RouteRef { routes: &mut self.routes[first..] }
    }

    /// Adds a [`CustomResource`](crate::CustomResource): routing of your own for the
    /// requests no route matches (aiohttp's `register_resource`).
    pub fn add_resource(&mut self, resource: impl CustomResource) -> &mut Self {
        self.resources.push((self.routes.len(), Arc::new(resource)));
        self
    }

    /// Declares that code calls `url_for(name, ...)` with exactly the variables `variables`:
    /// [`freeze`](Self::freeze) then fails if no route is called `name` (in this
    /// application, its sub-applications or its parents) or if its pattern's variables
    /// differ, rather than the call failing at run time. Templates and handlers that name
    /// their routes statically declare them here.
    ///
    /// ```
    /// use tandem_web::{Application, Request};
    ///
    /// let mut app = Application::new();
    /// app.add_get("/users/{id}", |_req: Request| async { "a user" }).name("user");
    /// app.require_url("user", &["id"]);
    /// assert!(app.freeze().is_ok());
    ///
    /// let mut broken = Application::new();
    /// broken.add_get("/users/{id}", |_req: Request| async { "a user" }).name("user");
    /// broken.require_url("user", &["user_id"]);
    /// assert!(broken.freeze().is_err());
    /// ```
    pub fn require_url(&mut self, name: &str, variables: &[&str]) -> &mut Self {
        let variables = variables.iter().map(|v| (*v).to_owned()).collect();
        self.required_urls.push((name.to_owned(), variables));
        self
    }

    /// Adds every route of a [`RouteTable`].
    pub fn add_routes(&mut self, table: RouteTable) {
        self.routes.extend(table.routes);
    }

    /// Adds a middleware. The first added runs outermost.
    pub fn middleware(&mut self, middleware: impl Middleware) -> &mut Self {
        self.middlewares.push(Arc::new(middleware));
        self
    }

    /// Serves `app` under `prefix` (aiohttp's `add_subapp`). Its routes, middlewares and
    /// state are its own; the parent's middlewares run around its own, and its state falls
    /// back to the parent's.
    pub fn add_subapp(&mut self, prefix: &str, app: Application) -> &mut Self {
        self.subapps.push((prefix.trim_end_matches('/').to_owned(), app));
        self
    }

    /// Serves `app` for requests whose `Host` matches `domain` (aiohttp's `add_domain`):
    /// `example.com`, `example.com:8080`, or `*.example.com` for any subdomain of it (but
    /// not the name itself). Without a port in the mask, any port matches. Its routes are
    /// tried before this application's own, domains in the order they were added; a path
    /// it does not have falls through to the rest. Its middlewares run inside this one's.
    ///
    /// The host is the request's `Host` as sent (or the authority of an absolute-form
    /// target), before any middleware such as [`TrustedProxies`](crate::TrustedProxies)
    /// runs. As aiohttp warns, each domain is one more check on every request.
    ///
    /// ```
    /// use tandem_web::{Application, Request};
    ///
    /// let mut api = Application::new();
    /// api.add_get("/", |_req: Request| async { "the API" });
    /// let mut app = Application::new();
    /// app.add_domain("api.example.com", api)?;
    /// app.add_get("/", |_req: Request| async { "the site" });
    /// # Ok::<(), tandem_web::Error>(())
    /// ```
    pub fn add_domain(&mut self, domain: &str, app: Application) -> Result<&mut Self, Error> {
        let mask = DomainMask::parse(domain).map_err(Error::new)?;
        self.domains.push((mask, app));
        Ok(self)
    }

    /// Stores shared state of type `T` (aiohttp's `app["key"] = value`).
    pub fn set_state<T: Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        self.state.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// Sets `client_max_size`, the most body `read`, `text`, `json` and `post` accept.
    pub fn client_max_size(&mut self, bytes: usize) -> &mut Self {
        self.limits.client_max_size = Some(bytes);
        self
    }

    /// Sets the largest window a `br` request body may declare, as a power of two (default
    /// [`DEFAULT_BROTLI_WINDOW_LOG_MAX`], 2^24 = 16 MiB, the most RFC 7932 allows). The
    /// decoder allocates the whole window before its first output, which `client_max_size`
    /// does not bound: a body declaring a larger one is a 400 from `read`, `text`, `json` and
    /// `post` at its first byte, and brotli's large-window extension (up to 1 GiB) always
    /// is. Sub-applications inherit it, as `client_max_size`.
    pub fn brotli_window_log_max(&mut self, log: u32) -> &mut Self {
        self.limits.brotli_window_log_max = Some(log);
        self
    }

    /// Sets the most files one multipart form may upload to `post()` (default
    /// [`DEFAULT_MAX_FORM_FILES`]); a form with more is a 413, refused before the first file
    /// past the limit is spooled. Sub-applications inherit it, as `client_max_size`.
    pub fn max_form_files(&mut self, files: usize) -> &mut Self {
        self.limits.max_form_files = Some(files);
        self
    }

    /// Sets the most fields one form may hold for `post()`, urlencoded or multipart, files
    /// included (default [`DEFAULT_MAX_FORM_FIELDS`]); a form with more is a 413, refused as
    /// the field past the limit is read. Sub-applications inherit it, as `client_max_size`.
    pub fn max_form_fields(&mut self, fields: usize) -> &mut Self {
        self.limits.max_form_fields = Some(fields);
        self
    }

    /// Sets the most cookies [`Request::cookies`](crate::Request::cookies) reads from a
    /// request's `Cookie` fields (default [`DEFAULT_MAX_REQUEST_COOKIES`]); the pairs after
    /// them are skipped, as malformed ones are. Sub-applications inherit it, as
    /// `client_max_size`.
    pub fn max_request_cookies(&mut self, cookies: usize) -> &mut Self {
        self.limits.max_request_cookies = Some(cookies);
        self
    }

    /// Renders every error the framework answers with (404, 405, 413, a handler's
    /// [`HttpError`], a 500 for a handler's other error or panic, and the parser's 400, 408,
    /// 414 and 431) through `renderer`: [`ErrorFormat::Json`](crate::ErrorFormat::Json) or
    /// [`ErrorFormat::Html`](crate::ErrorFormat::Html), or a function of your own from the
    /// [`HttpError`] to a response. Without one, errors are aiohttp's plain text. A
    /// sub-application without its own takes its parent's.
    ///
    /// ```
    /// use tandem_web::{Application, ErrorFormat, HttpError, Response};
    ///
    /// let mut api = Application::new();
    /// api.error_renderer(ErrorFormat::Json); // 404: {"status":404,"error":"Not Found",...}
    /// let mut site = Application::new();
    /// site.error_renderer(|err: &HttpError| {
    ///     Response::html(format!("<h1>Sorry</h1><p>{}</p>", err.status()))
    /// });
    /// ```
    pub fn error_renderer(&mut self, renderer: impl ErrorRenderer) -> &mut Self {
        self.error_renderer = Some(Arc::new(renderer));
        self
    }

    /// Runs `f` when the server starts, before it accepts connections.
    pub fn on_startup<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: Fn(App) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_startup.push(Arc::new(move |app| Box::pin(f(app))));
        self
    }

    /// Runs `f` when shutdown begins, before in-flight requests are waited for.
    pub fn on_shutdown<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: Fn(App) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_shutdown.push(Arc::new(move |app| Box::pin(f(app))));
        self
    }

    /// Runs `f` after the server has stopped.
    pub fn on_cleanup<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: Fn(App) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_cleanup.push(Arc::new(move |app| Box::pin(f(app))));
        self
    }

    /// aiohttp's `cleanup_ctx`: `f` sets something up at startup and returns the future that
    /// tears it down at cleanup. Teardowns run in reverse order of setup, and only for the
    /// setups that succeeded.
    pub fn cleanup_ctx<F, Fut, C>(&mut self, f: F) -> &mut Self
    where
        F: Fn(App) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, Error>> + Send + 'static,
        C: Future<Output = ()> + Send + 'static,
    {
        self.cleanup_ctx.push(Arc::new(move |app| {
            let setup = f(app);
            Box::pin(async move { setup.await.map(|c| Box::pin(c) as BoxFuture<()>) })
        }));
        self
    }

    /// Calls `f` with the request and its response before the response's head is written
    /// (aiohttp's `on_response_prepare`, which is sent `(request, response)`), for instance
    /// to add security headers or to vary them by path.
    ///
    /// The handler has consumed the request by then, so `f` sees a copy made as the request
    /// was routed, before the middlewares ran: method, path, headers, `match_info`,
    /// cookies, `app` and extensions set until then are there; the body is not, and neither
    /// are extensions a middleware or the handler adds later. A sub-application's responses
    /// get the enclosing applications' hooks first, then its own, as in aiohttp.
    pub fn on_response_prepare(
        &mut self,
        f: impl Fn(&Request, &mut Response) + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_response_prepare.push(Arc::new(f));
        self
    }

    /// Checks and freezes the application: patterns compile, names are unique, methods are
    /// not added twice to a path.
    pub fn freeze(mut self) -> Result<App, Error> {
        let mut shared = Shared {
            router: Router::default(),
            nodes: Vec::new(),
            signals: Signals::default(),
            not_found: Arc::new(|_req: Request| async { HttpError::not_found() }),
            resources: Vec::new(),
        };
        if let Some(handler) = self.low_level.take() {
            if !self.routes.is_empty() || !self.subapps.is_empty() || !self.domains.is_empty() {
                return Err(Error::new("a low-level Server has one handler: it takes no routes"));
            }
            // No route matches, so every request goes to the not-found handler, through
            // the middlewares as any request.
            shared.not_found = handler;
        }
        let layers = std::mem::take(&mut self.layers);
        let mut required = Vec::new();
        flatten(self, "", None, &mut shared, &[], &mut required, None).map_err(Error::new)?;
        for (name, variables) in &required {
            shared.router.check_url(name, variables).map_err(Error::new)?;
        }
        let app = App { shared: Arc::new(shared), node: 0, layered: None };
        if layers.is_empty() {
            return Ok(app);
        }
        let layered = crate::service::wrap(app.clone(), layers);
        Ok(App { layered: Some(Arc::new(layered)), ..app })
    }
}

fn flatten(
    app: Application,
    prefix: &str,
    parent: Option<usize>,
    shared: &mut Shared,
    outer: &[Arc<dyn Middleware>],
    required: &mut Vec<(String, Vec<String>)>,
    domain: Option<usize>,
) -> Result<(), String> {
    required.extend(app.required_urls);
    let node = shared.nodes.len();
    let middlewares: Vec<_> = outer.iter().chain(&app.middlewares).cloned().collect();
    // aiohttp sends `on_response_prepare` of every application on the request's path,
    // outermost first.
    let on_response_prepare: Vec<_> = parent
        .map(|p| shared.nodes[p].on_response_prepare.iter())
        .into_iter()
        .flatten()
        .chain(&app.on_response_prepare)
        .cloned()
        .collect();
    let limits = app.limits.over(parent.map_or(RequestLimits::DEFAULT, |p| shared.nodes[p].limits));
    let error_renderer =
        app.error_renderer.or_else(|| parent.and_then(|p| shared.nodes[p].error_renderer.clone()));
    shared.nodes.push(Node {
        parent,
        prefix: prefix.into(),
        state: RwLock::new(app.state),
        middlewares: middlewares.clone().into(),
        limits,
        on_response_prepare: on_response_prepare.into(),
        error_renderer,
    });
    for (index, route) in app.routes.into_iter().enumerate() {
        let path = format!("{prefix}{}", route.path);
        let router = match domain {
            Some(index) => &mut shared.router.domains[index].1,
            None => &mut shared.router,
        };
        let entry = Route { handler: route.handler, expect: route.expect };
        router.add(route.method, &path, entry, route.name, (node, index))?;
    }
    shared.resources.extend(app.resources.into_iter().map(|(before, r)| (node, before, r)));
    let s = &mut shared.signals;
    s.on_startup.extend(app.on_startup.into_iter().map(|f| (node, f)));
    s.on_shutdown.extend(app.on_shutdown.into_iter().map(|f| (node, f)));
    s.on_cleanup.extend(app.on_cleanup.into_iter().map(|f| (node, f)));
    s.cleanup_ctx.extend(app.cleanup_ctx.into_iter().map(|f| (node, f)));
    for (sub_prefix, sub) in app.subapps {
        if !sub.layers.is_empty() {
            return Err(format!(
                "tower layers wrap the whole app: add those of {sub_prefix} to the root"
            ));
        }
        let sub_prefix = format!("{prefix}{sub_prefix}");
        flatten(sub, &sub_prefix, Some(node), shared, &middlewares, required, domain)?;
    }
    for (mask, sub) in app.domains {
        if !sub.layers.is_empty() {
            return Err("tower layers wrap the whole app: add those of a domain to the root".into());
        }
        if domain.is_some() {
            return Err("add_domain: a domain application cannot hold another".into());
        }
        shared.router.domains.push((mask, Router::default()));
        let index = shared.router.domains.len() - 1;
        flatten(sub, prefix, Some(node), shared, &middlewares, required, Some(index))?;
    }
    Ok(())
}

struct Node {
    parent: Option<usize>,
    /// The path prefix of this application's routes: its own and its enclosing ones'.
    prefix: Box<str>,
    state: RwLock<StateMap>,
    middlewares: Middlewares,
    limits: RequestLimits,
    on_response_prepare: Arc<[PrepareHook]>,
    error_renderer: Option<Arc<dyn ErrorRenderer>>,
}

/// The limits a request is held to that one application set (`Application::client_max_size`
/// and the like); each left unset is the enclosing application's.
#[derive(Clone, Copy, Default)]
struct SetLimits {
    client_max_size: Option<usize>,
    brotli_window_log_max: Option<u32>,
    max_form_files: Option<usize>,
    max_form_fields: Option<usize>,
    max_request_cookies: Option<usize>,
}

/// The limits a request is held to in one application, resolved once, when the
/// applications are flattened: its own where it set them, else its parent's.
#[derive(Clone, Copy)]
struct RequestLimits {
    client_max_size: usize,
    brotli_window_log_max: u32,
    max_form_files: usize,
    max_form_fields: usize,
    max_request_cookies: usize,
}

impl RequestLimits {
    /// The root application's, for what it does not set.
    const DEFAULT: RequestLimits = RequestLimits {
        client_max_size: DEFAULT_CLIENT_MAX_SIZE,
        brotli_window_log_max: DEFAULT_BROTLI_WINDOW_LOG_MAX,
        max_form_files: DEFAULT_MAX_FORM_FILES,
        max_form_fields: DEFAULT_MAX_FORM_FIELDS,
        max_request_cookies: DEFAULT_MAX_REQUEST_COOKIES,
    };
}

impl SetLimits {
    /// These limits, the rest taken from `parent`'s.
    fn over(self, parent: RequestLimits) -> RequestLimits {
        RequestLimits {
            client_max_size: self.client_max_size.unwrap_or(parent.client_max_size),
            brotli_window_log_max: self
                .brotli_window_log_max
                .unwrap_or(parent.brotli_window_log_max),
            max_form_files: self.max_form_files.unwrap_or(parent.max_form_files),
            max_form_fields: self.max_form_fields.unwrap_or(parent.max_form_fields),
            max_request_cookies: self.max_request_cookies.unwrap_or(parent.max_request_cookies),
        }
    }
}

#[derive(Default)]
pub(crate) struct Signals {
    on_startup: Vec<(usize, Signal)>,
    on_shutdown: Vec<(usize, Signal)>,
    on_cleanup: Vec<(usize, Signal)>,
    cleanup_ctx: Vec<(usize, CleanupCtx)>,
}

struct Shared {
    router: Router,
    nodes: Vec<Node>,
    signals: Signals,
    not_found: BoxHandler,
    /// Every application's custom resources, in order, with the node that added each and
    /// how many of its routes came before.
    resources: Vec<(usize, usize, Arc<dyn CustomResource>)>,
}

/// A frozen application: what handlers and signals see as `request.app`.
///
/// Cheap to clone. It gives access to the application's state and builds URLs from route
/// names.
#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
    node: usize,
    /// The app inside its tower layers, if it has any; requests then go through them. The
    /// app inside holds no layers, so it dispatches directly.
    pub(crate) layered: Option<Arc<crate::service::LayeredService>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("node", &self.node).finish_non_exhaustive()
    }
}

impl App {
    /// The state of type `T`, from this application or the nearest enclosing one that has
    /// it (aiohttp's `request.config_dict`).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let mut node = Some(self.node);
        while let Some(index) = node {
            let entry = &self.shared.nodes[index];
            let found = entry.state.read().ok().and_then(|s| s.get(&TypeId::of::<T>()).cloned());
            if let Some(value) = found {
                return value.downcast::<T>().ok();
            }
            node = entry.parent;
        }
        None
    }

    /// Stores state of type `T` at run time, typically from an `on_startup` signal (a
    /// database pool, say).
    pub fn set_state<T: Send + Sync + 'static>(&self, value: T) {
        if let Ok(mut state) = self.shared.nodes[self.node].state.write() {
            state.insert(TypeId::of::<T>(), Arc::new(value));
        }
    }

    /// The path of the route named `name`, with its variables filled from `params` and
    /// percent-encoded (aiohttp's `app.router["name"].url_for(**params)`).
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.shared.router.url_for(name, params).map_err(Error::new)
    }

    /// [`url_for`](Self::url_for) with a query string after the path:
    /// `url_for(...).with_query(...)` in aiohttp. Query names and values are
    /// percent-encoded as a form encodes them.
    ///
    /// ```
    /// use tandem_web::{Application, Request};
    ///
    /// let mut app = Application::new();
    /// app.add_get("/users/{id}", |_req: Request| async { "a user" }).name("user");
    /// let app = app.freeze()?;
    /// let url = app.url_for_query("user", &[("id", "7")], &[("tab", "posts"), ("q", "a&b")])?;
    /// assert_eq!(url, "/users/7?tab=posts&q=a%26b");
    /// # Ok::<(), tandem_web::Error>(())
    /// ```
    pub fn url_for_query(
        &self,
        name: &str,
        params: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Result<String, Error> {
        let path = self.url_for(name, params)?;
        if query.is_empty() {
            return Ok(path);
        }
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
        Ok(format!("{path}?{query}"))
    }

    /// Whether some route matches `path` (for `method` or another: a 405 counts).
    pub(crate) fn resolves(&self, method: &Method, path: &str) -> bool {
        !matches!(self.shared.router.resolve(method, path), Resolved::NotFound)
    }

    /// Whether a route for `method` matches `path`.
    pub(crate) fn finds_handler(&self, method: &Method, path: &str) -> bool {
        matches!(self.shared.router.resolve(method, path), Resolved::Found { .. })
    }

    /// Every route, in the order they were added, sub-applications' with their prefixes
    /// (aiohttp's `router.routes()`, with `named_resources()` as the named ones).
    pub fn routes(&self) -> Vec<crate::RouteInfo> {
        self.shared.router.routes()
    }

    pub(crate) fn client_max_size(&self) -> usize {
        self.shared.nodes[self.node].limits.client_max_size
    }

    pub(crate) fn brotli_window_log_max(&self) -> u32 {
        self.shared.nodes[self.node].limits.brotli_window_log_max
    }

    /// The most files one form may upload to `post()` in this application
    /// ([`Application::max_form_files`]).
    pub fn max_form_files(&self) -> usize {
        self.shared.nodes[self.node].limits.max_form_files
    }

    /// The most fields one form may hold for `post()` in this application
    /// ([`Application::max_form_fields`]).
    pub fn max_form_fields(&self) -> usize {
        self.shared.nodes[self.node].limits.max_form_fields
    }

    /// The most cookies a request's `Cookie` fields are read for in this application
    /// ([`Application::max_request_cookies`]).
    pub fn max_request_cookies(&self) -> usize {
        self.shared.nodes[self.node].limits.max_request_cookies
    }

    /// The path prefix every route of this application is under: the sub-application
    /// prefixes around it, joined (empty for the root).
    pub(crate) fn path_prefix(&self) -> &str {
        &self.shared.nodes[self.node].prefix
    }

    fn at(&self, node: usize) -> App {
        App { shared: Arc::clone(&self.shared), node, layered: None }
    }

    /// Routes `req`, runs the middlewares and the handler, and catches a panic as a 500:
    /// the entry point below every server. Tandem's connections call it with the requests
    /// they parse; [`Request::from_http`] builds one from an `http::Request` for a test, a
    /// TLS terminator or another protocol's server, and [`App::handle`] does both ends.
    ///
    /// The middlewares and the handler run in a fresh [`context`](crate::context) of their
    /// own.
    pub fn dispatch(&self, req: Request) -> impl Future<Output = Response> + Send + '_ {
        crate::context::scope(self.route_and_run(req))
    }

    async fn route_and_run(&self, mut req: Request) -> Response {
        if let Some(layered) = &self.layered {
            return crate::service::call_layered(layered, req).await;
        }
        let not_allowed: BoxHandler;
        let custom: BoxHandler;
        let router = &self.shared.router;
        // The host is read only when some application routes by it.
        let host = if router.domains.is_empty() { None } else { req.host() };
        let resolved = router.resolve_for_host(req.method(), req.raw_path_bytes(), host);
        // Most applications add no custom resource: one emptiness check, no call.
        let chosen = if self.shared.resources.is_empty() {
            None
        } else {
            self.custom_resource(&req, &resolved)
        };
        let (node, handler, expect) = if let Some((node, handler)) = chosen {
            custom = handler;
            req.set_match(MatchInfo::default(), self.at(node));
            (node, &custom, None)
        } else {
            match resolved {
                Resolved::Found { resource, route, match_info } => {
                    req.set_match(match_info, self.at(resource.app));
                    (resource.app, &route.handler, route.expect.as_ref())
                }
                Resolved::MethodNotAllowed(allowed) => {
                    not_allowed = Arc::new(move |_req: Request| {
                        let err = HttpError::method_not_allowed(&allowed);
                        async move { err }
                    });
                    (0, &not_allowed, None)
                }
                Resolved::NotFound => (0, &self.shared.not_found, None),
            }
        };
        let node_data = &self.shared.nodes[node];
        // The hooks need the request after the handler has consumed it, so they get a copy
        // without the body; it is made only when there are hooks, so an application
        // without them pays one emptiness check.
        let hooks = &node_data.on_response_prepare;
        let prepared = (!hooks.is_empty()).then(|| req.without_body());
        let refusal = if req.head().expect_continue() {
            check_expectation(&mut req, expect).await
        } else {
            None
        };
        let mut response = if let Some(refusal) = refusal {
            refusal
        } else {
            // Without middlewares the handler is called where it lies: no `Next`, and no
            // reference counts taken and dropped on the handler and the chain.
            let future = if node_data.middlewares.is_empty() {
                handler.call(req)
            } else {
                Next::new(Arc::clone(&node_data.middlewares), Arc::clone(handler)).call(req)
            };
            crate::stream_response::respond(future).await
        };
        if let Some(renderer) = &node_data.error_renderer
            && let Some(err) = response.inner.error.take()
        {
            response = crate::render::apply(&**renderer, &err, &response);
        }
        if let Some(req) = prepared {
            for hook in hooks.iter() {
                hook(&req, &mut response);
            }
        }
        response
    }

    /// The handler of the first custom resource that takes `req`, with its application, in
    /// the order of registration with the routes, as aiohttp's router tries its resources:
    /// those added before the route found, or all of them when no route has the path for
    /// this method (a 404 or 405 otherwise).
    fn custom_resource(
        &self,
        req: &Request,
        resolved: &Resolved<'_>,
    ) -> Option<(usize, BoxHandler)> {
        let resources = &self.shared.resources;
        let found = match resolved {
            Resolved::Found { resource, .. } => Some((resource.app, resource.first_route)),
            _ => None,
        };
        resources
            .iter()
            .take_while(|(node, before, _)| found.is_none_or(|found| (*node, *before) <= found))
            .find_map(|(node, _, resource)| resource.resolve(req).map(|handler| (*node, handler)))
    }

    /// The response for `err`, rendered as the root application's renderer makes it: for
    /// the errors a connection answers before any handler runs.
    pub(crate) fn error_response(&self, err: &HttpError) -> Response {
        let response = err.plain_response();
        match &self.shared.nodes[0].error_renderer {
            Some(renderer) => crate::render::apply(&**renderer, err, &response),
            None => response,
        }
    }

    /// Runs the startup signals, then the `cleanup_ctx` setups; returns the teardowns.
    pub(crate) async fn startup(&self) -> Result<Vec<BoxFuture<()>>, Error> {
        let signals = &self.shared.signals;
        for (node, signal) in &signals.on_startup {
            signal(self.at(*node)).await?;
        }
        let mut teardowns = Vec::new();
        for (node, ctx) in &signals.cleanup_ctx {
            match ctx(self.at(*node)).await {
                Ok(teardown) => teardowns.push(teardown),
                Err(err) => {
                    run_teardowns(teardowns).await;
                    return Err(err);
                }
            }
        }
        Ok(teardowns)
    }

    pub(crate) async fn shutdown_signals(&self) {
        self.run_signals(&self.shared.signals.on_shutdown, "on_shutdown").await;
    }

    pub(crate) async fn cleanup(&self, teardowns: Vec<BoxFuture<()>>) {
        run_teardowns(teardowns).await;
        self.run_signals(&self.shared.signals.on_cleanup, "on_cleanup").await;
    }

    async fn run_signals(&self, signals: &[(usize, Signal)], which: &str) {
        for (node, signal) in signals {
            if let Err(err) = signal(self.at(*node)).await {
                crate::log::error(&format!("{which} signal failed"), &err);
            }
        }
    }
}

/// Runs the route's check of an `Expect: 100-continue` request, routed but before any
/// middleware, as aiohttp does; tells the connection whether to send `100 Continue`, and
/// returns the refusal, if any. A route without a check lets every request through
/// (aiohttp's default handler, which the parser has already held to `100-continue`).
async fn check_expectation(req: &mut Request, expect: Option<&BoxExpect>) -> Option<Response> {
    let signal = req.extensions_mut().remove::<ContinueSignal>();
    let refusal = match expect {
        Some(expect) => {
            let checked = expect.check(req.without_body());
            // The check's answer travels as a response, so that a panic in it is caught and
            // answered 500 as a handler's is; a 100 stands for "let it through".
            let through = || Response::default().with_status(http::StatusCode::CONTINUE);
            let answer =
                catch_panic(Box::pin(async move { checked.await.unwrap_or_else(through) }));
            // Only `respond`, around the handler, takes a prepared `StreamResponse`: closed
            // while the check runs, the slot refuses one there instead of keeping it for a
            // `respond` that may then run on another thread and not look.
            let set_slot = |to| crate::context::with_slot(|slot| *slot = to);
            set_slot(crate::stream_response::Slot::Closed);
            let answer = answer.await;
            set_slot(crate::stream_response::Slot::Open);
            Some(answer).filter(|answer| answer.status() != http::StatusCode::CONTINUE)
        }
        None => None,
    };
    if let Some(signal) = signal {
        signal.send(refusal.is_none());
    }
    refusal
}

async fn run_teardowns(teardowns: Vec<BoxFuture<()>>) {
    for teardown in teardowns.into_iter().rev() {
        teardown.await;
    }
}

/// The routes of view `V` at `path`, one per method it answers: a route per method, so the
/// router's 405 lists exactly those.
fn view_routes<V: View>(path: &str) -> Vec<RouteDef> {
    V::METHODS
        .iter()
        .map(|method| {
            RouteDef::new(Some(method.clone()), path, crate::views::handler::<V>(method.clone()))
        })
        .collect()
}

/// Routes declared apart from the application: aiohttp's `RouteTableDef`.
///
/// ```
/// use tandem_web::{Application, Request, Response, RouteTable};
///
/// let mut routes = RouteTable::new();
/// routes.get("/", |_req: Request| async { Response::text("index") });
/// routes.post("/items", |_req: Request| async { Response::text("created") });
/// let mut app = Application::new();
/// app.add_routes(routes);
/// ```
#[derive(Default)]
pub struct RouteTable {
    routes: Vec<RouteDef>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable").field("routes", &self.routes.len()).finish()
    }
}

macro_rules! table_method {
    ($($fn:ident => $method:ident),* $(,)?) => {$(
        #[doc = concat!("Declares a `", stringify!($method), "` route.")]
        pub fn $fn(&mut self, path: &str, handler: impl Handler) -> RouteRef<'_> {
            self.route(Some(Method::$method), path, handler)
        }
    )*};
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    table_method!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE, head => HEAD);

    /// Declares a class-based view (aiohttp's `@routes.view`); see
    /// [`Application::add_view`].
    pub fn view<V: View>(&mut self, path: &str) -> RouteRef<'_> {
        let first = self.routes.len();
        self.routes.extend(view_routes::<V>(path));
        RouteRef { routes: &mut self.routes[first..] }
    }

    /// Declares a route for `method`, or any method for `None`.
    pub fn route(
        &mut self,
        method: Option<Method>,
        path: &str,
        handler: impl Handler,
    ) -> RouteRef<'_> {
        let index = self.routes.len();
        self.routes.push(RouteDef::new(method, path, Arc::new(handler)));
        RouteRef { routes: &mut self.routes[index..] }
    }
}
