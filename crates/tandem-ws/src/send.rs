//! The writing side: one writer behind a lock, shared by every sender.

use std::{
    future::Future,
    io::IoSlice,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU16, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::BytesMut;
use futures_util::{
    Sink,
    future::{self, Either},
};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::{
    Message,
    deflate::Deflater,
    error::{CloseCode, Error},
    frame::{self, OpCode, Role},
    masking::MaskKeys,
};

/// The kind of frame [`WsSender::send_frame`] writes: a whole message, or a control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameType {
    /// A text message: its payload must be UTF-8.
    Text,
    /// A binary message.
    Binary,
    /// A ping, at most 125 bytes.
    Ping,
    /// A pong, at most 125 bytes.
    Pong,
}

/// Frames up to this size are built in one buffer and written at once; the writer gives its
/// buffer back to the allocator when a larger message leaves it above this.
const KEEP_BUFFER: usize = 64 * 1024;
/// An unmasked, uncompressed payload from this size up is written from the caller's slice,
/// after its head in one `writev`, rather than copied behind the head first.
const WRITE_DIRECT: usize = 16 * 1024;
/// A close reason is cut to fit a control frame with its two-byte code.
const MAX_CLOSE_REASON: usize = frame::MAX_CONTROL_PAYLOAD - 2;

type WriteIo = Box<dyn AsyncWrite + Send + Unpin>;

struct Writer {
    io: WriteIo,
    buf: BytesMut,
    deflater: Option<Deflater>,
    deflated: Vec<u8>,
    masks: MaskKeys,
    /// Part of a frame went out and the rest never will: its send was cancelled (dropped by
    /// a timeout or a `select!`, or aborted). No frame may follow, or the peer would read
    /// it as the rest of that payload, and bytes of a later message as frame heads. Also
    /// set for a compressed frame not yet written when the deflater keeps its context: the
    /// next message could refer back to bytes the peer never got.
    torn: bool,
}

/// State both halves see.
pub(crate) struct Shared {
    writer: tokio::sync::Mutex<Writer>,
    role: Role,
    /// The close code received or sent, 0 until then.
    close_code: AtomicU16,
    /// A close frame went out: nothing may follow it. Written under the writer's lock.
    close_sent: AtomicBool,
    /// The reading side saw the end: the closing handshake finished, or the connection
    /// failed.
    closed: AtomicBool,
    /// Cancelled when the connection is given up (a lost heartbeat, a failure): a send
    /// stuck on a peer that stopped reading returns instead of holding the writer forever.
    abort: CancellationToken,
}

impl Shared {
    pub(crate) fn close_code(&self) -> Option<CloseCode> {
        match self.close_code.load(Ordering::Relaxed) {
            0 => None,
            code => Some(CloseCode(code)),
        }
    }

