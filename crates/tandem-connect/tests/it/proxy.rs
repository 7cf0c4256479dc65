//! Proxies: `CONNECT` tunnels with credentials on the `CONNECT` only, refusals, and plain-http
//! proxying, against a small proxy written here.

use std::sync::{Arc, Mutex};

use tandem_connect::{ConnectOptions, Connector, Origin, Proxy, Scheme};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::TlsAcceptor;

use crate::{
    prompt,
    tls::{Ca, Leaf, acceptor, greeted, serve, trusting},
};

/// A proxy on 127.0.0.1 that records each request head and either answers `refuse` or, for
/// `CONNECT`, opens the tunnel to 127.0.0.1 at the requested port.
async fn test_proxy(refuse: Option<&'static [u8]>) -> (Proxy, Arc<Mutex<Vec<String>>>) {
    proxy_on(refuse, None).await
}

/// As [`test_proxy`], behind TLS when `tls` is given.
async fn proxy_on(
    refuse: Option<&'static [u8]>,
    tls: Option<TlsAcceptor>,
) -> (Proxy, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    let tls_proxy = tls.is_some();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(client) = acceptor.accept(client).await {
                            handle(client, refuse, seen).await;
                        }
                    }
                    None => handle(client, refuse, seen).await,
                }
            });
        }
    });
    let scheme = if tls_proxy { Scheme::Https } else { Scheme::Http };
    (Proxy::new(Origin::new(scheme, "127.0.0.1", port)), heads)
}

/// One proxied exchange: the head, then a refusal or the tunnel.
async fn handle(
    mut client: impl AsyncRead + AsyncWrite + Unpin,
    refuse: Option<&'static [u8]>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    seen.lock().unwrap().push(head.clone());
    if let Some(answer) = refuse {
        let _ = client.write_all(answer).await;
        return;
    }
    let target = head.split(' ').nth(1).unwrap().rsplit(':').next().unwrap();
    let mut upstream =
        TcpStream::connect(("127.0.0.1", target.parse::<u16>().unwrap())).await.unwrap();
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel_with_credentials_only_on_connect() {
    let ca = Ca::new();
    let port = serve(&ca.issue(&["localhost"], |_| {}), None).await;
    let (proxy, heads) = test_proxy(None).await;
    let proxy = proxy.basic_auth("user", "secret");
    // The name is resolved by the proxy, not here: this connector could not resolve it.
    let connector = Connector::builder().tls(trusting(&ca)).build();
    let origin = Origin::new(Scheme::Https, "localhost", port);
    let opts = ConnectOptions::new().proxy(proxy.clone());

    let mut conn = prompt(connector.connect_with(&origin, &opts)).await.unwrap();
    greeted(&mut conn).await;
    assert_eq!(conn.proxy(), Some(&proxy));
    conn.io().write_all(b"inside").await.unwrap();
    let mut echo = [0u8; 6];
    prompt(conn.io().read_exact(&mut echo)).await.unwrap();
    assert_eq!(&echo, b"inside");
    assert_eq!(
        heads.lock().unwrap().as_slice(),
        [format!(
            "CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\
             Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n\r\n"
        )]
    );

    // Pooled with the proxy and its credentials: other credentials never share it.
    conn.release();
    assert!(prompt(connector.connect_with(&origin, &opts)).await.unwrap().is_reused());
    let other = ConnectOptions::new().proxy(proxy.clone().basic_auth("other", "x"));
    let mut conn = prompt(connector.connect_with(&origin, &other)).await.unwrap();
    assert!(!conn.is_reused());
    greeted(&mut conn).await;
    assert!(!prompt(connector.connect(&origin)).await.is_ok_and(|c| c.is_reused()));
}

#[tokio::test]
async fn a_refused_connect_is_a_proxy_error_and_its_body_is_not_tls() {
    let (proxy, _) = test_proxy(Some(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 9\r\n\r\n\x16\x03\x01junk!",
    ))
    .await;
    let connector = Connector::new();
    let origin = Origin::new(Scheme::Https, "localhost", 443);
    let err = prompt(connector.connect_with(&origin, &ConnectOptions::new().proxy(proxy)))
        .await
        .unwrap_err();
    assert!(err.is_proxy() && err.is_connect() && !err.is_tls(), "{err:?}");
    assert_eq!(err.proxy_status(), Some(407));

    let (proxy, _) = test_proxy(Some(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")).await;
    let err = prompt(connector.connect_with(&origin, &ConnectOptions::new().proxy(proxy)))
        .await
        .unwrap_err();
    assert_eq!(err.proxy_status(), Some(502));
}

/// A proxy that takes the `CONNECT` and then never finishes its answer, silent or trickling
/// a byte at a time, holds the connection no longer than `sock_connect`, which bounds the
/// whole way to the origin before TLS: the TCP connect and the tunnel's exchange (the TLS
/// handshake has its own bound). Without it nothing but a `total` timeout ended the wait.
#[tokio::test]
async fn a_proxy_that_never_answers_connect_is_bounded_by_sock_connect() {
    for trickle in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = client.read(&mut head).await;
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(20));
            for &byte in b"HTTP/1.1 200 Connection established".iter().cycle().take(1000) {
                ticks.tick().await;
                if trickle && client.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
        });
        let proxy = Proxy::new(Origin::new(Scheme::Http, "127.0.0.1", port));
        let connector = Connector::builder()
            .sock_connect_timeout(Some(std::time::Duration::from_millis(200)))
            .build();
        let origin = Origin::new(Scheme::Https, "localhost", 443);
        let err = prompt(connector.connect_with(&origin, &ConnectOptions::new().proxy(proxy)))
            .await
            .unwrap_err();
        assert!(err.is_sock_connect_timeout() && err.is_connect(), "{err:?}");
    }
}

