//! HTTPS: rustls (ring provider, as the client) in front of the same connection loop as
//! plain TCP; aiohttp's `ssl_context`.
//!
//! A [`TlsConfig`] is built once into a rustls `ServerConfig` whose certificate comes from
//! our own resolver rather than a fixed chain: the resolver reads the current certificates
//! behind a lock at each handshake, so [`TlsConfig::reload`] changes what new connections
//! see without rebuilding anything, and a connection keeps the certificate it shook hands
//! with. The session cache, ALPN and the client verifier stay as built.
//!
//! Each accepted socket shakes hands in its own task (a slow client never holds up the
//! accept loop), bounded by [`ServerConfig::head_timeout`] and by the server's shutdown (one
//! timer and one task per listener watch both, see `handshake_deadlines`);
//! then the connection (`tls_stream`) is served by `conn::serve` like any byte stream, through
//! two halves sharing it, or by the HTTP/2 driver when ALPN settled on `h2`, with the
//! handshake's facts as a [`TlsInfo`] shared by its requests.

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use rustls::{
    ProtocolVersion, RootCertStore,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName, pem::PemObject},
    server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use tokio::net::{TcpListener, TcpStream};

use super::{
    AppRunner, ServerConfig, TaskTracker, TlsInfo, conn,
    conn::Shutdown,
    handshake_deadlines::{Cutoff, HandshakeDeadlines},
    tls_stream::{Shared, TlsConn, TlsHalf, lock},
};
use crate::{App, Error};

/// The application protocols offered through ALPN, HTTP/2 first (when the `http2` feature
/// builds it). A client that offers ALPN but none of these is refused in the handshake (RFC
/// 7301, 3.2), rather than spoken HTTP/1.1 to when it asked for something else; one that
/// offers none gets HTTP/1.1.
#[cfg(feature = "http2")]
const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
#[cfg(not(feature = "http2"))]
const ALPN: &[&[u8]] = &[b"http/1.1"];

// ===== Identity =====

/// A certificate chain and its private key: what the server shows a client.
///
/// The key must match the chain's first certificate; that is checked here, so a mismatch
/// fails when the configuration is made rather than in every handshake after.
#[derive(Clone)]
pub struct Identity {
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is left out, whatever it is.
        f.debug_struct("Identity").field("certificates", &self.key.cert.len()).finish()
    }
}

impl Identity {
    /// A chain in PEM (leaf first, then intermediates: a `fullchain.pem`) and its private key
    /// in PEM (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, Error> {
        let chain = parse_certs(chain)?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| Error::new(format!("TLS private key: {e}")))?;
        let key = CertifiedKey::from_der(chain, key, &provider())
            .map_err(|e| Error::new(format!("TLS certificate and key: {e}")))?;
        Ok(Identity { key: Arc::new(key) })
    }

    /// [`from_pem`](Self::from_pem) with both read from files (certbot's `fullchain.pem`
    /// and `privkey.pem`). The files are read with blocking IO, once, here.
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))
        };
        Self::from_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }

    /// Checks that the leaf certificate is valid for `name`, as a client will check it.
    fn check_name(&self, name: &str) -> Result<Box<str>, Error> {
        let dns = DnsName::try_from(name)
            .map_err(|_| Error::new(format!("{name:?} is not a DNS name")))?
            .to_lowercase_owned();
        let leaf = self.key.end_entity_cert().map_err(Error::new)?;
        let parsed = ParsedCertificate::try_from(leaf).map_err(Error::new)?;
        let server_name = ServerName::DnsName(dns.clone());
        rustls::client::verify_server_name(&parsed, &server_name)
            .map_err(|e| Error::new(format!("certificate for SNI name {name:?}: {e}")))?;
        Ok(dns.as_ref().into())
    }
}

// ===== ClientAuth =====

