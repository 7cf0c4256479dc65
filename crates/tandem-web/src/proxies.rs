//! Who the client is behind a reverse proxy: `X-Forwarded-For/-Proto/-Host` or RFC 7239
//! `Forwarded`, believed only from proxies the application names (aiohttp-remotes'
//! `XForwardedStrict` and `ForwardedStrict`).
//!
//! Anyone can send these headers. A proxy appends what it saw to the list the client sent,
//! so the list is read from its right end, the nearest hop: each address is believed only
//! while the hop that reported it is trusted, and the first address that is not a trusted
//! proxy is the client. What the client wrote further left is never reached.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::{
    BoxFuture, Error, HttpError, Middleware, Next, Overrides, Request, Response,
    forwarded::{self, DEFAULT_MAX_FORWARDED_ELEMENTS},
    server::LoggedClient,
};

/// Which headers the proxies in front of the application set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyHeaders {
    /// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`, as nginx's
    /// `$proxy_add_x_forwarded_for` and `$scheme` set them; the default.
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded` (`for=`, `proto=`, `host=`).
    Forwarded,
}

/// A middleware that believes the forwarding headers from trusted proxies only, and sets
/// [`Request::remote`], [`Request::scheme`] and [`Request::host`] to what they report (via
/// [`Request::clone_with`]); [`Request::peer_addr`] keeps the proxy's address.
///
/// A request from any other address is passed on untouched: its forwarding headers are
/// ignored. From a trusted proxy, a header that does not parse (an address, a scheme other
/// than `http` or `https`, a host with characters no host has, more than
/// [`DEFAULT_MAX_FORWARDED_ELEMENTS`] hops) is a 400. Add it first, so the middlewares after
/// it see the client.
///
/// ```
/// use tandem_web::{Application, Request, TrustedProxies};
///
/// let mut app = Application::new();
/// // nginx on this host, and the load balancers' network.
/// app.middleware(TrustedProxies::new(["127.0.0.1", "::1", "10.0.0.0/8"])?);
/// app.add_get("/", |req: Request| async move {
///     format!("{:?} {} {:?}", req.remote(), req.scheme(), req.host())
/// });
/// # Ok::<(), tandem_web::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    unix: bool,
    headers: ProxyHeaders,
    max_elements: usize,
}

