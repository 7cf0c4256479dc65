//! permessage-deflate (RFC 7692): negotiating it in the handshake, and compressing and
//! inflating messages.

#[cfg(any(feature = "client", feature = "server"))]
use std::fmt::Write as _;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{CloseCode, Error};

#[cfg(any(feature = "client", feature = "server"))]
/// The extension's registered name.
const NAME: &str = "permessage-deflate";
/// Every deflated message ends with an empty stored block, `00 00 ff ff`, which the sender
/// strips and the receiver puts back (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
#[cfg(any(feature = "client", feature = "server"))]
/// The window sizes zlib can produce: RFC 7692 allows 8, but zlib's raw deflate starts at 9,
/// so an offer that insists on 8 is declined (as aiohttp declines it).
const WINDOW_BITS: std::ops::RangeInclusive<u8> = 9..=15;
/// Inflated output is produced at most this much at a time, so a bomb is caught after at
/// most this many bytes past the limit.
const INFLATE_STEP: usize = 64 * 1024;

/// What both sides agreed to for one connection, from our point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// Our compressor's window, in bits.
    pub(crate) our_window: u8,
    /// We start every message with an empty window.
    pub(crate) our_no_context: bool,
    /// The peer starts every message with an empty window, so our inflater may forget.
    pub(crate) peer_no_context: bool,
}

#[cfg(any(feature = "client", feature = "server"))]
/// One offer or answer: the extension's name and its parameters, values unquoted.
fn parse_extensions(value: &str) -> impl Iterator<Item = (&str, Vec<(&str, Option<&str>)>)> {
    value.split(',').map(|ext| {
        let mut parts = ext.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let params = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                // One pair of quotes, the quoted-string form of a value (RFC 7692 §7.1.2.1).
                Some((k, v)) => {
                    let v = v.trim();
                    (
                        k.trim(),
                        Some(v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)),
                    )
                }
                None => (p, None),
            })
            .collect();
        (name, params)
    })
}

#[cfg(any(feature = "client", feature = "server"))]
fn window(value: Option<&str>) -> Option<u8> {
    // Digits with no leading zero (RFC 7692 §7.1.2.1), which `parse` alone would not insist
    // on: it takes `+9` and `09`.
    let value = value?;
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

#[cfg(feature = "server")]
/// The server's side: picks the first offer it can honour, and returns what was agreed and
/// the `Sec-WebSocket-Extensions` answer. Offers with unknown or repeated parameters, or
/// values out of range, are skipped (RFC 7692 §5.1).
pub(crate) fn negotiate_server<'a>(
    offers: impl Iterator<Item = &'a str>,
) -> Option<(Agreed, String)> {
    'offers: for (name, params) in offers.flat_map(parse_extensions) {
        if !name.eq_ignore_ascii_case(NAME) {
            continue;
        }
        let mut agreed = Agreed { our_window: 15, our_no_context: false, peer_no_context: false };
        let mut answer = String::from(NAME);
        let mut seen = Vec::with_capacity(params.len());
        for (key, value) in params {
            if seen.contains(&key) {
                continue 'offers;
            }
            seen.push(key);
            match key {
                "server_no_context_takeover" if value.is_none() => {
                    agreed.our_no_context = true;
                    answer.push_str("; server_no_context_takeover");
                }
                "client_no_context_takeover" if value.is_none() => {
                    agreed.peer_no_context = true;
                    answer.push_str("; client_no_context_takeover");
                }
                "server_max_window_bits" => match window(value) {
                    Some(bits) if WINDOW_BITS.contains(&bits) => {
                        agreed.our_window = bits;
                        let _ = write!(answer, "; server_max_window_bits={bits}");
                    }
                    _ => continue 'offers,
                },
                // Only a hint that the client could use a smaller window: our inflater
                // always has the full 32 KiB, so there is nothing to answer.
                "client_max_window_bits" => {
                    if value.is_some() && window(value).is_none() {
                        continue 'offers;
                    }
                }
                _ => continue 'offers,
            }
        }
        return Some((agreed, answer));
    }
    None
}

#[cfg(feature = "client")]
/// The client's offer for a compressor window of `window_bits`.
pub(crate) fn client_offer(window_bits: u8, no_context_takeover: bool) -> String {
    let mut offer = String::from(NAME);
    if window_bits < 15 {
        let _ = write!(offer, "; client_max_window_bits={window_bits}");
    } else {
        offer.push_str("; client_max_window_bits");
    }
    if no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    offer
}

