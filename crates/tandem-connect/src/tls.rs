//! Client TLS on rustls (ring provider): aiohttp's `ssl=` choices.
//!
//! - default: verification against the webpki (Mozilla) roots, plus any custom CAs, plus
//!   with the `native-roots` feature and `native_roots(true)` the operating system's store;
//! - `verify_ssl(false)`: any certificate is accepted (handshake signatures are still checked,
//!   so the peer must hold the key of the certificate it shows — it just is not trusted);
//! - a client certificate and key;
//! - a SHA-256 fingerprint pin: as in aiohttp, the chain is not verified, and the leaf's digest
//!   must equal the pin, checked right after the handshake (so the mismatch is its own error
//!   carrying both digests rather than a generic handshake failure);
//! - SPKI pins (beyond aiohttp, as `OkHttp`'s `CertificatePinner`): the chain is verified as
//!   usual, and then some certificate the server presented must have a public key whose
//!   SHA-256 is one of the pins. Several pins are a primary and its backups; a report-only
//!   mode logs a mismatch instead of failing, to roll pins out safely.
//!
//! Every `TlsConfig` gets a process-unique id when built; the pool keys connections by it, so a
//! connection made without verification is never reused for a request that asked for it.

use std::{
    fmt, io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_rustls::TlsConnector;

use crate::{
    Http2, Io, TlsInfo,
    error::{Error, Kind},
};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A TLS session over a connection's byte stream.
pub(crate) type TlsStream = tokio_rustls::client::TlsStream<Box<dyn Io>>;

/// A SHA-256 digest of a server's DER leaf certificate, to pin (aiohttp's `Fingerprint`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// A pin from a SHA-256 digest. MD5 (16 bytes) and SHA-1 (20 bytes) digests are refused,
    /// as aiohttp refuses them: both are broken as pins.
    pub fn sha256(digest: &[u8]) -> Result<Self, Error> {
        if let Ok(d) = <[u8; 32]>::try_from(digest) {
            return Ok(Fingerprint(d));
        }
        let why = match digest.len() {
            16 => "MD5 fingerprints are not supported, use SHA-256",
            20 => "SHA-1 fingerprints are not supported, use SHA-256",
            _ => "a fingerprint must be a 32-byte SHA-256 digest",
        };
        Err(Error::new(Kind::Config, why))
    }

    /// The fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Fingerprint(out)
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprint(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A SHA-256 digest of a certificate's DER `SubjectPublicKeyInfo`, to pin a public key (the
/// `pin-sha256` of HPKP and `OkHttp`). Unlike a [`Fingerprint`], it survives reissuing a
/// certificate for the same key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SpkiPin([u8; 32]);

impl SpkiPin {
    /// A pin from a SHA-256 digest (32 bytes).
    pub fn sha256(digest: &[u8]) -> Result<Self, Error> {
        <[u8; 32]>::try_from(digest)
            .map(SpkiPin)
            .map_err(|_| Error::new(Kind::Config, "an SPKI pin must be a 32-byte SHA-256 digest"))
    }

    /// A pin from its base64 form, as HPKP's `pin-sha256="..."` and `openssl ... | base64`
    /// write it.
    pub fn base64(digest: &str) -> Result<Self, Error> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(digest.trim())
            .map_err(|e| Error::new(Kind::Config, e))?;
        Self::sha256(&bytes)
    }

    /// The pin of a DER certificate's public key; fails if the certificate does not parse.
    pub fn of_certificate(der: &[u8]) -> Result<Self, Error> {
        let der = CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| Error::new(Kind::Config, format!("certificate does not parse: {e}")))?;
        let d =
            ring::digest::digest(&ring::digest::SHA256, cert.subject_public_key_info().as_ref());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Ok(SpkiPin(out))
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiPin(sha256/{})", base64_of(&self.0))
    }
}

