//! aiohttp's `normalize_path_middleware`: a path that finds no route, but would once its
//! slashes are merged or its trailing slash added or removed, is redirected there.

use http::{Method, StatusCode};

use crate::{BoxFuture, HttpError, Middleware, Next, Request, Response};

/// A middleware that redirects a path no route matches to its normal form, if a route
/// matches that (aiohttp's `normalize_path_middleware`, with its defaults: slashes merged,
/// a trailing slash appended, and a 308 so the method and body are kept).
///
/// The candidates are tried in aiohttp's order: the path with runs of `/` merged, then
/// with a `/` appended (or removed), then both. The query is kept. A candidate starting
/// with `//` or `/\` is never used: a browser reads it as another host (an open redirect).
/// Add it to the root application: it acts on requests no route matched, which only the
/// root's middlewares see.
///
/// ```
/// use tandem_web::{Application, NormalizePath, Request};
///
/// let mut app = Application::new();
/// app.middleware(NormalizePath::new()); // GET /docs -> 308 /docs/
/// app.add_get("/docs/", |_req: Request| async { "the docs" });
/// ```
#[derive(Clone, Debug)]
pub struct NormalizePath {
    append_slash: bool,
    remove_slash: bool,
    merge_slashes: bool,
    redirect: StatusCode,
}

impl Default for NormalizePath {
    fn default() -> Self {
        NormalizePath {
            append_slash: true,
            remove_slash: false,
            merge_slashes: true,
            redirect: StatusCode::PERMANENT_REDIRECT,
        }
    }
}

impl NormalizePath {
    /// aiohttp's defaults: merge slashes, append a trailing slash, redirect with 308.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to try the path with a trailing `/` added (on by default); turning it on
    /// turns [`remove_slash`](Self::remove_slash) off, as aiohttp allows only one.
    #[must_use]
    pub fn append_slash(mut self, on: bool) -> Self {
        self.append_slash = on;
        self.remove_slash &= !on;
        self
    }

    /// Whether to try the path without its trailing `/` (off by default); turning it on
    /// turns [`append_slash`](Self::append_slash) off.
    #[must_use]
    pub fn remove_slash(mut self, on: bool) -> Self {
        self.remove_slash = on;
        self.append_slash &= !on;
        self
    }

    /// Whether to try the path with each run of `/` merged into one (on by default).
    #[must_use]
    pub fn merge_slashes(mut self, on: bool) -> Self {
        self.merge_slashes = on;
        self
    }

    /// The redirect's status: 308 by default; 301 (`HTTPMovedPermanently`), 302, 307 also
    /// make sense.
    #[must_use]
    pub fn redirect_status(mut self, status: StatusCode) -> Self {
        self.redirect = status;
        self
    }

    /// The normal forms of `path` to try, in aiohttp's order.
    fn candidates(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        let merged = merge(path);
        if self.merge_slashes {
            out.push(merged.clone());
        }
        if self.append_slash && !path.ends_with('/') {
            out.push(format!("{path}/"));
        }
        if self.remove_slash && path.len() > 1 && path.ends_with('/') {
            out.push(path[..path.len() - 1].to_owned());
        }
        if self.merge_slashes && self.append_slash && !merged.ends_with('/') {
            out.push(format!("{merged}/"));
        }
        if self.merge_slashes && self.remove_slash && merged.len() > 1 && merged.ends_with('/') {
            out.push(merged[..merged.len() - 1].to_owned());
        }
        out.retain(|candidate| candidate != path && !leaves_the_host(candidate));
        out
    }

    /// Where to redirect `req`, if its path finds no route and a normal form does.
    fn redirect_for(&self, req: &Request) -> Option<String> {
        let app = req.app();
        let method: &Method = req.method();
        if app.resolves(method, req.raw_path()) {
            return None;
        }
        let target = self
            .candidates(req.raw_path())
            .into_iter()
            .find(|candidate| app.finds_handler(method, candidate))?;
        Some(match req.query_string() {
            "" => target,
            query => format!("{target}?{query}"),
        })
    }
}

/// `path` with each run of `/` made one.
fn merge(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// Whether a browser would read `location` as naming another host: `//host` or `/\host`
/// (browsers treat `\` as `/`), percent-encoded or not.
fn leaves_the_host(location: &str) -> bool {
    let second = location.get(1..).unwrap_or_default();
    let lower = second.to_ascii_lowercase();
    ["/", "\\", "%2f", "%5c"].iter().any(|p| lower.starts_with(p))
}

impl Middleware for NormalizePath {
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        match self.redirect_for(&req) {
            None => next.call(req),
            Some(location) => {
                let redirect = HttpError::new(self.redirect).with_header("location", &location);
                Box::pin(async move { redirect.into_response() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_in_aiohttps_order() {
        let default = NormalizePath::new();
        assert_eq!(default.candidates("/a//b"), ["/a/b", "/a//b/", "/a/b/"]);
        assert_eq!(default.candidates("/a/"), Vec::<String>::new());
        let remove = NormalizePath::new().remove_slash(true);
        assert!(!remove.append_slash);
        assert_eq!(remove.candidates("/a//b/"), ["/a/b/", "/a//b", "/a/b"]);
        assert_eq!(remove.candidates("/"), Vec::<String>::new());
        // Never a location another host could be read from.
        assert_eq!(
            NormalizePath::new().merge_slashes(false).candidates("//evil.com"),
            Vec::<String>::new()
        );
        assert_eq!(default.candidates("//evil.com"), ["/evil.com", "/evil.com/"]);
        assert_eq!(default.candidates("/\\evil.com"), Vec::<String>::new());
        assert_eq!(default.candidates("/%2Fevil.com"), Vec::<String>::new());
    }
}
