//! A request body read from an open file, as aiohttp's `data=open(path, "rb")`: from the
//! file's position to its end as they were when the body was set, sent with that
//! `Content-Length`.
//!
//! On a plain TCP connection (HTTP/1.1, no TLS, no tunnel) the file goes to the socket with
//! `sendfile(2)`, through rustix's safe wrapper, so its bytes are never copied through user
//! space; anywhere else (TLS, HTTP/2, a Unix socket, a compressed or chunked or watched
//! body, a traced session) it is read a piece at a time into one reused buffer.
//!
//! Its length is fixed when it is set, so the framing never lies: a file that grew since is
//! sent up to that length, and one that shrank fails the request with
//! [`is_request`](crate::Error::is_request) before the connection could be reused (the
//! server is left waiting for bytes that will not come, so it is closed).

use std::{fs::File, io, sync::Arc};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use crate::error::{Error, Kind};

/// Bytes read at a time when the file cannot be sent with `sendfile`: at this size a piece
/// is still in the CPU's cache when it is written.
const READ_SIZE: usize = 128 * 1024;

/// The file, and the part of it that is the body.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: File,
    start: u64,
    len: u64,
}

impl FileBody {
    /// The body from `file`'s current position to its end.
    pub(crate) fn new(mut file: File) -> io::Result<Self> {
        let start = io::Seek::stream_position(&mut file)?;
        let len = file.metadata()?.len().saturating_sub(start);
        Ok(FileBody { file, start, len })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The body read a piece at a time, each read on the blocking pool (a read from disk
    /// must not hold up the runtime's thread) into the same buffer: a piece's memory is
    /// reclaimed once the writer has dropped it.
    pub(crate) fn pieces(
        self: Arc<Self>,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        let end = self.start + self.len;
        let state = (self, BytesMut::new(), 0u64);
        futures_util::stream::try_unfold(state, move |(body, mut buf, sent)| async move {
            let offset = body.start + sent;
            if offset >= end {
                return Ok(None);
            }
            let want = usize::try_from(end - offset).map_or(READ_SIZE, |n| n.min(READ_SIZE));
            buf.clear();
            buf.resize(want, 0);
            let reading = Arc::clone(&body);
            let (read, mut buf) = tokio::task::spawn_blocking(move || {
                let read = read_at(&reading.file, &mut buf, offset);
                (read, buf)
            })
            .await
            .map_err(io::Error::other)?;
            let n = read?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, body.shrank(sent)));
            }
            buf.truncate(n);
            let piece = buf.split().freeze();
            Ok(Some((piece, (body, buf, sent + n as u64))))
        })
    }

    /// Why a body that ended after `sent` bytes failed.
    fn shrank(&self, sent: u64) -> String {
        format!(
            "the file ended after {sent} of the {} bytes its Content-Length announced: it \
             shrank while being sent",
            self.len
        )
    }

    /// Sends the body to `socket` with `sendfile(2)`, waiting for room in it as needed.
    #[cfg(target_os = "linux")]
    pub(crate) async fn sendfile(&self, socket: &tokio::net::TcpStream) -> Result<(), Error> {
        use std::io::ErrorKind;
        use std::os::fd::AsFd;

        /// The most one call is asked for: a bounded stretch of the kernel's transmit path
        /// per call, rather than a whole file's in one (on loopback the sender's call also
        /// runs the receiving half of the stack).
        const MAX_PER_CALL: usize = 1 << 20;

        let disconnected = |e| Error::new(Kind::Disconnected, e);
        let end = self.start + self.len;
        let mut offset = self.start;
        while offset < end {
            let want = usize::try_from(end - offset).map_or(MAX_PER_CALL, |n| n.min(MAX_PER_CALL));
            let called = socket.try_io(tokio::io::Interest::WRITABLE, || {
                rustix::fs::sendfile(socket.as_fd(), self.file.as_fd(), Some(&mut offset), want)
                    .map_err(io::Error::from)
            });
            match called {
                Ok(0) => return Err(Error::new(Kind::Request, self.shrank(offset - self.start))),
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    socket.writable().await.map_err(disconnected)?;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(disconnected(err)),
            }
        }
        Ok(())
    }
}

/// Reads at `offset` without moving the file's position, which the caller's other handles
/// to the file share.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// The plain TCP socket under a connection's byte stream, if that is what it is: not TLS,
/// not a tunnel, not a Unix socket.
#[cfg(target_os = "linux")]
pub(crate) fn plain_tcp<'a>(
    io: &'a (dyn tandem_connect::Io + 'static),
) -> Option<&'a tokio::net::TcpStream> {
    let any: &'a (dyn std::any::Any + 'static) = io;
    any.downcast_ref()
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use futures_util::TryStreamExt;

    use super::*;

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.rewind().unwrap();
        file
    }

    /// The body starts at the file's position, and is read in pieces of at most
    /// `READ_SIZE`.
    #[tokio::test]
    async fn from_the_position_to_the_end_in_pieces() {
        let data: Vec<u8> = (0..READ_SIZE * 2 + 10).map(|i| (i % 251) as u8).collect();
        let mut file = file_of(&data);
        file.seek(SeekFrom::Start(7)).unwrap();
        let body = Arc::new(FileBody::new(file).unwrap());
        assert_eq!(body.len(), data.len() as u64 - 7);
        let pieces: Vec<Bytes> = body.pieces().try_collect().await.unwrap();
        assert_eq!(pieces.iter().map(Bytes::len).collect::<Vec<_>>(), [READ_SIZE, READ_SIZE, 3]);
        assert_eq!(pieces.concat(), data[7..]);
    }

    /// A connector's plain TCP connection is one `sendfile` can write to; a stream of
    /// another kind is not.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_connectors_plain_connection_is_a_tcp_socket() {
        use tandem_connect::{Checkout, ConnectOptions, Connector, Origin, Scheme};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = Origin::new(Scheme::Http, "127.0.0.1", port);
        let options = ConnectOptions::new();
        let connector = Connector::new();
        let Checkout::Http1(mut conn) = connector.checkout(&origin, &options).await.unwrap() else {
            panic!("plain http is HTTP/1.1");
        };
        assert!(plain_tcp(conn.io()).is_some());
        let (other, _) = tokio::io::duplex(8);
        let other: Box<dyn tandem_connect::Io> = Box::new(other);
        assert!(plain_tcp(&*other).is_none());
    }

    /// A file cut short after its length was taken fails the read, saying so.
    #[tokio::test]
    async fn a_file_that_shrank_fails() {
        let file = file_of(&[1; 100]);
        let body = Arc::new(FileBody::new(file.try_clone().unwrap()).unwrap());
        file.set_len(40).unwrap();
        let e = body.pieces().try_collect::<Vec<_>>().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("after 40 of the 100 bytes"), "{e}");
    }
}
