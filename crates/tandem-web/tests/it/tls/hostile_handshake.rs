//! Hostile peers against the server's own TLS driver (`server/tls_stream.rs`) in the
//! handshake: an oversized `ClientHello`, one trickled a byte per record, one cut into
//! one-byte records, an ALPN offer of nothing we speak, many stalled handshakes, a
//! `close_notify` mid-handshake, and a TLS 1.3 `Finished` with a request and `close_notify`
//! behind it in one segment.
use std::time::{Duration, Instant};

use tandem_web::ServerConfig;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    Ca, TlsServer, get_info,
    hostile::{localhost_tls, read_to_close},
    rustls_client, rustls_connect,
};
use crate::support::{TIMEOUT, within};

/// A rustls client session for `localhost` speaking `versions`, and its first flight: one
/// record holding its `ClientHello`.
fn client_hello(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (rustls::ClientConnection, Vec<u8>) {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(rustls_client(ca, versions), name).unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    (client, hello)
}

/// A `ClientHello` declaring more than a handshake message may hold is refused at once, with
/// the head timeout still far off: the server neither buffers it nor waits for it.
#[tokio::test]
async fn an_oversized_client_hello_is_refused_at_once() {
    let ca = Ca::new("test CA");
    // The default head timeout (30 s) is longer than `within` allows.
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    for declared in [0x01_0000_u32, 0xff_ffff] {
        let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
        let mut hello = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01];
        hello.extend_from_slice(&declared.to_be_bytes()[1..]);
        hello.resize(5 + 0x4000, 0);
        // Then full records of the message's rest, as far as the server takes them.
        for _ in 0..8 {
            let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00];
            record.resize(5 + 0x4000, 0);
            hello.extend_from_slice(&record);
        }
        let _ = within(stream.write_all(&hello)).await;
        let (got, _) = read_to_close(&mut stream).await;
        assert!(got.is_empty() || got[0] == 0x15, "{declared:#x}: {got:?}");
    }
    assert_eq!(server.dispatched(), 0);
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    assert!(get_info(&mut stream).await.starts_with("https "));
    drop(stream);
    server.stop().await;
}

/// A client whose ALPN offer holds no protocol the server speaks is refused in the
/// handshake (rustls's `no_application_protocol`), and the server serves the next client.
#[tokio::test]
async fn an_alpn_offer_of_nothing_we_speak_is_refused() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let mut config = (*rustls_client(&ca, rustls::DEFAULT_VERSIONS)).clone();
    config.alpn_protocols = vec![b"spdy/3".to_vec(), b"imap".to_vec()];
    let tcp = within(TcpStream::connect(server.addr)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let refused = within(connector.connect(name, tcp)).await;
    let Err(err) = refused else { panic!("a handshake with no common protocol") };
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    assert!(get_info(&mut stream).await.starts_with("https "));
    drop(stream);
    assert_eq!(server.dispatched(), 1);
    server.stop().await;
}

