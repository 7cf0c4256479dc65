//! HTTPS through the connector's rustls, against a TLS server in the test with a certificate
//! made here; and credentials across an https-to-http redirect (`docs/security.md`, C41).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rcgen::{CertificateParams, KeyPair};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject},
};
use tandem_client::{ClientSession, ClientTimeout, Phase, TlsConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::{RawServer, read_request, session, within, write};

/// An HTTPS server for `localhost` answering every request with `response`; returns its
/// port and the certificate's PEM.
async fn https_server(response: String) -> (u16, String) {
    https_server_with(move |_| response.clone(), true).await
}

/// An HTTPS server for `localhost` answering every request with `respond(its head)`, then
/// closing with TLS's `close_notify`, or without it (the TCP connection alone) when
/// `close_notify` is false.
async fn https_server_with(
    respond: impl Fn(&[u8]) -> String + Send + Sync + 'static,
    close_notify: bool,
) -> (u16, String) {
    let key = KeyPair::generate().unwrap();
    let cert =
        CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
    let pem = cert.pem();
    // rustls's process-wide provider: ring, the only one this workspace turns on.
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let respond = respond.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0; 4096];
                // One request per connection is enough here.
                loop {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(n) = tls.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = tls.write_all(respond(&buf).as_bytes()).await;
                        if close_notify {
                            let _ = tls.shutdown().await;
                        } else {
                            let _ = tls.flush().await;
                            let (mut tcp, _) = tls.into_inner();
                            let _ = tcp.shutdown().await;
                        }
                        return;
                    }
                }
            });
        }
    });
    (port, pem)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure";

fn trusting(pem: &str) -> ClientSession {
    trusting_builder(pem).build()
}

fn trusting_builder(pem: &str) -> tandem_client::ClientSessionBuilder {
    let tls =
        TlsConfig::builder().add_root_certificates_pem(pem.as_bytes()).unwrap().build().unwrap();
    ClientSession::builder()
        .connector(tandem_client::Connector::builder().tls(tls).build())
        .cookie_jar(tandem_client::CookieJar::unsafe_hosts())
}

/// The TLS handshake is timed on its own, inside `connect`, and a HAR entry shows it as `ssl`.
#[tokio::test]
async fn the_tls_handshake_is_timed() {
    let (port, pem) = https_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure".to_owned(),
    )
    .await;
    let har = tandem_client::HarRecorder::new();
    let session = trusting_builder(&pem).timings(true).middleware(har.clone()).build();
    let mut resp = within(session.get(&format!("https://localhost:{port}/")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "secure");
    let t = resp.timings().unwrap();
    let (tls, connect) = (t.tls.unwrap(), t.connect.unwrap());
    assert!(tls > std::time::Duration::ZERO && tls <= connect, "{t:?}");
    let entry = &har.to_json()["log"]["entries"][0];
    let ssl = entry["timings"]["ssl"].as_f64().unwrap();
    assert!(ssl > 0.0 && ssl <= entry["timings"]["connect"].as_f64().unwrap(), "{entry}");
}

#[tokio::test]
async fn https_with_a_trusted_certificate() {
    let (port, pem) = https_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure".to_owned(),
    )
    .await;
    let url = format!("https://localhost:{port}/");
    let mut resp = within(trusting(&pem).get(&url).send()).await.unwrap();
    // The TLS facts, from the response (aiohttp's `get_extra_info('peercert')`).
    let info = resp.connection_info().expect("a connection");
    let tls = info.tls.as_ref().expect("TLS facts");
    assert_eq!(tls.version, Some("TLSv1_3"));
    assert!(tls.cipher.is_some_and(|c| c.starts_with("TLS13_")), "{tls:?}");
    let cert_der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    assert_eq!(tls.peer_certificate.as_deref(), Some(&cert_der[..]));
    assert!(info.peer_addr.is_some_and(|a| a.port() == port));
    assert_eq!(within(resp.text()).await.unwrap(), "secure");
    // The default roots do not know this certificate.
    let e = within(session().get(&url).send()).await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    // Per request, verification can be turned off (aiohttp's `ssl=False`).
    let insecure = TlsConfig::builder().verify_ssl(false).build().unwrap();
    let mut resp = within(session().get(&url).tls(insecure).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "secure");
}

#[tokio::test]
async fn https_to_http_on_the_same_host_drops_credentials() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let plain = RawServer::start(move |mut stream, _| {
        let record = record.clone();
        async move {
            while let Some(req) = read_request(&mut stream).await {
                record.lock().unwrap().push(String::from_utf8(req).unwrap());
                write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain").await;
            }
        }
    })
    .await;
    let location = format!("http://localhost:{}/landed", plain.addr.port());
    let (port, pem) = https_server(format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    ))
    .await;
    let mut resp = within(
        trusting(&pem)
            .get(&format!("https://localhost:{port}/start"))
            .header("authorization", "Bearer secret")
            .header("cookie", "c=1")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "plain");
    assert_eq!(resp.history().len(), 1);
    let seen = seen.lock().unwrap();
    let lower = seen[0].to_ascii_lowercase();
    assert!(lower.starts_with("get /landed "));
    assert!(!lower.contains("authorization"), "{lower}");
    assert!(!lower.contains("cookie"), "{lower}");
}

