//! The URL dispatcher: which handler answers a method and path.
//!
//! Plain paths are found in a hash map; patterns with variables are tried in the order
//! they were added, as aiohttp's `UrlDispatcher` does. A path that some resource matches
//! but not for this method gives 405 with `Allow` listing the methods that would match;
//! otherwise 404. HEAD is answered by the GET handler unless a HEAD handler is added.

mod domain;
mod pattern;

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use http::Method;

use crate::{expect::BoxExpect, handler::BoxHandler};
pub(crate) use domain::DomainMask;
pub(crate) use pattern::Pattern;

/// One route of a frozen application, as [`App::routes`](crate::App::routes) lists it
/// (aiohttp's `router.routes()`): its method (`None` for any), its path pattern with any
/// sub-application's prefix, and its resource's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    method: Option<Method>,
    path: String,
    name: Option<String>,
}

impl RouteInfo {
    /// The method, or `None` for a route that takes any (`add_route(None, ...)`).
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    /// The path pattern, as written (`/users/{id}`), prefixes included.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The name of the route's resource, for `url_for`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// The path variables of a matched route.
#[derive(Clone, Debug, Default)]
pub(crate) struct MatchInfo(Vec<(String, String)>);

impl MatchInfo {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// One path pattern and the handlers for its methods.
pub(crate) struct Resource {
    pub(crate) pattern: Pattern,
    pub(crate) name: Option<String>,
    /// The application (node) the resource belongs to, for its middlewares and state.
    pub(crate) app: usize,
    /// Which of its application's routes made it (their index in the order they were
    /// added): custom resources added before that route are asked first.
    pub(crate) first_route: usize,
    routes: Vec<(Method, Route)>,
    any: Option<Route>,
}

/// One method's route of a resource: its handler, and its check of `Expect: 100-continue`
/// if it has its own.
pub(crate) struct Route {
    pub(crate) handler: BoxHandler,
    pub(crate) expect: Option<BoxExpect>,
}

impl Resource {
    fn handler(&self, method: &Method) -> Option<&Route> {
        let exact = self.routes.iter().find(|(m, _)| m == method).map(|(_, h)| h);
        exact
            .or_else(|| {
                // HEAD is GET without the body; the connection drops the body.
                (*method == Method::HEAD)
                    .then(|| self.routes.iter().find(|(m, _)| m == Method::GET).map(|(_, h)| h))
                    .flatten()
            })
            .or(self.any.as_ref())
    }

    fn allowed(&self, into: &mut Vec<Method>) {
        for (method, _) in &self.routes {
            if !into.contains(method) {
                into.push(method.clone());
            }
            if *method == Method::GET && !into.contains(&Method::HEAD) {
                into.push(Method::HEAD);
            }
        }
    }
}

/// The hasher of the plain-path table: `FxHash`'s multiply-rotate over 8 bytes at a time,
/// instead of the default `SipHash`, which is several times the work for a short path and
/// runs on every request. `SipHash`'s keys defend a map whose *keys* an attacker chooses;
/// these keys are the application's routes, fixed before the first request, and a lookup
/// with a hostile path only probes among them.
#[derive(Default)]
pub(crate) struct PathHasher(u64);

impl PathHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        // The length goes in with the tail, so "a" and "a\0" differ.
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    /// The length prefix of a byte-string key, in one step rather than through `write`.
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What the router found.
pub(crate) enum Resolved<'a> {
    Found { resource: &'a Resource, route: &'a Route, match_info: MatchInfo },
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

#[derive(Default)]
pub(crate) struct Router {
    resources: Vec<Resource>,
    plain: HashMap<Box<[u8]>, usize, BuildHasherDefault<PathHasher>>,
    patterns: Vec<usize>,
    names: HashMap<String, usize>,
    /// The routers of `add_domain`'s sub-applications, tried in order before this one's
    /// own routes when the request's host matches their mask.
    pub(crate) domains: Vec<(DomainMask, Router)>,
}

impl Router {
    /// Adds a route; `method` `None` is aiohttp's `*`, any method.
    pub(crate) fn add(
        &mut self,
        method: Option<Method>,
        path: &str,
        route: Route,
        name: Option<String>,
        (app, first_route): (usize, usize),
    ) -> Result<(), String> {
        let existing = self.resources.iter().position(|r| {
            r.app == app && r.pattern.source() == path && (name.is_none() || r.name == name)
        });
        let index = if let Some(index) = existing {
            index
        } else {
            let pattern = Pattern::parse(path)?;
            let index = self.resources.len();
            if pattern.is_plain() {
                // The first plain resource for a path wins, as the first match does.
                self.plain.entry(path.as_bytes().into()).or_insert(index);
            } else {
                self.patterns.push(index);
            }
            self.resources.push(Resource {
                pattern,
                name: None,
                app,
                first_route,
                routes: Vec::new(),
                any: None,
            });
            index
        };
        if let Some(name) = name {
            if self.names.get(&name).is_some_and(|&other| other != index) {
                return Err(format!("duplicate route name {name:?}"));
            }
            self.names.insert(name.clone(), index);
            self.resources[index].name = Some(name);
        }
        let resource = &mut self.resources[index];
        match method {
            None if resource.any.is_some() => return Err(format!("duplicate route * {path}")),
            None => resource.any = Some(route),
            Some(method) if resource.routes.iter().any(|(m, _)| *m == method) => {
                return Err(format!("duplicate route {method} {path}"));
            }
            Some(method) => resource.routes.push((method, route)),
        }
        Ok(())
    }

