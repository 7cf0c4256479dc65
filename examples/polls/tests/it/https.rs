//! The `polls` binary over HTTPS: `[server] tls_cert` and `tls_key` in its config, with a
//! certificate made here, fetched by Tandem's client trusting only that certificate.

use tandem_client::{ClientSession, Connector, TlsConfig};

use crate::{deployment::Instance, support::get};

#[tokio::test]
async fn polls_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let config = dir.path().join("polls.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\ntls_cert = {cert_path:?}\ntls_key = {key_path:?}\n\
             [database]\npath = {:?}\n[session]\nsecure = true\n",
            dir.path().join("polls.sqlite3"),
        ),
    )
    .unwrap();
    let polls = Instance::start(&config).await;
    assert!(polls.url("/").starts_with("https://"), "{}", polls.url("/"));

    let tls = TlsConfig::builder()
        .webpki_roots(false)
        .add_root_certificates_pem(cert.pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let client = ClientSession::builder().connector(Connector::builder().tls(tls).build()).build();
    let (status, page) = get(&client, &format!("https://localhost:{}/", polls.port())).await;
    assert_eq!(status, 200);
    assert!(page.contains("/poll/1"), "{page}");
}
