//! Parsing and encoding costs of `tandem-proto`, beside raw httparse on the same inputs.
//!
//! `cargo xtask bench proto`. The target: our parse path costs at most 1.3× raw
//! `httparse::Request::parse`. Our path includes what a server really pays and httparse
//! alone does not do: copying the bytes into the connection's buffer, finding the head's end
//! with the CRLF-only and limit checks, the framing rules (CL/TE/Host/Connection/Expect,
//! singletons), recording field positions, and splitting the head off the buffer.

#![allow(missing_docs, reason = "criterion's macros generate undocumented items")]

use std::{hint::black_box, mem::MaybeUninit};

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tandem_proto::{BodyFraming, Limits, RequestParser, ResponseParts, encode_response_head};

#[path = "inputs.rs"]
mod inputs;

fn parse(c: &mut Criterion) {
    let inputs = inputs::all();
    let mut group = c.benchmark_group("parse_request");
    for (name, input) in &inputs {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("tandem", name), input, |b, input| {
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::with_capacity(8192);
            b.iter(|| {
                buf.extend_from_slice(input);
                let head = parser.parse(&mut buf).unwrap().unwrap();
                black_box(head);
            });
        });
        group.bench_with_input(BenchmarkId::new("httparse", name), input, |b, input| {
            b.iter(|| {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut req = httparse::Request::new(&mut headers);
                black_box(req.parse(black_box(input)).unwrap());
            });
        });
        group.bench_with_input(BenchmarkId::new("httparse_uninit", name), input, |b, input| {
            b.iter(|| {
                let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
                let mut req = httparse::Request::new(&mut []);
                black_box(req.parse_with_uninit_headers(black_box(input), &mut headers).unwrap());
            });
        });
    }
    group.finish();
}

/// A 16 KiB head arriving one byte per read. httparse alone re-parses from the start on
/// every read (quadratic); the scanner resumes where it stopped (linear).
fn dribbled_head(c: &mut Criterion) {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    while head.len() < 16 * 1024 {
        head.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let limits = Limits::default().max_headers(1000);
    let mut group = c.benchmark_group("dribbled_head_16k");
    group.sample_size(10);
    group.bench_function("tandem", |b| {
        b.iter(|| {
            let mut parser = RequestParser::with_limits(limits);
            let mut buf = BytesMut::with_capacity(head.len());
            for &byte in &head {
                buf.extend_from_slice(&[byte]);
                if let Some(h) = parser.parse(&mut buf).unwrap() {
                    return black_box(h);
                }
            }
            unreachable!("the head is complete");
        });
    });
    group.bench_function("httparse_reparse", |b| {
        b.iter(|| {
            let mut headers = vec![httparse::EMPTY_HEADER; 1000];
            for end in 1..=head.len() {
                let mut req = httparse::Request::new(&mut headers);
                if req.parse(&head[..end]).unwrap().is_complete() {
                    return black_box(end);
                }
            }
            unreachable!("the head is complete");
        });
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(header::SERVER, HeaderValue::from_static("tandem"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-request-id", HeaderValue::from_static("5f2b1c"));
    let parts =
        ResponseParts::new(StatusCode::OK, &headers, BodyFraming::Length(13)).with_date(false);
    let mut buf = BytesMut::with_capacity(4096);
    c.bench_function("encode_response_head_4_headers", |b| {
        b.iter(|| {
            buf.clear();
            black_box(encode_response_head(black_box(&parts), &mut buf).unwrap());
        });
    });
}

criterion_group!(benches, parse, dribbled_head, encode);
criterion_main!(benches);