/// Whether clients are asked for certificates (mutual TLS), given with the CA bundle that
/// must have issued them in [`TlsConfigBuilder::client_auth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Asked for; a client without one is served, and its requests show no
    /// [`peer_certificates`](TlsInfo::peer_certificates). Python's `CERT_OPTIONAL`.
    Optional,
    /// Required: a client without one, or with one the CA bundle did not issue, fails the
    /// handshake, and none of its bytes reaches the application. Python's `CERT_REQUIRED`.
    Required,
}

// ===== TlsConfig =====

/// The server's TLS settings: aiohttp's `ssl_context`. Hand it to
/// [`AppRunner::tls_site`] or [`RunOptions::tls`](super::RunOptions::tls).
///
/// Clones share one set of certificates: [`reload`](Self::reload) through any clone changes
/// the certificate every site serving it shows to new connections. Connections already open
/// keep the certificate they shook hands with.
///
/// A client that names a host through SNI gets the certificate added for that name with
/// [`TlsConfigBuilder::sni`], and any other client (another name, or no SNI, as when it
/// connects to an IP address) the default one, as nginx's default server does: it is the
/// client that then refuses a certificate not valid for the name it wanted.
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem_web::Error> {
/// use tandem_web::{AppRunner, Application, Identity, Request, TlsConfig};
///
/// let mut app = Application::new();
/// app.add_get("/", |req: Request| async move {
///     format!("{} over {}", req.scheme(), req.tls().map_or("-", |tls| tls.version()))
/// });
/// let tls = TlsConfig::builder(Identity::from_pem_files("fullchain.pem", "privkey.pem")?)
///     .build()?;
/// let mut runner = AppRunner::new(app)?;
/// runner.setup().await?;
/// runner.tls_site("0.0.0.0", 8443, &tls).await?;
/// // Later, once certbot has renewed the files:
/// tls.reload(Identity::from_pem_files("fullchain.pem", "privkey.pem")?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<rustls::ServerConfig>,
    certs: Arc<Certs>,
    client_auth: Option<ClientAuth>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.inner.certs.current();
        let mut names: Vec<&str> = table.by_name.keys().map(AsRef::as_ref).collect();
        names.sort_unstable();
        f.debug_struct("TlsConfig")
            .field("sni", &names)
            .field("client_auth", &self.inner.client_auth)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Settings to build, with `identity` as the default certificate.
    pub fn builder(identity: Identity) -> TlsConfigBuilder {
        TlsConfigBuilder { identity, sni: Vec::new(), client_auth: None }
    }

    /// One certificate for every client, from PEM files: the common case.
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        Self::builder(Identity::from_pem_files(chain, key)?).build()
    }

    /// Replaces the default certificate for new connections (after a renewal).
    pub fn reload(&self, identity: Identity) {
        self.inner.certs.update(|table| table.default = identity.key);
    }

    /// Adds or replaces the certificate shown to clients that ask for `name`. Fails, and
    /// changes nothing, if the certificate is not valid for `name`.
    pub fn reload_sni(&self, name: &str, identity: Identity) -> Result<(), Error> {
        let name = identity.check_name(name)?;
        self.inner.certs.update(|table| {
            table.by_name.insert(name, identity.key);
        });
        Ok(())
    }

    fn rustls_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.inner.config
    }
}

/// Builds a [`TlsConfig`].
#[derive(Debug)]
pub struct TlsConfigBuilder {
    identity: Identity,
    sni: Vec<(String, Identity)>,
    client_auth: Option<(ClientAuth, Vec<CertificateDer<'static>>)>,
}

impl TlsConfigBuilder {
    /// Shows `identity` to clients that ask for `name` through SNI. The certificate must be
    /// valid for `name` (checked in [`build`](Self::build)). Names match exactly, case
    /// aside: a wildcard certificate is added once for each name it should answer.
    #[must_use]
    pub fn sni(mut self, name: &str, identity: Identity) -> Self {
        self.sni.push((name.to_owned(), identity));
        self
    }

