//! The server side: aiohttp's `WebSocketResponse`, used from a handler.

use std::future::Future;

use http::{HeaderValue, Method, StatusCode, header};
use tandem_proto::BodyFraming;
use tandem_web::{HttpError, Request, Response};

use crate::{
    deflate,
    error::Error,
    frame::Role,
    handshake,
    socket::{Options, WebSocket},
};

/// Accepts a WebSocket in a handler, as aiohttp's `WebSocketResponse`.
///
/// [`prepare`](Self::prepare) checks the upgrade request and returns the `101` response; the
/// callback then runs with the open [`WebSocket`] once the `101` is on the wire. Returning
/// the response from the handler is what completes the handshake, so middlewares see it as
/// they see any other response.
///
/// ```
/// use tandem_web::{HttpError, Request, Response};
/// use tandem_ws::{Message, WebSocketResponse};
///
/// async fn echo(req: Request) -> Result<Response, HttpError> {
///     WebSocketResponse::new().prepare(&req, |mut ws| async move {
///         while let Some(msg) = futures_util::StreamExt::next(&mut ws).await {
///             match msg {
///                 Message::Text(text) => { let _ = ws.send_str(&text).await; }
///                 Message::Binary(data) => { let _ = ws.send_bytes(&data).await; }
///                 _ => {}
///             }
///         }
///     })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketResponse {
    protocols: Vec<String>,
    compress: bool,
    options: Options,
}

impl Default for WebSocketResponse {
    fn default() -> Self {
        WebSocketResponse { protocols: Vec::new(), compress: true, options: Options::default() }
    }
}

impl WebSocketResponse {
    /// aiohttp's defaults: autoping on, no heartbeat, no receive timeout, `max_msg_size`
    /// 4 MiB, permessage-deflate accepted when the client offers it.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subprotocols this handler speaks; the first one the client offers is chosen. With
    /// no overlap the handshake still succeeds, with no subprotocol, as in aiohttp.
    #[must_use]
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    options_setters!(#[must_use]);

    /// Accept permessage-deflate when offered (default on, as in aiohttp).
    #[must_use]
    pub fn compress(mut self, yes: bool) -> Self {
        self.compress = yes;
        self
    }

    /// Whether `req` is a WebSocket upgrade this handler could accept (aiohttp's
    /// `can_prepare`); the error says why not.
    pub fn can_prepare(&self, req: &Request) -> Result<(), Error> {
        check_upgrade(req).map(|_| ()).map_err(|e| Error::handshake(e.text()))
    }

    /// Checks the upgrade request and returns the `101 Switching Protocols` response to
    /// return from the handler; `on_open` then runs with the WebSocket.
    ///
    /// A request that is not a valid upgrade gets a 4xx: 400 for a missing or wrong
    /// `Upgrade`, `Connection` or `Sec-WebSocket-Key`, or a request with a body; 426 with
    /// `Sec-WebSocket-Version: 13` for another version (RFC 6455 §4.4); 405 for a method
    /// other than GET.
    pub fn prepare<F, Fut>(self, req: &Request, on_open: F) -> Result<Response, HttpError>
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let key = check_upgrade(req)?;
        let headers = req.headers();
        let protocol = handshake::list_values(headers, header::SEC_WEBSOCKET_PROTOCOL)
            .find(|offered| self.protocols.iter().any(|p| p == offered))
            .map(str::to_owned);
        if protocol.is_none() && headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL) {
            // The offered values are not logged: some clients carry bearer tokens there.
            tracing::warn!("no WebSocket subprotocol in common; continuing without one");
        }
        let agreed = if self.compress {
            deflate::negotiate_server(
                headers
                    .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            )
        } else {
            None
        };

        let mut response = Response::new(StatusCode::SWITCHING_PROTOCOLS);
        let fields = response.headers_mut();
        fields.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        fields.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let accept = handshake::accept_key(&key);
        // Base64, a token from the request's own field, and fixed tokens with digits: all
        // valid field values, so the conversions below cannot fail.
        let values = [
            (header::SEC_WEBSOCKET_ACCEPT, Some(accept.as_str())),
            (header::SEC_WEBSOCKET_PROTOCOL, protocol.as_deref()),
            (header::SEC_WEBSOCKET_EXTENSIONS, agreed.as_ref().map(|(_, answer)| answer.as_str())),
        ];
        for (name, value) in values {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                fields.insert(name, value);
            }
        }
        let agreed = agreed.map(|(agreed, _)| agreed);
        let options = self.options;
        Ok(response.on_upgrade(move |io| {
            let shutdown = Box::pin(io.shutdown_signal());
            let ws = WebSocket::new(io, Role::Server, agreed, options, protocol, Some(shutdown));
            on_open(ws)
        }))
    }
}

/// The handshake checks of RFC 6455 §4.2.1; returns the key.
fn check_upgrade(req: &Request) -> Result<Vec<u8>, HttpError> {
    let headers = req.headers();
    if req.method() != Method::GET {
        return Err(HttpError::method_not_allowed(&[Method::GET]));
    }
    if !handshake::has_token(headers, header::UPGRADE, "websocket") {
        return Err(HttpError::bad_request().with_text("No WebSocket UPGRADE hdr"));
    }
    if !handshake::has_token(headers, header::CONNECTION, "upgrade") {
        return Err(HttpError::bad_request().with_text("No CONNECTION upgrade hdr"));
    }
    match handshake::only(headers, header::SEC_WEBSOCKET_VERSION) {
        Ok(Some(b"13")) => {}
        Ok(None) => return Err(HttpError::bad_request().with_text("No Sec-WebSocket-Version")),
        Err(handshake::Repeated) => {
            return Err(HttpError::bad_request().with_text("Sec-WebSocket-Version repeated"));
        }
        Ok(Some(_)) => {
            return Err(HttpError::new(StatusCode::UPGRADE_REQUIRED)
                .with_text("Unsupported WebSocket version")
                .with_header("sec-websocket-version", "13"));
        }
    }
    // A handshake carries no body; one that does is refused rather than left on the wire
    // to be read as the first frames.
    if !matches!(req.head().framing(), BodyFraming::Empty | BodyFraming::Length(0)) {
        return Err(HttpError::bad_request().with_text("WebSocket handshake with a body"));
    }
    match handshake::only(headers, header::SEC_WEBSOCKET_KEY) {
        Ok(Some(key)) if handshake::key_is_valid(key) => Ok(key.to_vec()),
        _ => Err(HttpError::bad_request().with_text("Handshake error: invalid Sec-WebSocket-Key")),
    }
}
