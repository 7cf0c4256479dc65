//! `SendfileTo`: a range of a file sent to a plain TCP socket with `sendfile(2)` (Linux;
//! elsewhere the type is only the socket and its wait, and callers read the file), so its
//! bytes go from the page cache to the socket without a copy through the process. The
//! server sends a response's file so, and the client a request's `body_file`: one loop for
//! both, as the waits and the pacing below are the same question on either side.
//!
//! The call goes through rustix's safe wrapper, as the workspace forbids `unsafe`.

use std::{io, time::Duration};

use tokio::net::TcpStream;

/// The most one `sendfile` call is asked for: 1 MiB. A call runs a bounded stretch of the
/// kernel's transmit path (on loopback, the receiving half of the stack too) before the
/// loop looks again at how far it got and whether to give way, rather than a whole file's
/// in one call. A larger ask would seldom be met: a call sends only what the socket's
/// buffer has room for, a few MiB at most with Linux's defaults.
#[cfg(target_os = "linux")]
pub const SENDFILE_CALL_BYTES: usize = 1 << 20;

/// Bytes sent between returns to the runtime, whether or not the socket filled: 4 MiB. A
/// peer that reads as fast as they are sent keeps the socket from filling, so waiting for
/// room alone would hold the thread for the whole file, and its other tasks (other
/// connections, their timeouts) would wait that long. tokio's budget counts operations, not
/// bytes (at a MiB a call it would give way every 128 MiB), so this goes by bytes: a few MiB
/// take a millisecond or so on loopback, and giving way costs microseconds.
#[cfg(target_os = "linux")]
pub const SENDFILE_YIELD_BYTES: u64 = 4 << 20;

/// A plain TCP socket a file may be sent to, and how long a send may wait for room in it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SendfileTo<'a> {
    /// The socket, as tokio has it: the waits for room go through its readiness.
    pub socket: &'a TcpStream,
    /// The longest a send waits for room in the socket before it fails with
    /// [`TimedOut`](io::ErrorKind::TimedOut) (the server's send timeout); `None` waits as
    /// long as it takes, for a caller that bounds the whole send itself.
    pub room_timeout: Option<Duration>,
}

/// How a [`SendfileTo::send_file`] ended.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSent {
    /// Every byte asked for was sent.
    Whole,
    /// The file ended first: it is shorter than its length when the send was planned (it
    /// shrank since). What was sent is all it had; a body framed by that length is short.
    Ended,
}

impl<'a> SendfileTo<'a> {
    /// Sends to `socket`, waiting for room in it for at most `room_timeout` at a time
    /// (`None`: as long as it takes).
    pub fn new(socket: &'a TcpStream, room_timeout: Option<Duration>) -> Self {
        Self { socket, room_timeout }
    }

    /// Sends `count` bytes of `file` from offset `start` (the file's position is left
    /// alone), adding what each call sends to `sent`, so that a caller whose send fails
    /// still knows how far it got. Each call asks for at most [`SENDFILE_CALL_BYTES`], the
    /// runtime gets its thread back after every [`SENDFILE_YIELD_BYTES`], and a full socket
    /// is waited on for at most [`room_timeout`](Self::room_timeout).
    ///
    /// # Errors
    ///
    /// The socket's (the peer is gone, say), or `TimedOut` once a wait for room outlasts
    /// the timeout.
    #[cfg(target_os = "linux")]
    pub async fn send_file(
        self,
        file: &std::fs::File,
        start: u64,
        count: u64,
        sent: &mut u64,
    ) -> io::Result<FileSent> {
        let end = start.saturating_add(count);
        let mut offset = start;
        let mut yielded_at = start;
        while offset < end {
            if offset - yielded_at >= SENDFILE_YIELD_BYTES {
                tokio::task::yield_now().await;
                yielded_at = offset;
            }
            let want = usize::try_from(end - offset)
                .map_or(SENDFILE_CALL_BYTES, |n| n.min(SENDFILE_CALL_BYTES));
            let called = self.socket.try_io(tokio::io::Interest::WRITABLE, || {
                use std::os::fd::AsFd;
                rustix::fs::sendfile(self.socket.as_fd(), file.as_fd(), Some(&mut offset), want)
                    .map_err(io::Error::from)
            });
            match called {
                Ok(0) => return Ok(FileSent::Ended),
                Ok(n) => *sent += n as u64,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.room().await?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(FileSent::Whole)
    }

    /// Waits until the socket has room, for at most the timeout. For a caller that writes
    /// to the socket itself around a `send_file` (the server's head) and met a full socket.
    ///
    /// # Errors
    ///
    /// The socket's, or `TimedOut` once the wait outlasts the timeout.
    pub async fn room(self) -> io::Result<()> {
        match self.room_timeout {
            Some(limit) => tokio::time::timeout(limit, self.socket.writable())
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?,
            None => self.socket.writable().await,
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::fs::File;
    use std::io::{Read, Write};

    use super::*;

    /// A socket pair on loopback: tokio's end, and the peer's plain blocking one.
    async fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        (socket, listener.accept().unwrap().0)
    }

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    /// A range that takes several calls arrives whole and in order, counted as it goes,
    /// and the file's position is not moved.
    #[tokio::test]
    async fn a_range_arrives_whole_and_counted() {
        let data: Vec<u8> = (0..3 * SENDFILE_CALL_BYTES + 10).map(|i| (i % 251) as u8).collect();
        let file = file_of(&data);
        let (socket, mut peer) = pair().await;
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            got
        });
        let to = SendfileTo { socket: &socket, room_timeout: None };
        let (start, count) = (7, data.len() as u64 - 9);
        let mut sent = 0;
        assert_eq!(to.send_file(&file, start, count, &mut sent).await.unwrap(), FileSent::Whole);
        assert_eq!(sent, count);
        drop(socket);
        assert!(reading.join().unwrap() == data[7..data.len() - 2]);
        assert_eq!(io::Seek::stream_position(&mut &file).unwrap(), data.len() as u64);
    }

    /// A file shorter than the range asked for sends what it has and says it ended.
    #[tokio::test]
    async fn a_short_file_ends_the_send() {
        let file = file_of(&[1; 100]);
        let (socket, _peer) = pair().await;
        let to = SendfileTo { socket: &socket, room_timeout: None };
        let mut sent = 0;
        assert_eq!(to.send_file(&file, 40, 100, &mut sent).await.unwrap(), FileSent::Ended);
        assert_eq!(sent, 60);
    }

    /// A peer that stops reading fills the socket: the wait for room ends at the timeout,
    /// with what was sent by then counted. (The clock is paused: tokio moves it on to the
    /// timer once nothing else can run, so the test takes no time.)
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_does_not_read_times_the_wait_out() {
        const SIZE: u64 = 64 << 20;
        let file = tempfile::tempfile().unwrap();
        file.set_len(SIZE).unwrap();
        let (socket, _peer) = pair().await;
        let to = SendfileTo { socket: &socket, room_timeout: Some(Duration::from_secs(5)) };
        let mut sent = 0;
        let started = tokio::time::Instant::now();
        let err = to.send_file(&file, 0, SIZE, &mut sent).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(5));
        assert!(0 < sent && sent < SIZE, "sent {sent}");
    }
}
