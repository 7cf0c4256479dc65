//! `trust_env` proxies: `HTTP_PROXY`, `HTTPS_PROXY`, `WS_PROXY`, `WSS_PROXY` and `NO_PROXY`,
//! read as Python's `urllib.request.getproxies` and `proxy_bypass_environment` read them
//! (aiohttp uses both).
//!
//! Lower-case names win over upper-case ones, as urllib. Upper-case `HTTP_PROXY` is not read
//! when `REQUEST_METHOD` is set: under CGI it holds a request's `Proxy:` header, so a client
//! could send the server's traffic anywhere (httpoxy; urllib and reqwest do the same).
//!
//! The settings are read once, by [`ProxyEnv::from_env`], and can be re-asked per request
//! (aiohttp re-resolves them on every redirect hop so credentials never follow a hop to a
//! proxy they were not meant for).

use std::net::IpAddr;

use percent_encoding::percent_decode_str;

use crate::{
    Origin, Proxy, Scheme,
    error::{Error, Kind},
};

/// Proxy settings read from the environment.
#[derive(Clone, Debug, Default)]
pub struct ProxyEnv {
    http: Option<Proxy>,
    https: Option<Proxy>,
    ws: Option<Proxy>,
    wss: Option<Proxy>,
    no_proxy: Vec<String>,
}