    pub(crate) fn close_sent(&self) -> bool {
        self.close_sent.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn set_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Gives the connection up: sends in progress fail at once.
    pub(crate) fn abort(&self) {
        self.abort.cancel();
    }

    pub(crate) fn set_close_code(&self, code: CloseCode) {
        let _ = self.close_code.compare_exchange(0, code.0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// A handle that sends on a WebSocket. It is cheap to clone and may be used from many tasks
/// at once, while one task reads: frames from concurrent senders never interleave.
///
/// It is also a [`Sink`] of [`Message`]s (`Text`, `Binary`, `Ping`, `Pong` and `Close`), so
/// `SinkExt::send`, `forward` and `send_all` work on it; closing the sink sends a close frame
/// (1000) if none went out yet.
pub struct WsSender {
    shared: Arc<Shared>,
    /// The send the `Sink` started and has not finished: one at a time, per handle. Only
    /// reached through `get_mut`, which costs nothing: the mutex keeps `WsSender` `Sync`
    /// though the future in it is not.
    pending: std::sync::Mutex<Option<Pending>>,
}

type Pending = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

impl Clone for WsSender {
    fn clone(&self) -> Self {
        WsSender { shared: Arc::clone(&self.shared), pending: std::sync::Mutex::new(None) }
    }
}

impl std::fmt::Debug for WsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsSender").field("role", &self.shared.role).finish_non_exhaustive()
    }
}

impl WsSender {
    pub(crate) fn new(io: WriteIo, role: Role, deflater: Option<Deflater>) -> Self {
        let writer = Writer {
            io,
            buf: BytesMut::new(),
            deflater,
            deflated: Vec::new(),
            masks: MaskKeys::new(),
            torn: false,
        };
        WsSender {
            pending: std::sync::Mutex::new(None),
            shared: Arc::new(Shared {
                writer: tokio::sync::Mutex::new(writer),
                role,
                close_code: AtomicU16::new(0),
                close_sent: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                abort: CancellationToken::new(),
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Sends a text message, compressed if permessage-deflate was agreed.
    pub async fn send_str(&self, text: &str) -> Result<(), Error> {
        self.write_frame(OpCode::Text, text.as_bytes(), true).await
    }

    /// Sends a binary message, compressed if permessage-deflate was agreed.
    pub async fn send_bytes(&self, data: &[u8]) -> Result<(), Error> {
        self.write_frame(OpCode::Binary, data, true).await
    }

    /// Sends `value` as a JSON text message.
    pub async fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string(value).map_err(Error::json)?;
        self.send_str(&text).await
    }

    /// Sends `value` as a text message written by `dumps` (aiohttp's `send_json(dumps=)`):
    /// another JSON library, sorted keys, a compact or pretty form. An error from `dumps`
    /// is returned as a JSON error ([`Error::is_json`]), and nothing is sent.
    pub async fn send_json_with<T, F, E>(&self, value: &T, dumps: F) -> Result<(), Error>
    where
        T: ?Sized,
        F: FnOnce(&T) -> Result<String, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let text = dumps(value).map_err(Error::json_with)?;
        self.send_str(&text).await
    }

    /// Sends one whole frame of `kind` with `payload` as it is (aiohttp's `send_frame`),
    /// compressed or not by `compress`, whatever [`send_str`](Self::send_str) and
    /// [`send_bytes`](Self::send_bytes) would do: the per-message compression override. Only
    /// text and binary frames are compressed, and only when permessage-deflate was agreed.
    /// A text payload must be UTF-8 and a ping's or pong's at most 125 bytes; otherwise
    /// nothing is sent and the error is a protocol error.
    pub async fn send_frame(
        &self,
        kind: FrameType,
        payload: &[u8],
        compress: bool,
    ) -> Result<(), Error> {
        let opcode = match kind {
            FrameType::Text if std::str::from_utf8(payload).is_err() => {
                return Err(Error::protocol(CloseCode::INVALID_TEXT, "text frame is not UTF-8"));
            }
            FrameType::Text => OpCode::Text,
            FrameType::Binary => OpCode::Binary,
            FrameType::Ping | FrameType::Pong if payload.len() > frame::MAX_CONTROL_PAYLOAD => {
                return Err(Error::protocol(
                    CloseCode::PROTOCOL_ERROR,
                    "control frame over 125 bytes",
                ));
            }
            FrameType::Ping => OpCode::Ping,
            FrameType::Pong => OpCode::Pong,
        };
        let compress = compress && matches!(kind, FrameType::Text | FrameType::Binary);
        self.write_frame(opcode, payload, compress).await
    }

    /// Sends a ping; the payload is cut to 125 bytes.
    pub async fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.write_frame(OpCode::Ping, control_payload(payload), false).await
    }

    /// Sends an unsolicited pong; the payload is cut to 125 bytes.
    pub async fn pong(&self, payload: &[u8]) -> Result<(), Error> {
        self.write_frame(OpCode::Pong, control_payload(payload), false).await
    }

    /// Sends a close frame with `code` and `reason` (cut to 123 bytes at a character
    /// boundary), if none was sent yet. The reading side then waits for the peer's answer.
    /// Returns `false` if a close frame had already gone out.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<bool, Error> {
        let mut cut = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut payload = Vec::with_capacity(2 + cut);
        payload.extend_from_slice(&code.0.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
        self.send_close_payload(&payload, code).await
    }

    /// Sends a close frame carrying `payload` as is (the reader echoes a peer's close).
    pub(crate) async fn send_close_payload(
        &self,
        payload: &[u8],
        code: CloseCode,
    ) -> Result<bool, Error> {
        let mut w = self.shared.writer.lock().await;
        if self.shared.close_sent.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        w.write(&self.shared, OpCode::Close, payload, false).await?;
        // Only once the frame is out: one that never went out whole (the peer read nothing
        // until the close timeout) leaves the code to the failure, 1006.
        self.shared.set_close_code(code);
        Ok(true)
    }

    /// Shuts the connection's write side: after the closing handshake, or on failure. A TLS
    /// stream writes its `close_notify` first, which a peer that reads nothing would hold up
    /// forever, as it would a send of ours holding the writer: past `within`, every send is
    /// aborted and the write side is left to be dropped.
    pub(crate) async fn shutdown(&self, within: Duration) {
        let shut = async {
            let mut w = self.shared.writer.lock().await;
            self.shared.close_sent.store(true, Ordering::Release);
            let _ = w.io.shutdown().await;
        };
        if tokio::time::timeout(within, shut).await.is_err() {
            self.shared.close_sent.store(true, Ordering::Release);
            self.shared.abort();
        }
    }

    /// Gives the connection up without a closing handshake: `code` recorded unless one was
    /// received or sent before, every send in progress aborted, the connection closed for
    /// the reader, and the write side shut.
    pub(crate) async fn give_up(&self, code: CloseCode, within: Duration) {
        self.shared.set_close_code(code);
        self.shared.abort();
        self.shared.set_closed();
        self.shutdown(within).await;
    }

    pub(crate) async fn write_frame(
        &self,
        opcode: OpCode,
        payload: &[u8],
        compressible: bool,
    ) -> Result<(), Error> {
        let mut w = self.shared.writer.lock().await;
        if self.shared.close_sent() {
            return Err(Error::closed());
        }
        w.write(&self.shared, opcode, payload, compressible).await
    }
}

// ===== impl Sink =====

impl WsSender {
    /// Drives the send the `Sink` started, if any, to its end.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let slot = self.pending_mut();
        let Some(pending) = slot.as_mut() else { return Poll::Ready(Ok(())) };
        let result = ready!(pending.as_mut().poll(cx));
        *slot = None;
        Poll::Ready(result)
    }

    fn pending_mut(&mut self) -> &mut Option<Pending> {
        self.pending.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Sink<Message> for WsSender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        let this = self.get_mut();
        let sender = this.clone();
        *this.pending_mut() = Some(match message {
            Message::Text(text) => Box::pin(async move { sender.send_str(&text).await }),
            Message::Binary(data) => Box::pin(async move { sender.send_bytes(&data).await }),
            Message::Ping(data) => Box::pin(async move { sender.ping(&data).await }),
            Message::Pong(data) => Box::pin(async move { sender.pong(&data).await }),
            Message::Close(code, reason) => {
                Box::pin(async move { sender.close(code, &reason).await.map(drop) })
            }
            // States of the connection, not frames: nothing to send.
            _ => return Err(Error::closed()),
        });
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Every send writes and flushes its frame; finishing it is the flush.
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if this.shared.close_sent() {
            return Poll::Ready(Ok(()));
        }
        let sender = this.clone();
        *this.pending_mut() =
            Some(Box::pin(async move { sender.close(CloseCode::OK, "").await.map(drop) }));
        this.poll_pending(cx)
    }
}

impl Writer {
    async fn write(
        &mut self,
        shared: &Shared,
        opcode: OpCode,
        payload: &[u8],
        compressible: bool,
    ) -> Result<(), Error> {
        if self.torn {
            // The peer is left waiting for the rest of the cut frame: the end of the
            // stream tells it there is none.
            shared.close_sent.store(true, Ordering::Release);
            let shut = self.io.shutdown();
            let _ = future::select(pin!(shut), pin!(shared.abort.cancelled())).await;
            return Err(Error::io(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "an earlier send was cancelled mid-frame",
            )));
        }
        // A frame a cancelled send encoded but did not begin to write is not sent (one the
        // deflater remembers left the writer torn, above).
        self.buf.clear();
        let mask = match shared.role {
            Role::Client => Some(self.masks.next_key().map_err(Error::io)?),
            Role::Server => None,
        };
        let Writer { buf, deflater, deflated, torn, .. } = self;
        // The server's large messages: the head alone in `buf`, the payload written from
        // where it is, which saves copying it (and a buffer as large, given back after
        // each large message).
        let mut direct: &[u8] = &[];
        match deflater {
            Some(deflater) if compressible => {
                deflater.compress(payload, deflated);
                frame::encode_frame(buf, opcode, true, true, mask, deflated);
                // The deflater's window holds this message now: a later one may refer back
                // to it, so a frame cancelled before its first byte is as cut as one
                // cancelled halfway, and nothing may follow it.
                *torn = deflater.keeps_context();
            }
            _ if mask.is_none() && payload.len() >= WRITE_DIRECT => {
                frame::encode_head(buf, opcode, true, false, None, payload.len());
                direct = payload;
            }
            _ => frame::encode_frame(buf, opcode, true, false, mask, payload),
        }
        let Writer { io, buf, torn, .. } = self;
        // The write is polled first: when the socket takes the frame at once, as it mostly
        // does, the abort token is never polled, so no waiter is registered with it and
        // removed again on every message.
        let written = async {
            write_both(io, buf, direct, torn).await?;
            io.flush().await
        };
        let flushed = match future::select(pin!(written), pin!(shared.abort.cancelled())).await {
            Either::Left((written, _)) => written,
            Either::Right(_) => Err(std::io::ErrorKind::ConnectionAborted.into()),
        };
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
            self.deflated = Vec::new();
        }
        flushed.map_err(Error::io)
    }
}