    /// Asks clients for certificates issued by a CA in the PEM bundle `ca_pem` (mutual TLS);
    /// handlers read the verified chain from [`TlsInfo::peer_certificates`].
    pub fn client_auth(mut self, mode: ClientAuth, ca_pem: &[u8]) -> Result<Self, Error> {
        self.client_auth = Some((mode, parse_certs(ca_pem)?));
        Ok(self)
    }

    /// The settings; fails on an SNI name its certificate is not valid for, or a CA bundle
    /// rustls refuses.
    pub fn build(self) -> Result<TlsConfig, Error> {
        let mut by_name = HashMap::with_capacity(self.sni.len());
        for (name, identity) in self.sni {
            by_name.insert(identity.check_name(&name)?, identity.key);
        }
        let certs = Arc::new(Certs {
            current: RwLock::new(Arc::new(CertTable { default: self.identity.key, by_name })),
        });
        let provider = Arc::new(provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(Error::new)?;
        let mode = self.client_auth.as_ref().map(|(mode, _)| *mode);
        let builder = match self.client_auth {
            None => builder.with_no_client_auth(),
            Some((mode, cas)) => {
                let mut roots = RootCertStore::empty();
                for ca in cas {
                    roots.add(ca).map_err(|e| Error::new(format!("client CA: {e}")))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
                let verifier = match mode {
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                    ClientAuth::Required => verifier,
                };
                builder.with_client_cert_verifier(verifier.build().map_err(Error::new)?)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::clone(&certs) as _);
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(TlsConfig {
            inner: Arc::new(Inner { config: Arc::new(config), certs, client_auth: mode }),
        })
    }
}

/// rustls's provider on ring.
#[allow(
    deprecated,
    reason = "rustls 0.23.48 deprecates ring's provider (it has no post-quantum key exchange) \
              with no undeprecated way to build it, and 0.24 moves it to the rustls-ring \
              crate; Tandem stays on ring, as aws-lc-rs needs cmake and a long C build"
)]
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new(format!("TLS certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::new("no certificate in the PEM data"));
    }
    Ok(certs)
}

// ===== the certificate resolver =====

/// The certificates new handshakes choose from. A reload swaps the whole table, so a
/// handshake sees either the old one or the new one, and holds the lock only for an `Arc`
/// clone.
#[derive(Debug)]
struct Certs {
    current: RwLock<Arc<CertTable>>,
}

#[derive(Clone, Debug)]
struct CertTable {
    default: Arc<CertifiedKey>,
    /// By lower-cased DNS name (rustls hands SNI names over lower-cased).
    by_name: HashMap<Box<str>, Arc<CertifiedKey>>,
}

impl Certs {
    fn current(&self) -> Arc<CertTable> {
        // A panic elsewhere cannot leave the table half-written: it is only ever replaced.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn update(&self, change: impl FnOnce(&mut CertTable)) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut table = CertTable::clone(&current);
        change(&mut table);
        *current = Arc::new(table);
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.current();
        let by_name = hello.server_name().and_then(|name| table.by_name.get(name));
        Some(Arc::clone(by_name.unwrap_or(&table.default)))
    }
}

// ===== serving =====

impl AppRunner {
    /// Listens on `host:port` (port 0 picks a free one) and serves HTTPS with `tls`
    /// (aiohttp's `TCPSite(..., ssl_context=...)`); returns the address.
    pub async fn tls_site(
        &self,
        host: &str,
        port: u16,
        tls: &TlsConfig,
    ) -> Result<SocketAddr, Error> {
        let listener = super::run::bind_tcp(host, port).await?;
        let addr = listener.local_addr()?;
        self.serve_tls(listener, tls);
        Ok(addr)
    }

