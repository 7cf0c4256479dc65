//! One hop: the connection it goes on (proxy, TLS, timeouts) and the response it makes.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use tandem_connect::{ConnectOptions, Scheme};
use url::Url;

use crate::{
    ClientResponse,
    conn::{self, Observers, Outgoing},
    content::Content,
    decompress::{self, Decompressor},
    error::{Error, Kind},
    request::{ConnSettings, StreamBody},
    response::{RequestInfo, ResponseInfo},
    session::Inner,
    timeout::Deadlines,
    timings::Recorder,
    trace::TraceEvents,
    wire::request_fields,
};

/// What one hop sends to: the method, the URL, and the target as given when it is sent
/// [`encoded`](crate::RequestBuilder::encoded).
pub(crate) struct Hop<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Arc<Url>,
    pub(crate) raw_target: Option<String>,
}

/// One hop onto a connection: picks the connector settings (TLS, proxy, `sock_connect`),
/// builds the fields, sends, and assembles the response (cookies stored, decoder chosen).
pub(crate) async fn send_once(
    inner: &Inner,
    hop: &Hop<'_>,
    headers: &HeaderMap,
    (body, stream): (Option<&crate::request::Body>, Option<StreamBody>),
    conn_settings: &ConnSettings,
    deadlines: &Deadlines,
) -> Result<ClientResponse, Error> {
    let (method, url) = (hop.method, hop.url);
    let origin = inner.last_url.origin_for(hop.url)?;
    let content_type = match (body, &stream) {
        (Some(b), _) => Some(b.content_type),
        (None, Some(_)) => Some("application/octet-stream"),
        (None, None) => None,
    };
    let mut options = ConnectOptions::new();
    if let Some(limit) = deadlines.sock_connect() {
        options = options.sock_connect_timeout(limit);
    }
    // A request sent with a trace context tells the connector's events to the traces with
    // it; the others share the session's events, built once.
    let trace_events = match &inner.trace_events {
        Some(_) if !conn_settings.trace_ctx.is_empty() => {
            let traces = inner.traces.0.clone();
            let events = TraceEvents { traces, ctx: conn_settings.trace_ctx.clone() };
            Some(Arc::new(events) as Arc<dyn tandem_connect::ConnectEvents>)
        }
        events => events.clone(),
    };
    let timing = inner.timings.then(|| Recorder::start(trace_events.clone()));
    if let Some(timing) = &timing {
        options = options.events(timing.clone());
    } else if let Some(events) = trace_events {
        options = options.events(events);
    }
    if let Some(tls) = &conn_settings.tls {
        options = options.tls(tls.clone());
    }
    // The proxy is chosen again on every hop, so a redirect to another host (or to one
    // NO_PROXY exempts) never carries the previous proxy or its credentials along.
    let proxy = conn_settings.proxy.clone().or_else(|| inner.proxy.clone()).or_else(|| {
        let proxy = inner.proxy_env.as_ref()?.proxy_for(&origin, false)?;
        Some(match &inner.netrc {
            Some(netrc) => netrc.proxy_credentials(proxy),
            None => proxy,
        })
    });
    let mut absolute = false;
    let mut proxy_authorization = None;
    if let Some(proxy) = proxy {
        if origin.scheme() == Scheme::Http {
            // Plain http goes to the proxy itself, in absolute form, with its credentials;
            // for https the proxy is a tunnel and sees only the CONNECT.
            absolute = true;
            if let Some(auth) = proxy.authorization_value() {
                let value =
                    HeaderValue::try_from(auth).map_err(|e| Error::new(Kind::Request, e))?;
                proxy_authorization = Some(value);
            }
        }
        options = options.proxy(proxy);
    }
    let wire = request_fields(inner, url, headers, content_type, proxy_authorization)?;
    // aiohttp waits for 100 Continue whenever the request carries the expectation, whether
    // `expect100=True` or the caller's own header put it there.
    let expect_continue = wire.expects_continue().then_some(inner.expect_continue_timeout);
    let outgoing = Outgoing {
        method,
        url,
        origin: &origin,
        headers: &wire,
        body: body.map(|b| &b.bytes),
        raw_target: hop.raw_target.as_deref(),
        absolute,
        options: &options,
        expect_continue,
    };
    let observers = Observers { traces: &inner.traces.0, ctx: &conn_settings.trace_ctx, timing };
    let (head, raw) = conn::send(&inner.connector, &outgoing, stream, deadlines, observers).await?;
    let fields = head.fields();
    inner.jar.update_from_values(fields.get_all("set-cookie"), url);
    let decoder = if inner.auto_decompress && !raw.is_done() {
        fields.get("content-encoding").and_then(|coding| {
            let limits = decompress::Limits {
                max_size: inner.max_decompressed_size,
                zstd_window_log_max: inner.zstd_window_log_max,
            };
            Decompressor::for_coding(coding, limits)
        })
    } else {
        None
    };
    let info = ResponseInfo {
        status: head.status(),
        reason: match head.status().canonical_reason() {
            Some(canonical) if canonical.as_bytes() == head.reason() => canonical.into(),
            _ => String::from_utf8_lossy(head.reason()).into_owned().into(),
        },
        version: head.version(),
        headers: std::sync::OnceLock::new(),
        raw: fields.clone(),
        request: RequestInfo { method: method.clone(), url: Arc::clone(url), headers: wire },
    };
    let content = Content::new(raw, decoder, inner.max_line_size);
    Ok(ClientResponse::new(info, content, inner.charset_fallback.clone()))
}