/// TLS settings, built once and shared: cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    /// The same settings three times, offering by ALPN what each [`Http2`] mode allows:
    /// `http/1.1`; `h2` then `http/1.1`; `h2` alone. The trust settings are one, so the
    /// three share the pool's key.
    clients: [Arc<ClientConfig>; 3],
    fingerprint: Option<Fingerprint>,
    spki_pins: Vec<SpkiPin>,
    pin_report_only: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("id", &self.inner.id)
            .field("fingerprint", &self.inner.fingerprint)
            .field("spki_pins", &self.inner.spki_pins)
            .field("pin_report_only", &self.inner.pin_report_only)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Verification against the webpki roots, no client certificate.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Settings to build.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder {
            verify: true,
            webpki_roots: true,
            #[cfg(feature = "native-roots")]
            native_roots: false,
            roots: Vec::new(),
            identity: None,
            fingerprint: None,
            spki_pins: Vec::new(),
            pin_report_only: false,
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }
}

/// Builds a [`TlsConfig`].
#[allow(
    clippy::struct_excessive_bools,
    reason = "a builder of yes-or-no trust settings, each its own"
)]
pub struct TlsConfigBuilder {
    verify: bool,
    webpki_roots: bool,
    #[cfg(feature = "native-roots")]
    native_roots: bool,
    roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    fingerprint: Option<Fingerprint>,
    spki_pins: Vec<SpkiPin>,
    pin_report_only: bool,
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TlsConfigBuilder");
        d.field("verify", &self.verify).field("webpki_roots", &self.webpki_roots);
        #[cfg(feature = "native-roots")]
        d.field("native_roots", &self.native_roots);
        d.field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .field("fingerprint", &self.fingerprint)
            .field("spki_pins", &self.spki_pins)
            .field("pin_report_only", &self.pin_report_only)
            .finish()
    }
}

impl TlsConfigBuilder {
    /// `false` accepts any server certificate (aiohttp's `ssl=False`). Dangerous: anyone on
    /// the path can read and change the traffic.
    #[must_use]
    pub fn verify_ssl(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }

    /// Whether the built-in webpki root set is trusted (default true); custom CAs are trusted
    /// either way.
    #[must_use]
    pub fn webpki_roots(mut self, yes: bool) -> Self {
        self.webpki_roots = yes;
        self
    }

    /// Whether the operating system's trust store is trusted too (default false), as
    /// aiohttp's default `ssl.create_default_context()` does: on Linux the bundle and
    /// directory OpenSSL reads (`SSL_CERT_FILE` and `SSL_CERT_DIR` override them), on macOS
    /// and Windows the system's store. Read when the settings are built; a certificate in it
    /// that does not parse is skipped with a warning. With
    /// [`webpki_roots(false)`](Self::webpki_roots), only the system's roots (and custom CAs)
    /// are trusted. Needs the `native-roots` feature.
    #[cfg(feature = "native-roots")]
    #[must_use]
    pub fn native_roots(mut self, yes: bool) -> Self {
        self.native_roots = yes;
        self
    }

