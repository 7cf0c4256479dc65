//! A request's way through: its `tracing` span and trace hooks, the redirect loop, and each
//! hop through the middleware chain or straight onto a connection.

use std::sync::Arc;

use futures_util::future::Either;
use http::{HeaderMap, header};
use tracing::Instrument;
use url::Url;

use crate::{
    ClientResponse, ClientSession,
    error::{Error, Kind},
    hop::{Hop, send_once},
    middleware::{self, HopInput},
    netrc::Netrc,
    redact::Redacted,
    redirect,
    request::{RequestSpec, basic_auth_value},
    session::take_url_credentials,
    timeout::Deadlines,
};

/// A redirect's body is read and discarded up to this size so the connection is reused;
/// a longer one closes the connection instead.
const REDIRECT_DRAIN_LIMIT: usize = 64 * 1024;

/// Sends `spec` through the redirect loop, with the request's `tracing` span and trace
/// hooks.
///
/// Not an `async fn`, and neither is `run`: an `async fn` keeps its arguments in its state
/// for its whole life, so a request's spec (hundreds of bytes) would sit in this function's
/// state, again in `run`'s, and a third time in `run`'s destructured locals, and every byte
/// of that state is copied when `RequestBuilder::send` boxes it. Returning the future
/// directly keeps one copy.
pub(crate) fn execute(
    session: &ClientSession,
    spec: RequestSpec,
) -> impl Future<Output = Result<ClientResponse, Error>> + '_ {
    // A `tracing` span per request: free when no subscriber wants it, as the fields are
    // only formatted for an enabled span. The URL still holds any credentials the caller
    // put in it (they become `Authorization` later), so it is logged without them.
    // The target is the module this lived in before the split, which filters name.
    let span = tracing::debug_span!(
        target: "tandem_client::session",
        "request",
        method = %spec.method,
        url = %Redacted(&spec.url)
    );
    if session.inner.traces.0.is_empty() {
        Either::Left(run(session, spec).instrument(span))
    } else {
        // Boxed, so the untraced path's future is not as large as this one.
        Either::Right(Box::pin(traced(session, spec, span)))
    }
}

async fn traced(
    session: &ClientSession,
    spec: RequestSpec,
    span: tracing::Span,
) -> Result<ClientResponse, Error> {
    let traces = &session.inner.traces.0;
    let (method, url) = (spec.method.clone(), spec.url.clone());
    let ctx = spec.conn_settings.trace_ctx.clone();
    for t in traces {
        t.on_request_start(&ctx, &method, &url, &spec.headers);
    }
    let result = run(session, spec).instrument(span).await;
    for t in traces {
        match &result {
            Ok(resp) => t.on_request_end(&ctx, &method, resp.url(), resp.status()),
            Err(e) => t.on_request_exception(&ctx, &method, &url, e),
        }
    }
    result
}

