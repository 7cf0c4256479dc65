//! TLS against a rustls server in the test, with certificates generated here by rcgen.

use std::{net::SocketAddr, sync::Arc};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::WebPkiClientVerifier,
};
use tandem_connect::{Connector, Fingerprint, Origin, Scheme, SpkiPin, TlsConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;

use crate::prompt;

/// A private CA.
pub(crate) struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Tandem test CA");
        Ca { cert: params.self_signed(&key).unwrap(), key }
    }

    /// A leaf for `names`, signed by this CA.
    pub(crate) fn issue(
        &self,
        names: &[&str],
        params: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params(&mut p);
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf { cert, key }
    }

    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }
}

pub(crate) struct Leaf {
    cert: Certificate,
    key: KeyPair,
}

impl Leaf {
    pub(crate) fn self_signed(names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let p = CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .unwrap();
        Leaf { cert: p.self_signed(&key).unwrap(), key }
    }

    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

/// A TLS acceptor presenting `leaf`.
pub(crate) fn acceptor(leaf: &Leaf) -> TlsAcceptor {
    server_acceptor(leaf, None, &[b"http/1.1"])
}

/// A TLS acceptor presenting `leaf` that chooses by ALPN among `protocols`.
pub(crate) fn alpn_acceptor(leaf: &Leaf, protocols: &[&[u8]]) -> TlsAcceptor {
    server_acceptor(leaf, None, protocols)
}

fn server_acceptor(leaf: &Leaf, client_ca: Option<&Ca>, protocols: &[&[u8]]) -> TlsAcceptor {
    // rustls's process-wide provider, which its `ring` feature (the only one this workspace
    // turns on) selects.
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(vec![leaf.der()], leaf.key_der()).unwrap();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// A TLS server on 127.0.0.1 that greets each client with `hello` and then echoes. With
/// `client_ca`, it requires a client certificate issued by that CA.
pub(crate) async fn serve(leaf: &Leaf, client_ca: Option<&Ca>) -> u16 {
    let acceptor = server_acceptor(leaf, client_ca, &[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                if tls.write_all(b"hello").await.is_err() {
                    return;
                }
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    let _ = tls.write_all(&buf[..n]).await;
                }
            });
        }
    });
    port
}

fn loopback() -> [SocketAddr; 1] {
    ["127.0.0.1:0".parse().unwrap()]
}

fn https(host: &str, port: u16) -> Origin {
    Origin::new(Scheme::Https, host, port)
}

/// A connector that resolves `localhost` and the `.test` names used here to 127.0.0.1.
fn connector_with(tls: Option<TlsConfig>) -> Connector {
    let mut b = Connector::builder()
        .resolve("localhost", loopback())
        .resolve("a.test", loopback())
        .resolve("b.test", loopback());
    if let Some(tls) = tls {
        b = b.tls(tls);
    }
    b.build()
}

pub(crate) fn trusting(ca: &Ca) -> TlsConfig {
    TlsConfig::builder().add_root_certificates_pem(ca.pem().as_bytes()).unwrap().build().unwrap()
}

pub(crate) async fn greeted(conn: &mut tandem_connect::Connection) {
    let mut got = [0u8; 5];
    prompt(conn.io().read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"hello");
}

#[tokio::test]
async fn a_private_ca_is_trusted_when_added() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["localhost"], |_| {}), None).await;
    let connector = connector_with(Some(trusting(&ca)));
    let mut conn = prompt(connector.connect(&https("localhost", port))).await.unwrap();
    greeted(&mut conn).await;
    let tls = conn.info().tls.clone().unwrap();
    assert_eq!(tls.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(tls.version, Some("TLSv1_3"));
    assert!(tls.peer_certificate.is_some());
    conn.release();
    assert!(prompt(connector.connect(&https("localhost", port))).await.unwrap().is_reused());
}

