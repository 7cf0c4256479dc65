//! Response vectors (`docs/security.md`, R1–R8 and C45–C46) through `ResponseParser`, with
//! the same three deliveries as requests. The response side is lenient where aiohttp's
//! client is (bare LF, repeated fields) and strict where smuggling lives (control bytes,
//! status codes, conflicting lengths).

use http::Method;
use tandem_proto::{BodyFraming, ErrorKind as K};

use crate::support::{Outcome, try_check_response};

/// A check of one response input.
type Check = fn(&Outcome) -> Result<(), String>;

/// One response head plus `rest`.
fn response(status_line: &str, lines: &str, rest: &[u8]) -> Vec<u8> {
    [format!("{status_line}\r\n{lines}\r\n").as_bytes(), rest].concat()
}

/// Exactly one message, framed so, with this body, and nothing wrong.
fn one(outcome: &Outcome, framing: BodyFraming, body: &[u8]) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.framing == framing && message.body == body, "{message:?}");
    Ok(())
}

fn refused(outcome: &Outcome, kind: K) -> Result<(), String> {
    ensure!(outcome.kind() == Some(kind) && outcome.messages.is_empty(), "{outcome:?}");
    Ok(())
}

/// The statuses, framings and bodies of several messages, and no error.
fn several(outcome: &Outcome, expected: &[(u16, BodyFraming, &[u8])]) -> Result<(), String> {
    ensure!(outcome.error.is_none(), "{outcome:?}");
    let seen: Vec<(u16, BodyFraming, &[u8])> =
        outcome.messages.iter().map(|m| (m.status, m.framing, m.body.as_slice())).collect();
    ensure!(seen == expected, "{outcome:?}");
    Ok(())
}

