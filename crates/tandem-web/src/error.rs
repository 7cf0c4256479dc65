//! Errors a handler returns: HTTP exceptions with a status, and any other error, which
//! becomes a 500.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use crate::response::{IntoResponse, Response};

/// An HTTP error answered with its status: aiohttp's `HTTPException` family.
///
/// Return it from a handler (`Err(HttpError::not_found())?`) and the client gets its
/// status, text and headers. The constructors follow aiohttp's class names:
/// `HTTPNotFound` is [`HttpError::not_found`], `HTTPFound(location)` is
/// [`HttpError::found`], and [`HttpError::new`] covers every other 4xx and 5xx.
///
/// ```
/// use tandem_web::HttpError;
///
/// let err = HttpError::not_found().with_text("no such poll");
/// assert_eq!(err.status(), 404);
/// ```
#[derive(Clone, Debug)]
pub struct HttpError {
    // Boxed so `Result<T, HttpError>` stays a pointer wide on the happy path.
    inner: Box<HttpErrorInner>,
}

#[derive(Clone, Debug)]
struct HttpErrorInner {
    status: StatusCode,
    text: Option<String>,
    headers: HeaderMap,
}

impl HttpError {
    /// An error with `status` and the default text, `"<code>: <reason>"`, as aiohttp's.
    pub fn new(status: StatusCode) -> Self {
        HttpError {
            inner: Box::new(HttpErrorInner { status, text: None, headers: HeaderMap::new() }),
        }
    }

    /// An error whose body is `value` as JSON (`Content-Type: application/json`), for JSON
    /// APIs: `Err(HttpError::json(StatusCode::NOT_FOUND, &json!({"error": "no such poll"})))`.
    /// A value that does not serialize leaves the default text.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tandem_web::HttpError;
    ///
    /// let err = HttpError::json(StatusCode::NOT_FOUND, &serde_json::json!({"error": "gone"}));
    /// let response = err.into_response();
    /// assert_eq!(response.status(), 404);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(text) => HttpError::new(status)
                .with_text(text)
                .with_header(header::CONTENT_TYPE.as_str(), "application/json"),
            Err(_) => HttpError::new(status),
        }
    }

    /// The response this error is answered with; the same as [`IntoResponse`]'s, callable
    /// without importing the trait.
    pub fn into_response(self) -> Response {
        IntoResponse::into_response(self)
    }

    /// Replaces the body text.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.inner.text = Some(text.into());
        self
    }

    /// Sets a header of the response, replacing any of that name (its `Content-Type`,
    /// say), as [`Response::with_header`] does. Invalid names or values are dropped, never
    /// written.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.inner.headers.insert(n, v);
        }
        self
    }

    /// Adds a header to the response beside any of that name (a second `Set-Cookie`, say).
    /// Invalid names or values are dropped, never written.
    #[must_use]
    pub fn append_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.inner.headers.append(n, v);
        }
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The fields its response carries (`Allow`, `Location`, and any set with
    /// [`with_header`](Self::with_header)).
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The body text.
    pub fn text(&self) -> String {
        self.inner.text.clone().unwrap_or_else(|| default_text(self.inner.status))
    }

    fn redirect(status: StatusCode, location: &str) -> Self {
        HttpError::new(status).with_header(header::LOCATION.as_str(), location)
    }

    /// 400 (`HTTPBadRequest`).
    pub fn bad_request() -> Self {
        HttpError::new(StatusCode::BAD_REQUEST)
    }
    /// 401 (`HTTPUnauthorized`).
    pub fn unauthorized() -> Self {
        HttpError::new(StatusCode::UNAUTHORIZED)
    }
    /// 403 (`HTTPForbidden`).
    pub fn forbidden() -> Self {
        HttpError::new(StatusCode::FORBIDDEN)
    }
    /// 404 (`HTTPNotFound`).
    pub fn not_found() -> Self {
        HttpError::new(StatusCode::NOT_FOUND)
    }
    /// 405 (`HTTPMethodNotAllowed`) with the `Allow` list.
    pub fn method_not_allowed(allowed: &[http::Method]) -> Self {
        let allow = allowed.iter().map(http::Method::as_str).collect::<Vec<_>>().join(", ");
        HttpError::new(StatusCode::METHOD_NOT_ALLOWED).with_header(header::ALLOW.as_str(), &allow)
    }
    /// 413 (`HTTPRequestEntityTooLarge`), naming the limit as aiohttp does.
    pub fn payload_too_large(limit: usize, actual: Option<u64>) -> Self {
        let actual = actual.map_or_else(|| "more".to_owned(), |n| n.to_string());
        HttpError::new(StatusCode::PAYLOAD_TOO_LARGE).with_text(format!(
            "Maximum request body size {limit} exceeded, actual body size {actual}"
        ))
    }
    /// 500 (`HTTPInternalServerError`).
    pub fn internal_server_error() -> Self {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR)
    }
    /// 301 (`HTTPMovedPermanently`) to `location`.
    pub fn moved_permanently(location: &str) -> Self {
        Self::redirect(StatusCode::MOVED_PERMANENTLY, location)
    }
    /// 302 (`HTTPFound`) to `location`.
    pub fn found(location: &str) -> Self {
        Self::redirect(StatusCode::FOUND, location)
    }
    /// 303 (`HTTPSeeOther`) to `location`.
    pub fn see_other(location: &str) -> Self {
        Self::redirect(StatusCode::SEE_OTHER, location)
    }
    /// 307 (`HTTPTemporaryRedirect`) to `location`.
    pub fn temporary_redirect(location: &str) -> Self {
        Self::redirect(StatusCode::TEMPORARY_REDIRECT, location)
    }
    /// 308 (`HTTPPermanentRedirect`) to `location`.
    pub fn permanent_redirect(location: &str) -> Self {
        Self::redirect(StatusCode::PERMANENT_REDIRECT, location)
    }
}