    /// [`resolve`](Self::resolve), first in the domain routers whose mask `host` matches,
    /// in the order they were added, then in this router's own routes. A domain that has the
    /// path only for other methods does not stop the search, but its methods count in the
    /// final 405's `Allow`.
    #[inline]
    pub(crate) fn resolve_for_host(
        &self,
        method: &Method,
        path: &[u8],
        host: Option<&str>,
    ) -> Resolved<'_> {
        match host {
            Some(host) if !self.domains.is_empty() => self.resolve_in_domains(method, path, host),
            // Most applications route by path alone: no detour for them.
            _ => self.resolve(method, path),
        }
    }

    fn resolve_in_domains(&self, method: &Method, path: &[u8], host: &str) -> Resolved<'_> {
        let mut allowed = Vec::new();
        for (mask, router) in &self.domains {
            if !mask.matches(host) {
                continue;
            }
            match router.resolve(method, path) {
                found @ Resolved::Found { .. } => return found,
                Resolved::MethodNotAllowed(methods) => allowed.extend(methods),
                Resolved::NotFound => {}
            }
        }
        match self.resolve(method, path) {
            Resolved::NotFound if !allowed.is_empty() => Resolved::MethodNotAllowed(allowed),
            Resolved::MethodNotAllowed(mut methods) => {
                for method in allowed {
                    if !methods.contains(&method) {
                        methods.push(method);
                    }
                }
                Resolved::MethodNotAllowed(methods)
            }
            resolved => resolved,
        }
    }

    /// The router a name belongs to: this one's, or a domain's.
    fn named(&self, name: &str) -> Option<(&Router, usize)> {
        if let Some(&index) = self.names.get(name) {
            return Some((self, index));
        }
        self.domains.iter().find_map(|(_, router)| router.named(name))
    }

