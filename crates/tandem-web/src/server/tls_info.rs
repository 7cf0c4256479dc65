//! What a TLS handshake settled, as handlers read it through
//! [`Request::tls`](crate::Request::tls).
//!
//! Always compiled, without rustls: only the `tls` feature's acceptor makes one, so a build
//! without it carries the type and never a value of it, and the connection loop and the
//! request need no `cfg` of their own.

use rustls_pki_types::CertificateDer;

/// The TLS facts of the connection a request came on: aiohttp's
/// `request.transport.get_extra_info("ssl_object")` and `("peercert")`.
///
/// Made once per connection and shared by its requests.
#[derive(Clone, Debug)]
pub struct TlsInfo {
    pub(crate) version: &'static str,
    pub(crate) cipher_suite: &'static str,
    pub(crate) server_name: Option<Box<str>>,
    /// One of the protocols the server offers (rustls agrees on no other), so borrowed.
    pub(crate) alpn: Option<&'static [u8]>,
    pub(crate) peer_certificates: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    /// The protocol version as Python's `SSLObject.version()` names it: `"TLSv1.3"` or
    /// `"TLSv1.2"`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The cipher suite's IANA name, such as `"TLS13_AES_256_GCM_SHA384"` (rustls's
    /// spelling of `TLS_AES_256_GCM_SHA384`).
    pub fn cipher_suite(&self) -> &'static str {
        self.cipher_suite
    }

    /// The host name the client asked for with SNI, lower-cased; `None` when it sent none
    /// (a client connecting to an IP address sends none).
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The application protocol agreed through ALPN (`b"http/1.1"`); `None` when the
    /// client offered none.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.alpn
    }

    /// The client's certificate chain, leaf first, DER-encoded; empty when it sent none.
    /// When the server asks for client certificates ([`ClientAuth`](crate::ClientAuth)),
    /// a chain here has been verified against the configured CA bundle.
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.peer_certificates
    }
}