#[cfg(feature = "client")]
/// The client's side: checks the server's answer against what was offered. An answer that
/// names another extension, repeats one, or sets what was not offered fails the handshake.
pub(crate) fn accept_client(
    answer: Option<&str>,
    offered_window: Option<u8>,
    offered_no_context: bool,
) -> Result<Option<Agreed>, Error> {
    let Some(answer) = answer else { return Ok(None) };
    let Some(offered_window) = offered_window else {
        return Err(Error::handshake("server chose an extension that was not offered"));
    };
    let mut agreed: Option<Agreed> = None;
    for (name, params) in parse_extensions(answer) {
        if !name.eq_ignore_ascii_case(NAME) || agreed.is_some() {
            return Err(Error::handshake(format!("server chose extension {name:?}, not offered")));
        }
        let mut this = Agreed {
            our_window: offered_window,
            our_no_context: offered_no_context,
            peer_no_context: false,
        };
        let mut seen = Vec::with_capacity(params.len());
        for (key, value) in params {
            // RFC 7692 §5: an answer that repeats a parameter fails the connection.
            if seen.contains(&key) {
                return Err(Error::handshake(format!("permessage-deflate answer repeats {key:?}")));
            }
            seen.push(key);
            match key {
                "server_no_context_takeover" if value.is_none() => this.peer_no_context = true,
                "client_no_context_takeover" if value.is_none() => this.our_no_context = true,
                "server_max_window_bits" if window(value).is_some() => {}
                "client_max_window_bits" => match window(value) {
                    Some(bits) if WINDOW_BITS.contains(&bits) && bits <= offered_window => {
                        this.our_window = bits;
                    }
                    _ => return Err(Error::handshake("bad client_max_window_bits in answer")),
                },
                _ => {
                    return Err(Error::handshake(format!("bad permessage-deflate answer {key:?}")));
                }
            }
        }
        agreed = Some(this);
    }
    Ok(agreed)
}

/// Compresses outgoing messages.
pub(crate) struct Deflater {
    /// Made for the first message compressed, not with the connection: zlib's state for a
    /// 15-bit window is about 256 KiB, which would make every idle connection that offered
    /// permessage-deflate cost sixteen times one that did not.
    zlib: Option<Compress>,
    window: u8,
    no_context: bool,
}

impl Deflater {
    pub(crate) fn new(agreed: Agreed) -> Self {
        Deflater { zlib: None, window: agreed.our_window, no_context: agreed.our_no_context }
    }

    /// Whether a message compressed now may be referred to by the next one (context
    /// takeover, the default).
    pub(crate) fn keeps_context(&self) -> bool {
        !self.no_context
    }

    /// Deflates one whole message into `out`, without the trailing `00 00 ff ff`.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        if input.is_empty() {
            // RFC 7692 §7.2.3.6: an empty message is the single byte 0x00, the start of
            // an empty stored block that the receiver's appended tail completes. zlib,
            // flushed twice with nothing between, writes nothing at all, which the
            // receiver would misread.
            out.push(0x00);
            return;
        }
        out.reserve(input.len() / 2 + 64);
        let window = self.window;
        let zlib = self.zlib.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::fast(), false, window)
        });
        let start = zlib.total_in();
        loop {
            let consumed = (zlib.total_in() - start) as usize;
            // Sync-flushed output always ends in the empty stored block; a full buffer is
            // the only reason to go round again.
            let status = zlib.compress_vec(&input[consumed..], out, FlushCompress::Sync);
            debug_assert!(status.is_ok(), "deflate cannot fail on valid state");
            if out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.no_context {
            zlib.reset();
        }
    }
}

/// Inflates incoming messages, within a size limit.
pub(crate) struct Inflater {
    /// Made for the first compressed message received (about 40 KiB), as the deflater is.
    zlib: Option<Decompress>,
    no_context: bool,
}

impl Inflater {
    pub(crate) fn new(agreed: Agreed) -> Self {
        Inflater { zlib: None, no_context: agreed.peer_no_context }
    }

    fn zlib(&mut self) -> &mut Decompress {
        // The full window inflates whatever window the peer compressed with.
        self.zlib.get_or_insert_with(|| Decompress::new(false))
    }

    /// Inflates one frame's payload onto `out`; more than `limit` bytes in `out` is 1009.
    pub(crate) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), Error> {
        let zlib = self.zlib();
        while !input.is_empty() {
            grow(out, limit);
            let before = zlib.total_in();
            let status = zlib
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| Error::protocol(CloseCode::INVALID_TEXT, "corrupt deflate data"))?;
            input = &input[(zlib.total_in() - before) as usize..];
            if out.len() > limit {
                return Err(Error::too_big());
            }
            if status == Status::StreamEnd {
                // A final block ends the stream; what follows starts a new one.
                zlib.reset(false);
            }
        }
        Ok(())
    }

    /// Ends a message: feeds the stripped tail, and forgets the window if the peer does.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        self.inflate(&TAIL, out, limit)?;
        let no_context = self.no_context;
        let zlib = self.zlib();
        // The tail may leave output pending when the buffer was exactly full.
        loop {
            let before = out.len();
            grow(out, limit);
            zlib.decompress_vec(&[], out, FlushDecompress::Sync)
                .map_err(|_| Error::protocol(CloseCode::INVALID_TEXT, "corrupt deflate data"))?;
            if out.len() > limit {
                return Err(Error::too_big());
            }
            if out.len() == before {
                break;
            }
        }
        if no_context {
            zlib.reset(false);
        }
        Ok(())
    }
}

