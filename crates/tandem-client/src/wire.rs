//! The fields a request sends: `Host`, the session's and the request's, the automatic ones
//! and cookies, checked and encoded once per request, or reused from the last request to
//! the same host when the request adds none of its own.

use std::sync::{Arc, Mutex};

use http::{HeaderMap, HeaderValue, header};
use tandem_proto::EncodedFields;
use url::Url;

use crate::{
    decompress,
    error::{Error, Kind},
    redirect,
    request::ConnSettings,
    session::{Inner, USER_AGENT, invalid_url},
};

/// The last fields a session sent on a request that added none of its own (no headers, no
/// cookies, no proxy credentials), with the host, scheme and content type they were made for.
///
/// Such fields depend only on those three and on the session's settings, which never change
/// once it is built, so a hit is exactly what building them again would give. Building
/// means a map, and every field checked and formatted; a hit is a compare and a reference
/// count.
#[derive(Debug, Default)]
pub(crate) struct FieldsCache(Mutex<Option<Cached>>);

#[derive(Debug)]
struct Cached {
    host: Box<str>,
    https: bool,
    content_type: Option<&'static str>,
    fields: Arc<EncodedFields>,
}

impl FieldsCache {
    fn get(
        &self,
        (host, https): (&str, bool),
        content_type: Option<&'static str>,
    ) -> Option<Arc<EncodedFields>> {
        let last = self.0.lock().ok()?;
        let hit = last.as_ref()?;
        (*hit.host == *host && hit.https == https && hit.content_type == content_type)
            .then(|| hit.fields.clone())
    }

    fn set(
        &self,
        (host, https): (&str, bool),
        content_type: Option<&'static str>,
        fields: &Arc<EncodedFields>,
    ) {
        if let Ok(mut last) = self.0.lock() {
            let host = host.into();
            *last = Some(Cached { host, https, content_type, fields: fields.clone() });
        }
    }
}

/// The fields to send to `url`, checked and encoded: a field that could split the request
/// is refused here, before anything is written.
pub(crate) fn request_fields(
    inner: &Inner,
    url: &Url,
    headers: &HeaderMap,
    content_type: Option<&'static str>,
    proxy_authorization: Option<HeaderValue>,
    conn: &ConnSettings,
) -> Result<Arc<EncodedFields>, Error> {
    if url.host_str().is_none() {
        return Err(invalid_url("no host", url.as_str()));
    }
    // The URL's serialised `host[:port]`, the port there only when it is not the default:
    // a slice of what the URL already holds, not the two formatted again.
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let cookies = inner.jar.header_for(url);
    // A request's own skip list or version changes the automatic fields: built afresh.
    let reusable = headers.is_empty()
        && cookies.is_none()
        && proxy_authorization.is_none()
        && conn.skip_auto_headers.is_empty()
        && conn.version.is_none()
        && !conn.left_origin;
    // Cached by scheme too: an https request's fields differ from an http one's to the
    // same host and port (below).
    let https = url.scheme() == "https";
    if reusable && let Some(hit) = inner.fields_cache.get((host, https), content_type) {
        return Ok(hit);
    }
    let mut map = wire_headers(inner, (host, headers), content_type, cookies, conn)?;
    if https {
        // For a proxy alone: through a `CONNECT` tunnel it would reach the origin (requests
        // CVE-2023-32681); the proxy's credentials go on the `CONNECT`, and HTTP/2 drops the
        // field too.
        map.remove(header::PROXY_AUTHORIZATION);
    }
    if let Some(value) = proxy_authorization {
        map.insert(header::PROXY_AUTHORIZATION, value);
    }
    let fields = Arc::new(EncodedFields::new(map).map_err(|e| Error::new(Kind::Request, e))?);
    if reusable {
        inner.fields_cache.set((host, https), content_type, &fields);
    }
    Ok(fields)
}

