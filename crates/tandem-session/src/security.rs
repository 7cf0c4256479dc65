//! Authentication and authorization as aiohttp-security does them: an identity policy says
//! who the client is (from the session, or a sealed cookie) and remembers or forgets it; an
//! authorization policy, the application's own, maps that identity to a user and says what
//! the user may do.
//!
//! ```
//! use tandem_session::{CookieStorage, SessionMiddleware};
//! use tandem_session::security::{
//!     AuthorizationPolicy, PolicyFuture, SessionIdentityPolicy, check_permission, login_required,
//!     remember, setup,
//! };
//! use tandem_web::{Application, Error, Request, Response};
//!
//! /// One admin, who may do anything; everyone else nothing.
//! struct Admins;
//!
//! impl AuthorizationPolicy for Admins {
//!     fn authorized_userid<'a>(&'a self, identity: &'a str) -> PolicyFuture<'a, Option<String>> {
//!         Box::pin(async move { Ok((identity == "admin").then(|| identity.to_owned())) })
//!     }
//!
//!     fn permits<'a>(&'a self, identity: Option<&'a str>, _permission: &'a str) -> PolicyFuture<'a, bool> {
//!         Box::pin(async move { Ok(identity == Some("admin")) })
//!     }
//! }
//!
//! async fn login(req: Request) -> Result<Response, Error> {
//!     let mut response = Response::text("welcome");
//!     remember(&req, &mut response, "admin").await?;
//!     Ok(response)
//! }
//!
//! async fn add_question(req: Request) -> Result<Response, Error> {
//!     check_permission(&req, "add_question").await?;
//!     Ok(Response::text("added"))
//! }
//!
//! let mut app = Application::new();
//! app.middleware(SessionMiddleware::new(CookieStorage::generate()));
//! setup(&mut app, SessionIdentityPolicy::new(), Admins);
//! app.add_post("/login", login);
//! app.add_get("/admin", login_required(|_req: Request| async { "the admin page" }));
//! app.add_post("/admin/questions", add_question);
//! ```

use std::{future::Future, pin::Pin, sync::Arc};

use tandem_web::{Application, CookieOptions, Handler, HttpError, Request, Response};

use crate::{CookieStorage, Error, Storage, Stored, get_session, middleware::expired, new_session};

/// The boxed future a policy returns.
pub type PolicyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Who the client is, and how that is remembered between requests: aiohttp-security's
/// `AbstractIdentityPolicy`.
pub trait IdentityPolicy: Send + Sync + 'static {
    /// The identity the request carries, if any.
    fn identify<'a>(&'a self, req: &'a Request) -> PolicyFuture<'a, Option<String>>;

    /// Remembers `identity` for the client's next requests (log-in).
    fn remember<'a>(
        &'a self,
        req: &'a Request,
        response: &'a mut Response,
        identity: &'a str,
    ) -> PolicyFuture<'a, ()>;

    /// Forgets the client's identity (log-out).
    fn forget<'a>(&'a self, req: &'a Request, response: &'a mut Response) -> PolicyFuture<'a, ()>;
}

/// Which user an identity is, and what a user may do: aiohttp-security's
/// `AbstractAuthorizationPolicy`, written by the application (a database lookup, say).
pub trait AuthorizationPolicy: Send + Sync + 'static {
    /// The user id of `identity`, or `None` if it names no user (any more).
    fn authorized_userid<'a>(&'a self, identity: &'a str) -> PolicyFuture<'a, Option<String>>;

    /// Whether the client with `identity` (`None`: anonymous) has `permission`.
    fn permits<'a>(
        &'a self,
        identity: Option<&'a str>,
        permission: &'a str,
    ) -> PolicyFuture<'a, bool>;
}

/// The session key [`SessionIdentityPolicy`] keeps the identity under, aiohttp-security's.
pub const DEFAULT_SESSION_KEY: &str = "AIOHTTP_SECURITY";

/// The identity in the session (aiohttp-security's `SessionIdentityPolicy`): needs a
/// [`SessionMiddleware`](crate::SessionMiddleware). Remembering starts a fresh session
/// ([`new_session`]), so a session id planted before log-in is worth nothing after.
#[derive(Clone, Debug)]
pub struct SessionIdentityPolicy {
    key: String,
}

impl Default for SessionIdentityPolicy {
    fn default() -> Self {
        SessionIdentityPolicy { key: DEFAULT_SESSION_KEY.to_owned() }
    }
}

impl SessionIdentityPolicy {
    /// The identity under [`DEFAULT_SESSION_KEY`].
    pub fn new() -> Self {
        SessionIdentityPolicy::default()
    }

    /// The identity under `key` instead.
    #[must_use]
    pub fn session_key(mut self, key: &str) -> Self {
        key.clone_into(&mut self.key);
        self
    }
}

