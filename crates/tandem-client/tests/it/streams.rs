//! The stream reader's aiohttp methods: `readuntil`, `readchunk` and `iter_chunks` with the
//! sender's chunk ends, `read_nowait`, `unread_data`, `wait_eof`, exact-size
//! `iter_chunked`, `iter_any` and the line iterator.

use futures_util::TryStreamExt;

use crate::support::{RawServer, read_request, session, within, write};

/// Answers every request with `chunks` as the chunks of a chunked body, each written apart.
async fn chunked(chunks: &'static [&'static str]) -> RawServer {
    RawServer::start(move |mut stream, _| async move {
        while read_request(&mut stream).await.is_some() {
            write(&mut stream, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
            for chunk in chunks {
                write(&mut stream, format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await;
            }
            write(&mut stream, b"0\r\n\r\n").await;
        }
    })
    .await
}

const CHUNKS: &[&str] = &["first line\nsec", "ond line\n||x|", "|tail"];

#[tokio::test]
async fn readchunk_tells_where_the_senders_chunks_end() {
    let server = chunked(CHUNKS).await;
    let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
    let pieces: Vec<(bytes::Bytes, bool)> =
        within(resp.content().iter_chunks().try_collect()).await.unwrap();
    // However the bytes arrived, the pieces up to each end flag are one chunk.
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    for (piece, ended) in pieces {
        current.extend_from_slice(&piece);
        if ended {
            chunks.push(String::from_utf8(std::mem::take(&mut current)).unwrap());
        }
    }
    assert!(current.is_empty());
    assert_eq!(chunks, CHUNKS);
    assert_eq!(within(resp.content().readchunk()).await.unwrap(), (bytes::Bytes::new(), false));
}

#[tokio::test]
async fn readuntil_lines_and_putting_data_back() {
    let server = chunked(CHUNKS).await;
    let s = session();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let content = resp.content();
    assert_eq!(within(content.readline()).await.unwrap(), "first line\n");
    // The separator straddles two chunks.
    assert_eq!(within(content.readuntil(b"||")).await.unwrap(), "second line\n||");
    content.unread_data(b"back:");
    assert_eq!(content.read_nowait(3), "bac");
    assert_eq!(within(content.readuntil(b"||")).await.unwrap(), "k:x||");
    assert_eq!(within(content.readuntil(b"||")).await.unwrap(), "tail");
    assert_eq!(within(content.readuntil(b"||")).await.unwrap(), "");
    assert!(content.at_eof());

    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let lines: Vec<bytes::Bytes> = within(resp.content().lines().try_collect()).await.unwrap();
    assert_eq!(lines, ["first line\n", "second line\n", "||x||tail"]);
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    assert!(within(resp.content().readuntil(b"")).await.unwrap_err().is_payload());
}

#[tokio::test]
async fn readuntil_is_bounded_by_the_line_limit() {
    let server = chunked(&["0123456789", "0123456789", "!"]).await;
    // The bound is twice read_bufsize: 16 bytes.
    let s = tandem_client::ClientSession::builder().read_bufsize(8).build();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    assert!(within(resp.content().readuntil(b"!")).await.unwrap_err().is_payload());
    // The bytes stay unread.
    assert_eq!(within(resp.content().read_exactly(5)).await.unwrap(), "01234");
}

#[tokio::test]
async fn exact_size_pieces_and_wait_eof() {
    let server = chunked(CHUNKS).await;
    let s = session();
    let body: String = CHUNKS.concat();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let pieces: Vec<bytes::Bytes> =
        within(resp.content().iter_chunked(4).try_collect()).await.unwrap();
    assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() == 4), "{pieces:?}");
    assert_eq!(pieces.last().unwrap().len(), (body.len() - 1) % 4 + 1);
    assert_eq!(pieces.concat(), body.as_bytes());

    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let content = resp.content();
    within(content.wait_eof()).await.unwrap();
    assert!(!content.at_eof(), "the rest is kept for reading");
    assert_eq!(content.read_nowait(usize::MAX), body.as_bytes());
    assert!(content.at_eof());

    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let any: Vec<bytes::Bytes> = within(resp.content().iter_any().try_collect()).await.unwrap();
    assert_eq!(any.concat(), body.as_bytes());
}