    /// Trusts every certificate in a PEM bundle (aiohttp's `cafile`).
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certs = parse_certs(pem)?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// Presents a client certificate: a PEM chain (leaf first) and a PEM private key
    /// (aiohttp's `load_cert_chain`).
    pub fn client_identity_pem(mut self, chain: &[u8], key: &[u8]) -> Result<Self, Error> {
        let chain = parse_certs(chain)?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| Error::new(Kind::Config, e))?;
        self.identity = Some((chain, key));
        Ok(self)
    }

    /// Pins the server's leaf certificate; the chain is then not verified (as aiohttp).
    #[must_use]
    pub fn fingerprint(mut self, pin: Fingerprint) -> Self {
        self.fingerprint = Some(pin);
        self
    }

    /// Pins a public key: a certificate the server presents (the leaf or an intermediate)
    /// must have it, after the chain is verified as usual. Call it once per pin: a
    /// connection passes when any one matches, so a backup key (not yet in use) can be
    /// pinned beside the current one. A mismatch is
    /// [`fingerprint_mismatch`](Error::fingerprint_mismatch) with the first pin as expected
    /// and the leaf's key digest as got.
    #[must_use]
    pub fn spki_pin(mut self, pin: SpkiPin) -> Self {
        self.spki_pins.push(pin);
        self
    }

    /// With `true`, an SPKI pin mismatch is logged (a `tracing` warning) and recorded in
    /// [`TlsInfo::spki_pin_matched`] instead of failing the connection (default false): to
    /// try pins out before they are enforced.
    #[must_use]
    pub fn pin_report_only(mut self, yes: bool) -> Self {
        self.pin_report_only = yes;
        self
    }

    /// The settings; fails if rustls refuses them (a key that does not match the certificate).
    pub fn build(self) -> Result<TlsConfig, Error> {
        let provider = Arc::new(ring_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(Kind::Config, e))?;
        let builder = if self.verify && self.fingerprint.is_none() {
            let mut roots = RootCertStore::empty();
            if self.webpki_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            #[cfg(feature = "native-roots")]
            if self.native_roots {
                add_native_roots(&mut roots)?;
            }
            for cert in self.roots {
                roots.add(cert).map_err(|e| Error::new(Kind::Config, e))?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        };
        let client = match self.identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::new(Kind::Config, e))?,
            None => builder.with_no_client_auth(),
        };
        let offering = |protocols: &[&[u8]]| {
            let mut config = client.clone();
            config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            Arc::new(config)
        };
        let clients =
            [offering(&[b"http/1.1"]), offering(&[b"h2", b"http/1.1"]), offering(&[b"h2"])];
        Ok(TlsConfig {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                clients,
                fingerprint: self.fingerprint,
                spki_pins: self.spki_pins,
                pin_report_only: self.pin_report_only,
            }),
        })
    }
}

/// The connector's settings when the user gave none: the webpki roots, verified or not.
pub(crate) fn default_config(verify_ssl: bool) -> Result<TlsConfig, Error> {
    TlsConfig::builder().verify_ssl(verify_ssl).build()
}

/// Adds the operating system's roots; fails only if none could be read at all.
#[cfg(feature = "native-roots")]
fn add_native_roots(roots: &mut RootCertStore) -> Result<(), Error> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the system's trust store");
    }
    if found.certs.is_empty() && !found.errors.is_empty() {
        let why = format!("no system root certificates could be read: {}", found.errors[0]);
        return Err(Error::new(Kind::Config, why));
    }
    let (added, skipped) = roots.add_parsable_certificates(found.certs);
    if skipped > 0 {
        tracing::warn!(added, skipped, "system root certificates that do not parse were skipped");
    }
    Ok(())
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new(Kind::Config, e))?;
    if certs.is_empty() {
        return Err(Error::new(Kind::Config, "no certificate in the PEM data"));
    }
    Ok(certs)
}

/// Runs the handshake over `io`, with SNI and certificate name `host`, offering by ALPN the
/// protocols `http2` allows.
pub(crate) async fn handshake(
    config: &TlsConfig,
    host: &str,
    io: Box<dyn Io>,
    http2: Http2,
) -> Result<(TlsStream, TlsInfo), Error> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| Error::new(Kind::Tls, e))?;
    let client = match http2 {
        Http2::Never => &config.inner.clients[0],
        Http2::Auto => &config.inner.clients[1],
        Http2::PriorKnowledge => &config.inner.clients[2],
    };
    let stream =
        TlsConnector::from(Arc::clone(client)).connect(name, io).await.map_err(classify)?;
    let (_, conn) = stream.get_ref();
    let leaf = conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
    if let Some(pin) = &config.inner.fingerprint {
        let got = leaf.as_deref().map(Fingerprint::of_certificate);
        if got.as_ref() != Some(pin) {
            return Err(Error::bare(Kind::FingerprintMismatch {
                expected: pin.0.to_vec(),
                got: got.map(|g| g.0.to_vec()).unwrap_or_default(),
            }));
        }
    }
    let spki_pin_matched = check_spki_pins(config, host, conn.peer_certificates())?;
    let info = TlsInfo {
        version: conn.protocol_version().and_then(|v| v.as_str()),
        cipher: conn.negotiated_cipher_suite().and_then(|s| s.suite().as_str()),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        peer_certificate: leaf,
        spki_pin_matched,
    };
    Ok((stream, info))
}