/// Writes `head` then `body`, both in one `writev` when the connection takes them at once.
/// `torn` is set from the first byte written until the last: dropped in between, the frame
/// is cut.
async fn write_both(
    io: &mut WriteIo,
    mut head: &[u8],
    mut body: &[u8],
    torn: &mut bool,
) -> std::io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let n = match (head.is_empty(), body.is_empty()) {
            (false, false) => io.write_vectored(&[IoSlice::new(head), IoSlice::new(body)]).await?,
            (false, true) => io.write(head).await?,
            _ => io.write(body).await?,
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        *torn = true;
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    *torn = false;
    Ok(())
}

fn control_payload(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(frame::MAX_CONTROL_PAYLOAD)]
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::FutureExt;

    use super::*;
    use crate::deflate::Agreed;

    /// A socket that is full at the first write and takes everything after it.
    struct FullOnce {
        full: bool,
        wire: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncWrite for FullOnce {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            if std::mem::take(&mut self.full) {
                return Poll::Pending;
            }
            self.wire.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A compressed send cancelled before its first byte went out: with context takeover
    /// the next message would be compressed against one the peer never got (it inflates
    /// wrong bytes, or fails), so the next send is refused; without it, the next message
    /// stands alone and goes out.
    #[tokio::test]
    async fn a_compressed_frame_never_sent_ends_the_writing_if_the_deflater_remembers_it() {
        for no_context in [false, true] {
            let agreed =
                Agreed { our_window: 15, our_no_context: no_context, peer_no_context: false };
            let wire = Arc::new(Mutex::new(Vec::new()));
            let io = FullOnce { full: true, wire: Arc::clone(&wire) };
            let sender = WsSender::new(Box::new(io), Role::Server, Some(Deflater::new(agreed)));
            let message = "hello hello hello hello";
            assert!(sender.send_str(message).now_or_never().is_none(), "the socket is full");
            let next = sender.send_str(message).await;
            let wire = wire.lock().unwrap();
            if no_context {
                assert!(next.is_ok() && !wire.is_empty(), "{next:?}");
            } else {
                assert!(next.is_err() && wire.is_empty(), "{next:?}, {} bytes sent", wire.len());
            }
        }
    }
}