impl ProxyEnv {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (for tests and embedders). Unparsable proxy URLs
    /// are ignored, as urllib ignores them.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |lower: &str, upper: Option<&str>| {
            get(lower).or_else(|| upper.and_then(&get)).filter(|v| !v.trim().is_empty())
        };
        let proxy = |lower, upper| var(lower, upper).and_then(|url| parse_proxy_url(&url).ok());
        let no_proxy = var("no_proxy", Some("NO_PROXY")).unwrap_or_default();
        // Under CGI, HTTP_PROXY is request data (httpoxy): see the module comment.
        let cgi = get("REQUEST_METHOD").is_some();
        ProxyEnv {
            http: proxy("http_proxy", (!cgi).then_some("HTTP_PROXY")),
            https: proxy("https_proxy", Some("HTTPS_PROXY")),
            ws: proxy("ws_proxy", Some("WS_PROXY")),
            wss: proxy("wss_proxy", Some("WSS_PROXY")),
            no_proxy: no_proxy
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    /// The proxy for `origin`, or `None` to connect directly. `websocket` picks `WS_PROXY`
    /// or `WSS_PROXY` (falling back to the HTTP ones, as aiohttp).
    pub fn proxy_for(&self, origin: &Origin, websocket: bool) -> Option<Proxy> {
        if self.bypass(origin) {
            return None;
        }
        match (origin.scheme(), websocket) {
            (Scheme::Http, false) => self.http.clone(),
            (Scheme::Https, false) => self.https.clone(),
            (Scheme::Http, true) => self.ws.clone().or_else(|| self.http.clone()),
            (Scheme::Https, true) => self.wss.clone().or_else(|| self.https.clone()),
        }
    }

    /// Whether `NO_PROXY` says to connect to `origin` directly: `*`; a host name or domain
    /// suffix (`example.com` and `.example.com` both cover `a.example.com`); an IP address;
    /// any of them with `:port`.
    pub fn bypass(&self, origin: &Origin) -> bool {
        let host = origin.host().trim_end_matches('.');
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, port) = split_port(entry);
            if port.is_some_and(|p| p != origin.port()) {
                return false;
            }
            let name = name.trim_start_matches('.').trim_end_matches('.');
            if name.is_empty() {
                return false;
            }
            if let (Ok(a), Ok(b)) = (name.parse::<IpAddr>(), host.parse::<IpAddr>()) {
                return a == b;
            }
            host == name || host.strip_suffix(name).is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

/// `host:port`, `[v6]:port` or a bare name.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((ip, after)) = rest.split_once(']')
    {
        return (ip, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        // One colon: a port. More: a bare IPv6 address.
        Some((name, port)) if !name.contains(':') => (name, port.parse().ok()),
        _ => (entry, None),
    }
}

/// A proxy URL: `[http|https]://[user[:password]@]host[:port][/]`. The scheme defaults to
/// http; the port to the scheme's.
pub fn parse_proxy_url(url: &str) -> Result<Proxy, Error> {
    let bad = |why: &str| Error::new(Kind::Config, format!("proxy URL {why}"));
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, rest)) => match s.to_ascii_lowercase().as_str() {
            "http" => (Scheme::Http, rest),
            "https" => (Scheme::Https, rest),
            // aiohttp refuses SOCKS explicitly rather than speaking HTTP to it.
            _ => return Err(bad("has an unsupported scheme")),
        },
        None => (Scheme::Http, url),
    };
    let rest = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or_else(|| bad("has an unclosed '['"))?;
        (ip, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("has no valid host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("has a bad port"))?,
        None => scheme.default_port(),
    };
    let mut proxy = Proxy::new(Origin::new(scheme, host, port));
    if let Some(userinfo) = userinfo {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        proxy = proxy.basic_auth(&decode(user), &decode(password));
    }
    Ok(proxy)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{ProxyEnv, parse_proxy_url};
    use crate::{Origin, Scheme};

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ProxyEnv::from_vars(|k| vars.get(k).cloned())
    }

    fn http(host: &str, port: u16) -> Origin {
        Origin::new(Scheme::Http, host, port)
    }

    #[test]
    fn proxy_urls_parse_with_credentials_and_defaults() {
        let p = parse_proxy_url("http://us%40er:p%3Ass@proxy.local:3128/").unwrap();
        assert_eq!(p.origin(), &http("proxy.local", 3128));
        // "us@er:p:ss" in base64.
        assert_eq!(p.authorization_value(), Some("Basic dXNAZXI6cDpzcw=="));
        let p = parse_proxy_url("proxy.local").unwrap();
        assert_eq!(p.origin(), &http("proxy.local", 80));
        assert_eq!(p.authorization_value(), None);
        let p = parse_proxy_url("https://[::1]").unwrap();
        assert_eq!(p.origin(), &Origin::new(Scheme::Https, "::1", 443));
        for bad in ["socks5://p:1080", "http://:80", "http://p:notaport", "http://[::1"] {
            assert!(parse_proxy_url(bad).unwrap_err().is_config(), "{bad}");
        }
    }

    #[test]
    fn each_scheme_takes_its_variable_and_httpoxy_is_ignored() {
        let e = env(&[("HTTP_PROXY", "http://upper:1")]);
        assert_eq!(e.proxy_for(&http("a.test", 80), false).unwrap().origin().host(), "upper");
        let e = env(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://evil:1"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("https_proxy", "http://lower:3"),
            ("WS_PROXY", "http://ws:4"),
        ]);
        assert_eq!(e.proxy_for(&http("a.test", 80), false), None, "HTTP_PROXY under CGI");
        let https = Origin::new(Scheme::Https, "a.test", 443);
        assert_eq!(e.proxy_for(&https, false).unwrap().origin().host(), "lower");
        assert_eq!(e.proxy_for(&http("a.test", 80), true).unwrap().origin().host(), "ws");
        assert_eq!(e.proxy_for(&https, true).unwrap().origin().host(), "lower");
        let e = env(&[("http_proxy", "http://p:8080")]);
        assert_eq!(e.proxy_for(&http("a.test", 80), false).unwrap().origin().port(), 8080);
    }

    #[test]
    fn no_proxy_matches_hosts_domains_ips_and_ports() {
        let e = env(&[
            ("http_proxy", "http://p:8080"),
            ("NO_PROXY", "example.com, .corp.test,10.0.0.1,::1,local.test:8000"),
        ]);
        let direct = |host: &str, port| e.proxy_for(&http(host, port), false).is_none();
        assert!(direct("example.com", 80));
        assert!(direct("www.example.com", 80));
        assert!(!direct("badexample.com", 80));
        assert!(direct("a.corp.test", 80));
        assert!(direct("corp.test", 80));
        assert!(direct("10.0.0.1", 80));
        assert!(!direct("10.0.0.2", 80));
        assert!(direct("::1", 80));
        assert!(direct("local.test", 8000));
        assert!(!direct("local.test", 80));
        assert!(!direct("other.test", 80));
        let all = env(&[("http_proxy", "http://p:8080"), ("no_proxy", "*")]);
        assert!(all.proxy_for(&http("x.test", 80), false).is_none());
    }
}