#[tokio::test]
async fn an_unknown_ca_is_a_certificate_error_by_default() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["localhost"], |_| {}), None).await;
    let err = prompt(connector_with(None).connect(&https("localhost", port))).await.unwrap_err();
    assert!(err.is_certificate() && err.is_tls() && err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn self_signed_is_a_certificate_error_and_verify_ssl_false_connects() {
    let port = serve(&Leaf::self_signed(&["localhost"]), None).await;
    let origin = https("localhost", port);
    let err = prompt(connector_with(None).connect(&origin)).await.unwrap_err();
    assert!(err.is_certificate(), "{err:?}");

    let insecure = Connector::builder().resolve("localhost", loopback()).verify_ssl(false).build();
    let mut conn = prompt(insecure.connect(&origin)).await.unwrap();
    greeted(&mut conn).await;
}

#[tokio::test]
async fn an_expired_certificate_is_a_certificate_error() {
    let ca = Ca::new();
    let leaf = ca.issue(&["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let port = serve(&leaf, None).await;
    let err = prompt(connector_with(Some(trusting(&ca))).connect(&https("localhost", port)))
        .await
        .unwrap_err();
    assert!(err.is_certificate(), "{err:?}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_certificate_error() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["other.test"], |_| {}), None).await;
    let err = prompt(connector_with(Some(trusting(&ca))).connect(&https("localhost", port)))
        .await
        .unwrap_err();
    assert!(err.is_certificate(), "{err:?}");
}

#[tokio::test]
async fn an_ip_san_matches_an_ip_origin() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["127.0.0.1"], |_| {}), None).await;
    let mut conn = prompt(connector_with(Some(trusting(&ca))).connect(&https("127.0.0.1", port)))
        .await
        .unwrap();
    greeted(&mut conn).await;
}

#[tokio::test]
async fn fingerprint_pins_match_and_mismatch() {
    let leaf = Leaf::self_signed(&["localhost"]);
    let pin = Fingerprint::of_certificate(&leaf.der());
    let port = serve(&leaf, None).await;
    let origin = https("localhost", port);

    // The pin replaces chain verification, so a self-signed certificate is fine.
    let pinned = TlsConfig::builder().fingerprint(pin.clone()).build().unwrap();
    let mut conn = prompt(connector_with(Some(pinned)).connect(&origin)).await.unwrap();
    greeted(&mut conn).await;

    let wrong = Fingerprint::sha256(&[0xAB; 32]).unwrap();
    let pinned = TlsConfig::builder().fingerprint(wrong).build().unwrap();
    let err = prompt(connector_with(Some(pinned)).connect(&origin)).await.unwrap_err();
    let (expected, got) = err.fingerprint_mismatch().expect("a fingerprint mismatch");
    assert_eq!(expected, &[0xAB; 32]);
    assert_eq!(got, pin.as_bytes());
    assert!(err.is_tls() && !err.is_certificate());
}

#[tokio::test]
async fn spki_pins_match_any_of_several_and_report_only_connects() {
    let ca = Ca::new();
    let leaf = ca.issue(&["localhost"], |_| {});
    let port = serve(&leaf, None).await;
    let origin = https("localhost", port);
    let live = SpkiPin::of_certificate(&leaf.der()).unwrap();
    let backup = SpkiPin::sha256(&[9; 32]).unwrap();
    let verified = || TlsConfig::builder().add_root_certificates_pem(ca.pem().as_bytes()).unwrap();

    // A backup pin beside the live one: either one matching lets the connection through.
    let pinned = verified().spki_pin(backup.clone()).spki_pin(live.clone()).build().unwrap();
    let mut conn = prompt(connector_with(Some(pinned)).connect(&origin)).await.unwrap();
    greeted(&mut conn).await;
    let tls = conn.info().tls.clone().unwrap();
    assert_eq!(tls.spki_pin_matched, Some(true));
    assert!(tls.cipher.is_some_and(|c| c.starts_with("TLS13_")), "{tls:?}");

    // Pins check the key on top of the chain: an untrusted chain is still refused.
    let untrusted = TlsConfig::builder().spki_pin(live.clone()).build().unwrap();
    let err = prompt(connector_with(Some(untrusted)).connect(&origin)).await.unwrap_err();
    assert!(err.is_certificate(), "{err:?}");

    // The backup alone: a mismatch, naming the first pin and the leaf's key.
    let only_backup = verified().spki_pin(backup.clone()).build().unwrap();
    let err = prompt(connector_with(Some(only_backup)).connect(&origin)).await.unwrap_err();
    assert_eq!(err.fingerprint_mismatch(), Some((&backup.as_bytes()[..], &live.as_bytes()[..])));

    // Report-only: the same mismatch connects, and says so.
    let report = verified().spki_pin(backup).pin_report_only(true).build().unwrap();
    let mut conn = prompt(connector_with(Some(report)).connect(&origin)).await.unwrap();
    greeted(&mut conn).await;
    assert_eq!(conn.info().tls.as_ref().unwrap().spki_pin_matched, Some(false));
}

#[tokio::test]
async fn client_certificates_are_presented() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let port = serve(&server_ca.issue(&["localhost"], |_| {}), Some(&client_ca)).await;
    let origin = https("localhost", port);
    let client = client_ca.issue(&["client.test"], |_| {});

    let with_identity = TlsConfig::builder()
        .add_root_certificates_pem(server_ca.pem().as_bytes())
        .unwrap()
        .client_identity_pem(client.cert.pem().as_bytes(), client.key.serialize_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let mut conn = prompt(connector_with(Some(with_identity)).connect(&origin)).await.unwrap();
    greeted(&mut conn).await;

    // Without one the server refuses: during the handshake (TLS 1.2) or, with TLS 1.3, in an
    // alert that arrives in place of the greeting.
    match prompt(connector_with(Some(trusting(&server_ca))).connect(&origin)).await {
        Err(err) => assert!(err.is_tls(), "{err:?}"),
        Ok(mut conn) => {
            let mut got = [0u8; 5];
            assert!(prompt(conn.io().read_exact(&mut got)).await.is_err());
        }
    }
}

#[tokio::test]
async fn verified_and_unverified_connections_are_pooled_apart() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["localhost", "a.test", "b.test"], |_| {}), None).await;
    let verified = trusting(&ca);
    let insecure = TlsConfig::builder().verify_ssl(false).build().unwrap();
    let connector = connector_with(Some(verified.clone()));
    let origin = https("localhost", port);

    prompt(connector.connect_with_tls(&origin, &insecure)).await.unwrap().release();
    assert!(!prompt(connector.connect(&origin)).await.unwrap().is_reused());
    prompt(connector.connect_with_tls(&origin, &insecure)).await.unwrap().release();
    assert!(prompt(connector.connect_with_tls(&origin, &insecure)).await.unwrap().is_reused());

    // Two names for one address are two origins: never one pooled connection (`docs/security.md`, D51).
    prompt(connector.connect(&https("a.test", port))).await.unwrap().release();
    assert!(!prompt(connector.connect(&https("b.test", port))).await.unwrap().is_reused());
}