impl IdentityPolicy for SessionIdentityPolicy {
    fn identify<'a>(&'a self, req: &'a Request) -> PolicyFuture<'a, Option<String>> {
        Box::pin(async move { Ok(get_session(req).await?.get_as::<String>(&self.key)) })
    }

    fn remember<'a>(
        &'a self,
        req: &'a Request,
        _response: &'a mut Response,
        identity: &'a str,
    ) -> PolicyFuture<'a, ()> {
        Box::pin(async move {
            new_session(req).await?.insert(&self.key, identity);
            Ok(())
        })
    }

    fn forget<'a>(&'a self, req: &'a Request, _response: &'a mut Response) -> PolicyFuture<'a, ()> {
        Box::pin(async move {
            get_session(req).await?.remove(&self.key);
            Ok(())
        })
    }
}

/// The cookie [`CookieIdentityPolicy`] uses by default, aiohttp-security's.
pub const DEFAULT_IDENTITY_COOKIE: &str = "AIOLOGIN";

/// The associated data identity cookies are sealed with: not the session storage's, so
/// that a session sealed under the same secret (whose data the client may have shaped)
/// never opens as an identity, nor an identity as a session.
const IDENTITY_SEAL_NAME: &str = "tandem-identity";

/// The identity in a cookie of its own (aiohttp-security's `CookiesIdentityPolicy`), sealed
/// with AES-256-GCM as [`CookieStorage`] seals a session: aiohttp-security's cookie holds
/// the identity in clear, so any client could claim any identity; this one cannot be read
/// or forged without the key. No session middleware needed. It may share its secret with a
/// [`CookieStorage`]: the two seal for different purposes, so neither's values open as the
/// other's.
///
/// The server holds the cookie to an age only when its options set `max_age` (see
/// [`cookie`](Self::cookie)). By default none is set, and a copy of the cookie, kept past
/// the browser's session or after a log-out (which only asks the browser to drop it),
/// identifies its holder for as long as the secret stays the same. Setting one is
/// recommended, with the default's other options: `.cookie(DEFAULT_IDENTITY_COOKIE,
/// CookieOptions::default().with_httponly(true).with_samesite("Lax").with_max_age(secs))`.
#[derive(Debug)]
pub struct CookieIdentityPolicy {
    seal: CookieStorage,
    name: String,
    options: CookieOptions,
}

impl CookieIdentityPolicy {
    /// Seals under a key derived from `secret` (at least
    /// [`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN) bytes), in [`DEFAULT_IDENTITY_COOKIE`],
    /// `HttpOnly`, `SameSite=Lax`, path `/`, a browser-session cookie with no `max_age`, so
    /// one the client keeps never expires on the server (see the type's doc).
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        let options = CookieOptions::default().with_httponly(true).with_samesite("Lax");
        Ok(CookieIdentityPolicy {
            seal: CookieStorage::new(secret)?.for_purpose(IDENTITY_SEAL_NAME),
            name: DEFAULT_IDENTITY_COOKIE.to_owned(),
            options,
        })
    }

    /// Uses the cookie `name` with `options` instead. With `max_age` set, an identity
    /// cookie older than that (by when it was sealed) identifies no one, whatever the client
    /// sends: a copy kept past the browser's expiry is worth nothing.
    #[must_use]
    pub fn cookie(mut self, name: &str, options: CookieOptions) -> Self {
        name.clone_into(&mut self.name);
        self.options = options;
        self
    }
}

impl IdentityPolicy for CookieIdentityPolicy {
    fn identify<'a>(&'a self, req: &'a Request) -> PolicyFuture<'a, Option<String>> {
        Box::pin(async move {
            let Some(value) = req.cookie(&self.name) else { return Ok(None) };
            let opened = self.seal.load(value).await?;
            let now = crate::middleware::now();
            let live = opened.filter(|stored| !expired(stored.created, self.options.max_age, now));
            Ok(live.and_then(|stored| stored.data.get("identity")?.as_str().map(str::to_owned)))
        })
    }

    fn remember<'a>(
        &'a self,
        _req: &'a Request,
        response: &'a mut Response,
        identity: &'a str,
    ) -> PolicyFuture<'a, ()> {
        Box::pin(async move {
            let mut data = serde_json::Map::new();
            data.insert("identity".to_owned(), identity.into());
            let sealed = self.seal.save(&Stored::new(None, crate::middleware::now(), data)).await?;
            response
                .set_cookie(&self.name, &sealed, &self.options)
                .map_err(|err| cookie_refused(&err))
        })
    }

    fn forget<'a>(&'a self, _req: &'a Request, response: &'a mut Response) -> PolicyFuture<'a, ()> {
        Box::pin(async move {
            let path = self.options.path.as_deref().unwrap_or("/");
            let domain = self.options.domain.as_deref();
            response.del_cookie(&self.name, path, domain).map_err(|err| cookie_refused(&err))
        })
    }
}

