//! `SessionMiddleware`, `get_session` and `new_session`.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use tandem_web::{
    Application, BoxFuture, CookieOptions, HttpError, IntoResponse as _, Middleware, Next, Request,
    Response,
};
use tokio::sync::OnceCell;

use crate::{Error, Session, Storage, Stored};

/// The default session cookie name (`aiohttp_session`'s is `AIOHTTP_SESSION`).
pub const DEFAULT_COOKIE_NAME: &str = "TANDEM_SESSION";

/// The cookie attributes a [`SessionMiddleware`] starts with: `Path=/`, `HttpOnly` (scripts
/// never see the session) and `SameSite=Lax` (other sites' forms do not carry it), no
/// `Max-Age` (a browser-session cookie) and no `Secure`, which a deployment behind HTTPS
/// should turn on.
pub fn default_cookie_options() -> CookieOptions {
    CookieOptions::default().with_path("/").with_httponly(true).with_samesite("Lax")
}

/// The middleware that loads sessions on demand and saves them after the handler:
/// `aiohttp_session`'s `session_middleware`. Add it before the middlewares and handlers that
/// use sessions.
///
/// ```
/// use tandem_web::{Application, CookieOptions};
/// use tandem_session::{CookieStorage, SessionMiddleware, default_cookie_options};
///
/// let sessions = SessionMiddleware::new(CookieStorage::generate())
///     .cookie_name("polls_session")
///     .cookie_options(default_cookie_options().with_max_age(3600).with_secure(true));
/// let mut app = Application::new();
/// app.middleware(sessions);
/// ```
#[derive(Clone)]
pub struct SessionMiddleware {
    config: Arc<Config>,
}

struct Config {
    storage: Arc<dyn Storage>,
    cookie_name: String,
    options: CookieOptions,
}

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("cookie_name", &self.config.cookie_name)
            .field("options", &self.config.options)
            .finish_non_exhaustive()
    }
}

/// Adds a [`SessionMiddleware`] on `storage` with the default cookie to `app`
/// (`aiohttp_session`'s `setup(app, storage)`).
pub fn setup(app: &mut Application, storage: impl Storage) {
    app.middleware(SessionMiddleware::new(storage));
}

impl SessionMiddleware {
    /// A middleware keeping sessions in `storage`, with cookie [`DEFAULT_COOKIE_NAME`] and
    /// [`default_cookie_options`].
    pub fn new(storage: impl Storage) -> Self {
        let config = Config {
            storage: Arc::new(storage),
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            options: default_cookie_options(),
        };
        SessionMiddleware { config: Arc::new(config) }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::get_mut(&mut self.config).expect("configured before it is cloned into an app")
    }

    /// The cookie's name.
    ///
    /// # Panics
    ///
    /// If the middleware was cloned first; configure it, then clone it.
    #[must_use]
    pub fn cookie_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.config_mut().cookie_name);
        self
    }

    /// The cookie's attributes (`Max-Age`, `Secure`, `HttpOnly`, `SameSite`, `Domain`,
    /// `Path`); start from [`default_cookie_options`]. With `max_age` set, a session older
    /// than that (by its `created` time) loads as a fresh one, whatever the client sends.
    ///
    /// # Panics
    ///
    /// If the middleware was cloned first; configure it, then clone it.
    #[must_use]
    pub fn cookie_options(mut self, options: CookieOptions) -> Self {
        self.config_mut().options = options;
        self
    }
}

/// What a request carries so that `get_session` can load its session, and the middleware
/// can save it after the handler has consumed the request.
#[derive(Clone)]
struct Slot(Arc<SlotInner>);

struct SlotInner {
    config: Arc<Config>,
    cookie: Option<String>,
    session: OnceCell<Session>,
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether a sealed or stored value made at `created` is past a cookie's `max_age` (both in
/// seconds) at `now`: the browser's own expiry is the client's word, so a copy replayed
/// later is checked against this.
pub(crate) fn expired(created: u64, max_age: Option<i64>, now: u64) -> bool {
    let max_age = max_age.and_then(|s| u64::try_from(s).ok());
    max_age.is_some_and(|max_age| created.saturating_add(max_age) < now)
}

impl SlotInner {
    async fn load(&self) -> Result<Session, Error> {
        let now = now();
        let Some(cookie) = self.cookie.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(Session::fresh(now));
        };
        let Some(stored) = self.config.storage.load(cookie).await? else {
            return Ok(Session::fresh(now));
        };
        if expired(stored.created, self.config.options.max_age, now) {
            // Expired: `aiohttp_session` starts afresh too. The old record goes.
            let session = Session::fresh(now);
            session.state().retired.extend(stored.identity);
            return Ok(session);
        }
        Ok(Session::from_stored(stored, false))
    }
}

