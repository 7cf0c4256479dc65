//! Instructions per parse, for `cargo xtask bench proto-count`, which runs this binary under
//! callgrind. Instruction counts do not move with the machine's load, so the ratio of our
//! parse path to raw httparse can be quoted even on a busy, noisy machine.
//!
//! ```text
//! proto_count <tandem|httparse|httparse_uninit> <wrk|techempower|browser|32_headers> <iterations>
//! ```
//!
//! Run without arguments (as `cargo bench` does) it parses each input once and exits.

#![allow(missing_docs, reason = "a bench binary")]

use std::{hint::black_box, mem::MaybeUninit};

use bytes::BytesMut;
use tandem_proto::RequestParser;

#[path = "inputs.rs"]
mod inputs;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [which, input, iterations] = &args[..] else {
        for (_, input) in inputs::all() {
            parse_tandem(&input, 1);
        }
        return println!(
            "usage: proto_count <tandem|httparse|httparse_uninit> <input> <iterations>"
        );
    };
    let input = inputs::all().into_iter().find(|(name, _)| name == input).expect("a known input").1;
    let n: usize = iterations.parse().expect("an iteration count");
    match which.as_str() {
        "tandem" => parse_tandem(&input, n),
        "httparse" => {
            for _ in 0..n {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut req = httparse::Request::new(&mut headers);
                black_box(req.parse(black_box(&input)).unwrap());
            }
        }
        "httparse_uninit" => {
            for _ in 0..n {
                let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
                let mut req = httparse::Request::new(&mut []);
                black_box(req.parse_with_uninit_headers(black_box(&input), &mut headers).unwrap());
            }
        }
        other => panic!("unknown parser {other}"),
    }
}

/// The server's path: bytes land in the connection's buffer, the head is parsed and split off.
fn parse_tandem(input: &[u8], n: usize) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::with_capacity(8192);
    for _ in 0..n {
        buf.extend_from_slice(input);
        black_box(parser.parse(&mut buf).unwrap().unwrap());
    }
}
