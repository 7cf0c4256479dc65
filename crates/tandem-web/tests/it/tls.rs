//! HTTPS: the server's rustls against curl, Python's aiohttp client, `openssl s_client`,
//! Tandem's own client and a bare tokio-rustls client, with certificates made here by
//! rcgen; SNI, mutual TLS, reloading, `RunOptions::tls`; and hostile peers: plaintext on the
//! TLS port, a stalled handshake, wrong or missing client certificates, an unknown SNI name.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tandem_web::{
    AppRunner, Application, ClientAuth, Identity, Request, RunOptions, ServerConfig, TlsConfig,
    TlsInfo,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{TIMEOUT, within};

/// How long one client process may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

// ===== certificates =====

/// A certificate authority made for one test.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate it issued, with its key, as PEM and DER.
struct Leaf {
    chain_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names`, its common name the first of them.
    fn server(&self, names: &[&str]) -> Leaf {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate with common name `name`.
    fn client(&self, name: &str) -> Leaf {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf { chain_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }
}

impl Leaf {
    fn identity(&self) -> Identity {
        Identity::from_pem(self.chain_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }

    /// Writes the chain and key into `dir` as `NAME.pem` and `NAME.key`.
    fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, &self.chain_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// FNV-1a, to name a certificate in a response line.
fn fnv(data: &[u8]) -> u64 {
    data.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

// ===== the server =====

/// `/info` tells what the handler sees of the connection; `/len` counts a body. Every
/// request that reaches a handler is counted.
fn app(dispatched: &Arc<AtomicUsize>) -> Application {
    let mut app = Application::new();
    let count = Arc::clone(dispatched);
    app.add_get("/info", move |req: Request| {
        count.fetch_add(1, Ordering::SeqCst);
        async move { info_line(&req) }
    });
    let count = Arc::clone(dispatched);
    app.add_post("/len", move |mut req: Request| {
        count.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, tandem_web::HttpError>(format!("{} bytes", req.read().await?.len())) }
    });
    app
}

fn info_line(req: &Request) -> String {
    let tls = req.tls();
    let alpn = tls.and_then(TlsInfo::alpn_protocol).map(String::from_utf8_lossy);
    let peers = tls.map_or(&[][..], TlsInfo::peer_certificates);
    format!(
        "{} secure={} version={} cipher={} sni={} alpn={} peers={} leaf={:x}",
        req.scheme(),
        req.secure(),
        tls.map_or("-", TlsInfo::version),
        tls.map_or("-", TlsInfo::cipher_suite),
        tls.and_then(TlsInfo::server_name).unwrap_or("-"),
        alpn.as_deref().unwrap_or("-"),
        peers.len(),
        peers.first().map_or(0, |c| fnv(c)),
    )
}

struct TlsServer {
    addr: SocketAddr,
    runner: AppRunner,
    dispatched: Arc<AtomicUsize>,
}

impl TlsServer {
    async fn start(tls: &TlsConfig) -> TlsServer {
        TlsServer::start_with(tls, ServerConfig::default()).await
    }

    async fn start_with(tls: &TlsConfig, config: ServerConfig) -> TlsServer {
        let dispatched = Arc::new(AtomicUsize::new(0));
        let mut runner = AppRunner::with_config(app(&dispatched), config).unwrap();
        runner.setup().await.unwrap();
        let addr = runner.tls_site("127.0.0.1", 0, tls).await.unwrap();
        TlsServer { addr, runner, dispatched }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn dispatched(&self) -> usize {
        self.dispatched.load(Ordering::SeqCst)
    }

    async fn stop(self) {
        assert!(within(self.runner.cleanup()).await, "in-flight requests finished");
    }
}

// ===== peers =====

/// Runs `program` to its end (bounded), feeding it `stdin`; success or not is the caller's
/// to judge.
async fn run(program: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish in time"))
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// curl with the CA, `name` resolved to 127.0.0.1; returns its output, or its exit code.
async fn curl(name: &str, port: u16, ca: &Path, extra: &[&str]) -> Result<String, i32> {
    let resolve = format!("{name}:{port}:127.0.0.1");
    let url = format!("https://{name}:{port}/info");
    let ca = ca.to_str().unwrap();
    let mut args = vec!["-sS", "--max-time", "30", "--resolve", &resolve, "--cacert", ca];
    args.extend_from_slice(extra);
    args.push(&url);
    let output = run("curl", &args, b"").await;
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(output.status.code().unwrap_or(-1))
    }
}

/// `openssl s_client` sending one request with `Connection: close`; its whole output.
async fn s_client(port: u16, args: &[&str]) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut all = vec!["s_client", "-connect", &connect, "-ign_eof"];
    all.extend_from_slice(args);
    let request = b"GET /info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    text(&run("openssl", &all, request).await)
}

/// A bare rustls client trusting `ca`, offering `alpn`; the stream after the handshake.
async fn rustls_connect(
    port: u16,
    ca: &Ca,
    name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    rustls_connect_with(port, &rustls_client(ca, rustls::DEFAULT_VERSIONS), name).await
}

/// A rustls client configuration trusting `ca`, speaking `versions`, with rustls's default
/// session cache (it resumes sessions from the tickets or IDs servers give it).
fn rustls_client(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    // rustls's process-wide provider: ring, the only one this workspace turns on.
    let config = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// [`rustls_connect`] with a client configuration of the test's.
async fn rustls_connect_with(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
    name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = within(TcpStream::connect(("127.0.0.1", port))).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    within(connector.connect(name, tcp)).await.unwrap()
}

/// One keep-alive `GET /info` on `stream`; the body.
async fn get_info<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> String {
    stream.write_all(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0; 4096];
    // The body is one line without a newline; the head says how long it is.
    loop {
        let n = within(stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ")?.parse().ok())
                .unwrap();
            if body.len() >= length {
                return body.to_owned();
            }
        }
    }
}

fn tandem_session(tls: tandem_client::TlsConfig) -> tandem_client::ClientSession {
    tandem_client::ClientSession::builder()
        .connector(tandem_client::Connector::builder().tls(tls).build())
        .build()
}

// ===== tests =====

#[tokio::test]
async fn curl_verifies_the_certificate_and_handlers_see_the_tls_facts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let (cert, key) = ca.server(&["localhost"]).write(dir.path(), "server");
    let server = TlsServer::start(&TlsConfig::from_pem_files(&cert, &key).unwrap()).await;

    // curl offers h2 first, and gets it: the TLS facts reach HTTP/2's requests too.
    // Without the `http2` feature only http/1.1 is offered.
    let line = curl("localhost", server.port(), &ca_path, &[]).await.unwrap();
    let alpn = if cfg!(feature = "http2") { "h2" } else { "http/1.1" };
    assert_eq!(
        line,
        format!(
            "https secure=true version=TLSv1.3 cipher=TLS13_AES_256_GCM_SHA384 sni=localhost \
             alpn={alpn} peers=0 leaf=0"
        )
    );
    let line = curl("localhost", server.port(), &ca_path, &["--tls-max", "1.2"]).await.unwrap();
    assert!(line.contains(" version=TLSv1.2 cipher=TLS_ECDHE_ECDSA_WITH_"), "{line}");
    // Another CA's bundle does not trust it: the certificate really is checked.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, Ca::new("other CA").pem()).unwrap();
    assert_eq!(curl("localhost", server.port(), &other, &[]).await, Err(60));
    assert_eq!(server.dispatched(), 2);
    server.stop().await;
}

#[tokio::test]
async fn python_aiohttp_with_an_ssl_context() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let server = TlsServer::start(&tls).await;
    // Both requests go on one connection (aiohttp keeps it alive), the second with a body
    // read through TLS; then a context without the CA is refused.
    let script = r#"
import asyncio, ssl, sys, aiohttp
async def main(url, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/info", ssl=ctx) as r:
            print(r.status, await r.text())
        async with s.post(url + "/len", data=bytes(range(256)) * 2048, ssl=ctx) as r:
            print(r.status, await r.text())
        try:
            async with s.get(url + "/info", ssl=ssl.create_default_context()) as r:
                print("unexpected", r.status)
        except aiohttp.ClientConnectorCertificateError:
            print("refused")
asyncio.run(main(*sys.argv[1:]))
"#;
    let url = format!("https://localhost:{}", server.port());
    let output = run(python, &["-c", script, &url, ca_path.to_str().unwrap()], b"").await;
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("200 https secure=true version=TLSv1.3 "), "{stdout}");
    assert!(lines[0].contains(" sni=localhost alpn=- peers=0"), "{stdout}");
    assert_eq!(lines[1], "200 524288 bytes");
    assert_eq!(lines[2], "refused");
    server.stop().await;
}

#[tokio::test]
async fn openssl_s_client_alpn_and_required_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("server CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let clients = Ca::new("client CA");
    let client = clients.client("alice");
    let (client_cert, client_key) = client.write(dir.path(), "alice");
    let (stranger_cert, stranger_key) =
        Ca::new("another client CA").client("mallory").write(dir.path(), "mallory");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity())
        .client_auth(ClientAuth::Required, clients.pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let server = TlsServer::start(&tls).await;
    let (ca_arg, cert, key) =
        (ca_path.to_str().unwrap(), client_cert.to_str().unwrap(), client_key.to_str().unwrap());
    let common = ["-servername", "localhost", "-CAfile", ca_arg, "-verify_return_error"];

    let out = s_client(
        server.port(),
        &[&common[..], &["-alpn", "http/1.1", "-cert", cert, "-key", key]].concat(),
    )
    .await;
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let expected = format!("sni=localhost alpn=http/1.1 peers=1 leaf={:x}", fnv(&client.der));
    assert!(out.contains("HTTP/1.1 200 OK") && out.contains(&expected), "{out}");
    assert_eq!(server.dispatched(), 1);

    // h2 is offered first and chosen when the client offers it (http/1.1 without the
    // `http2` feature).
    let out = s_client(
        server.port(),
        &[&common[..], &["-alpn", "h2,http/1.1", "-cert", cert, "-key", key]].concat(),
    )
    .await;
    let alpn = if cfg!(feature = "http2") { "h2" } else { "http/1.1" };
    assert!(out.contains(&format!("ALPN protocol: {alpn}")), "{out}");
    // Only protocols the server does not speak: refused in the handshake rather than
    // answered in HTTP/1.1.
    let out = s_client(
        server.port(),
        &[&common[..], &["-alpn", "h3,spdy/3.1", "-cert", cert, "-key", key]].concat(),
    )
    .await;
    assert!(out.contains("no application protocol"), "{out}");
    // No certificate, or one another CA issued: refused, and nothing reaches a handler.
    let out = s_client(server.port(), &common).await;
    assert!(!out.contains("HTTP/1.1"), "{out}");
    let (stranger_cert, stranger_key) =
        (stranger_cert.to_str().unwrap(), stranger_key.to_str().unwrap());
    let out = s_client(
        server.port(),
        &[&common[..], &["-cert", stranger_cert, "-key", stranger_key]].concat(),
    )
    .await;
    assert!(!out.contains("HTTP/1.1"), "{out}");
    assert!(out.contains("alert"), "{out}");
    // Without `http2` the second s_client spoke HTTP/1.1 and its request was answered too.
    assert_eq!(server.dispatched(), if cfg!(feature = "http2") { 1 } else { 2 });
    server.stop().await;
}

#[tokio::test]
async fn tandem_client_verifies_pins_and_presents_client_certificates() {
    let ca = Ca::new("server CA");
    let leaf = ca.server(&["localhost"]);
    let clients = Ca::new("client CA");
    let alice = clients.client("alice");
    let tls = TlsConfig::builder(leaf.identity())
        .client_auth(ClientAuth::Optional, clients.pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let server = TlsServer::start(&tls).await;
    let url = format!("https://localhost:{}/info", server.port());
    let trusting = || {
        tandem_client::TlsConfig::builder()
            .webpki_roots(false)
            .add_root_certificates_pem(ca.pem().as_bytes())
            .unwrap()
    };
    let get = |tls: tandem_client::TlsConfig| {
        let url = url.clone();
        async move {
            let mut resp = within(tandem_session(tls).get(&url).send()).await?;
            within(resp.text()).await
        }
    };

    // Optional: without a certificate the client is served and shows none. Tandem's client
    // offers `h2` first, and this server takes it (with the `http2` feature).
    let line = get(trusting().build().unwrap()).await.unwrap();
    assert!(line.starts_with("https secure=true version=TLSv1.3 "), "{line}");
    let alpn = if cfg!(feature = "http2") { "h2" } else { "http/1.1" };
    assert!(line.ends_with(&format!(" sni=localhost alpn={alpn} peers=0 leaf=0")), "{line}");
    // With one, the handler sees it.
    let with_cert = trusting()
        .client_identity_pem(alice.chain_pem.as_bytes(), alice.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let line = get(with_cert).await.unwrap();
    assert!(line.ends_with(&format!(" peers=1 leaf={:x}", fnv(&alice.der))), "{line}");
    // Pinned by the leaf's SHA-256 instead of a CA.
    let pin = tandem_connect::Fingerprint::of_certificate(&leaf.der);
    let pinned = tandem_client::TlsConfig::builder().fingerprint(pin).build().unwrap();
    assert!(get(pinned).await.is_ok());
    let wrong = tandem_connect::Fingerprint::of_certificate(&alice.der);
    let wrong = tandem_client::TlsConfig::builder().fingerprint(wrong).build().unwrap();
    assert!(get(wrong).await.is_err());
    // The default roots do not know the test CA.
    let err = get(tandem_client::TlsConfig::new().unwrap()).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    // Even when optional, a certificate the CA bundle did not issue is refused.
    let mallory = Ca::new("another client CA").client("mallory");
    let stranger = trusting()
        .client_identity_pem(mallory.chain_pem.as_bytes(), mallory.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    assert!(get(stranger).await.is_err());
    assert_eq!(server.dispatched(), 3);
    server.stop().await;
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_other_names_get_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity())
        .sni("alpha.test", ca.server(&["alpha.test"]).identity())
        .sni("Beta.Test", ca.server(&["beta.test"]).identity())
        .build()
        .unwrap();
    let server = TlsServer::start(&tls).await;
    // Each name verifies only if its own certificate was chosen.
    for name in ["alpha.test", "beta.test", "localhost"] {
        let line = curl(name, server.port(), &ca_path, &[]).await.unwrap();
        assert!(line.contains(&format!(" sni={name} ")), "{line}");
    }
    // A name with no certificate of its own gets the default one, which the client then
    // refuses as not valid for that name (curl's 60).
    assert_eq!(curl("gamma.test", server.port(), &ca_path, &[]).await, Err(60));
    assert_eq!(server.dispatched(), 3);
    let out = s_client(server.port(), &["-servername", "gamma.test"]).await;
    assert!(out.replace(' ', "").contains("subject=CN=localhost"), "{out}");
    server.stop().await;

    // A certificate is checked against the name it is added for.
    let wrong = TlsConfig::builder(ca.server(&["localhost"]).identity())
        .sni("alpha.test", ca.server(&["beta.test"]).identity())
        .build();
    assert!(wrong.unwrap_err().to_string().contains("alpha.test"));
    let bad_key = Identity::from_pem(
        ca.server(&["localhost"]).chain_pem.as_bytes(),
        ca.server(&["localhost"]).key_pem.as_bytes(),
    );
    assert!(bad_key.is_err(), "a key that is not the certificate's");
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections_only() {
    let ca = Ca::new("test CA");
    let (first, second) = (ca.server(&["localhost"]), ca.server(&["localhost"]));
    let tls = TlsConfig::builder(first.identity()).build().unwrap();
    let server = TlsServer::start(&tls).await;
    let leaf = |s: &tokio_rustls::client::TlsStream<TcpStream>| {
        s.get_ref().1.peer_certificates().unwrap()[0].clone()
    };

    let mut old = rustls_connect(server.port(), &ca, "localhost").await;
    assert_eq!(leaf(&old), first.der);
    assert!(get_info(&mut old).await.starts_with("https "));
    // Reloaded through a clone, as a renewal job holding its own handle would.
    tls.clone().reload(second.identity());
    let mut new = rustls_connect(server.port(), &ca, "localhost").await;
    assert_eq!(leaf(&new), second.der);
    assert!(get_info(&mut new).await.starts_with("https "));
    // The connection opened before goes on, on its own session.
    assert!(get_info(&mut old).await.starts_with("https "));
    // An SNI certificate can be added to the running server too.
    let alpha_leaf = ca.server(&["alpha.test"]);
    tls.reload_sni("alpha.test", alpha_leaf.identity()).unwrap();
    let alpha = rustls_connect(server.port(), &ca, "alpha.test").await;
    assert_eq!(leaf(&alpha), alpha_leaf.der);
    assert!(tls.reload_sni("beta.test", first.identity()).is_err());
    drop((old, new, alpha));
    server.stop().await;
}

#[tokio::test]
async fn run_options_serve_https_with_one_worker_and_with_several() {
    let ca = Ca::new("test CA");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    for workers in [1, 2] {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let dispatched = Arc::new(AtomicUsize::new(0));
        let options = RunOptions::new("127.0.0.1", 0)
            .workers(workers)
            .tls(tls.clone())
            .on_listening(move |addr| addr_tx.send(addr).unwrap());
        let app = app(&dispatched);
        let thread = std::thread::spawn(move || {
            options.run_until(app, || async move {
                let _ = stop_rx.await;
            })
        });
        let addr: SocketAddr = addr_rx.recv_timeout(TIMEOUT).expect("the server listens");
        for _ in 0..4 {
            let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
            let line = get_info(&mut stream).await;
            assert!(line.starts_with("https secure=true "), "{line}");
        }
        stop_tx.send(()).unwrap();
        thread.join().unwrap().unwrap();
        assert_eq!(dispatched.load(Ordering::SeqCst), 4);
    }
}

#[tokio::test]
async fn plaintext_http_on_the_tls_port_is_closed_unanswered() {
    let ca = Ca::new("test CA");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let server = TlsServer::start(&tls).await;
    let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
    stream.write_all(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    // Closed (perhaps after a TLS alert, perhaps with a reset): either ends the read.
    let _ = within(stream.read_to_end(&mut reply)).await;
    assert!(!reply.windows(5).any(|w| w == b"HTTP/"), "{reply:?}");
    assert_eq!(server.dispatched(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_off_by_the_head_timeout() {
    const HEAD_TIMEOUT: Duration = Duration::from_millis(300);
    let ca = Ca::new("test CA");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    // The keep-alive timeout stays long: only the head timeout can end these.
    let config = ServerConfig::default().with_head_timeout(HEAD_TIMEOUT);
    let server = TlsServer::start_with(&tls, config).await;
    // One says nothing; one starts a ClientHello record (handshake, TLS 1.0 record version,
    // 512 bytes to come) and stops.
    for opening in [&b""[..], b"\x16\x03\x01\x02\x00\x01"] {
        let started = Instant::now();
        let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
        stream.write_all(opening).await.unwrap();
        let mut reply = Vec::new();
        let _ = within(stream.read_to_end(&mut reply)).await;
        let waited = started.elapsed();
        assert!(waited >= HEAD_TIMEOUT, "closed after {waited:?}, before the timeout");
        assert!(!reply.windows(5).any(|w| w == b"HTTP/"), "{reply:?}");
    }
    // A proper client is still served.
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    assert!(get_info(&mut stream).await.starts_with("https "));
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_stalled_handshake() {
    let ca = Ca::new("test CA");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    // The default head timeout (30 s) is longer than the wait `stop` allows.
    let server = TlsServer::start(&tls).await;
    let mut stalled = within(TcpStream::connect(server.addr)).await.unwrap();
    stalled.write_all(b"\x16\x03\x01").await.unwrap();
    // Connections are accepted in order, so once this one is answered the stalled one has
    // been accepted and is in its handshake.
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    assert!(get_info(&mut stream).await.starts_with("https "));
    drop(stream);
    server.stop().await;
    let mut rest = Vec::new();
    let _ = within(stalled.read_to_end(&mut rest)).await;
}

/// A file large enough to go by `sendfile` on plain TCP reaches a TLS connection too (read
/// through the body's stream and encrypted), whole and in a range, on one connection, as
/// does a small one from the open-file cache.
#[tokio::test]
async fn files_reach_a_tls_connection_whole_and_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..300_007u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("small.txt"), "small file").unwrap();
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    app.add_static("/static", dir.path(), tandem_web::StaticOptions::default()).unwrap();
    let mut runner = AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
    let mut pending = Vec::new();
    let cases: [(&str, &str, &[u8]); 4] = [
        ("/static/big.bin", "", &big),
        ("/static/big.bin", "Range: bytes=1000-200000\r\n", &big[1000..=200_000]),
        ("/static/small.txt", "", b"small file"),
        ("/static/big.bin", "", &big),
    ];
    for (path, extra, want) in cases {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let body = loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: ")?.parse().ok())
                    .unwrap();
                if pending.len() >= end + 4 + length {
                    let body = pending[end + 4..end + 4 + length].to_vec();
                    pending.drain(..end + 4 + length);
                    break body;
                }
            }
            let mut chunk = vec![0; 64 * 1024];
            let n = within(stream.read(&mut chunk)).await.unwrap();
            assert!(n > 0, "closed mid-response");
            pending.extend_from_slice(&chunk[..n]);
        };
        assert!(body == want, "{path} {extra}: {} bytes", body.len());
    }
    assert!(within(runner.cleanup()).await);
}

/// A closing connection's last responses, pipelined ones gathered with it and more than
/// rustls buffers at once, reach the client whole, followed by `close_notify` (rustls's
/// client reads a close without one as an error).
#[tokio::test]
async fn a_closing_connection_sends_its_last_responses_then_close_notify() {
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    app.add_get("/blob", |_req: Request| async { "x".repeat(15_000) });
    let mut runner = AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    for pipelined in [1, 5] {
        let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
        let mut requests = "GET /blob HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(pipelined - 1);
        requests.push_str("GET /blob HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(requests.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        within(stream.read_to_end(&mut got)).await.expect("closed with close_notify");
        let text = String::from_utf8(got).unwrap();
        let responses: Vec<&str> = text.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
        assert_eq!(responses.len(), pipelined, "{pipelined}");
        for response in responses {
            let (_, body) = response.split_once("\r\n\r\n").unwrap();
            assert!(body.len() == 15_000 && body.bytes().all(|b| b == b'x'), "{}", body.len());
        }
    }
    assert!(within(runner.cleanup()).await);
}

/// The session tickets of a TLS 1.3 handshake reach the client, whose next connection
/// resumes; a TLS 1.2 handshake, whose last flight the client waits for, completes and
/// resumes too.
#[tokio::test]
async fn sessions_resume_over_tls_1_3_and_tls_1_2() {
    let ca = Ca::new("test CA");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let server = TlsServer::start(&tls).await;
    for (version, expected) in
        [(&rustls::version::TLS13, "TLSv1.3"), (&rustls::version::TLS12, "TLSv1.2")]
    {
        let client = rustls_client(&ca, &[version]);
        for kind in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
            let mut stream = rustls_connect_with(server.port(), &client, "localhost").await;
            assert_eq!(stream.get_ref().1.handshake_kind(), Some(kind), "{expected}");
            let info = get_info(&mut stream).await;
            assert!(info.contains(&format!(" version={expected} ")), "{info}");
            within(stream.shutdown()).await.unwrap();
        }
    }
    assert_eq!(server.dispatched(), 4);
    server.stop().await;
}

/// A TLS 1.3 handshake's session tickets leave when it ends, before any request, so the
/// client takes them in while the server reads and answers its request; held for the first
/// response's write, they reached the client only with it, and took its time after.
#[tokio::test]
async fn tls_1_3_session_tickets_leave_with_the_handshake() {
    let ca = Ca::new("test CA");
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let server = TlsServer::start(&tls).await;
    let client = rustls_client(&ca, &[&rustls::version::TLS13]);
    let mut stream = rustls_connect_with(server.port(), &client, "localhost").await;
    // Reading processes what comes (tickets are no data, so the read stays pending); the
    // tickets are counted as they are taken in.
    let mut byte = [0; 1];
    within(std::future::poll_fn(|cx| {
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut stream), cx, &mut buf) {
            std::task::Poll::Ready(read) => panic!("before any request: {read:?}"),
            std::task::Poll::Pending if stream.get_ref().1.tls13_tickets_received() > 0 => {
                std::task::Poll::Ready(())
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }))
    .await;
    let info = get_info(&mut stream).await;
    assert!(info.contains(" version=TLSv1.3 "), "{info}");
    server.stop().await;
}

mod hostile;
mod hostile_bulk;
mod hostile_handshake;

/// A streamed response's chunk reaches the client whole while the stream waits for its
/// next one, though the socket was full when the chunk's last bytes were written (they
/// then wait in rustls's buffer until flushed): an event stream over HTTPS must not hold
/// an event back until the next.
#[tokio::test]
async fn a_streamed_chunk_arrives_whole_while_the_stream_waits() {
    const CHUNK: usize = 16 << 20;
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    // The stream's end waits for the test to have read the chunk.
    let (read_it, then_end) = tokio::sync::oneshot::channel::<()>();
    let then_end = std::sync::Mutex::new(Some(then_end));
    app.add_get("/events", move |_req: Request| {
        let then_end = then_end.lock().unwrap().take().expect("one request");
        async move {
            let chunk = bytes::Bytes::from(vec![b'e'; CHUNK]);
            let first = futures_util::stream::iter([Ok::<_, tandem_web::Error>(chunk)]);
            let end = futures_util::stream::once(async move {
                let _ = then_end.await;
                Ok(bytes::Bytes::new())
            });
            tandem_web::Response::stream(futures_util::StreamExt::chain(first, end))
        }
    });
    let mut runner = AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
    within(stream.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")).await.unwrap();
    // The head and the chunk's size line come first; then the chunk's bytes are counted,
    // read a little at a time so the server finds the socket full as it writes.
    let mut got = Vec::new();
    let mut chunk = vec![0; 1024];
    let mut body = None;
    while body.is_none_or(|body| body < CHUNK) {
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{body:?} of {CHUNK}"))
            .unwrap();
        assert!(n > 0, "closed after {body:?}");
        if let Some(body) = &mut body {
            *body += n;
        } else {
            got.extend_from_slice(&chunk[..n]);
            let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
            let size_end = head_end.and_then(|end| {
                let line = got[end + 4..].windows(2).position(|w| w == b"\r\n")?;
                Some(end + 4 + line + 2)
            });
            body = size_end.map(|end| got.len() - end);
        }
    }
    assert_eq!(body, Some(CHUNK));
    read_it.send(()).unwrap();
    drop(stream);
    assert!(within(runner.cleanup()).await);
}

/// A streamed body that fails after its head went out ends the connection without
/// `close_notify`: for an HTTP/1.0 client the body runs until the close, and a
/// `close_notify` would end it as if whole (`stream_response::a_body_that_breaks_resets_the_connection`
/// for plain TCP).
#[tokio::test]
async fn a_body_that_breaks_ends_without_close_notify() {
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    app.add_get("/stream-fails", |_req: Request| async {
        let chunks = futures_util::stream::iter([
            Ok(bytes::Bytes::from_static(b"partial")),
            Err(tandem_web::Error::new("the feed went away")),
        ]);
        tandem_web::Response::stream(chunks)
    });
    let mut runner = AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    for version in ["1.0", "1.1"] {
        let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
        let request = format!("GET /stream-fails HTTP/{version}\r\nHost: localhost\r\n\r\n");
        within(stream.write_all(request.as_bytes())).await.unwrap();
        let (got, err) = hostile::read_to_close(&mut stream).await;
        let got = String::from_utf8_lossy(&got);
        assert!(got.contains("partial"), "HTTP/{version}: {got}");
        assert!(err.is_some(), "HTTP/{version}: ended with close_notify, as if whole: {got}");
    }
    assert!(within(runner.cleanup()).await);
}

/// Through tower layers, a handler still sees the request's TLS facts on HTTP/1.1 (its
/// scheme, `secure`, the session), as on HTTP/2: the app under the layers read them from
/// the `http::Request`'s extensions, where only the remote address was put, so behind any
/// layer every HTTPS request looked like plain `http` (a `Secure` cookie withheld, a URL
/// built as `http://`).
#[tokio::test]
async fn a_layered_app_sees_the_tls_facts_over_http1() {
    let ca = Ca::new("test CA");
    let dispatched = Arc::new(AtomicUsize::new(0));
    let mut app = app(&dispatched);
    app.layer(tower_http::cors::CorsLayer::permissive());
    let mut runner = AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let tls = TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
    // HTTP/1.0: the layers' answer is streamed, so its body runs to the close.
    within(stream.write_all(b"GET /info HTTP/1.0\r\nHost: localhost\r\n\r\n")).await.unwrap();
    let (got, _) = hostile::read_to_close(&mut stream).await;
    let got = String::from_utf8_lossy(&got);
    let info = got.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    assert!(info.starts_with("https secure=true version=TLSv1.3 "), "{got}");
    assert!(info.contains(" sni=localhost "), "{info}");
    assert_eq!(dispatched.load(Ordering::SeqCst), 1);
    assert!(within(runner.cleanup()).await);
}
