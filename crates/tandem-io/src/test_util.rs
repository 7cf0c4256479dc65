//! What the tests of a file sent with [`SendfileTo`](crate::SendfileTo) share, in one copy:
//! a peer that reads as fast as bytes arrive, and a count of the times a send gave the
//! runtime its thread back. Behind the `__test-util` feature, which only the workspace's
//! dev-dependencies turn on; not part of the crate's API.

use std::{future::Future, io::Read, thread::JoinHandle};

use tokio::net::TcpStream;

use crate::{SENDFILE_CALL_BYTES, SENDFILE_YIELD_BYTES};

/// A loopback connection whose far end a thread reads as fast as bytes arrive, until the
/// near end (returned, with `TCP_NODELAY` as a server's connection has it) is dropped; the
/// thread then answers how many bytes it read. A peer that keeps up so keeps the socket
/// from filling, so a send that waited only for room would never give way.
///
/// # Panics
///
/// If loopback cannot be bound or connected to, or the read fails.
pub async fn fast_reader() -> (TcpStream, JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let near = TcpStream::connect(listener.local_addr().expect("bound")).await.expect("connect");
    near.set_nodelay(true).expect("TCP_NODELAY");
    // The connection is in the listener's backlog already, so this does not block.
    let (mut far, _) = listener.accept().expect("accept");
    let reader = std::thread::spawn(move || {
        let (mut buf, mut total) = (vec![0; 1 << 20], 0);
        loop {
            match far.read(&mut buf).expect("read") {
                0 => return total,
                n => total += n as u64,
            }
        }
    });
    (near, reader)
}

/// Runs `send` to its end and counts the times it gave the runtime its thread back while
/// `socket` had room: those returns are the ones the send chose. One for want of room
/// clears the socket's readiness, and on a one-thread runtime (the caller's test must run
/// on one) nothing sets it again before it is looked at here.
pub async fn times_given_way<F: Future>(socket: &TcpStream, send: F) -> (F::Output, u64) {
    let mut send = std::pin::pin!(send);
    let mut gave_way = 0;
    let output = std::future::poll_fn(|cx| {
        let polled = send.as_mut().poll(cx);
        let room = socket.try_io(tokio::io::Interest::WRITABLE, || Ok(())).is_ok();
        if polled.is_pending() && room {
            gave_way += 1;
        }
        polled
    })
    .await;
    (output, gave_way)
}

/// The fewest times a send of `size` bytes to a [`fast_reader`] must give the thread back:
/// once per [`SENDFILE_YIELD_BYTES`], less one, as a stretch between two may overshoot by
/// one call's worth ([`SENDFILE_CALL_BYTES`]).
pub fn least_times_given_way(size: u64) -> u64 {
    (size / (SENDFILE_YIELD_BYTES + SENDFILE_CALL_BYTES as u64)).saturating_sub(1)
}
