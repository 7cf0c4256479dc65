//! One hop: the connection it goes on (proxy, TLS, timeouts) and the response it makes.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Method, header};
use tandem_connect::{ConnectEvents, ConnectOptions, ConnectionInfo, Http2, Origin, Scheme};
use tandem_proto::EncodedFields;
use url::Url;

use crate::{
    ClientResponse,
    body::RawBody,
    conn::{self, Head, Observers, Outgoing},
    content::Content,
    decompress::{self, Decompressor},
    error::{Error, Kind},
    read_limits::ReadLimits,
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
    if let Some(limit) = deadlines.tls_handshake() {
        options = options.tls_handshake_timeout(limit);
    }
    let (events, timing) = events(inner, conn_settings);
    if let Some(events) = events {
        options = options.events(events);
    }
    if let Some(tls) = &conn_settings.tls {
        options = options.tls(tls.clone());
    }
    if let Some(name) = &conn_settings.server_hostname {
        options = options.server_hostname(&**name);
    }
    // The proxy is chosen again on every hop, so a redirect to another host (or to one
    // NO_PROXY exempts) never carries the previous proxy or its credentials along.
    let proxy = conn_settings.proxy.clone().or_else(|| inner.proxy.clone()).or_else(|| {
        // A WebSocket handshake takes `WS_PROXY`/`WSS_PROXY` (aiohttp 3.8).
        let websocket = headers
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        let proxy = inner.proxy_env.as_ref()?.proxy_for(&origin, websocket)?;
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
    let wire =
        request_fields(inner, url, headers, content_type, proxy_authorization, conn_settings)?;
    let version = conn_settings.version.unwrap_or(inner.version);
    if let Some(mode) = http2(inner, conn_settings, &origin, &wire) {
        options = options.http2(mode);
    }
    // aiohttp waits for 100 Continue whenever the request carries the expectation, whether
    // `expect100=True` or the caller's own header put it there.
    let expect_continue = wire.expects_continue().then_some(inner.expect_continue_timeout);
    let read = match &conn_settings.read_limits {
        Some(overrides) => inner.read_limits.with(overrides),
        None => inner.read_limits,
    };
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
        version,
        read,
    };
    let observers = Observers { traces: &inner.traces.0, ctx: &conn_settings.trace_ctx, timing };
    let empty_until_close = conn_settings.empty_until_close;
    let respond = |head, body, connection| {
        let body =
            if empty_until_close { until_close_as_empty(&head, body, deadlines) } else { body };
        response(inner, hop, (head, body, connection), (Arc::clone(&wire), &read))
    };
    conn::send(&inner.connector, &outgoing, stream, deadlines, (observers, respond)).await
}

/// aiohttp's `read_until_eof=False`: a body that only the connection's close would end (no
/// `Content-Length`, not chunked) reads as empty, and its connection is closed unread.
fn until_close_as_empty(head: &Head, body: RawBody, deadlines: &Deadlines) -> RawBody {
    match head {
        Head::Http1(h1) if h1.framing() == tandem_proto::BodyFraming::UntilClose => {
            RawBody::synthetic(h1, b"", *deadlines)
        }
        _ => body,
    }
}

/// The response to one hop: cookies stored, the decoder chosen, the head kept.
fn response(
    inner: &Inner,
    hop: &Hop<'_>,
    (head, body, connection): (Head, RawBody, Arc<ConnectionInfo>),
    (wire, read): (Arc<EncodedFields>, &ReadLimits),
) -> ClientResponse {
    let fields = head.fields();
    inner.jar.update_from_values(fields.get_all("set-cookie"), hop.url);
    let decoder = if inner.auto_decompress && !body.is_done() {
        // Two `Content-Encoding` fields are one list of two codings, as `gzip, br` in one
        // field is: passed through as a list is, never decoded by the first alone.
        let mut codings = fields.get_all("content-encoding");
        match (codings.next(), codings.next()) {
            (Some(coding), None) => {
                let limits = decompress::Limits {
                    max_size: inner.max_decompressed_size,
                    zstd_window_log_max: inner.zstd_window_log_max,
                    brotli_window_log_max: inner.brotli_window_log_max,
                };
                Decompressor::for_coding(coding, limits)
            }
            _ => None,
        }
    } else {
        None
    };
    let (status, version) = (head.status(), head.version());
    let reason = match status.canonical_reason() {
        Some(canonical) if canonical.as_bytes() == head.reason() => canonical.into(),
        _ => String::from_utf8_lossy(head.reason()).into_owned().into(),
    };
    // HTTP/2's fields came as a map, which is kept rather than built again on first use.
    let (raw, headers) = match head {
        Head::Http1(head) => (head.fields().clone(), OnceLock::new()),
        Head::Http2 { headers, fields, .. } => (fields, OnceLock::from(headers)),
    };
    let request = RequestInfo {
        method: hop.method.clone(),
        url: Arc::clone(hop.url),
        headers: wire,
        real_url: None,
    };
    let connection = Some(connection);
    let info = ResponseInfo { status, reason, version, headers, raw, request, connection };
    let content = Content::new(body, decoder, read.max_readline());
    ClientResponse::new(info, content, inner.charset_fallback.clone())
}

/// The connector's callbacks for one hop (the traces', or the timings recorder, which tells
/// them on), and the recorder when the session records timings. A request sent with a trace
/// context tells the traces with it; the others share the session's events, built once.
fn events(
    inner: &Inner,
    conn_settings: &ConnSettings,
) -> (Option<Arc<dyn ConnectEvents>>, Option<Arc<Recorder>>) {
    let trace_events = match &inner.trace_events {
        Some(_) if !conn_settings.trace_ctx.is_empty() => {
            let traces = inner.traces.0.clone();
            let events = TraceEvents { traces, ctx: conn_settings.trace_ctx.clone() };
            Some(Arc::new(events) as Arc<dyn ConnectEvents>)
        }
        events => events.clone(),
    };
    match inner.timings.then(|| Recorder::start(trace_events.clone())) {
        Some(timing) => (Some(timing.clone()), Some(timing)),
        None => (trace_events, None),
    }
}

/// Whether the hop may go over HTTP/2: the request's setting, else the session's (else the
/// connector's). A request asking for an upgrade (a WebSocket handshake) needs HTTP/1.1, as
/// HTTP/2 has no `101 Switching Protocols`; plain http under `Auto` is HTTP/1.1 anyway.
fn http2(
    inner: &Inner,
    conn_settings: &ConnSettings,
    origin: &Origin,
    wire: &EncodedFields,
) -> Option<Http2> {
    // HTTP/1.0 was asked for: it is written as such, never as HTTP/2.
    if conn_settings.version.unwrap_or(inner.version) == http::Version::HTTP_10 {
        return Some(Http2::Never);
    }
    let mode = conn_settings.http2.or(inner.http2);
    let may_speak_h2 = origin.scheme() == Scheme::Https || mode == Some(Http2::PriorKnowledge);
    if may_speak_h2 && wire.headers().contains_key(header::UPGRADE) {
        return Some(Http2::Never);
    }
    mode
}
