//! A request body read from an open file, as aiohttp's `data=open(path, "rb")`: from the
//! file's position to its end as they were when the body was set, sent with that
//! `Content-Length`.
//!
//! On a plain TCP connection (HTTP/1.1, no TLS, no tunnel) the file goes to the socket with
//! `sendfile(2)` (tandem-io's `SendfileTo`, the server's too), so its bytes are never copied
//! through user space; anywhere else (TLS, HTTP/2, a Unix socket, a compressed or chunked or
//! watched body, a traced session) it is read a piece at a time into one reused buffer.
//!
//! Its length is fixed when it is set, so the framing never lies: a file that grew since is
//! sent up to that length, and one that shrank fails the request with
//! [`is_request`](crate::Error::is_request) before the connection could be reused (the
//! server is left waiting for bytes that will not come, so it is closed).
//!
//! A file with no size of its own (a pipe, a device, a `/proc` file) has no length
//! to send ahead: it cannot seek, or its metadata says 0 though it gives bytes. It is read from its
//! position until a read gives nothing, and sent chunked, as aiohttp streams it.

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
    extent: Extent,
}

/// Which of the file's bytes are the body.
#[derive(Debug, Clone, Copy)]
enum Extent {
    /// `len` bytes from `start`, read at their offsets: a regular file.
    Sized { start: u64, len: u64 },
    /// Whatever reads from the file's position give until one gives nothing: a file whose
    /// size its metadata does not tell.
    ToEnd,
}

impl FileBody {
    /// The body from `file`'s current position to its end.
    pub(crate) fn new(mut file: File) -> io::Result<Self> {
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Ok(FileBody { file, extent: Extent::ToEnd });
        }
        let start = io::Seek::stream_position(&mut file)?;
        if metadata.len() == 0 && has_bytes_at(&file, start)? {
            return Ok(FileBody { file, extent: Extent::ToEnd });
        }
        let len = metadata.len().saturating_sub(start);
        Ok(FileBody { file, extent: Extent::Sized { start, len } })
    }

    /// The body's length, if the file is one whose size is known ahead (a regular file).
    pub(crate) fn len(&self) -> Option<u64> {
        match self.extent {
            Extent::Sized { len, .. } => Some(len),
            Extent::ToEnd => None,
        }
    }

    /// The body read a piece at a time, each read on the blocking pool (a read from disk, or
    /// from a pipe, must not hold up the runtime's thread) into the same buffer: a piece's
    /// memory is reclaimed once the writer has dropped it.
    pub(crate) fn pieces(
        self: Arc<Self>,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        let state = (self, BytesMut::new(), 0u64);
        futures_util::stream::try_unfold(state, move |(body, mut buf, sent)| async move {
            let want = match body.extent {
                Extent::Sized { len, .. } if sent >= len => return Ok(None),
                Extent::Sized { len, .. } => {
                    usize::try_from(len - sent).map_or(READ_SIZE, |n| n.min(READ_SIZE))
                }
                Extent::ToEnd => READ_SIZE,
            };
            buf.clear();
            buf.resize(want, 0);
            let reading = Arc::clone(&body);
            let (read, mut buf) = tokio::task::spawn_blocking(move || {
                let read = reading.read(&mut buf, sent);
                (read, buf)
            })
            .await
            .map_err(io::Error::other)?;
            let n = read?;
            if n == 0 {
                return match body.extent {
                    Extent::Sized { len, .. } => {
                        Err(io::Error::new(io::ErrorKind::UnexpectedEof, shrank(sent, len)))
                    }
                    Extent::ToEnd => Ok(None),
                };
            }
            buf.truncate(n);
            let piece = buf.split().freeze();
            Ok(Some((piece, (body, buf, sent + n as u64))))
        })
    }

    /// Reads the body's next bytes, after the `sent` already read: a sized body at their
    /// offset, leaving the file's position alone (the caller's other handles to the file
    /// share it); any other from the position, the only way a pipe can be read.
    fn read(&self, buf: &mut [u8], sent: u64) -> io::Result<usize> {
        match self.extent {
            Extent::Sized { start, .. } => read_at(&self.file, buf, start + sent),
            Extent::ToEnd => io::Read::read(&mut &self.file, buf),
        }
    }

    /// Sends the body to `socket` with `sendfile(2)`, waiting for room in it as needed. Only
    /// a sized body is sent so; any other is sent from its pieces. The waits have no timeout
    /// of their own: the request's deadlines bound the whole write, this among it.
    #[cfg(target_os = "linux")]
    pub(crate) async fn sendfile(&self, socket: &tokio::net::TcpStream) -> Result<(), Error> {
        let Extent::Sized { start, len } = self.extent else {
            return Err(Error::new(Kind::Request, "a file of unknown length has no sendfile"));
        };
        let to = tandem_io::SendfileTo::new(socket, None);
        let mut sent = 0;
        match to.send_file(&self.file, start, len, &mut sent).await {
            Ok(tandem_io::FileSent::Whole) => Ok(()),
            Ok(tandem_io::FileSent::Ended) => Err(Error::new(Kind::Request, shrank(sent, len))),
            Err(err) => Err(Error::new(Kind::Disconnected, err)),
        }
    }
}