fn default_text(status: StatusCode) -> String {
    format!("{}: {}", status.as_u16(), status.canonical_reason().unwrap_or("Unknown"))
}

/// A message the protocol refused, answered with the status `tandem-proto` gives it and its
/// fixed text (never the peer's bytes): how a broken body or an unacceptable head reaches a
/// handler or a client.
impl From<tandem_proto::Error> for HttpError {
    fn from(err: tandem_proto::Error) -> Self {
        HttpError::new(err.status()).with_text(format!("{}: {err}", err.status().as_u16()))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for HttpError {}

impl HttpError {
    /// aiohttp's response for this error: its text as `text/plain`, with its fields.
    pub(crate) fn plain_response(&self) -> Response {
        let mut response = Response::text(self.text()).with_status(self.inner.status);
        if self.inner.headers.is_empty() {
            return response;
        }
        let headers = response.headers_mut();
        // The error's fields replace the plain-text response's (its Content-Type above
        // all); several values of one name all go out.
        for name in self.inner.headers.keys() {
            headers.remove(name);
            for value in self.inner.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        response
    }
}

/// The plain response, which keeps the error so that the application's
/// [`error_renderer`](crate::Application::error_renderer) can make its own.
impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = self.plain_response();
        response.inner.error = Some(self);
        response
    }
}

/// The error type of this crate: what [`run_app`](crate::run_app), [`AppRunner`](crate::AppRunner)
/// and handlers return.
///
/// It holds either an [`HttpError`], answered with its status, or any other error, which is
/// logged and answered `500 Internal Server Error` without its details.
///
/// It implements [`std::error::Error`], so `?` carries it into `anyhow::Error` or
/// `Box<dyn std::error::Error>` from `main` or any function of yours.
///
/// A handler may return `Result<_, E>` for any `E` that converts into it. `?` converts an
/// [`HttpError`], [`std::io::Error`], `serde_json::Error`, `http`'s errors, UTF-8 and number
/// parsing errors, tokio's `JoinError`, a `Box<dyn std::error::Error + Send + Sync>` (and so
/// a message: `Err("no such user".into())`), and, with the `anyhow` feature (on by default
/// in `tandem-http`), an `anyhow::Error`: a handler may return `anyhow::Result<_>` and `?`
/// anything. Wrap any other error with [`Error::new`] (`.map_err(Error::new)?`), or
/// implement `From<YourError> for tandem_web::Error`. An [`HttpError`] inside (under a
/// context too) still answers with its own status.
///
/// A blanket `From<E: std::error::Error>` cannot coexist with this type being a
/// `std::error::Error` itself (the two would overlap at `From<Error> for Error`), which is why
/// the list above is a list.
///
/// ```
/// use tandem_web::{Application, Error, HttpError, Request, Response};
///
/// async fn item(req: Request) -> Result<Response, Error> {
///     let id = req.match_info("id").unwrap_or_default();
///     if id == "0" {
///         return Err(HttpError::not_found().into());
///     }
///     let text = std::fs::read_to_string("/dev/null")?;
///     Ok(Response::text(format!("{id}{text}")))
/// }
///
/// fn main() -> anyhow::Result<()> {
///     let mut app = Application::new();
///     app.add_get("/items/{id}", item);
///     let _runner = tandem_web::AppRunner::new(app)?;
///     Ok(())
/// }
/// ```
///
/// Its message is the wrapped error's, and its [`source`](std::error::Error::source) the
/// wrapped error's source: it is transparent. Message texts are not stable.
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    /// Wraps any error (or a message: `Error::new("no address for host")`).
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let inner = err.into();
        // One level of wrapping: an `Error` wrapped again is the same error.
        match inner.downcast::<Error>() {
            Ok(error) => *error,
            Err(inner) => Error { inner },
        }
    }

    /// The HTTP error inside, if this is one.
    pub fn as_http(&self) -> Option<&HttpError> {
        self.inner.downcast_ref::<HttpError>()
    }

    /// Whether this becomes a 500 rather than an HTTP error's own status.
    pub fn is_internal(&self) -> bool {
        self.as_http().is_none()
    }

    /// [`run_app`](crate::run_app) (or [`RunOptions::run`](crate::RunOptions::run)) was
    /// called on a thread that already runs a tokio runtime, inside `#[tokio::main]` say,
    /// where it cannot start its own: await [`serve`](crate::serve) there instead.
    pub fn is_inside_runtime(&self) -> bool {
        self.inner.is::<crate::server::InsideRuntime>()
    }

    /// An access log format string was refused by
    /// [`AccessLogFormat::new`](crate::AccessLogFormat::new): an unknown atom, or a
    /// `%{...}` without its letter or with a name that is not one.
    pub fn is_access_log_format(&self) -> bool {
        self.inner.is::<crate::server::FormatError>()
    }

    /// The wrapped error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.inner
    }
}