/// The request's session: `aiohttp_session`'s `get_session`. Loaded from the storage on the
/// first call of a request (a fresh empty session if the cookie is missing, expired, or
/// does not open), the same handle after that.
///
/// Errors if no [`SessionMiddleware`] is installed, or if the storage fails.
pub async fn get_session(req: &Request) -> Result<Session, Error> {
    let slot = req.extensions().get::<Slot>().ok_or_else(Error::not_installed)?;
    slot.0.session.get_or_try_init(|| slot.0.load()).await.cloned()
}

/// Asks the session storage of the request's [`SessionMiddleware`] whether its backend
/// answers (a Redis `PING`; the cookie storage has none and always does), for a health
/// check route that a load balancer or an orchestrator probes. It loads no session.
///
/// ```
/// use tandem_web::{HttpError, Request, Response};
///
/// async fn healthz(req: Request) -> Result<Response, HttpError> {
///     match tandem_session::check_storage(&req).await {
///         Ok(()) => Ok(Response::text("ok")),
///         Err(_) => Err(HttpError::new(http::StatusCode::SERVICE_UNAVAILABLE)),
///     }
/// }
/// ```
///
/// Errors if no [`SessionMiddleware`] is installed, or if the storage fails.
pub async fn check_storage(req: &Request) -> Result<(), Error> {
    let slot = req.extensions().get::<Slot>().ok_or_else(Error::not_installed)?;
    slot.0.config.storage.check().await
}

/// Starts a fresh empty session under a new identity, replacing the request's session, and
/// deletes the old one's record when the response goes: `aiohttp_session`'s `new_session`,
/// for log-in. Handles from [`get_session`] earlier in the request see the new session.
pub async fn new_session(req: &Request) -> Result<Session, Error> {
    let session = get_session(req).await?;
    session.renew(now());
    Ok(session)
}

enum Action {
    Nothing,
    Save(Stored),
    Forget,
}

impl Config {
    async fn finish(
        &self,
        session: &Session,
        had_cookie: bool,
        response: &mut Response,
    ) -> Result<(), tandem_web::Error> {
        let (retired, action) = {
            let mut state = session.state();
            let action = if state.invalidated {
                Action::Forget
            } else if state.changed {
                Action::Save(state.stored.clone())
            } else {
                Action::Nothing
            };
            (std::mem::take(&mut state.retired), action)
        };
        for identity in &retired {
            self.storage.delete(identity).await?;
        }
        match action {
            Action::Nothing => {}
            Action::Forget if had_cookie => {
                let path = self.options.path.as_deref().unwrap_or("/");
                response.del_cookie(&self.cookie_name, path, self.options.domain.as_deref())?;
            }
            Action::Forget => {}
            Action::Save(stored) => {
                let value = self.storage.save(&stored).await?;
                response.set_cookie(&self.cookie_name, &value, &self.options)?;
            }
        }
        Ok(())
    }
}

impl Middleware for SessionMiddleware {
    fn call(&self, mut req: Request, next: Next) -> BoxFuture<Response> {
        let cookie = req.cookie(&self.config.cookie_name).map(str::to_owned);
        let had_cookie = cookie.is_some();
        let slot = Arc::new(SlotInner {
            config: Arc::clone(&self.config),
            cookie,
            session: OnceCell::new(),
        });
        req.extensions_mut().insert(Slot(Arc::clone(&slot)));
        Box::pin(async move {
            let mut response = next.run(req).await;
            let Some(session) = slot.session.get() else { return response };
            match slot.config.finish(session, had_cookie, &mut response).await {
                Ok(()) => response,
                // A storage that failed is already a logged 503 (see `Error`); the handler's
                // answer is replaced either way, as its effects on the session are lost.
                Err(err) if !err.is_internal() => err.into_response(),
                Err(err) => {
                    tracing::error!(target: "tandem::session", error = %err, "saving the session failed");
                    HttpError::internal_server_error().into_response()
                }
            }
        })
    }
}