/// Many connections stalled mid-handshake are all cut at the head timeout, and a proper
/// client is served meanwhile and after.
#[tokio::test]
async fn many_stalled_handshakes_are_all_cut_at_the_head_timeout() {
    const HEAD_TIMEOUT: Duration = Duration::from_millis(300);
    const STALLED: usize = 64;
    let ca = Ca::new("test CA");
    let config = ServerConfig::default().with_head_timeout(HEAD_TIMEOUT);
    let server = TlsServer::start_with(&localhost_tls(&ca), config).await;
    let started = Instant::now();
    let mut stalled = tokio::task::JoinSet::new();
    for _ in 0..STALLED {
        let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
        // A ClientHello record begun (512 bytes to come) and left.
        within(stream.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01")).await.unwrap();
        stalled.spawn(async move {
            let (got, _) = read_to_close(&mut stream).await;
            (started.elapsed(), got)
        });
    }
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    assert!(get_info(&mut stream).await.starts_with("https "));
    while let Some(done) = stalled.join_next().await {
        let (waited, got) = done.unwrap();
        assert!(waited >= HEAD_TIMEOUT, "closed after {waited:?}");
        assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
    }
    assert!(get_info(&mut stream).await.starts_with("https "));
    drop(stream);
    server.stop().await;
}

/// A `ClientHello` trickled one byte per record, always making progress, is still cut at
/// the head timeout: the handshake's time is bounded, not its idleness.
#[tokio::test]
async fn a_client_hello_trickled_a_byte_per_record_is_cut_at_the_head_timeout() {
    const HEAD_TIMEOUT: Duration = Duration::from_millis(300);
    let ca = Ca::new("test CA");
    let config = ServerConfig::default().with_head_timeout(HEAD_TIMEOUT);
    let server = TlsServer::start_with(&localhost_tls(&ca), config).await;
    // A real ClientHello, its handshake message cut out of its record.
    let (_client, hello) = client_hello(&ca, rustls::DEFAULT_VERSIONS);
    let message = hello[5..].to_vec();
    let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut reply = [0; 64];
    let mut sent = 0;
    let got = loop {
        assert!(started.elapsed() < TIMEOUT, "still open after {:?}", started.elapsed());
        assert!(sent < message.len(), "the whole ClientHello went out before the timeout");
        tokio::select! {
            read = stream.read(&mut reply) => break read.map_or(0, |n| n),
            _ = tick.tick() => {
                let record = [0x16, 0x03, 0x01, 0x00, 0x01, message[sent]];
                sent += 1;
                if stream.write_all(&record).await.is_err() {
                    break 0;
                }
            }
        }
    };
    let waited = started.elapsed();
    assert!(waited >= HEAD_TIMEOUT, "closed after {waited:?}");
    // Closed, or an alert (then the close).
    assert!(got == 0 || reply[0] == 0x15, "{:?}", &reply[..got]);
    assert_eq!(server.dispatched(), 0);
    server.stop().await;
}

/// A TLS 1.3 client's `Finished`, its request and its `close_notify` in one segment: the
/// handshake ends with the request already decrypted behind it, and the request is
/// answered before the close is seen. Its `ClientHello` goes whole, then cut into records
/// of one byte each (a handshake message may span records: rustls's RUSTSEC-2024-0399 was
/// a panic on a fragmented one).
#[tokio::test]
async fn finished_request_and_close_notify_in_one_segment_are_answered() {
    use std::io::{Read as _, Write as _};
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    for fragmented in [false, true] {
        let (mut client, mut out) = client_hello(&ca, &[&rustls::version::TLS13]);
        let mut tcp = within(TcpStream::connect(server.addr)).await.unwrap();
        assert_eq!(usize::from(u16::from_be_bytes([out[3], out[4]])), out.len() - 5, "one record");
        if fragmented {
            out = out[5..].iter().flat_map(|&byte| [0x16, 0x03, 0x01, 0x00, 0x01, byte]).collect();
        }
        within(tcp.write_all(&out)).await.unwrap();
        let mut buf = vec![0; 64 * 1024];
        let mut plain = Vec::new();
        let mut feed = |client: &mut rustls::ClientConnection, mut bytes: &[u8]| {
            while !bytes.is_empty() {
                client.read_tls(&mut bytes).unwrap();
                client.process_new_packets().unwrap();
            }
            // Ok at the server's close_notify, WouldBlock before it; what came is kept.
            let _ = client.reader().read_to_end(&mut plain);
        };
        while client.is_handshaking() {
            let n = within(tcp.read(&mut buf)).await.unwrap();
            assert!(n > 0, "fragmented {fragmented}: closed in the handshake");
            feed(&mut client, &buf[..n]);
        }
        client.writer().write_all(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        client.send_close_notify();
        out.clear();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        within(tcp.write_all(&out)).await.unwrap();
        loop {
            let n = within(tcp.read(&mut buf)).await.unwrap();
            if n == 0 {
                break;
            }
            feed(&mut client, &buf[..n]);
        }
        let text = String::from_utf8_lossy(&plain);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "fragmented {fragmented}: {text}");
        assert!(text.contains("https secure=true version=TLSv1.3 "), "{text}");
    }
    assert_eq!(server.dispatched(), 2);
    server.stop().await;
}

/// A `close_notify` in the middle of the handshake (after the `ClientHello`) ends it at
/// once with an error, the head timeout far off; the server serves the next client.
#[tokio::test]
async fn close_notify_mid_handshake_ends_it_at_once() {
    let ca = Ca::new("test CA");
    // The default head timeout (30 s) is longer than `within` allows.
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let (_client, mut hello) = client_hello(&ca, rustls::DEFAULT_VERSIONS);
    let mut tcp = within(TcpStream::connect(server.addr)).await.unwrap();
    // A plaintext warning alert, close_notify, as a client before any keys sends it.
    hello.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00]);
    within(tcp.write_all(&hello)).await.unwrap();
    let (got, _) = read_to_close(&mut tcp).await;
    // What the server sent before it read the alert (its first flight), perhaps; then the
    // close.
    assert!(got.is_empty() || got[0] == 0x16 || got[0] == 0x15, "{got:?}");
    assert_eq!(server.dispatched(), 0);
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    assert!(get_info(&mut stream).await.starts_with("https "));
    drop(stream);
    server.stop().await;
}
