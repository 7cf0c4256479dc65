//! Sending a response's file from the page cache straight to a plain TCP socket with
//! `sendfile(2)` (tandem-io's `SendfileTo`, the client's too; the head's `send` through
//! socket2), so its bytes are never copied through user space, nor read off the runtime's
//! thread: a connection over TLS, HTTP/2 or a Unix socket reads the file through the body's
//! stream instead.
//!
//! The head's step stays here rather than in tandem-io: only the server has a head to send
//! ahead of the file on the socket itself (the client's goes through the connection's
//! stream first), and it needs socket2's `send` with flags, which tandem-io has no other use
//! for.

use tandem_io::{FileSent, SendfileTo};

/// Sends what `head` holds (the response's head, and any responses before it), emptying
/// it, then `count` bytes of `file` from `start`, adding what each `sendfile` call sends to
/// `sent`. `Ok(false)` if the file ended first (it shrank since it was opened): the body is
/// then short of its declared length and the connection must close.
///
/// The head goes with `MSG_MORE`, so the kernel holds it for the file's first bytes rather
/// than sending a segment of its own (the connection has `TCP_NODELAY`): the peer sees full
/// segments from the first, and sizes its receive window by them, and no setsockopt pair
/// (`TCP_CORK`) is needed per response. The file's last `sendfile` pushes everything out.
pub(crate) async fn send(
    to: SendfileTo<'_>,
    head: &mut bytes::BytesMut,
    file: &std::fs::File,
    start: u64,
    count: u64,
    sent: &mut u64,
) -> std::io::Result<bool> {
    use std::io::ErrorKind;

    use bytes::Buf;

    // An empty file: nothing follows to push the head out, so it goes as any write would.
    let flags = if count == 0 { 0 } else { libc::MSG_MORE };
    let socket = socket2::SockRef::from(to.socket);
    while !head.is_empty() {
        let called =
            to.socket.try_io(tokio::io::Interest::WRITABLE, || socket.send_with_flags(head, flags));
        match called {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) if n == head.len() => head.clear(),
            Ok(n) => head.advance(n),
            Err(err) if err.kind() == ErrorKind::WouldBlock => to.room().await?,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(to.send_file(file, start, count, sent).await? == FileSent::Whole)
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::time::Duration;

    use bytes::BytesMut;

    use super::{SendfileTo, send};

    /// A connection's two ends on loopback: the server's as a connection has it (tokio, no
    /// Nagle), the peer's plain and not blocking.
    async fn pair() -> (tokio::net::TcpStream, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        server.set_nodelay(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        (server, peer)
    }

    fn file_of(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    /// Reads exactly `n` bytes, waiting for them (the peer is otherwise non-blocking).
    fn read_n(peer: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
        peer.set_nonblocking(false).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = vec![0; n];
        peer.read_exact(&mut got).unwrap();
        peer.set_nonblocking(true).unwrap();
        got
    }

    #[tokio::test]
    async fn the_head_waits_for_the_files_bytes_and_goes_with_them() {
        let (server, mut peer) = pair().await;
        let to = SendfileTo::new(&server, Some(Duration::from_secs(5)));
        let file = file_of(b"body");
        let mut sent = 0;
        // Asked for a byte past the file's end: the head is taken, but no file byte follows
        // to carry it, so it is still held back (as `TCP_CORK` would hold it).
        let mut head = BytesMut::from(&b"HEAD"[..]);
        assert!(!send(to, &mut head, &file, 4, 1, &mut sent).await.unwrap());
        assert!(head.is_empty());
        let mut buf = [0; 16];
        assert_eq!(peer.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        // The file's last bytes push everything out: the head, then the body.
        let mut none = BytesMut::new();
        assert!(send(to, &mut none, &file, 0, 4, &mut sent).await.unwrap());
        assert_eq!(sent, 4);
        assert_eq!(read_n(&mut peer, 8), b"HEADbody");
    }

    #[tokio::test]
    async fn with_an_empty_file_the_head_goes_at_once() {
        let (server, mut peer) = pair().await;
        let to = SendfileTo::new(&server, Some(Duration::from_secs(5)));
        let mut head = BytesMut::from(&b"HEAD"[..]);
        let mut sent = 0;
        assert!(send(to, &mut head, &file_of(b""), 0, 0, &mut sent).await.unwrap());
        assert_eq!((head.len(), sent), (0, 0));
        assert_eq!(read_n(&mut peer, 4), b"HEAD");
    }

    /// A file of tens of MiB sent to a peer that reads as fast as it is sent (so the socket
    /// seldom fills) gives the runtime its thread back every few MiB, so the worker's other
    /// connections and timers are not held up for the whole file.
    #[tokio::test(flavor = "current_thread")]
    async fn a_large_file_to_a_fast_peer_gives_the_thread_back() {
        use tandem_io::test_util::{fast_reader, least_times_given_way, times_given_way};

        const SIZE: u64 = 32 << 20;
        let (server, reader) = fast_reader().await;
        let file = tempfile::tempfile().unwrap();
        file.set_len(SIZE).unwrap();
        let to = SendfileTo::new(&server, Some(Duration::from_secs(5)));
        let (mut head, mut sent) = (BytesMut::from(&b"HEAD"[..]), 0);
        let sending = send(to, &mut head, &file, 0, SIZE, &mut sent);
        let (whole, gave_way) = times_given_way(&server, sending).await;
        assert!(whole.unwrap());
        drop(server);
        assert_eq!((sent, reader.join().unwrap()), (SIZE, SIZE + 4));
        let least = least_times_given_way(SIZE);
        assert!(gave_way >= least, "gave way {gave_way} times, under {least}");
    }
}
