//! The frame layer of RFC 6455 §5, sans-IO: reading frame heads, unmasking, and writing
//! frames.
//!
//! Hand-written rather than taken from tungstenite: tungstenite rejects frames with RSV1
//! set, and permessage-deflate (RFC 7692) marks compressed messages with exactly that bit.

use bytes::{Buf, BufMut, BytesMut};

use crate::error::{CloseCode, Error};

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    pub(crate) fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Control frames carry at most this many payload bytes (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// A decoded frame head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameHead {
    pub(crate) fin: bool,
    /// RSV1: "this message is compressed" once permessage-deflate is negotiated.
    pub(crate) rsv1: bool,
    pub(crate) opcode: OpCode,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) len: u64,
}

/// Which side of the connection a [`WebSocket`](crate::WebSocket) is: a client masks the
/// frames it sends and requires unmasked ones, a server the reverse (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that accepted the connection.
    Server,
    /// The side that opened it.
    Client,
}

/// Reads one frame head from the front of `buf`, or `None` if it is not all there yet.
///
/// Every check that needs only the head happens here, before any payload is buffered: a
/// length above `max_payload` is refused with 1009 at once, so a declared 2^63-byte frame
/// costs nothing (RUSTSEC-2022-0035).
pub(crate) fn decode_head(
    buf: &mut BytesMut,
    role: Role,
    rsv1_allowed: bool,
    max_payload: u64,
) -> Result<Option<FrameHead>, Error> {
    let Some(&[b0, b1]) = buf.get(..2) else { return Ok(None) };
    let masked = b1 & 0x80 != 0;
    let (len_size, len7) = match b1 & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let head_len = 2 + len_size + if masked { 4 } else { 0 };
    if buf.len() < head_len {
        return Ok(None);
    }
    if b0 & 0x30 != 0 || (b0 & 0x40 != 0 && !rsv1_allowed) {
        return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "reserved bits set"));
    }
    let Some(opcode) = OpCode::from_bits(b0 & 0x0F) else {
        return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "reserved opcode"));
    };
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    match (role, masked) {
        (Role::Server, false) => {
            return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "unmasked client frame"));
        }
        (Role::Client, true) => {
            return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "masked server frame"));
        }
        _ => {}
    }
    let len = match len7 {
        Some(n) => n,
        None if len_size == 2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        None => {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&buf[2..10]);
            let n = u64::from_be_bytes(bytes);
            if n >> 63 != 0 {
                return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "frame length over 2^63"));
            }
            n
        }
    };
    if opcode.is_control() {
        if !fin {
            return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "fragmented control frame"));
        }
        if len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "control frame over 125 bytes"));
        }
        if rsv1 {
            return Err(Error::protocol(CloseCode::PROTOCOL_ERROR, "compressed control frame"));
        }
    } else if len > max_payload {
        return Err(Error::too_big());
    }
    let mask = masked.then(|| {
        let at = head_len - 4;
        [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
    });
    buf.advance(head_len);
    Ok(Some(FrameHead { fin, rsv1, opcode, mask, len }))
}

/// XORs `data` with `key`, as if `data` began `offset` bytes into a frame's payload.
///
/// Eight bytes at a time through a `u64` rather than byte by byte: masking touches every
/// byte of every client frame, and this way it stays safe code.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Appends one frame to `out`. A client passes a fresh mask key for every frame.
pub(crate) fn encode_frame(
    out: &mut BytesMut,
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    out.reserve(14 + payload.len());
    encode_head(out, opcode, fin, rsv1, mask, payload.len());
    let start = out.len();
    out.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Appends the head of a frame whose payload is `len` bytes: all that precedes the payload,
/// the mask key included.
pub(crate) fn encode_head(
    out: &mut BytesMut,
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    out.reserve(14);
    out.put_u8(u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.put_u8(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(mask_bit | 0x7E);
        out.put_u16(len);
    } else {
        out.put_u8(mask_bit | 0x7F);
        out.put_u64(len as u64);
    }
    if let Some(key) = mask {
        out.put_slice(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_the_bytewise_definition_at_every_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..=255).collect();
        for offset in 0..4 {
            let mut fast = data.clone();
            apply_mask(&mut fast, key, offset);
            let slow: Vec<u8> =
                data.iter().enumerate().map(|(i, b)| b ^ key[(i + offset) % 4]).collect();
            assert_eq!(fast, slow, "offset {offset}");
        }
    }

    #[test]
    fn heads_round_trip_for_every_length_encoding() {
        for len in [0, 125, 126, 65535, 65536, 1 << 20] {
            let payload = vec![7u8; len];
            let mut out = BytesMut::new();
            encode_frame(&mut out, OpCode::Binary, true, false, Some([1, 2, 3, 4]), &payload);
            let head = decode_head(&mut out, Role::Server, false, u64::MAX).unwrap().unwrap();
            assert_eq!(head.len, len as u64);
            assert_eq!(head.opcode, OpCode::Binary);
            let mut body = out.to_vec();
            apply_mask(&mut body, head.mask.unwrap(), 0);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn a_huge_declared_length_is_refused_from_the_head_alone() {
        let mut buf = BytesMut::from(
            &[0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4][..],
        );
        let err = decode_head(&mut buf, Role::Server, false, 16 << 20).unwrap_err();
        assert_eq!(err.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
        let mut buf = BytesMut::from(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4][..]);
        let err = decode_head(&mut buf, Role::Server, false, u64::MAX).unwrap_err();
        assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    }

    #[test]
    fn roles_enforce_masking_and_reserved_bits() {
        let mut unmasked = BytesMut::from(&[0x81, 0x00][..]);
        assert!(decode_head(&mut unmasked, Role::Server, false, 10).is_err());
        let mut masked = BytesMut::from(&[0x81, 0x80, 0, 0, 0, 0][..]);
        assert!(decode_head(&mut masked, Role::Client, false, 10).is_err());
        let mut rsv1 = BytesMut::from(&[0xC1, 0x00][..]);
        assert!(decode_head(&mut rsv1, Role::Client, false, 10).is_err());
        let mut rsv1 = BytesMut::from(&[0xC1, 0x00][..]);
        assert!(decode_head(&mut rsv1, Role::Client, true, 10).unwrap().unwrap().rsv1);
        let mut ping = BytesMut::from(&[0x09, 0x00][..]);
        assert!(decode_head(&mut ping, Role::Client, false, 10).is_err(), "fragmented ping");
    }
}
