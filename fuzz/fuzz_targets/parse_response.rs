//! Response heads from arbitrary bytes: no panic, and the same outcome whole or split.
#![no_main]

use bytes::BytesMut;
use http::Method;
use libfuzzer_sys::fuzz_target;
use tandem_proto::ResponseParser;

fn run(chunks: &mut dyn Iterator<Item = &[u8]>, method: &Method) -> Result<Option<String>, tandem_proto::ErrorKind> {
    let mut parser = ResponseParser::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for chunk in chunks {
        fed += chunk.len();
        buf.extend_from_slice(chunk);
        match parser.parse(&mut buf, method) {
            Ok(None) => {}
            Ok(Some(head)) => {
                let _ = head.fields().to_header_map();
                return Ok(Some(format!(
                    "{} {:?} {:?} {} {:?} head_len={}",
                    head.status(),
                    head.reason(),
                    head.framing(),
                    head.keep_alive(),
                    head.fields(),
                    fed - buf.len()
                )));
            }
            Err(e) => return Err(e.kind()),
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else { return };
    let method = match selector % 3 {
        0 => Method::GET,
        1 => Method::HEAD,
        _ => Method::CONNECT,
    };
    let whole = run(&mut std::iter::once(data), &method);
    let split = usize::from(selector).min(data.len());
    let (a, b) = data.split_at(split);
    let halves = run(&mut [a, b].into_iter(), &method);
    // A delivery may refuse a head before its last line has arrived while another is still
    // waiting for that line, so errors are compared only against complete heads: what one
    // delivery accepts, the other must accept identically, never refuse.
    match (&whole, &halves) {
        (Ok(Some(w)), Ok(Some(h))) => assert_eq!(w, h, "split at {split}"),
        (Ok(Some(_)), Err(_)) | (Err(_), Ok(Some(_))) => {
            panic!("split at {split}: {whole:?} against {halves:?}")
        }
        _ => {}
    }
});
