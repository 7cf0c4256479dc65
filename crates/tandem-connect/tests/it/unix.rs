//! The Unix-socket connector.

use tandem_connect::{Connector, Origin, Scheme};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixListener,
};

use crate::prompt;

#[tokio::test]
async fn every_origin_dials_the_socket_and_pools_by_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    let _ = stream.write_all(&buf[..n]).await;
                }
            });
        }
    });
    let connector = Connector::builder().unix_socket(&path).build();
    let origin = Origin::new(Scheme::Http, "unix.test", 80);
    let mut conn = prompt(connector.connect(&origin)).await.unwrap();
    conn.io().write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    prompt(conn.io().read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"ping");
    assert!(conn.info().peer_addr.is_none());
    // The connection is a stream itself, too.
    conn.write_all(b"pong").await.unwrap();
    prompt(conn.read_exact(&mut got)).await.unwrap();
    assert_eq!(&got, b"pong");
    conn.release();
    assert!(prompt(connector.connect(&origin)).await.unwrap().is_reused());
    let other = Origin::new(Scheme::Http, "other.test", 80);
    assert!(!prompt(connector.connect(&other)).await.unwrap().is_reused());
}

#[tokio::test]
async fn a_missing_socket_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let connector = Connector::builder().unix_socket(dir.path().join("none.sock")).build();
    let err = prompt(connector.connect(&Origin::new(Scheme::Http, "x", 80))).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}