#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Vec<u8>, Method, Check)> {
    let get = || Method::GET;
    let fields = "X: y\r\n".repeat(10_000);
    let status_line = format!("HTTP/1.1 200 {}", "a".repeat(1 << 20));
    vec![
        ("bare LF is accepted", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok".to_vec(), get(), |o| one(o, BodyFraming::Length(2), b"ok")),
        ("duplicate Content-Type is accepted", response("HTTP/1.1 200 OK", "Content-Type: a\r\nContent-Type: b\r\nContent-Length: 0\r\n", b""), get(), duplicate_content_type),
        ("equal duplicate Content-Length is accepted", response("HTTP/1.1 200 OK", "Content-Length: 2\r\nContent-Length: 2\r\n", b"ok"), get(), |o| one(o, BodyFraming::Length(2), b"ok")),
        ("NUL in a value (CVE-2026-34520)", response("HTTP/1.1 200 OK", "X: a\x00b\r\nContent-Length: 0\r\n", b""), get(), |o| refused(o, K::HeaderValue)),
        ("status 2000", response("HTTP/1.1 2000 OK", "Content-Length: 0\r\n", b""), get(), |o| refused(o, K::Status)),
        ("status 20", response("HTTP/1.1 20 OK", "Content-Length: 0\r\n", b""), get(), |o| refused(o, K::Status)),
        ("status 099", response("HTTP/1.1 099 OK", "Content-Length: 0\r\n", b""), get(), |o| refused(o, K::Status)),
        ("differing duplicate Content-Length", response("HTTP/1.1 200 OK", "Content-Length: 2\r\nContent-Length: 3\r\n", b"abc"), get(), |o| refused(o, K::ContentLength)),
        ("204 with a length has no body", [&response("HTTP/1.1 204 No Content", "Content-Length: 10\r\n", b"")[..], b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"].concat(), get(), |o| several(o, &[(204, BodyFraming::Empty, b""), (200, BodyFraming::Length(2), b"ok")])),
        ("304 with a length has no body", response("HTTP/1.1 304 Not Modified", "Content-Length: 10\r\n", b""), get(), |o| one(o, BodyFraming::Empty, b"")),
        ("HEAD response with a length has no body", response("HTTP/1.1 200 OK", "Content-Length: 10\r\n", b""), Method::HEAD, |o| one(o, BodyFraming::Empty, b"")),
        ("2xx to CONNECT has no body", response("HTTP/1.1 200 Connection established", "", b""), Method::CONNECT, |o| one(o, BodyFraming::Empty, b"")),
        ("100 and 103 before the final response", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), get(), |o| several(o, &[(100, BodyFraming::Empty, b""), (103, BodyFraming::Empty, b""), (200, BodyFraming::Length(2), b"ok")])),
        ("101 is an upgrade", response("HTTP/1.1 101 Switching Protocols", "Connection: upgrade\r\nUpgrade: websocket\r\n", b""), get(), switching_protocols),
        ("CL and TE: chunked wins, no reuse", response("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"3\r\nabc\r\n0\r\n\r\n"), get(), |o| reuse(o, BodyFraming::Chunked, b"abc", false)),
        ("no CL or TE: until close, no reuse", response("HTTP/1.1 200 OK", "", b"all of it"), get(), |o| reuse(o, BodyFraming::UntilClose, b"all of it", false)),
        ("TE gzip alone: until close", response("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n", b"zz"), get(), |o| reuse(o, BodyFraming::UntilClose, b"zz", false)),
        ("HTTP/1.0 keep-alive with a length", response("HTTP/1.0 200 OK", "Connection: keep-alive\r\nContent-Length: 2\r\n", b"ok"), get(), |o| reuse(o, BodyFraming::Length(2), b"ok", true)),
        ("C46 10 000 fields", response("HTTP/1.1 200 OK", &fields, b""), get(), |o| refused(o, K::TooManyHeaders)),
        // The line limit comes before the head cap, whole and split alike.
        ("C46 1 MiB status line", response(&status_line, "", b""), get(), |o| refused(o, K::RequestLineTooLong)),
        ("obs-fold is refused", response("HTTP/1.1 200 OK", "X: a\r\n b\r\nContent-Length: 0\r\n", b""), get(), |o| { ensure!(o.error.is_some() && o.messages.is_empty(), "{o:?}"); Ok(()) }),
        ("C45 length 5, 2 bytes, then close", response("HTTP/1.1 200 OK", "Content-Length: 5\r\n", b"ab"), get(), |o| incomplete(o, BodyFraming::Length(5), b"ab")),
        ("length 10^10 with a tiny body", response("HTTP/1.1 200 OK", "Content-Length: 10000000000\r\n", b"tiny"), get(), |o| incomplete(o, BodyFraming::Length(10_000_000_000), b"tiny")),
        // Whole, httparse skips both empty lines; split, the scanner once took the second
        // CRLF for the end of a head with an empty start line (fixed in 1ee0606).
        ("two empty lines before the status line", [&b"\r\n\r\n"[..], &response("HTTP/1.1 200 OK", "Content-Length: 2\r\n", b"ok")].concat(), get(), |o| one(o, BodyFraming::Length(2), b"ok")),
    ]
}

fn duplicate_content_type(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    let types: Vec<&[u8]> = message
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_slice())
        .collect();
    ensure!(types == [b"a", b"b"], "{message:?}");
    Ok(())
}

fn switching_protocols(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.status == 101 && message.upgrade.is_some(), "{message:?}");
    ensure!(message.framing == BodyFraming::Empty, "{message:?}");
    Ok(())
}

fn reuse(outcome: &Outcome, framing: BodyFraming, body: &[u8], keep: bool) -> Result<(), String> {
    one(outcome, framing, body)?;
    ensure!(outcome.messages[0].keep_alive == keep, "{outcome:?}");
    Ok(())
}

/// The head and `body` arrived, then the connection closed: a payload error, never a
/// truncated success. A declared 10 GB length reserves nothing; `BodyDecoder` hands out
/// the bytes it is given.
fn incomplete(outcome: &Outcome, framing: BodyFraming, body: &[u8]) -> Result<(), String> {
    let [message] = &outcome.messages[..] else { return Err(format!("{outcome:?}")) };
    ensure!(outcome.kind() == Some(K::IncompleteBody), "{outcome:?}");
    ensure!(message.framing == framing && message.body == body, "{message:?}");
    Ok(())
}

#[test]
fn response_vectors() {
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, input, method, check)| {
            let result = try_check_response(input, method);
            result.and_then(|o| check(&o)).err().map(|e| format!("[{name}] {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
