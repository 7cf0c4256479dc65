//! DNS through the connector: the cache and single-flight lookups.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures_util::future::BoxFuture;
use tandem_connect::{Connector, Origin, Resolve, Scheme};

use crate::{Server, prompt};

#[tokio::test]
async fn names_are_resolved_once_then_cached() {
    let server = Server::start().await;
    let connector = Connector::new();
    let origin = Origin::new(Scheme::Http, "localhost", server.port);
    drop(prompt(connector.connect(&origin)).await.unwrap());
    drop(prompt(connector.connect(&origin)).await.unwrap());
    let stats = connector.dns_stats();
    assert_eq!((stats.misses, stats.hits), (1, 1));

    connector.clear_dns_cache(Some("localhost"));
    drop(prompt(connector.connect(&origin)).await.unwrap());
    assert_eq!(connector.dns_stats().misses, 2);
}

#[tokio::test]
async fn concurrent_connects_share_one_lookup() {
    let server = Server::start().await;
    let connector = Connector::new();
    let origin = Origin::new(Scheme::Http, "localhost", server.port);
    let (a, b, c) = prompt(async {
        tokio::join!(
            connector.connect(&origin),
            connector.connect(&origin),
            connector.connect(&origin)
        )
    })
    .await;
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(connector.dns_stats().misses, 1);
    assert_eq!(connector.dns_stats().hits, 2);
}

#[tokio::test]
async fn ip_literals_and_overrides_skip_dns() {
    let server = Server::start().await;
    let connector =
        Connector::builder().resolve("pinned.test", ["127.0.0.1:0".parse().unwrap()]).build();
    drop(prompt(connector.connect(&server.origin())).await.unwrap());
    let pinned = Origin::new(Scheme::Http, "pinned.test", server.port);
    let conn = prompt(connector.connect(&pinned)).await.unwrap();
    assert_eq!(conn.info().peer_addr.unwrap().port(), server.port);
    assert_eq!(connector.dns_stats().misses + connector.dns_stats().hits, 0);
}

#[tokio::test]
async fn unknown_hosts_are_dns_errors() {
    let connector = Connector::new();
    let origin = Origin::new(Scheme::Http, "no-such-host.invalid", 80);
    let err = prompt(connector.connect(&origin)).await.unwrap_err();
    assert!(err.is_dns() && err.is_connect() && !err.is_timeout(), "{err:?}");
}

/// A dnsmasq on loopback that answers `*.tandem.test` with 127.0.0.1 and refuses the rest;
/// killed when dropped. A missing dnsmasq fails the test; `cargo xtask peers` installs it.
#[cfg(feature = "dns")]
async fn dnsmasq() -> Option<(tokio::process::Child, std::net::SocketAddr)> {
    use tokio::io::{AsyncBufReadExt, BufReader};

    // A missing peer fails the test, never skips it: a green run must mean it ran.
    let Ok(path) = which("dnsmasq") else { panic!("dnsmasq is missing: run `cargo xtask peers`") };
    // A port free for both UDP and TCP, released just before dnsmasq takes it.
    let port = {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        drop(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
        port
    };
    let mut child = tokio::process::Command::new(path)
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--log-facility=-",
            "--address=/tandem.test/127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // dnsmasq logs "started" once its sockets are bound.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    prompt(async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("started") {
                return;
            }
        }
        panic!("dnsmasq exited before starting");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((child, ([127, 0, 0, 1], port).into()))
}

#[cfg(feature = "dns")]
fn which(cmd: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .ok_or(())
}

#[cfg(feature = "dns")]
#[tokio::test]
async fn custom_nameservers_answer_through_the_cache() {
    let Some((_dnsmasq, ns)) = dnsmasq().await else { return };
    let server = Server::start().await;
    let connector = Connector::builder().nameservers([ns]).build();
    let origin = Origin::new(Scheme::Http, "svc.tandem.test", server.port);
    let conn = prompt(connector.connect(&origin)).await.unwrap();
    assert_eq!(conn.info().peer_addr, Some(([127, 0, 0, 1], server.port).into()));
    drop(conn);
    drop(prompt(connector.connect(&origin)).await.unwrap());
    assert_eq!((connector.dns_stats().misses, connector.dns_stats().hits), (1, 1));

    let unknown = Origin::new(Scheme::Http, "nowhere.invalid", server.port);
    let err = prompt(connector.connect(&unknown)).await.unwrap_err();
    assert!(err.is_dns(), "{err:?}");
}

/// A resolver of the test's own: `*.internal` names are this machine, others unknown.
struct Table {
    asked: Arc<AtomicUsize>,
}

impl Resolve for Table {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            if host.ends_with(".internal") {
                Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
            } else {
                Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} is not in the table")))
            }
        })
    }
}

#[tokio::test]
async fn a_users_resolver_answers_behind_the_cache() {
    let server = Server::start().await;
    let asked = Arc::new(AtomicUsize::new(0));
    let connector = Connector::builder().resolver(Table { asked: asked.clone() }).build();
    let origin = Origin::new(Scheme::Http, "api.internal", server.port);
    drop(prompt(connector.connect(&origin)).await.unwrap());
    drop(prompt(connector.connect(&origin)).await.unwrap());
    assert_eq!(asked.load(Ordering::Relaxed), 1, "the second answer came from the cache");

    // `localhost` is not in the table: the system resolver is not asked instead.
    let elsewhere = Origin::new(Scheme::Http, "localhost", server.port);
    let err = prompt(connector.connect(&elsewhere)).await.unwrap_err();
    assert!(err.is_dns(), "{err:?}");
    // An IP literal never reaches the resolver.
    drop(
        prompt(connector.connect(&Origin::new(Scheme::Http, "127.0.0.1", server.port)))
            .await
            .unwrap(),
    );
    assert_eq!(asked.load(Ordering::Relaxed), 2);
}
