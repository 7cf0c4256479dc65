//! Requests (heads, bodies, pipelines) from arbitrary bytes: no panic, bounded work, and
//! the same outcome whether the bytes arrive whole, split in two, or one byte per read.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tandem_proto::{BodyDecoder, BodyEvent, RequestParser};

/// What a connection would have made of the bytes: each message's head and body, then the
/// first error, after which nothing more is read.
#[derive(Debug, PartialEq)]
enum Event {
    Head(String, String, Vec<(String, Vec<u8>)>),
    Body(Vec<u8>),
    Trailers(usize),
    Error(tandem_proto::ErrorKind),
}

fn run(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<Event> {
    let mut events = Vec::new();
    let mut parser = RequestParser::new();
    let mut body: Option<(BodyDecoder, Vec<u8>)> = None;
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            if let Some((decoder, data)) = &mut body {
                match decoder.decode(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(BodyEvent::Data(d))) => data.extend_from_slice(&d),
                    Ok(Some(BodyEvent::Trailers(t))) => events.push(Event::Trailers(t.len())),
                    Ok(Some(BodyEvent::End)) => {
                        events.push(Event::Body(std::mem::take(data)));
                        body = None;
                    }
                    Err(e) => {
                        events.push(Event::Error(e.kind()));
                        return events;
                    }
                }
            } else {
                match parser.parse(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(head)) => {
                        // Every accepted target converts to a `Uri` as sent.
                        let uri = head.uri();
                        if head.target().starts_with('/') {
                            assert_eq!(uri.path_and_query().map(|p| p.as_str()), Some(head.target()));
                        }
                        let fields = head.fields().iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
                        assert_eq!(head.fields().to_header_map().len(), head.fields().len());
                        events.push(Event::Head(head.method().to_string(), head.target().to_owned(), fields));
                        body = Some((BodyDecoder::new(head.framing()), Vec::new()));
                    }
                    Err(e) => {
                        events.push(Event::Error(e.kind()));
                        return events;
                    }
                }
            }
        }
    }
    events
}

/// What must not depend on how the bytes were split: the messages dispatched. A delivery
/// may refuse a head before its last line has arrived (httparse sees the bad byte in one
/// read) while another is still waiting for that line; so a final error is left out of the
/// comparison, and any difference in what was dispatched before it is a failure.
fn dispatched(events: &[Event]) -> &[Event] {
    match events.last() {
        Some(Event::Error(_)) => &events[..events.len() - 1],
        _ => events,
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&mut std::iter::once(data));
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(split);
    let halves = run(&mut [a, b].into_iter());
    assert_eq!(dispatched(&whole), dispatched(&halves), "split at {split}");
    if data.len() <= 4096 {
        let bytes = run(&mut data.chunks(1));
        assert_eq!(dispatched(&whole), dispatched(&bytes), "one byte per read");
    }
});