/// `Proxy-Authorization` is for the proxy: an https request through a `CONNECT` tunnel
/// never carries one to the origin, whether the proxy's credentials, a session's own field
/// or a request's (requests CVE-2023-32681), over HTTP/1.1 as over HTTP/2.
#[tokio::test]
async fn proxy_authorization_never_reaches_an_https_origin_through_a_tunnel() {
    let (port, pem) = https_server_with(
        |head| {
            let head = String::from_utf8_lossy(head).into_owned();
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{head}", head.len())
        },
        true,
    )
    .await;
    let connects = Arc::new(Mutex::new(Vec::new()));
    let record = connects.clone();
    let proxy = RawServer::start(move |mut client, _| {
        let record = record.clone();
        async move {
            let Some(head) = read_request(&mut client).await else { return };
            record.lock().unwrap().push(String::from_utf8(head).unwrap());
            let Ok(mut origin) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            write(&mut client, b"HTTP/1.1 200 Connection established\r\n\r\n").await;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
        }
    })
    .await;
    let proxy_at = proxy.as_proxy();
    let s = trusting_builder(&pem)
        .proxy(proxy_at)
        .header("Proxy-Authorization", "Basic from-the-session")
        .build();
    let url = format!("https://localhost:{port}/");
    for req in [s.get(&url), s.get(&url).header("proxy-authorization", "Basic from-the-request")] {
        let mut resp = within(req.send()).await.unwrap();
        let seen = within(resp.text()).await.unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("get / http/1.1"), "{seen}");
        assert!(!seen.contains("proxy-authorization"), "reached the origin: {seen}");
    }
    let connects = connects.lock().unwrap();
    assert!(connects[0].contains("Proxy-Authorization: Basic cHU6cHA=\r\n"), "{connects:?}");
}

/// A body delimited by the connection's close is complete over TLS only if the close is
/// TLS's own (`close_notify`): a TCP close without it is what an attacker on the path can
/// forge to cut the body short, so it is a payload error, not a shorter body.
#[tokio::test]
async fn a_body_to_the_close_cut_without_close_notify_is_a_payload_error() {
    let answer = |_: &[u8]| "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it".to_owned();
    let (port, pem) = https_server_with(answer, true).await;
    let url = format!("https://localhost:{port}/");
    let mut resp = within(trusting(&pem).get(&url).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "all of it");

    let (port, pem) = https_server_with(answer, false).await;
    let url = format!("https://localhost:{port}/");
    let mut resp = within(trusting(&pem).get(&url).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert!(e.is_payload(), "{e:?}");
}

/// A peer that takes TCP connections and never answers a `ClientHello`.
async fn stalled_tls_peer() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    port
}

/// TLS failures are told apart, as aiohttp's classes: the certificate, the pin, and the
/// handshake's own timeout phase (which would otherwise wait for `total`).
#[tokio::test]
async fn tls_failures_have_their_own_predicates_and_timeout_phase() {
    let (port, _pem) = https_server(OK.to_owned()).await;
    let url = format!("https://localhost:{port}/");
    let e = within(session().get(&url).send()).await.unwrap_err();
    assert!(e.is_connect() && e.is_tls() && e.is_certificate(), "{e:?}");
    assert!(e.fingerprint_mismatch().is_none());

    let wrong = tandem_connect::Fingerprint::sha256(&[7; 32]).unwrap();
    let pinned = TlsConfig::builder().fingerprint(wrong).build().unwrap();
    let e = within(session().get(&url).tls(pinned).send()).await.unwrap_err();
    let (expected, got) = e.fingerprint_mismatch().expect("a pin mismatch");
    assert_eq!((expected, got.len()), (&[7u8; 32][..], 32));
    assert!(e.is_tls() && !e.is_certificate(), "{e:?}");

    let stalled = format!("https://127.0.0.1:{}/", stalled_tls_peer().await);
    let timeout = ClientTimeout::default().with_tls_handshake(Duration::from_millis(50));
    let e = within(session().get(&stalled).timeout(timeout).send()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(Phase::TlsHandshake), "{e:?}");
    assert!(e.is_tls() && !e.is_certificate(), "{e:?}");
}

/// `server_hostname` checks the certificate against a name the URL does not carry: here the
/// URL names the server by address, its certificate by `localhost` (aiohttp's
/// `server_hostname=`).
#[tokio::test]
async fn server_hostname_names_the_server_an_address_reaches() {
    let (port, pem) = https_server(OK.to_owned()).await;
    let url = format!("https://127.0.0.1:{port}/");
    let session = trusting(&pem);
    let e = within(session.get(&url).send()).await.unwrap_err();
    assert!(e.is_certificate(), "{e:?}");
    let mut resp = within(session.get(&url).server_hostname("localhost").send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "secure");
}