/// The fields to send: `Host` first, then the session's and the request's (the request's
/// replacing the session's), the automatic ones unless given, then cookies from the jar.
fn wire_headers(
    inner: &Inner,
    (host, headers): (&str, &HeaderMap),
    content_type: Option<&'static str>,
    cookies: Option<HeaderValue>,
    conn: &ConnSettings,
) -> Result<HeaderMap, Error> {
    let skipped = |name: &header::HeaderName| {
        inner.skip_auto_headers.contains(name) || conn.skip_auto_headers.contains(name)
    };
    let mut out = HeaderMap::with_capacity(headers.len() + inner.headers.len() + 6);
    out.insert(
        header::HOST,
        HeaderValue::from_str(host).map_err(|e| Error::new(Kind::Request, e))?,
    );
    for (name, value) in &inner.headers {
        let left_behind = conn.left_origin && redirect::CREDENTIAL_FIELDS.contains(name);
        if !headers.contains_key(name) && !left_behind {
            out.append(name, value.clone());
        }
    }
    for (name, value) in headers {
        if name == header::HOST {
            out.insert(header::HOST, value.clone());
        } else if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            // The body's own length frames it; a caller's framing field could disagree.
        } else {
            out.append(name, value.clone());
        }
    }
    let defaults = [
        (header::USER_AGENT, USER_AGENT),
        (header::ACCEPT, "*/*"),
        (
            header::ACCEPT_ENCODING,
            if inner.auto_decompress { decompress::ACCEPT_ENCODING } else { "identity" },
        ),
    ];
    for (name, value) in defaults {
        if !out.contains_key(&name) && !skipped(&name) {
            out.insert(name, HeaderValue::from_static(value));
        }
    }
    if let Some(ct) = content_type
        && !out.contains_key(header::CONTENT_TYPE)
        && !skipped(&header::CONTENT_TYPE)
    {
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    // HTTP/1.0 closes after each response unless asked not to (aiohttp asks too).
    if conn.version.unwrap_or(inner.version) == http::Version::HTTP_10
        && !out.contains_key(header::CONNECTION)
    {
        out.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    if let Some(cookies) = cookies {
        match out.get(header::COOKIE).map(|v| v.as_bytes().to_vec()) {
            Some(mut given) => {
                given.extend_from_slice(b"; ");
                given.extend_from_slice(cookies.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&given) {
                    out.insert(header::COOKIE, v);
                }
            }
            None => {
                out.insert(header::COOKIE, cookies);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientSession;

    fn fields(
        s: &ClientSession,
        url: &str,
        given: &HeaderMap,
        ct: Option<&'static str>,
    ) -> HeaderMap {
        let url = Url::parse(url).unwrap();
        request_fields(&s.inner, &url, given, ct, None, &ConnSettings::default())
            .unwrap()
            .headers()
            .clone()
    }

    #[test]
    fn default_headers() {
        let s =
            ClientSession::builder().header("x-default", "1").header("accept", "text/html").build();
        let mut given = HeaderMap::new();
        given.insert("x-default", HeaderValue::from_static("2"));
        let out = fields(&s, "http://a.example:8080/", &given, Some("text/plain"));
        assert_eq!(out.keys().next(), Some(&header::HOST));
        assert_eq!(out[header::HOST], "a.example:8080");
        for (url, host) in [("http://a:80/", "a"), ("https://u:p@[::1]:8443/x", "[::1]:8443")] {
            assert_eq!(fields(&s, url, &HeaderMap::new(), None)[header::HOST], host);
        }
        assert_eq!(out["x-default"], "2");
        assert_eq!(out[header::ACCEPT], "text/html");
        assert_eq!(out[header::USER_AGENT], USER_AGENT);
        assert_eq!(out[header::ACCEPT_ENCODING], decompress::ACCEPT_ENCODING);
        assert_eq!(out[header::CONTENT_TYPE], "text/plain");
    }

    /// A reused set is what building afresh gives: the host and the content type select
    /// it, and a request's own headers or a cookie for its URL bypass it.
    #[test]
    fn reused_fields_match_fresh_ones() {
        let s = ClientSession::builder().header("x-default", "1").build();
        let empty = HeaderMap::new();
        let a = fields(&s, "http://a.example/x", &empty, None);
        assert_eq!(fields(&s, "http://a.example/y?q", &empty, None), a);
        let b = fields(&s, "http://b.example:81/", &empty, None);
        assert_eq!(b[header::HOST], "b.example:81");
        let typed = fields(&s, "http://b.example:81/", &empty, Some("application/json"));
        assert_eq!(typed[header::CONTENT_TYPE], "application/json");
        assert!(
            !fields(&s, "http://b.example:81/", &empty, None).contains_key(header::CONTENT_TYPE)
        );
        let mut given = HeaderMap::new();
        given.insert("x-default", HeaderValue::from_static("2"));
        assert_eq!(fields(&s, "http://b.example:81/", &given, None)["x-default"], "2");
        assert_eq!(fields(&s, "http://b.example:81/", &empty, None)["x-default"], "1");
        let url = Url::parse("http://b.example:81/").unwrap();
        s.cookie_jar().add("k=v", &url).unwrap();
        assert_eq!(fields(&s, "http://b.example:81/", &empty, None)[header::COOKIE], "k=v");
        assert_eq!(fields(&s, "http://a.example/", &empty, None), a);
    }
}