/// `From` for the errors a handler meets most, so `?` converts them. A blanket impl over
/// every `std::error::Error` would collide with `Error`'s own `std::error::Error` impl.
macro_rules! from_errors {
    ($($ty:ty),* $(,)?) => {$(
        impl From<$ty> for Error {
            fn from(err: $ty) -> Self {
                Error { inner: Box::new(err) }
            }
        }
    )*};
}

from_errors!(
    HttpError,
    std::io::Error,
    serde_json::Error,
    http::Error,
    http::header::InvalidHeaderName,
    http::header::InvalidHeaderValue,
    http::uri::InvalidUri,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    tokio::task::JoinError,
);

impl From<Box<dyn std::error::Error + Send + Sync>> for Error {
    fn from(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Error::new(err)
    }
}

/// An `anyhow::Error` converts with any [`HttpError`] inside it, under any context, so a
/// handler returning `anyhow::Result<_>` answers `Err(HttpError::not_found())?` with a 404.
#[cfg(feature = "anyhow")]
impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Self {
        let http = err
            .downcast_ref::<HttpError>()
            .or_else(|| err.downcast_ref::<Error>().and_then(Error::as_http));
        match http {
            Some(http) => http.clone().into(),
            None => match err.downcast::<Error>() {
                Ok(error) => error,
                Err(err) => Error { inner: err.into() },
            },
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self.inner.downcast::<HttpError>() {
            Ok(http) => http.into_response(),
            Err(other) => {
                // An `HttpError` under a context (`anyhow`'s `.context(..)`) still decides
                // the status.
                let mut source = other.source();
                while let Some(err) = source {
                    if let Some(http) = err.downcast_ref::<HttpError>() {
                        return http.clone().into_response();
                    }
                    source = err.source();
                }
                crate::log::error("handler failed", &crate::log::Chain(&*other));
                HttpError::internal_server_error().into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_is_aiohttps() {
        assert_eq!(HttpError::not_found().text(), "404: Not Found");
        let allow = HttpError::method_not_allowed(&[http::Method::GET, http::Method::HEAD]);
        assert_eq!(allow.into_response().headers()["allow"], "GET, HEAD");
    }

    #[test]
    fn other_errors_become_500_and_http_errors_keep_their_status() {
        let io = Error::from(std::io::Error::other("disk on fire"));
        assert_eq!(io.to_string(), "disk on fire");
        assert!(io.is_internal());
        assert_eq!(io.into_response().status(), 500);
        let http = Error::from(HttpError::forbidden());
        assert_eq!(http.into_response().status(), 403);
    }

    #[test]
    fn the_error_is_a_std_error_one_pointer_wide() {
        fn is_std_error<E: std::error::Error + Send + Sync + 'static>() {}
        is_std_error::<Error>();
        // Box<dyn Error> is a fat pointer; boxing keeps `Result<(), Error>` at two words.
        assert!(std::mem::size_of::<Error>() <= 2 * std::mem::size_of::<usize>());
        let wrapped = Error::new(Error::from(HttpError::forbidden()));
        assert_eq!(wrapped.as_http().map(HttpError::status), Some(StatusCode::FORBIDDEN));
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(wrapped);
        assert_eq!(Error::from(boxed).into_response().status(), 403);
    }

    #[derive(Debug)]
    struct Context(HttpError);

    impl fmt::Display for Context {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("while looking")
        }
    }

    impl std::error::Error for Context {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_http_error_under_a_context_keeps_its_status() {
        let err = Error::new(Context(HttpError::not_found()));
        assert_eq!(err.into_response().status(), 404);
        let text: Box<dyn std::error::Error + Send + Sync> = "plain text".into();
        assert_eq!(Error::from(text).into_response().status(), 500);
    }
}