impl TrustedProxies {
    /// Trusts the proxies at `proxies`: addresses (`127.0.0.1`, `::1`), networks
    /// (`10.0.0.0/8`, `fd00::/8`), or `unix` for a proxy on a Unix socket. An entry that is
    /// none of these is an error.
    pub fn new<I, S>(proxies: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut trusted = TrustedProxies {
            networks: Vec::new(),
            unix: false,
            headers: ProxyHeaders::default(),
            max_elements: DEFAULT_MAX_FORWARDED_ELEMENTS,
        };
        for entry in proxies {
            let entry = entry.as_ref().trim();
            if entry == "unix" {
                trusted.unix = true;
                continue;
            }
            let network = match entry.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => entry.parse::<IpNet>().map_err(|_| {
                    Error::new(format!("TrustedProxies: {entry:?} is not an address or network"))
                })?,
            };
            trusted.networks.push(network.trunc());
        }
        Ok(trusted)
    }

    /// Reads RFC 7239 `Forwarded` instead of the `X-Forwarded-*` headers.
    #[must_use]
    pub fn headers(mut self, headers: ProxyHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The most hops read from one request ([`DEFAULT_MAX_FORWARDED_ELEMENTS`]); more is a
    /// 400.
    #[must_use]
    pub fn max_elements(mut self, max: usize) -> Self {
        self.max_elements = max;
        self
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// What the trusted proxies say about `req`, or nothing if its peer is not one.
    fn overrides(&self, req: &Request) -> Result<Option<Overrides>, HttpError> {
        let peer = req.peer_addr();
        let trusted = match peer {
            Some(peer) => self.trusts(peer.ip()),
            None => self.unix,
        };
        if !trusted {
            return Ok(None);
        }
        match self.headers {
            ProxyHeaders::XForwarded => self.x_forwarded(req).map(Some),
            ProxyHeaders::Forwarded => self.forwarded(req, peer).map(Some),
        }
    }

    fn x_forwarded(&self, req: &Request) -> Result<Overrides, HttpError> {
        let fields = req.head().fields();
        let mut overrides = Overrides::new();
        let hops = list(fields.get_all("x-forwarded-for"), self.max_elements, "X-Forwarded-For")?;
        let mut client = None;
        for hop in hops.iter().rev() {
            let ip: IpAddr = hop.parse().map_err(|_| bad("X-Forwarded-For"))?;
            client = Some(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        if let Some(ip) = client {
            overrides = overrides.remote(SocketAddr::new(ip, 0));
        }
        let protos =
            list(fields.get_all("x-forwarded-proto"), self.max_elements, "X-Forwarded-Proto")?;
        if let Some(proto) = protos.last() {
            overrides = overrides.scheme(scheme(proto).ok_or_else(|| bad("X-Forwarded-Proto"))?);
        }
        let hosts =
            list(fields.get_all("x-forwarded-host"), self.max_elements, "X-Forwarded-Host")?;
        if let Some(host) = hosts.last() {
            overrides = overrides.host(valid_host(host).ok_or_else(|| bad("X-Forwarded-Host"))?);
        }
        Ok(overrides)
    }

    fn forwarded(&self, req: &Request, peer: Option<SocketAddr>) -> Result<Overrides, HttpError> {
        let elements =
            forwarded::parse_fields(req.head().fields().get_all("forwarded"), self.max_elements)?;
        let mut overrides = Overrides::new();
        // The nearest address known to be honest so far: the proxy's own, at first.
        let mut known = peer.map(|peer| SocketAddr::new(peer.ip(), 0));
        let mut chosen = None;
        for element in elements.iter().rev() {
            chosen = Some(element);
            let Some(addr) = element.for_addr() else { break };
            known = Some(addr);
            if !self.trusts(addr.ip()) {
                break;
            }
        }
        let Some(element) = chosen else { return Ok(overrides) };
        if let Some(addr) = known {
            overrides = overrides.remote(addr);
        }
        if let Some(proto) = element.proto() {
            overrides = overrides.scheme(scheme(proto).ok_or_else(|| bad("Forwarded proto"))?);
        }
        if let Some(host) = element.host() {
            overrides = overrides.host(valid_host(host).ok_or_else(|| bad("Forwarded host"))?);
        }
        Ok(overrides)
    }
}

impl Middleware for TrustedProxies {
    fn call(&self, mut req: Request, next: Next) -> BoxFuture<Response> {
        match self.overrides(&req) {
            Ok(None) => next.call(req),
            Ok(Some(overrides)) => {
                let req = req.clone_with(overrides);
                let Some(client) = req.remote() else { return next.call(req) };
                let response = next.call(req);
                // The access log shows this client, not the proxy.
                Box::pin(async move {
                    let mut response = response.await;
                    response.extensions_mut().insert(LoggedClient(client));
                    response
                })
            }
            Err(err) => Box::pin(async move { err.into_response() }),
        }
    }
}

fn bad(what: &str) -> HttpError {
    HttpError::bad_request().with_text(format!("400: malformed {what}"))
}

/// The comma-separated items of every field, trimmed, at most `max`; empty items are
/// skipped, as the list rule says.
fn list<'a>(
    fields: impl Iterator<Item = &'a [u8]>,
    max: usize,
    what: &str,
) -> Result<Vec<&'a str>, HttpError> {
    let mut items = Vec::new();
    for field in fields {
        let field = std::str::from_utf8(field).map_err(|_| bad(what))?;
        for item in field.split(',').map(|item| item.trim_matches([' ', '\t'])) {
            if item.is_empty() {
                continue;
            }
            if items.len() == max {
                return Err(
                    HttpError::bad_request().with_text(format!("400: too many {what} hops"))
                );
            }
            items.push(item);
        }
    }
    Ok(items)
}

/// `http` or `https`, any case, as the lower-case scheme.
fn scheme(proto: &str) -> Option<&'static str> {
    if proto.eq_ignore_ascii_case("https") {
        Some("https")
    } else if proto.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// A host as a `Host` field holds it: a name of letters, digits, `-` and `.`, or a bracketed
/// IPv6 address, then an optional port. Nothing that could break out of a URL or a header.
fn valid_host(host: &str) -> Option<&str> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        (None, after)
    } else {
        let end = host.find(':').unwrap_or(host.len());
        (Some(&host[..end]), &host[end..])
    };
    if let Some(name) = name
        && (name.is_empty()
            || name.len() > 253
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return None;
    }
    forwarded::port_suffix(port)?;
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_canonical_addresses() {
        let trusted = TrustedProxies::new(["127.0.0.1", "10.1.2.3/8", "fd00::/8", "unix"]).unwrap();
        assert!(trusted.unix);
        assert!(trusted.trusts("10.200.0.1".parse().unwrap()));
        assert!(trusted.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(trusted.trusts("fd12::1".parse().unwrap()));
        assert!(!trusted.trusts("127.0.0.2".parse().unwrap()));
        assert!(!trusted.trusts("11.0.0.1".parse().unwrap()));
        for bad in ["localhost", "10.0.0.0/33", "", "1.2.3.4/"] {
            assert!(TrustedProxies::new([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_and_schemes() {
        for good in ["example.com", "a-b.example.com:8443", "[::1]:80", "[2001:db8::1]", "10.0.0.1"]
        {
            assert_eq!(valid_host(good), Some(good));
        }
        for bad in [
            "",
            "a b",
            "evil.com/path",
            "evil.com@x",
            "x:",
            "x:123456",
            "[::1",
            "[nope]",
            "[::1]x",
            "a\r\nb",
        ] {
            assert_eq!(valid_host(bad), None, "{bad}");
        }
        assert_eq!(scheme("HTTPS"), Some("https"));
        assert_eq!(scheme("javascript"), None);
    }
}
