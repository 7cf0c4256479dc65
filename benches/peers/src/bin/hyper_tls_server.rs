//! hyper 1.x behind tokio-rustls, for `cargo xtask bench tls`: the same rustls (ring
//! provider, its default session cache, ALPN `http/1.1`) that Tandem's `TlsConfig` builds,
//! the same routes as `hyper_server`, on a current-thread tokio runtime (one thread in all).
//!
//! `hyper_tls_server --port P --tls-cert PEM --tls-key PEM`

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bench_peers::{hyper_respond, usage};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const SYNOPSIS: &str = "--port P --tls-cert PEM --tls-key PEM";

/// `(port, cert path, key path)` from the command line.
fn args() -> (u16, String, String) {
    let (mut port, mut cert, mut key) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()),
            "--tls-cert" => cert = args.next(),
            "--tls-key" => key = args.next(),
            _ => usage(SYNOPSIS, &arg),
        }
    }
    match (port, cert, key) {
        (Some(port), Some(cert), Some(key)) => (port, cert, key),
        _ => usage(SYNOPSIS, "(a missing argument)"),
    }
}

fn main() -> std::io::Result<()> {
    let (port, cert, key) = args();
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            // The handshake runs in the connection's task, as Tandem's does, so a slow
            // client never holds up the accept loop.
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service =
                    service_fn(|req| async move { Ok::<_, Infallible>(hyper_respond(&req)) });
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