/// Whether a presented certificate has a pinned key (`None` without SPKI pins); a mismatch
/// is an error unless the pins only report.
fn check_spki_pins(
    config: &TlsConfig,
    host: &str,
    presented: Option<&[CertificateDer<'static>]>,
) -> Result<Option<bool>, Error> {
    let pins = &config.inner.spki_pins;
    if pins.is_empty() {
        return Ok(None);
    }
    let keys: Vec<SpkiPin> = presented
        .unwrap_or_default()
        .iter()
        .filter_map(|c| SpkiPin::of_certificate(c).ok())
        .collect();
    if keys.iter().any(|key| pins.contains(key)) {
        return Ok(Some(true));
    }
    let got = keys.first().map(|k| k.0.to_vec()).unwrap_or_default();
    if config.inner.pin_report_only {
        tracing::warn!(
            host,
            got = %base64_of(&got),
            "no presented certificate matches a pinned key (report-only: connecting anyway)"
        );
        return Ok(Some(false));
    }
    Err(Error::bare(Kind::FingerprintMismatch { expected: pins[0].0.to_vec(), got }))
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A verification failure is a certificate error; anything else in the handshake is TLS.
fn classify(e: io::Error) -> Error {
    let cert = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
    Error::new(if cert { Kind::Certificate } else { Kind::Tls }, e)
}

/// Accepts any certificate, but still checks that the server signed the handshake with the
/// certificate's key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// rustls's provider on ring.
#[allow(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider (it has no post-quantum key exchange) \
              with no undeprecated way to build it, and 0.24 moves it to the rustls-ring \
              crate; Tandem stays on ring, as aws-lc-rs needs cmake and a long C build"
)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(test)]
mod tests {
    use super::{Fingerprint, SpkiPin, TlsConfig};

    #[test]
    fn spki_pins_come_as_digests_or_base64() {
        let pin = SpkiPin::base64("CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=").unwrap();
        assert_eq!(pin, SpkiPin::sha256(&[9; 32]).unwrap());
        assert!(SpkiPin::sha256(&[9; 20]).unwrap_err().is_config());
        assert!(SpkiPin::base64("not base64!").unwrap_err().is_config());
        assert!(SpkiPin::of_certificate(b"not a certificate").unwrap_err().is_config());
        assert_eq!(
            format!("{pin:?}"),
            "SpkiPin(sha256/CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=)"
        );
    }

    #[test]
    fn weak_pins_are_refused() {
        assert!(Fingerprint::sha256(&[0; 16]).unwrap_err().is_config());
        assert!(Fingerprint::sha256(&[0; 20]).unwrap_err().is_config());
        assert!(Fingerprint::sha256(&[0; 31]).unwrap_err().is_config());
        assert_eq!(Fingerprint::sha256(&[7; 32]).unwrap().as_bytes(), &[7; 32]);
    }

    #[test]
    fn configs_have_distinct_ids_and_bad_pem_is_a_config_error() {
        let a = TlsConfig::new().unwrap();
        let b = TlsConfig::builder().verify_ssl(false).build().unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.clone().id(), a.id());
        let e = TlsConfig::builder().add_root_certificates_pem(b"not pem").unwrap_err();
        assert!(e.is_config());
    }
}