fn cookie_refused(err: &tandem_web::Error) -> Error {
    Error::config(format!("the identity cookie cannot be set: {err}"))
}

/// The policies [`setup`] installed, in the app's state.
#[derive(Clone)]
struct Security {
    identity: Arc<dyn IdentityPolicy>,
    authorization: Arc<dyn AuthorizationPolicy>,
}

/// Installs the policies on `app`: aiohttp-security's `setup(app, identity_policy,
/// autz_policy)`. The functions below find them through the request.
pub fn setup(
    app: &mut Application,
    identity: impl IdentityPolicy,
    authorization: impl AuthorizationPolicy,
) {
    app.set_state(Security {
        identity: Arc::new(identity),
        authorization: Arc::new(authorization),
    });
}

fn security(req: &Request) -> Result<Arc<Security>, Error> {
    req.state::<Security>()
        .ok_or_else(|| Error::config("no security policies are set up on this application"))
}

/// Remembers `identity` for the client (log-in), on `response`.
pub async fn remember(req: &Request, response: &mut Response, identity: &str) -> Result<(), Error> {
    security(req)?.identity.remember(req, response, identity).await
}

/// Forgets the client's identity (log-out), on `response`.
pub async fn forget(req: &Request, response: &mut Response) -> Result<(), Error> {
    security(req)?.identity.forget(req, response).await
}

/// The user id of the client, if it has an identity that names a user.
pub async fn authorized_userid(req: &Request) -> Result<Option<String>, Error> {
    let security = security(req)?;
    match security.identity.identify(req).await? {
        Some(identity) => security.authorization.authorized_userid(&identity).await,
        None => Ok(None),
    }
}

/// Whether the client (anonymous or not) has `permission`.
pub async fn permits(req: &Request, permission: &str) -> Result<bool, Error> {
    let security = security(req)?;
    let identity = security.identity.identify(req).await?;
    security.authorization.permits(identity.as_deref(), permission).await
}

/// Whether the client has no identity.
pub async fn is_anonymous(req: &Request) -> Result<bool, Error> {
    Ok(security(req)?.identity.identify(req).await?.is_none())
}

/// The client's user id, or a 401: for `?` in a handler.
pub async fn check_authorized(req: &Request) -> Result<String, tandem_web::Error> {
    match authorized_userid(req).await? {
        Some(user) => Ok(user),
        None => Err(HttpError::unauthorized().into()),
    }
}

/// Nothing if the client has `permission`; a 401 if it is not logged in, a 403 if it is
/// but may not: for `?` in a handler.
pub async fn check_permission(req: &Request, permission: &str) -> Result<(), tandem_web::Error> {
    check_authorized(req).await?;
    if permits(req, permission).await? { Ok(()) } else { Err(HttpError::forbidden().into()) }
}

/// `handler`, answered with a 401 for a client that is not logged in: aiohttp-security's
/// `login_required`.
pub fn login_required(handler: impl Handler) -> impl Handler {
    guarded(handler, None)
}

/// `handler`, answered with a 401 for a client that is not logged in and a 403 for one
/// without `permission`: aiohttp-security's `has_permission`.
pub fn has_permission(permission: &str, handler: impl Handler) -> impl Handler {
    guarded(handler, Some(Arc::from(permission)))
}

fn guarded(handler: impl Handler, permission: Option<Arc<str>>) -> impl Handler {
    let handler = Arc::new(handler);
    move |req: Request| {
        let (handler, permission) = (Arc::clone(&handler), permission.clone());
        async move {
            let allowed = match &permission {
                Some(permission) => check_permission(&req, permission).await,
                None => check_authorized(&req).await.map(drop),
            };
            match allowed {
                Ok(()) => handler.call(req).await,
                Err(refused) => tandem_web::IntoResponse::into_response(refused),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tandem_web::{Application, CookieOptions, Request};

    use super::{CookieIdentityPolicy, IdentityPolicy};
    use crate::{Storage, Stored, middleware::now};

    #[tokio::test]
    async fn an_identity_cookie_past_its_max_age_is_nobody() {
        let options = CookieOptions::default().with_max_age(60);
        let policy = CookieIdentityPolicy::new(&[7; 32]).unwrap().cookie("id", options);
        let app = Application::new().freeze().unwrap();
        let now = now();
        for (created, identity) in [(now - 3600, None), (now - 30, Some("ada"))] {
            let mut data = serde_json::Map::new();
            data.insert("identity".into(), "ada".into());
            let sealed = policy.seal.save(&Stored::new(None, created, data)).await.unwrap();
            let req = http::Request::get("/").header("host", "h");
            let req = req.header("cookie", format!("id={sealed}")).body(String::new()).unwrap();
            let req = Request::from_http(req, &app).unwrap();
            assert_eq!(policy.identify(&req).await.unwrap().as_deref(), identity, "{created}");
        }
    }
}