/// Makes room for more inflated output: doubling, as a `Vec` does, but never past one step
/// beyond `limit`, because inflating fills whatever room there is. So a bomb costs at most
/// `limit` plus a step, however `Vec` would have grown.
fn grow(out: &mut Vec<u8>, limit: usize) {
    let cap = limit.saturating_add(1 + INFLATE_STEP);
    if out.capacity() - out.len() < INFLATE_STEP.min(cap - out.len()).max(1) {
        let target = (out.capacity() * 2).max(out.len() + INFLATE_STEP).min(cap);
        out.reserve_exact(target.saturating_sub(out.len()).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed() -> Agreed {
        Agreed { our_window: 15, our_no_context: false, peer_no_context: false }
    }

    #[test]
    fn messages_round_trip_with_context_takeover() {
        let mut deflater = Deflater::new(agreed());
        let mut inflater = Inflater::new(agreed());
        let mut wire = Vec::new();
        for msg in [&b"hello hello hello"[..], b"hello again", b"", &vec![0u8; 100_000]] {
            deflater.compress(msg, &mut wire);
            let mut out = Vec::new();
            inflater.inflate(&wire, &mut out, usize::MAX).unwrap();
            inflater.finish(&mut out, usize::MAX).unwrap();
            assert_eq!(out, msg);
        }
    }

    /// 500 idle connections that agreed to permessage-deflate held 167 MB more than 500
    /// that did not (the autobahn example's server, debug build): the zlib states.
    #[test]
    fn no_zlib_state_is_made_before_the_first_message() {
        let mut deflater = Deflater::new(agreed());
        let mut inflater = Inflater::new(agreed());
        assert!(deflater.zlib.is_none() && inflater.zlib.is_none());
        let mut wire = Vec::new();
        deflater.compress(b"now", &mut wire);
        let mut out = Vec::new();
        inflater.inflate(&wire, &mut out, usize::MAX).unwrap();
        inflater.finish(&mut out, usize::MAX).unwrap();
        assert_eq!(out, b"now");
        assert!(deflater.zlib.is_some() && inflater.zlib.is_some());
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let mut deflater = Deflater::new(agreed());
        let mut wire = Vec::new();
        deflater.compress(&vec![0u8; 4 << 20], &mut wire);
        assert!(wire.len() < 64 << 10, "zeros compress well: {}", wire.len());
        let mut out = Vec::new();
        let err = Inflater::new(agreed()).inflate(&wire, &mut out, 1 << 20).unwrap_err();
        assert!(err.is_message_too_big());
        assert!(
            out.capacity() <= (1 << 20) + 1 + INFLATE_STEP,
            "stopped near the limit: {}",
            out.len()
        );
    }

    #[cfg(feature = "server")]
    #[test]
    fn the_server_takes_the_first_offer_it_can_honour() {
        let offers = ["permessage-deflate; server_max_window_bits=8, permessage-deflate; \
                       client_max_window_bits; server_no_context_takeover"];
        let (agreed, answer) = negotiate_server(offers.into_iter()).unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert!(agreed.our_no_context);
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=\"\"9\"\"",
            "permessage-deflate; client_max_window_bits=+10",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(negotiate_server([bad].into_iter()), None, "{bad}");
        }
    }

    #[cfg(feature = "client")]
    #[test]
    fn the_client_refuses_answers_it_did_not_offer() {
        assert!(accept_client(Some("permessage-deflate"), None, false).is_err());
        assert!(accept_client(Some("x-foo"), Some(15), false).is_err());
        assert!(
            accept_client(Some("permessage-deflate; client_max_window_bits=12"), Some(10), false)
                .is_err()
        );
        for bad in ["+10", "010", "\"\"10\"\"", " 1 0"] {
            let answer = format!("permessage-deflate; client_max_window_bits={bad}");
            assert!(accept_client(Some(&answer), Some(15), false).is_err(), "{answer}");
            let answer = format!("permessage-deflate; server_max_window_bits={bad}");
            assert!(accept_client(Some(&answer), Some(15), false).is_err(), "{answer}");
        }
        let quoted = "permessage-deflate; client_max_window_bits=\"10\"";
        assert_eq!(accept_client(Some(quoted), Some(15), false).unwrap().unwrap().our_window, 10);
        let agreed =
            accept_client(Some("permessage-deflate; client_max_window_bits=10"), Some(15), false)
                .unwrap()
                .unwrap();
        assert_eq!(agreed.our_window, 10);
        assert_eq!(accept_client(None, Some(15), false).unwrap(), None);
    }
}
