//! Parses an HTTP/1.1 request with `tandem-proto` alone and prints what it says, or why it
//! was refused.
//!
//! ```text
//! cargo run --example parse_request
//! printf 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' | cargo run --example parse_request -- -
//! ```

use std::io::Read;

use tandem_http::{
    bytes::BytesMut,
    proto::{BodyDecoder, BodyEvent, RequestParser},
};

const SAMPLE: &[u8] = b"POST /hello/world?lang=en HTTP/1.1\r\n\
Host: example.com\r\n\
User-Agent: tandem-example\r\n\
Transfer-Encoding: chunked\r\n\
\r\n\
6\r\nTandem\r\n0\r\n\r\n";

fn main() {
    let mut input = Vec::new();
    if std::env::args().nth(1).as_deref() == Some("-") {
        std::io::stdin().read_to_end(&mut input).expect("reading stdin");
    } else {
        input.extend_from_slice(SAMPLE);
    }
    let mut buf = BytesMut::from(&input[..]);
    let head = match RequestParser::new().parse(&mut buf) {
        Ok(Some(head)) => head,
        Ok(None) => return println!("incomplete head: {} bytes so far", buf.len()),
        Err(err) => return println!("refused: {err} (answer {} and close)", err.status()),
    };
    println!("{} {} {:?}", head.method(), head.target(), head.version());
    println!("path: {}  query: {:?}", head.path(), head.query());
    for (name, value) in head.fields().iter() {
        println!("  {name}: {}", String::from_utf8_lossy(value));
    }
    println!("framing: {:?}  keep-alive: {}", head.framing(), head.keep_alive());
    let mut body = BodyDecoder::new(head.framing());
    loop {
        match body.decode(&mut buf) {
            Ok(Some(BodyEvent::Data(data))) => {
                println!("body: {:?}", String::from_utf8_lossy(&data));
            }
            Ok(Some(BodyEvent::Trailers(t))) => println!("trailers: {t:?}"),
            Ok(Some(BodyEvent::End)) => break println!("end of message"),
            Ok(None) => break println!("body incomplete"),
            Err(err) => break println!("refused body: {err} (answer {} and close)", err.status()),
        }
    }
}