    /// Serves HTTPS with `tls` on an already bound listener.
    pub fn serve_tls(&self, listener: TcpListener, tls: &TlsConfig) {
        if let Ok(addr) = listener.local_addr() {
            self.add_address(super::SiteAddr::Tcp(addr));
        }
        let (app, config, tracker, shutdown) = self.parts();
        let accept = accept_loop(listener, tls.clone(), app, config, shutdown, tracker, None);
        self.tracker.spawn(accept);
    }
}

/// Accepts until shutdown; each connection shakes hands and is served in its own task on
/// `tracker` (and held by `hold`, a worker's runner, if given).
pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: TlsConfig,
    app: App,
    config: Arc<ServerConfig>,
    shutdown: Shutdown,
    tracker: TaskTracker,
    hold: Option<TaskTracker>,
) {
    let (deadlines, sweeper) =
        HandshakeDeadlines::new(config.head_timeout, shutdown.token().clone());
    tracker.spawn(sweeper);
    let serve = |(stream, remote): (TcpStream, SocketAddr)| {
        // Responses are written whole; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let (tls, app, config, shutdown, deadlines) =
            (tls.clone(), app.clone(), Arc::clone(&config), shutdown.clone(), deadlines.clone());
        // Boxed: the task's future holds a handshake's and then a connection's whole state
        // (several KiB), and spawning moves it by value through tokio's layers, a copy each
        // time; boxed, they move a pointer.
        Box::pin(async move {
            let Some(shared) = handshake(&tls, stream, remote, &deadlines).await else {
                return;
            };
            let info = Arc::new(tls_info(lock(&shared).session()));
            #[cfg(feature = "http2")]
            if info.alpn_protocol() == Some(b"h2") {
                // HTTP/2 reads and writes in one task: the stream needs no lock.
                let Ok(conn) = Arc::try_unwrap(shared) else { return };
                let conn = conn.into_inner().unwrap_or_else(PoisonError::into_inner);
                let stream = tandem_io::Upgraded::new(conn, bytes::BytesMut::new());
                // Boxed: the task's future then holds HTTP/1.1's state or a pointer.
                let h2 = super::h2::serve(stream, Some(remote), app, config, shutdown, Some(info));
                Box::pin(h2).await;
                return;
            }
            let (read, write) = (TlsHalf(Arc::clone(&shared)), TlsHalf(shared));
            conn::serve(read, write, Some(remote), app, &config, shutdown, Some(info)).await;
        })
    };
    super::accept_each(|| listener.accept(), &shutdown, &tracker, hold.as_ref(), serve).await;
}

/// The server side of the handshake, within the head timeout: a client that stalls in it
/// is a slowloris like one that stalls in its request head. Shutdown abandons it. The
/// connection is made in the `Arc` its two halves will share, and shakes hands there.
async fn handshake(
    tls: &TlsConfig,
    stream: TcpStream,
    remote: SocketAddr,
    deadlines: &HandshakeDeadlines,
) -> Option<Shared> {
    let watch = deadlines.watch();
    let shaken = match TlsConn::new(stream, Arc::clone(tls.rustls_config())) {
        Ok(conn) => {
            let shared = Arc::new(Mutex::new(conn));
            let handshake = std::future::poll_fn(|cx| lock(&shared).poll_handshake(cx));
            watch.bound(handshake).await.map(|done| done.map(|()| shared))
        }
        Err(err) => Ok(Err(err)),
    };
    match shaken {
        Ok(Ok(shared)) => Some(shared),
        Ok(Err(err)) => {
            tracing::debug!(target: "tandem::server", %remote, error = %err, "TLS handshake failed");
            None
        }
        Err(Cutoff::Expired) => {
            tracing::debug!(target: "tandem::server", %remote, "TLS handshake timed out");
            None
        }
        Err(Cutoff::Stopping) => None,
    }
}

fn tls_info(conn: &rustls::ServerConnection) -> TlsInfo {
    TlsInfo {
        version: match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            // The provider's safe defaults allow only those two.
            _ => "",
        },
        cipher_suite: conn
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or_default(),
        server_name: conn.server_name().map(Into::into),
        alpn: conn.alpn_protocol().and_then(|agreed| ALPN.iter().copied().find(|p| *p == agreed)),
        peer_certificates: conn.peer_certificates().map(<[_]>::to_vec).unwrap_or_default(),
    }
}
