//! Sending a response's file from the page cache straight to a plain TCP socket with
//! `sendfile(2)` (through rustix's safe wrapper), so its bytes are never copied through
//! user space, nor read off the runtime's thread: a connection over TLS, HTTP/2 or a Unix
//! socket reads the file through the body's stream instead.

use std::time::Duration;

use tokio::net::TcpStream;

/// Where a response's file may be sent to directly: the connection's socket, and how long
/// a send may wait for room in it (the connection's send timeout).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendfileTo<'a> {
    pub(crate) socket: &'a TcpStream,
    pub(crate) timeout: Duration,
}

/// Sends `count` bytes of `file` from `start`, adding what each call sends to `sent`.
/// `Ok(false)` if the file ended first (it shrank since it was opened): the body is then
/// short of its declared length and the connection must close.
#[cfg(target_os = "linux")]
pub(crate) async fn send(
    to: SendfileTo<'_>,
    file: &std::fs::File,
    start: u64,
    count: u64,
    sent: &mut u64,
) -> std::io::Result<bool> {
    use std::io::ErrorKind;
    use std::os::fd::AsFd;

    /// The most one call is asked for (Linux sends at most 0x7ffff000 bytes a call).
    const MAX_PER_CALL: usize = 1 << 30;

    let mut offset = start;
    let end = start + count;
    while offset < end {
        let want = usize::try_from(end - offset).map_or(MAX_PER_CALL, |n| n.min(MAX_PER_CALL));
        let called = to.socket.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(to.socket.as_fd(), file.as_fd(), Some(&mut offset), want)
                .map_err(std::io::Error::from)
        });
        match called {
            Ok(0) => return Ok(false),
            Ok(n) => *sent += n as u64,
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                tokio::time::timeout(to.timeout, to.socket.writable())
                    .await
                    .map_err(|_| std::io::Error::from(ErrorKind::TimedOut))??;
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}