/// Why a sized body that ended after `sent` of its `len` bytes failed.
fn shrank(sent: u64, len: u64) -> String {
    format!(
        "the file ended after {sent} of the {len} bytes its Content-Length announced: it \
         shrank while being sent"
    )
}

/// Reads at `offset` without moving the file's position, which the caller's other handles
/// to the file share.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Whether a file whose metadata says it is empty gives bytes at `offset` all the same: a
/// `/proc` file is a regular file of size 0 whatever it holds.
#[cfg(unix)]
fn has_bytes_at(file: &File, offset: u64) -> io::Result<bool> {
    Ok(read_at(file, &mut [0], offset)? > 0)
}

/// Windows has no such files (and its positioned read moves the position).
#[cfg(windows)]
fn has_bytes_at(_: &File, _: u64) -> io::Result<bool> {
    Ok(false)
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
        assert_eq!(body.len(), Some(data.len() as u64 - 7));
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

    /// A file sent to a peer that reads as fast as it is sent (so the socket seldom fills)
    /// still gives the runtime its thread back at least every few MiB.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_fast_peer_does_not_keep_the_thread() {
        use tandem_io::test_util::{fast_reader, least_times_given_way, times_given_way};

        const SIZE: u64 = 64 << 20;
        let (socket, reader) = fast_reader().await;
        let file = tempfile::tempfile().unwrap();
        file.set_len(SIZE).unwrap();
        let body = FileBody::new(file).unwrap();
        let (sent, gave_way) = times_given_way(&socket, body.sendfile(&socket)).await;
        sent.unwrap();
        drop(socket);
        assert_eq!(reader.join().unwrap(), SIZE);
        let least = least_times_given_way(SIZE);
        assert!(gave_way >= least, "gave way {gave_way} times, under {least}");
    }

    /// A file with no size of its own (a pipe) is read until it ends, however long that is.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_pipe_is_read_to_its_end() {
        let data: Vec<u8> = (0..READ_SIZE * 3 + 10).map(|i| (i % 253) as u8).collect();
        let (reader, mut writer) = io::pipe().unwrap();
        let written = data.clone();
        let writing = std::thread::spawn(move || writer.write_all(&written).unwrap());
        let body = Arc::new(FileBody::new(File::from(std::os::fd::OwnedFd::from(reader))).unwrap());
        assert_eq!(body.len(), None);
        let pieces: Vec<Bytes> = body.pieces().try_collect().await.unwrap();
        writing.join().unwrap();
        assert_eq!(pieces.concat(), data);
    }
}