#[tokio::test]
async fn plain_http_connects_to_the_proxy_itself() {
    let (proxy, heads) = test_proxy(Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).await;
    let proxy = proxy.basic_auth("u", "p");
    let connector = Connector::new();
    let origin = Origin::new(Scheme::Http, "example.invalid", 80);
    let mut conn =
        prompt(connector.connect_with(&origin, &ConnectOptions::new().proxy(proxy.clone())))
            .await
            .unwrap();
    assert_eq!(conn.info().peer_addr.unwrap().port(), proxy.origin().port());
    assert_eq!(conn.proxy().and_then(Proxy::authorization_value), Some("Basic dTpw"));
    // Nothing was sent: the client writes the absolute-form request itself.
    conn.io()
        .write_all(b"GET http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    prompt(conn.io().read_exact(&mut answer)).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(heads.lock().unwrap()[0].starts_with("GET http://example.invalid/ HTTP/1.1\r\n"));
}

/// tinyproxy on loopback requiring `user`/`secret`, killed when dropped. A missing tinyproxy
/// fails the test; `cargo xtask peers` installs it.
async fn tinyproxy() -> Option<(tokio::process::Child, tempfile::TempDir, u16)> {
    use tokio::io::{AsyncBufReadExt, BufReader};

    // A missing peer fails the test, never skips it: a green run must mean it ran.
    assert!(
        std::path::Path::new("/usr/bin/tinyproxy").is_file(),
        "tinyproxy is missing: run `cargo xtask peers`"
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
             BasicAuth user secret\nLogLevel Info\n"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new("/usr/bin/tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // tinyproxy logs this line once it listens.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    prompt(async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Accepting connections") {
                return;
            }
        }
        panic!("tinyproxy exited before listening");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((child, dir, port))
}

#[tokio::test]
async fn a_real_proxy_tunnels_with_credentials_and_refuses_without() {
    let Some((_tinyproxy, _dir, port)) = tinyproxy().await else { return };
    let ca = Ca::new();
    let target = serve(&ca.issue(&["127.0.0.1"], |_| {}), None).await;
    let connector = Connector::builder().tls(trusting(&ca)).build();
    let origin = Origin::new(Scheme::Https, "127.0.0.1", target);
    let proxy = Proxy::new(Origin::new(Scheme::Http, "127.0.0.1", port));

    let opts = ConnectOptions::new().proxy(proxy.clone().basic_auth("user", "secret"));
    let mut conn = prompt(connector.connect_with(&origin, &opts)).await.unwrap();
    greeted(&mut conn).await;

    for wrong in [proxy.clone(), proxy.basic_auth("user", "wrong")] {
        let opts = ConnectOptions::new().proxy(wrong);
        let err = prompt(connector.connect_with(&origin, &opts)).await.unwrap_err();
        // tinyproxy 1.11 answers a tunnel without good credentials with 401, not 407.
        assert!(matches!(err.proxy_status(), Some(401 | 407)) && !err.is_tls(), "{err:?}");
    }
}

#[tokio::test]
async fn an_https_proxy_is_verified_and_carries_tls_inside_tls() {
    let ca = Ca::new();
    let target = serve(&ca.issue(&["localhost"], |_| {}), None).await;
    let origin = Origin::new(Scheme::Https, "localhost", target);
    let (proxy, heads) = proxy_on(None, Some(acceptor(&ca.issue(&["127.0.0.1"], |_| {})))).await;
    let connector = Connector::builder().tls(trusting(&ca)).build();
    let opts = ConnectOptions::new().proxy(proxy.basic_auth("u", "p"));
    let mut conn = prompt(connector.connect_with(&origin, &opts)).await.unwrap();
    greeted(&mut conn).await;
    assert!(heads.lock().unwrap()[0].contains("Proxy-Authorization: Basic dTpw\r\n"));

    // A proxy whose certificate is not trusted gets nothing, credentials least of all
    // (urllib3 CVE-2021-28363).
    let (proxy, heads) = proxy_on(None, Some(acceptor(&Leaf::self_signed(&["127.0.0.1"])))).await;
    let opts = ConnectOptions::new().proxy(proxy.basic_auth("u", "p"));
    let err = prompt(connector.connect_with(&origin, &opts)).await.unwrap_err();
    assert!(err.is_certificate(), "{err:?}");
    assert!(heads.lock().unwrap().is_empty());
}