#[tokio::test]
async fn bad_pem_is_refused_when_configuring() {
    assert!(TlsConfig::builder().add_root_certificates_pem(b"").unwrap_err().is_config());
    let e = TlsConfig::builder().client_identity_pem(b"nope", b"nope").unwrap_err();
    assert!(e.is_config());
}

/// A listener that reads the start of the `ClientHello`, then hangs up (`close`) or stalls.
async fn raw_tls_peer(close: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut hello = [0u8; 5];
            let _ = tcp.read_exact(&mut hello).await;
            if !close {
                held.push(tcp);
            }
        }
    });
    port
}

#[tokio::test]
async fn a_peer_that_hangs_up_mid_handshake_is_a_tls_error() {
    let port = raw_tls_peer(true).await;
    let connector = connector_with(None);
    let origin = https("localhost", port);
    let err = prompt(connector.connect(&origin)).await.unwrap_err();
    assert!(err.is_tls() && !err.is_certificate(), "{err:?}");
    assert_eq!(connector.stats_for(&origin), tandem_connect::PoolStats::default(), "slot freed");
}

#[tokio::test]
async fn a_stalled_handshake_is_bounded_by_connect_timeout() {
    let port = raw_tls_peer(false).await;
    let connector = Connector::builder()
        .resolve("localhost", loopback())
        .connect_timeout(Some(std::time::Duration::from_millis(50)))
        .build();
    let err = prompt(connector.connect(&https("localhost", port))).await.unwrap_err();
    assert!(err.is_connect_timeout(), "{err:?}");
}

