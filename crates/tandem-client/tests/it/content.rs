//! Reading bodies: the streaming reader, and transparent, bounded decompression.

#[cfg(feature = "compression")]
use std::io::Write;

use tandem_client::ClientSession;
use tandem_web::{Application, Request, Response};

use crate::support::{RawServer, Server, read_request, session, within, write};

#[cfg(feature = "compression")]
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Serves `body` once per request with `head` (without framing), chunked in pieces of
/// `piece` bytes, each written separately.
async fn chunked_server(head: &'static str, body: Vec<u8>, piece: usize) -> RawServer {
    let body = std::sync::Arc::new(body);
    RawServer::start(move |mut stream, _| {
        let body = body.clone();
        async move {
            while read_request(&mut stream).await.is_some() {
                write(
                    &mut stream,
                    format!("HTTP/1.1 200 OK\r\n{head}Transfer-Encoding: chunked\r\n\r\n")
                        .as_bytes(),
                )
                .await;
                for part in body.chunks(piece) {
                    write(&mut stream, format!("{:x}\r\n", part.len()).as_bytes()).await;
                    write(&mut stream, part).await;
                    write(&mut stream, b"\r\n").await;
                }
                write(&mut stream, b"0\r\n\r\n").await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn readline_read_n_and_chunks() {
    let server = chunked_server("", b"first\nsecond line\n\nlast".to_vec(), 3).await;
    let s = session();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let content = resp.content();
    assert_eq!(within(content.readline()).await.unwrap(), "first\n");
    let head = within(content.read(4)).await.unwrap();
    assert!((1..=4).contains(&head.len()));
    let line = within(content.readline()).await.unwrap();
    assert_eq!([&head[..], &line[..]].concat(), b"second line\n");
    let mut lines = Vec::new();
    loop {
        let line = within(content.readline()).await.unwrap();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    assert_eq!(lines.last().unwrap(), "last");
    assert!(content.at_eof());
    assert!(within(content.chunk()).await.unwrap().is_none());

    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let mut total = Vec::new();
    loop {
        let piece = within(resp.content().read(5)).await.unwrap();
        if piece.is_empty() {
            break;
        }
        assert!(piece.len() <= 5);
        total.extend_from_slice(&piece);
    }
    assert_eq!(total, b"first\nsecond line\n\nlast");
    assert_eq!(server.connections(), 1, "both requests used one connection");
}

#[tokio::test]
async fn readline_is_bounded() {
    let server = chunked_server("", vec![b'x'; 100_000], 4096).await;
    // readline's bound is twice read_bufsize: 1000 bytes.
    let s = ClientSession::builder().read_bufsize(500).build();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    assert!(within(resp.content().readline()).await.unwrap_err().is_payload());
}

fn compressing_app() -> Application {
    let mut app = Application::new();
    app.add_get("/text", |_req: Request| async {
        let mut r = Response::text("tandem ".repeat(10_000));
        r.enable_compression();
        r
    });
    app
}

#[cfg(feature = "compression")]
#[tokio::test]
async fn decodes_what_the_server_compressed() {
    let server = Server::start(compressing_app()).await;
    let expected = "tandem ".repeat(10_000);
    for coding in ["gzip", "deflate", "br"] {
        let s = session();
        let mut resp = within(s.get(&server.url("/text")).header("accept-encoding", coding).send())
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-encoding"], coding);
        assert_eq!(within(resp.text()).await.unwrap(), expected, "{coding}");
        assert!(resp.content().total_raw_bytes() < expected.len() as u64 / 10);
    }
    // The default Accept-Encoding offers all three.
    let mut resp = within(session().get(&server.url("/text")).send()).await.unwrap();
    assert!(resp.headers().contains_key("content-encoding"));
    assert_eq!(within(resp.text()).await.unwrap(), expected);
    let raw = ClientSession::builder().auto_decompress(false).build();
    let mut resp = within(raw.get(&server.url("/text")).send()).await.unwrap();
    assert!(!resp.headers().contains_key("content-encoding"));
    assert_eq!(within(resp.text()).await.unwrap(), expected);
    server.stop().await;
}

/// Without the `compression` feature the session asks for `identity`, and a body the server
/// encodes anyway reaches the caller as it came.
#[cfg(not(feature = "compression"))]
#[tokio::test]
async fn without_decoders_bodies_pass_through() {
    let server = Server::start(compressing_app()).await;
    let mut resp = within(session().get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(resp.request_info().headers()["accept-encoding"], "identity");
    assert!(!resp.headers().contains_key("content-encoding"));
    drop(within(resp.read()).await.unwrap());
    let mut resp =
        within(session().get(&server.url("/text")).header("accept-encoding", "gzip").send())
            .await
            .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(within(resp.read()).await.unwrap()[..2], [0x1f, 0x8b]);
    server.stop().await;
}

/// Two `Content-Encoding` fields name two codings, as `gzip, br` in one field does: the body
/// reaches the caller as it came, as a coding list's does, not decoded by the first alone.
#[cfg(feature = "compression")]
#[tokio::test]
async fn codings_in_two_fields_are_one_list() {
    let body = gzip(b"hello");
    for fields in
        ["Content-Encoding: gzip\r\nContent-Encoding: br\r\n", "Content-Encoding: gzip, br\r\n"]
    {
        let server = chunked_server(fields, body.clone(), 8192).await;
        let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
        assert_eq!(within(resp.read()).await.unwrap(), body, "{fields:?}");
    }
}

#[cfg(feature = "compression")]
#[tokio::test]
async fn gzip_bomb_is_bounded_and_streams() {
    // 32 MiB of zeros: about 32 KiB compressed.
    let bomb = gzip(&vec![0; 32 << 20]);
    let server = chunked_server("Content-Encoding: gzip\r\n", bomb, 16 * 1024).await;
    let small = ClientSession::builder().max_decompressed_size(1 << 20).build();
    let mut resp = within(small.get(&server.url("/")).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert!(e.is_payload(), "{e}");
    // Under the default bound the same body streams through in bounded pieces.
    let s = session();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let mut total = 0;
    while let Some(piece) = within(resp.content().chunk()).await.unwrap() {
        assert!(piece.len() <= 4 << 20);
        total += piece.len();
    }
    assert_eq!(total, 32 << 20);
}

#[cfg(feature = "compression")]
#[tokio::test]
async fn many_gzip_members_are_decoded_and_bounded() {
    let member = gzip(b"abc");
    let body = member.repeat(2000);
    let server = chunked_server("Content-Encoding: gzip\r\n", body, 8192).await;
    let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
    assert_eq!(within(resp.read()).await.unwrap().len(), 6000);
    let small = ClientSession::builder().max_decompressed_size(3000).build();
    let mut resp = within(small.get(&server.url("/")).send()).await.unwrap();
    assert!(within(resp.read()).await.unwrap_err().is_payload());
}

#[cfg(feature = "compression")]
#[tokio::test]
async fn zstd_bodies_are_decoded_and_bounded() {
    let text = "zstd body ".repeat(10_000);
    let z = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let server = chunked_server("Content-Encoding: zstd\r\n", z, 1000).await;
    let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), text);
    // A bomb: 32 MiB of zeros in a few KiB of zstd stops at the bound.
    let bomb = zstd::encode_all(&vec![0u8; 32 << 20][..], 19).unwrap();
    let server = chunked_server("Content-Encoding: zstd\r\n", bomb, 4096).await;
    let small = ClientSession::builder().max_decompressed_size(1 << 20).build();
    let mut resp = within(small.get(&server.url("/")).send()).await.unwrap();
    assert!(within(resp.read()).await.unwrap_err().is_payload());
}

/// A brotli body declaring a window over the session's `brotli_window_log_max` fails when
/// read; the default takes RFC 7932's largest, 2^24.
#[cfg(feature = "compression")]
#[tokio::test]
async fn a_brotli_window_over_the_sessions_limit_is_refused() {
    let text = "brotli body ".repeat(1000);
    let params = brotli::enc::BrotliEncoderParams { lgwin: 24, ..Default::default() };
    let mut z = Vec::new();
    {
        let mut w = brotli::CompressorWriter::with_params(&mut z, 4096, &params);
        w.write_all(text.as_bytes()).unwrap();
    }
    let server = chunked_server("Content-Encoding: br\r\n", z, 1000).await;
    let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), text);
    let tight = ClientSession::builder().brotli_window_log_max(22).build();
    let mut resp = within(tight.get(&server.url("/")).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert!(e.is_payload(), "{e}");
}

/// A large body of known length is read in reads far larger than the 16 KiB a head takes
/// (up to 256 KiB), so its pieces do too: a few reads a megabyte, not sixty-four.
#[tokio::test]
async fn a_large_body_is_read_in_large_pieces() {
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
    let sent = std::sync::Arc::new(body.clone());
    let server = RawServer::start(move |mut stream, _| {
        let sent = sent.clone();
        async move {
            if read_request(&mut stream).await.is_some() {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", sent.len());
                write(&mut stream, head.as_bytes()).await;
                write(&mut stream, &sent).await;
            }
        }
    })
    .await;
    let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
    let (mut got, mut largest) = (Vec::new(), 0);
    while let Some(piece) = within(resp.content().chunk()).await.unwrap() {
        largest = largest.max(piece.len());
        got.extend_from_slice(&piece);
    }
    assert!(got == body, "{} bytes", got.len());
    assert!(largest > 64 * 1024, "the largest piece is {largest} bytes");
    drop(server);
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB each: 4 bytes of input for every 128 KiB
/// of output, the most any coding here packs into a few bytes.
#[cfg(feature = "compression")]
fn zstd_rle_bomb(blocks: usize) -> Vec<u8> {
    // Magic, then a frame header with no content size, no checksum and a 128 KiB window
    // (exponent 7: 2^(10 + 7)).
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    for n in 0..blocks {
        let last = u32::from(n + 1 == blocks);
        let header = (128 * 1024) << 3 | 1 << 1 | last;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

/// However well a body compresses, a streaming read gets it in bounded pieces, in every
/// coding: one piece was the output of 2 KiB of input, which is about 2 MiB of gzip but up to
/// 64 MiB of zstd (RLE blocks) or far more of brotli, so under a large
/// `max_decompressed_size` one read of a bomb held as much as the whole bound at once.
#[cfg(feature = "compression")]
#[tokio::test]
async fn every_coding_streams_a_bomb_in_bounded_pieces() {
    let zeros = vec![0u8; 16 << 20];
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(&zeros).unwrap();
    }
    let bombs = [
        ("gzip", gzip(&zeros), zeros.len()),
        ("br", br, zeros.len()),
        ("zstd", zstd_rle_bomb(256), 256 * 128 * 1024),
    ];
    let large = ClientSession::builder().max_decompressed_size(1 << 30).build();
    for (coding, body, expected) in bombs {
        let head = format!("Content-Encoding: {coding}\r\n").leak();
        let server = chunked_server(head, body, 64 * 1024).await;
        let mut resp = within(large.get(&server.url("/")).send()).await.unwrap();
        let (mut total, mut largest) = (0, 0);
        while let Some(piece) = within(resp.content().chunk()).await.unwrap() {
            largest = largest.max(piece.len());
            total += piece.len();
        }
        assert_eq!(total, expected, "{coding}");
        assert!(largest <= 512 * 1024, "{coding}: a piece of {largest} bytes");
    }
}
