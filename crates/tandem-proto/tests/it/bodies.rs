//! Chunked bodies and trailers from `docs/security.md`: checklist A items 12–20 and vectors
//! V18–V26. Every input is a `POST / HTTP/1.1` with `Transfer-Encoding: chunked`.

use tandem_proto::{BodyFraming, ErrorKind as K};

use crate::support::{Case, Expect, Outcome, post, run_cases};

const fn refuse(kind: K) -> Expect {
    Expect::Refuse(kind, 400)
}

/// A chunked request whose body is `body`.
fn chunked(body: &[u8]) -> Vec<u8> {
    post(b"Transfer-Encoding: chunked\r\n", body)
}

/// A12–A13, A17–A18, V18–V19, V22–V24: chunk sizes and chunk data.
#[rustfmt::skip]
pub(crate) fn size_cases() -> Vec<Case> {
    let mut cases = vec![
        Case::new("A13 V19 size f0000000000000003 overflows", chunked(b"f0000000000000003\r\nabc\r\n0\r\n\r\nGET /sneaky HTTP/1.1\r\n\r\n"), refuse(K::ChunkSize)),
        Case::new("A13 V19 size of 17 hex digits", chunked(b"FFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"), refuse(K::ChunkSize)),
        Case::new("A13 V19 size fffffffffffffffe, then close", chunked(b"fffffffffffffffe\r\nabc"), Expect::Check(|o| incomplete_after(o, b"abc"))),
        Case::new("A13 size ffffffffffffffff, then close", chunked(b"ffffffffffffffff\r\nabc"), Expect::Check(|o| incomplete_after(o, b"abc"))),
        Case::new("size of 16 digits with leading zeros", chunked(b"0000000000000003\r\nabc\r\n0\r\n\r\n"), Expect::One(BodyFraming::Chunked, b"abc")),
        Case::new("size in upper-case hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n"), Expect::One(BodyFraming::Chunked, b"0123456789")),
        Case::new("A17 V22 data then XX", chunked(b"5\r\nABCDEXX0\r\n\r\n"), refuse(K::ChunkData)),
        Case::new("V22 data then the next size", chunked(b"5\r\nABCDE0\r\n\r\n"), refuse(K::ChunkData)),
        Case::new("A18 V23 size over the data, then close", chunked(b"a\r\nabc"), Expect::Check(|o| incomplete_after(o, b"abc"))),
        Case::new("V24 missing last-chunk", chunked(b"3\r\nfoo\r\n\r\n"), refuse(K::ChunkSize)),
        Case::new("last-chunk without its empty line, then close", chunked(b"3\r\nfoo\r\n0\r\n"), Expect::Check(|o| incomplete_after(o, b"foo"))),
    ];
    let bad: [&[u8]; 8] = [b"0_2e", b"0x1", b"+1", b"-1", b"", b"1 ", b"ZZ", b"2 erfrferferf"];
    for size in bad {
        let name = format!("A12 V18 size {:?}", String::from_utf8_lossy(size));
        cases.push(Case::new(name, chunked(&[size, b"\r\nxx\r\n0\r\n\r\n"].concat()), refuse(K::ChunkSize)));
    }
    cases
}

/// The head was dispatched, `body` arrived, and the connection closed before the end.
fn incomplete_after(outcome: &Outcome, body: &[u8]) -> Result<(), String> {
    let [message] = &outcome.messages[..] else { return Err(format!("{outcome:?}")) };
    ensure!(outcome.kind() == Some(K::IncompleteBody), "{outcome:?}");
    ensure!(message.body == body, "{message:?}");
    Ok(())
}

/// A14–A16, V20–V21: chunk extensions.
#[rustfmt::skip]
pub(crate) fn extension_cases() -> Vec<Case> {
    let cve_2024_52304 = b"GET / HTTP/1.1\r\nHost: localhost:5001\r\nTransfer-Encoding: chunked\r\n\r\n2;\nxx\r\n4c\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: localhost:5001\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let flood = [&b"1;"[..], &vec![b'a'; 1 << 20], b"\r\nx\r\n0\r\n\r\n"].concat();
    // 200 chunks with 100 bytes of extension each: no one line is long, the body is.
    let many = [format!("1;{}\r\nx\r\n", "e".repeat(99)).repeat(200).as_bytes(), b"0\r\n\r\n"].concat();
    vec![
        Case::new("A14 V20 bare LF in an extension (CVE-2024-52304)", cve_2024_52304.to_vec(), Expect::Check(no_admin)),
        Case::new("A15 V20 CR CR after the size", chunked(b"5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"), refuse(K::ChunkSize)),
        Case::new("V20 CR CR after an extension", chunked(b"41;a=b\r\rXXX\r\n0\r\n\r\n"), refuse(K::ChunkSize)),
        Case::new("V20 bare LF in a quoted extension", chunked(b"1;a=\"b\nc\"\r\nx\r\n0\r\n\r\n"), refuse(K::ChunkExtension)),
        Case::new("A16 V21 1 MiB extension", chunked(&flood), refuse(K::ChunkExtensionTooLarge)),
        Case::new("A16 20 KB of extensions over 200 chunks", chunked(&many), refuse(K::ChunkExtensionTooLarge)),
        Case::new("valid extensions", chunked(b"1;a=b;c=\"d e\"\r\nx\r\n0;last\r\n\r\n"), Expect::One(BodyFraming::Chunked, b"x")),
        Case::new("whitespace before an extension", chunked(b"1 ;a\r\nx\r\n0\r\n\r\n"), Expect::One(BodyFraming::Chunked, b"x")),
        Case::new("whitespace after an extension name, before CRLF", chunked(b"1;a \r\nx\r\n0\r\n\r\n"), refuse(K::ChunkExtension)),
        Case::new("whitespace after an extension value, before CRLF", chunked(b"1;a=b\t\r\nx\r\n0\r\n\r\n"), refuse(K::ChunkExtension)),
        Case::new("whitespace after a quoted extension, before CRLF", chunked(b"1;a=\"b\" \r\nx\r\n0\r\n\r\n"), refuse(K::ChunkExtension)),
    ]
}