    /// Finds the handler for `method` on the raw (percent-encoded) `path`.
    ///
    /// The path is taken as bytes: plain paths are looked up without a UTF-8 check of the
    /// request's path, and only patterns, which match text, pay for one.
    #[expect(
        clippy::inline_always,
        reason = "every request is routed here; with the domain routers as a second caller the \
                  compiler kept it out of line"
    )]
    #[inline(always)]
    pub(crate) fn resolve(
        &self,
        method: &Method,
        path: &(impl AsRef<[u8]> + ?Sized),
    ) -> Resolved<'_> {
        let path = path.as_ref();
        let plain = self.plain.get(path).copied();
        // The common case, a plain path with a handler for the method, returns at once,
        // without the general search below.
        if let Some(resource) = plain.map(|i| &self.resources[i])
            && let Some(route) = resource.handler(method)
        {
            return Resolved::Found { resource, route, match_info: MatchInfo(Vec::new()) };
        }
        let mut allowed = Vec::new();
        let plain = plain.map(|i| (i, Vec::new()));
        let text =
            if self.patterns.is_empty() { "" } else { std::str::from_utf8(path).unwrap_or("") };
        let dynamic = self
            .patterns
            .iter()
            .filter_map(|&i| self.resources[i].pattern.matches(text).map(|values| (i, values)));
        for (index, values) in plain.into_iter().chain(dynamic) {
            let resource = &self.resources[index];
            match resource.handler(method) {
                Some(route) => {
                    return Resolved::Found { resource, route, match_info: MatchInfo(values) };
                }
                None => resource.allowed(&mut allowed),
            }
        }
        if allowed.is_empty() { Resolved::NotFound } else { Resolved::MethodNotAllowed(allowed) }
    }

    /// Every route, resource by resource in the order they were added.
    pub(crate) fn routes(&self) -> Vec<RouteInfo> {
        let mut out = Vec::new();
        for resource in &self.resources {
            let methods = resource.routes.iter().map(|(m, _)| Some(m.clone()));
            let any = resource.any.as_ref().map(|_| None);
            for method in methods.chain(any) {
                out.push(RouteInfo {
                    method,
                    path: resource.pattern.source().to_owned(),
                    name: resource.name.clone(),
                });
            }
        }
        for (_, router) in &self.domains {
            out.extend(router.routes());
        }
        out
    }

    /// Checks that a route called `name` exists and that `variables` are exactly its
    /// pattern's, in any order: what a `url_for(name, ...)` written in code will need.
    pub(crate) fn check_url(&self, name: &str, variables: &[String]) -> Result<(), String> {
        let (router, index) =
            self.named(name).ok_or_else(|| format!("url_for: no route named {name:?}"))?;
        let pattern = &router.resources[index].pattern;
        let mut expected: Vec<&str> = pattern.variables().iter().map(String::as_str).collect();
        let mut given: Vec<&str> = variables.iter().map(String::as_str).collect();
        expected.sort_unstable();
        given.sort_unstable();
        if expected != given {
            return Err(format!(
                "url_for({name:?}) is given {given:?}, but {:?} has {expected:?}",
                pattern.source()
            ));
        }
        Ok(())
    }

    /// Builds the path of the route called `name`.
    pub(crate) fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, String> {
        let (router, index) =
            self.named(name).ok_or_else(|| format!("url_for: no route named {name:?}"))?;
        router.resources[index].pattern.build(params)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Request, Response};

    fn handler() -> Route {
        Route { handler: Arc::new(|_req: Request| async { Response::text("x") }), expect: None }
    }

    #[test]
    fn resolution_405_and_head() {
        let mut router = Router::default();
        router.add(Some(Method::GET), "/a", handler(), None, (0, 0)).unwrap();
        router.add(Some(Method::POST), "/a", handler(), None, (0, 0)).unwrap();
        router.add(Some(Method::GET), "/u/{id}", handler(), Some("user".into()), (0, 0)).unwrap();
        assert!(matches!(router.resolve(&Method::GET, "/a"), Resolved::Found { .. }));
        assert!(matches!(router.resolve(&Method::HEAD, "/a"), Resolved::Found { .. }));
        match router.resolve(&Method::PUT, "/a") {
            Resolved::MethodNotAllowed(allowed) => {
                assert_eq!(allowed, [Method::GET, Method::HEAD, Method::POST]);
            }
            _ => panic!("expected 405"),
        }
        assert!(matches!(router.resolve(&Method::GET, "/nope"), Resolved::NotFound));
        match router.resolve(&Method::GET, "/u/7") {
            Resolved::Found { match_info, .. } => assert_eq!(match_info.get("id"), Some("7")),
            _ => panic!("expected a match"),
        }
        assert_eq!(router.url_for("user", &[("id", "9")]).unwrap(), "/u/9");
        assert!(router.url_for("nobody", &[]).is_err());
    }

    #[test]
    fn many_plain_paths_resolve() {
        // Enough routes for the table to spread over many buckets, with paths that share
        // prefixes, differ only in their tail or length, and cross the 8-byte chunks.
        let mut router = Router::default();
        let paths: Vec<String> = (0..300).map(|i| format!("/api/v1/items/{i}/x")).collect();
        for path in &paths {
            router.add(Some(Method::GET), path, handler(), None, (0, 0)).unwrap();
        }
        router.add(Some(Method::GET), "/a", handler(), None, (0, 0)).unwrap();
        router.add(Some(Method::GET), "/a\0", handler(), None, (0, 0)).unwrap();
        for (i, path) in paths.iter().enumerate() {
            match router.resolve(&Method::GET, path) {
                Resolved::Found { resource, .. } => assert_eq!(resource.pattern.source(), path),
                _ => panic!("{path} not found ({i})"),
            }
        }
        assert!(matches!(router.resolve(&Method::GET, "/api/v1/items/300/x"), Resolved::NotFound));
        assert!(matches!(router.resolve(&Method::GET, "/a\0\0"), Resolved::NotFound));
    }

    #[test]
    fn duplicates_are_refused() {
        let mut router = Router::default();
        router.add(Some(Method::GET), "/a", handler(), Some("a".into()), (0, 0)).unwrap();
        assert!(router.add(Some(Method::GET), "/a", handler(), None, (0, 0)).is_err());
        assert!(router.add(Some(Method::GET), "/b", handler(), Some("a".into()), (0, 0)).is_err());
    }
}
