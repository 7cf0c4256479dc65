//! The client side: aiohttp's `session.ws_connect(url)`.

use std::{
    future::{Future, IntoFuture},
    pin::Pin,
};

use http::{StatusCode, header};
use tandem_client::{ClientSession, ClientTimeout, Proxy, RequestBuilder, TlsConfig};

use crate::{
    deflate,
    error::Error,
    frame::Role,
    handshake,
    socket::{Options, WebSocket},
};

/// `ws_connect` on a [`ClientSession`]: the handshake request goes through the session, so
/// it carries the session's headers, cookies, auth, proxy, TLS settings and timeouts.
pub trait WsConnectExt {
    /// Starts a WebSocket handshake to `url` (`ws://`, `wss://`, `http://` or `https://`).
    /// Await the builder, or call [`connect`](WsConnect::connect).
    ///
    /// ```no_run
    /// use tandem_client::ClientSession;
    /// use tandem_ws::{Message, WsConnectExt};
    ///
    /// # async fn demo() -> Result<(), tandem_ws::Error> {
    /// let session = ClientSession::new();
    /// let mut ws = session.ws_connect("ws://127.0.0.1:8080/ws").protocols(["chat"]).await?;
    /// ws.send_str("hello").await?;
    /// if let Message::Text(reply) = ws.receive().await {
    ///     println!("{reply}");
    /// }
    /// ws.close(tandem_ws::CloseCode::OK, "").await?;
    /// # Ok(()) }
    /// ```
    fn ws_connect(&self, url: &str) -> WsConnect;
}

impl WsConnectExt for ClientSession {
    fn ws_connect(&self, url: &str) -> WsConnect {
        // The handshake is an HTTP request: ws and wss are http and https underneath.
        let http_url = if let Some(rest) = url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else {
            url.to_owned()
        };
        WsConnect {
            request: self.get(&http_url),
            protocols: Vec::new(),
            compress: 0,
            no_context_takeover: false,
            options: Options::default(),
        }
    }
}

/// A WebSocket handshake being set up; see [`WsConnectExt::ws_connect`].
#[must_use = "a WsConnect does nothing until awaited"]
#[derive(Debug)]
pub struct WsConnect {
    request: RequestBuilder,
    protocols: Vec<String>,
    /// permessage-deflate window bits to offer; 0 offers none.
    compress: u8,
    no_context_takeover: bool,
    options: Options,
}

impl WsConnect {
    /// Subprotocols to offer, in order of preference.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Offer permessage-deflate with a window of `window_bits` (9 to 15; 15 is the usual
    /// choice); 0 offers nothing, which is the default, as in aiohttp.
    pub fn compress(mut self, window_bits: u8) -> Self {
        self.compress = if window_bits == 0 { 0 } else { window_bits.clamp(9, 15) };
        self
    }

    /// Offer to compress each message on its own (`client_no_context_takeover`, aiohttp's
    /// `notakeover`): less memory, worse compression.
    pub fn no_context_takeover(mut self, yes: bool) -> Self {
        self.no_context_takeover = yes;
        self
    }

    options_setters!();

    /// Sets the `Origin` field, as a browser would.
    pub fn origin(self, origin: &str) -> Self {
        self.header("origin", origin)
    }

    /// Adds a header to the handshake request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// HTTP basic auth for the handshake.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.request = self.request.basic_auth(user, password);
        self
    }

    /// A proxy for this connection.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.request = self.request.proxy(proxy);
        self
    }

    /// TLS settings for this connection.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.request = self.request.tls(tls);
        self
    }

    /// Timeouts for the handshake (the session's by default).
    pub fn timeout(mut self, timeout: ClientTimeout) -> Self {
        self.request = self.request.timeout(timeout);
        self
    }

    /// Sends the handshake and checks the answer: status 101, `Upgrade: websocket`,
    /// `Connection: upgrade`, the right `Sec-WebSocket-Accept`, and no subprotocol or
    /// extension that was not offered.
    pub async fn connect(self) -> Result<WebSocket, Error> {
        let key = handshake::new_key().map_err(Error::io)?;
        let mut request = self
            .request
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key.as_str())
            .allow_redirects(false)
            .raise_for_status(false);
        if !self.protocols.is_empty() {
            request = request.header("sec-websocket-protocol", self.protocols.join(", "));
        }
        let offered_window = (self.compress != 0).then_some(self.compress);
        if let Some(bits) = offered_window {
            request = request.header(
                "sec-websocket-extensions",
                deflate::client_offer(bits, self.no_context_takeover),
            );
        }
        let resp = request.send().await.map_err(Error::client)?;
        let headers = resp.headers();
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::handshake(format!("invalid response status {}", resp.status())));
        }
        if !handshake::has_token(headers, header::UPGRADE, "websocket") {
            return Err(Error::handshake("invalid upgrade header"));
        }
        if !handshake::has_token(headers, header::CONNECTION, "upgrade") {
            return Err(Error::handshake("invalid connection header"));
        }
        let accept = handshake::only(headers, header::SEC_WEBSOCKET_ACCEPT).ok().flatten();
        if accept != Some(handshake::accept_key(key.as_bytes()).as_bytes()) {
            return Err(Error::handshake("invalid challenge response"));
        }
        let protocol = {
            let mut chosen = handshake::list_values(headers, header::SEC_WEBSOCKET_PROTOCOL);
            match (chosen.next(), chosen.next()) {
                (None, _) => None,
                (Some(p), None) if self.protocols.iter().any(|o| o == p) => Some(p.to_owned()),
                _ => {
                    return Err(Error::handshake(
                        "server chose a subprotocol that was not offered",
                    ));
                }
            }
        };
        let mut answers = headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS).iter();
        let answer = match (answers.next(), answers.next()) {
            (None, _) => None,
            (Some(v), None) => {
                Some(v.to_str().map_err(|_| Error::handshake("invalid extensions header"))?)
            }
            _ => return Err(Error::handshake("more than one extensions header")),
        };
        let agreed = deflate::accept_client(answer, offered_window, self.no_context_takeover)?;
        let io = resp.upgrade().map_err(Error::client)?;
        let info = io.extensions().get::<tandem_client::ConnectionInfo>().cloned();
        Ok(WebSocket::new(io, Role::Client, agreed, self.options, protocol, None)
            .with_connection(info))
    }
}

impl IntoFuture for WsConnect {
    type Output = Result<WebSocket, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.connect())
    }
}
