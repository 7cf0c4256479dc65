//! Chunked bodies from arbitrary bytes: no panic or overflow, and the same data, trailers
//! and error whether the bytes arrive whole or one byte per read.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tandem_proto::{BodyDecoder, BodyEvent, BodyFraming};

fn run(chunks: &mut dyn Iterator<Item = &[u8]>) -> (Vec<u8>, Vec<String>, Result<bool, tandem_proto::ErrorKind>) {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), Vec::new());
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(BodyEvent::Data(d))) => data.extend_from_slice(&d),
                Ok(Some(BodyEvent::Trailers(t))) => trailers.extend(t.keys().map(|k| k.to_string())),
                Ok(Some(BodyEvent::End)) => return (data, trailers, Ok(true)),
                Err(e) => return (data, trailers, Err(e.kind())),
            }
        }
    }
    (data, trailers, decoder.decode_eof().map(|_| false).map_err(|e| e.kind()))
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&mut std::iter::once(data));
    if data.len() <= 4096 {
        assert_eq!(whole, run(&mut data.chunks(1)));
    }
});