#[tokio::test]
async fn a_stalled_handshake_is_bounded_by_its_own_timeout() {
    let port = raw_tls_peer(false).await;
    let connector = Connector::builder()
        .resolve("localhost", loopback())
        .tls_handshake_timeout(Some(std::time::Duration::from_secs(60)))
        .build();
    let origin = https("localhost", port);
    // Per checkout, the shorter bound wins over the connector's.
    let quick = tandem_connect::ConnectOptions::new()
        .tls_handshake_timeout(std::time::Duration::from_millis(50));
    let err = prompt(connector.connect_with(&origin, &quick)).await.unwrap_err();
    assert!(err.is_tls_handshake_timeout() && err.is_connect_timeout(), "{err:?}");
    assert!(err.is_tls() && !err.is_sock_connect_timeout(), "{err:?}");
    assert_eq!(connector.stats_for(&origin), tandem_connect::PoolStats::default(), "slot freed");
}

#[tokio::test]
async fn server_hostname_overrides_the_tls_name_and_pools_apart() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["localhost"], |_| {}), None).await;
    let connector = connector_with(Some(trusting(&ca)));
    let origin = https("127.0.0.1", port);
    let err = prompt(connector.connect(&origin)).await.unwrap_err();
    assert!(err.is_certificate(), "{err:?}");

    let as_localhost = tandem_connect::ConnectOptions::new().server_hostname("localhost");
    let mut conn = prompt(connector.connect_with(&origin, &as_localhost)).await.unwrap();
    greeted(&mut conn).await;
    conn.release();
    assert!(prompt(connector.connect_with(&origin, &as_localhost)).await.unwrap().is_reused());
    let other = tandem_connect::ConnectOptions::new().server_hostname("a.test");
    let err = prompt(connector.connect_with(&origin, &other)).await.unwrap_err();
    assert!(err.is_certificate(), "a pooled connection for another name is not reused: {err:?}");
}

/// `native_roots` trusts what the system's store holds: here a private CA put there through
/// `SSL_CERT_FILE`, which OpenSSL (and so rustls-native-certs) reads. The environment is
/// the process's, so the check runs in a child process of this test binary.
#[tokio::test]
async fn native_roots_trust_the_system_store() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["localhost"], |_| {}), None).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca.pem()).unwrap();
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tls::native_roots_child", "--ignored", "--test-threads=1"])
        .env("SSL_CERT_FILE", &bundle)
        .env("SSL_CERT_DIR", dir.path())
        .env("TANDEM_NATIVE_ROOTS_PORT", port.to_string())
        .output();
    let out = prompt(child).await.unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.contains("1 passed"), "{report}");
}

/// The child of `native_roots_trust_the_system_store`; run alone, it has nothing to check.
#[tokio::test]
#[ignore = "run by native_roots_trust_the_system_store, with its environment"]
async fn native_roots_child() {
    let Ok(port) = std::env::var("TANDEM_NATIVE_ROOTS_PORT") else { return };
    let origin = https("localhost", port.parse().unwrap());
    let system = TlsConfig::builder().webpki_roots(false).native_roots(true).build().unwrap();
    let mut conn = prompt(connector_with(Some(system)).connect(&origin)).await.unwrap();
    greeted(&mut conn).await;
    // Without the system's store, the private CA is unknown.
    let webpki = TlsConfig::builder().build().unwrap();
    let err = prompt(connector_with(Some(webpki)).connect(&origin)).await.unwrap_err();
    assert!(err.is_certificate(), "{err:?}");
}