fn run(
    session: &ClientSession,
    spec: RequestSpec,
) -> impl Future<Output = Result<ClientResponse, Error>> + '_ {
    let RequestSpec {
        mut method,
        mut url,
        mut headers,
        mut body,
        stream,
        mut conn_settings,
        timeout,
        allow_redirects,
        max_redirects,
        raise_for_status,
        raw_target,
        encoded,
        middlewares,
    } = spec;
    async move {
        let inner = &*session.inner;
        // `encoded` applies to the URL as given: the first hop only.
        let mut raw_target = raw_target.filter(|_| encoded);
        let deadlines = Deadlines::start(timeout.unwrap_or(inner.timeout));
        let raise_for_status = raise_for_status.unwrap_or_else(|| inner.raise_for_status.clone());
        take_url_credentials(&mut url, &mut headers, true).map_err(|e| e.with_url(&url))?;
        // The fragment is never sent; the response keeps it as its `real_url`.
        let mut real_url = strip_fragment(&mut url);
        // The origin the session's own credentials go to: its base URL's, else this
        // request's first.
        let auth_origin = inner
            .auth
            .as_ref()
            .map(|_| inner.base_url.as_ref().map_or_else(|| (*url).clone(), Clone::clone));
        let mut history = Vec::new();
        let streamed = stream.is_some();
        let mut stream = stream;
        let chain = middleware::chain_for(inner.middlewares.as_ref(), middlewares.as_deref());
        loop {
            if inner.auth.is_some() || inner.netrc.is_some() {
                hop_credentials(inner, auth_origin.as_ref(), &url, &mut headers);
            }
            let mut response = if let Some(chain) = &chain {
                // Boxed apart, so the path without middlewares keeps its future as it was.
                let input = HopInput {
                    method: &method,
                    url: &url,
                    headers: &headers,
                    body: body.as_ref(),
                    stream: stream.take(),
                    raw_target: raw_target.take(),
                    conn: &conn_settings,
                    deadlines: &deadlines,
                };
                middleware::run_chain(session, chain.clone(), input).await
            } else {
                let hop_body = (body.as_ref(), stream.take());
                let hop = Hop { method: &method, url: &url, raw_target: raw_target.take() };
                send_once(inner, &hop, &headers, hop_body, &conn_settings, &deadlines).await
            }
            .map_err(|e| e.with_url(&url))?;
            response.set_real_url(real_url.take());
            let status = response.status();
            let location = redirect::target(&response.info().raw);
            match location {
                Some(location) if allow_redirects && redirect::is_redirect(status) => {
                    let request = response.request_info();
                    if history.len() >= max_redirects {
                        return Err(Error::bare(Kind::TooManyRedirects).with_request(request));
                    }
                    let next =
                        redirect::next_url(&url, &location).map_err(|e| e.with_request(request))?;
                    tracing::debug!(
                        target: "tandem_client::session",
                        status = status.as_u16(),
                        to = %Redacted(&next),
                        "redirect"
                    );
                    let ctx = &conn_settings.trace_ctx;
                    for t in &inner.traces.0 {
                        t.on_request_redirect(ctx, &method, &url, status, &next);
                    }
                    // Boxed: a redirect is rare, and its drain's state would otherwise sit in
                    // every request's future.
                    Box::pin(response.drain(REDIRECT_DRAIN_LIMIT)).await;
                    history.push(response.info().clone());
                    drop(response);
                    if !inner.requote_redirect_url {
                        raw_target = redirect::unrequoted_target(&location, &next);
                    }
                    let dropped = redirect::rewrite(status, &mut method, &mut body, &mut headers);
                    if streamed && !dropped {
                        // aiohttp #12195: a consumed stream cannot be replayed, and sending an
                        // empty body instead would be a silent corruption.
                        return Err(Error::new(Kind::Payload, "cannot resend a streamed body")
                            .with_url(&url));
                    }
                    conn_settings.left_origin |= redirect::leave_origin(&url, &next, &mut headers);
                    url = Arc::new(next);
                    take_url_credentials(&mut url, &mut headers, false)
                        .map_err(|e| e.with_url(&url))?;
                    real_url = strip_fragment(&mut url);
                }
                _ => {
                    response.set_history(history);
                    raise_for_status.check(&mut response).await?;
                    return Ok(response);
                }
            }
        }
    }
}

/// Takes the fragment off `url`, returning the URL as it was when it had one.
fn strip_fragment(url: &mut Arc<Url>) -> Option<Arc<Url>> {
    url.fragment()?;
    let real = url.clone();
    Arc::make_mut(url).set_fragment(None);
    Some(real)
}

/// A hop without credentials of its own gets the session's (`basic_auth`), when it goes to
/// their origin, else its host's from `.netrc`.
fn hop_credentials(
    inner: &crate::session::Inner,
    auth_origin: Option<&Url>,
    url: &Url,
    headers: &mut HeaderMap,
) {
    if let (Some(auth), Some(origin)) = (&inner.auth, auth_origin)
        && !headers.contains_key(header::AUTHORIZATION)
        && redirect::same_origin(origin, url)
    {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    if let Some(netrc) = &inner.netrc {
        netrc_credentials(netrc, url, headers);
    }
}

/// A hop without credentials of its own gets its host's from `.netrc` (aiohttp's
/// `trust_env`). A cross-origin redirect strips the previous host's, so each host only ever
/// gets its own.
fn netrc_credentials(netrc: &Netrc, url: &Url, headers: &mut HeaderMap) {
    if headers.contains_key(header::AUTHORIZATION) {
        return;
    }
    let Some((login, password)) = url.host_str().and_then(|host| netrc.lookup(host)) else {
        return;
    };
    if let Ok(mut value) = basic_auth_value(login, password) {
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
}