/// The smuggled `/admin` is never read as a request: the body error ends the connection.
fn no_admin(outcome: &Outcome) -> Result<(), String> {
    ensure!(outcome.kind() == Some(K::ChunkExtension), "{outcome:?}");
    ensure!(outcome.targets() == ["/"], "{outcome:?}");
    Ok(())
}

/// A19–A20, V25–V26: trailers, and a body of a million one-byte chunks.
#[rustfmt::skip]
pub(crate) fn trailer_cases() -> Vec<Case> {
    let flood = [&b"0\r\n"[..], &b"X: y\r\n".repeat(100_000), b"\r\n"].concat();
    let framing = b"0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil.example\r\n\r\n";
    // A trailer section of exactly DEFAULT_MAX_TRAILER_SIZE bytes: four 4 KiB lines.
    let at_cap = [&b"0\r\n"[..], format!("X: {}\r\n", "v".repeat(4091)).repeat(4).as_bytes(), b"\r\n"].concat();
    let long_line = |len: usize| [&b"0\r\n"[..], format!("X: {}\r\n\r\n", "v".repeat(len - 3)).as_bytes()].concat();
    vec![
        Case::new("A19 V25 bare LF in a trailer", chunked(b"0\r\nbad\ntrailer\r\n\r\n"), refuse(K::Trailer)),
        Case::new("A19 V25 100 000 trailer lines", chunked(&flood), Expect::Refuse(K::TrailerTooLarge, 400)),
        Case::new("A19 V25 framing trailers are not merged", chunked(framing), Expect::Check(framing_trailers)),
        Case::new("V25 a legal trailer", chunked(b"1\r\nx\r\n0\r\nX: y\r\n\r\n"), Expect::Check(|o| one_trailer(o, "x", b"y"))),
        Case::new("V26 a request line as a trailer value", chunked(b"0\r\nX:POST / HTTP/1.1\r\n\r\n"), Expect::Check(|o| one_trailer(o, "x", b"POST / HTTP/1.1"))),
        Case::new("obs-fold in trailers", chunked(b"0\r\nX: a\r\n b\r\n\r\n"), refuse(K::Trailer)),
        Case::new("bare CR in a trailer", chunked(b"0\r\nX: a\rb\r\n\r\n"), refuse(K::Trailer)),
        Case::new("NUL in a trailer", chunked(b"0\r\nX: a\x00b\r\n\r\n"), refuse(K::Trailer)),
        Case::new("trailer with no colon", chunked(b"0\r\nX y\r\n\r\n"), refuse(K::Trailer)),
        // Lines over max_field_size are refused however they arrive (whole, this was once
        // accepted: only a line still arriving was measured).
        Case::new("trailer line of 9000 bytes", chunked(&long_line(9000)), Expect::Refuse(K::TrailerTooLarge, 400)),
        // One byte over the field limit, counted without the CRLF as in a head.
        Case::new("trailer line of 8191 bytes", chunked(&long_line(8191)), Expect::Refuse(K::TrailerTooLarge, 400)),
        // Exactly at the limit, accepted by every delivery, including a read that ends on
        // the CR of the final empty line.
        Case::new("trailer section of exactly 16 KiB", chunked(&at_cap), Expect::Check(|o| o.only().map(|_| ()))),
        Case::new("A20 1 MiB as one-byte chunks", chunked(&[&b"1\r\nA\r\n".repeat(1 << 20)[..], b"0\r\n\r\n"].concat()), Expect::Check(one_mib)),
    ]
}

/// A trailer named like a framing field or `Host` is reported as a trailer and changes
/// nothing in the head.
fn framing_trailers(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.field("host") == Some(&b"a"[..]), "{message:?}");
    ensure!(message.field("content-length").is_none(), "{message:?}");
    ensure!(message.framing == BodyFraming::Chunked && message.body.is_empty(), "{message:?}");
    ensure!(message.trailer("content-length") == Some(&b"5"[..]), "{message:?}");
    ensure!(message.trailer("host") == Some(&b"evil.example"[..]), "{message:?}");
    Ok(())
}

fn one_trailer(outcome: &Outcome, name: &str, value: &[u8]) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.trailers.len() == 1 && message.trailer(name) == Some(value), "{message:?}");
    Ok(())
}

fn one_mib(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.body.len() == 1 << 20, "{message:?}");
    ensure!(message.body.iter().all(|&b| b == b'A'), "{message:?}");
    Ok(())
}

/// Every case of this module, for the differential test.
pub(crate) fn all_cases() -> Vec<Case> {
    [size_cases(), extension_cases(), trailer_cases()].into_iter().flatten().collect()
}

#[test]
fn chunk_sizes_and_data() {
    run_cases(&size_cases());
}

#[test]
fn chunk_extensions() {
    run_cases(&extension_cases());
}

#[test]
fn trailers() {
    run_cases(&trailer_cases());
}
