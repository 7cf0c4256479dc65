//! Request smuggling at the connection level (issue 13): every hostile request of
//! `docs/security.md` (its request vectors and checklist A), each sent with a second, valid request appended
//! in the same write, and the body errors a handler meets only once it has started reading.
//!
//! Every case runs on its own connection and appends `GET /secret/{n}`, where `n` is the
//! case's index, so each case has its own counter and the cases can run side by side on one
//! server. After a rejection the server must answer once, say `Connection: close`, close,
//! and never dispatch the appended request. A case that must be accepted appends the same
//! request with `Connection: close`, so the connection ends once it is served, exactly once.
//!
//! The tables collect their failures and report them all at once. No case sleeps: the
//! split cases wait on a `Notify` the handler fires, and every wait is bounded by
//! [`TIMEOUT`].

use std::{net::SocketAddr, sync::Arc};

use futures_util::StreamExt;
use tandem_web::{Application, HttpError, Request, Response};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
    time::{Instant, timeout_at},
};

use crate::support::{Counter, Resp, Server, TIMEOUT, parse_response, within};

/// Cases run at once on one server.
const CONCURRENCY: usize = 32;

/// What a case must lead to.
#[derive(Clone, Debug)]
enum Expect {
    /// `before` requests are answered 200 first (A 28: valid, then invalid); then the
    /// refusal with this status, which says `Connection: close`, and the server closes.
    /// The appended request is never dispatched.
    Refused { before: usize, status: u16 },
    /// Answered 200, then closed because the request asked for it (HTTP/1.0, `Connection:
    /// close`); the appended request is never dispatched.
    AnsweredThenClosed,
    /// Every request is served, the appended one exactly once: `responses` final responses,
    /// all 200, the first with `body` when given.
    Served { responses: usize, body: Option<Vec<u8>> },
    /// A body error met by a handler that has started reading: one response with this
    /// status and body (the handler's own answer, or the error's), then the server closes.
    /// `says_close`: the handler saw the error, so the response itself must say
    /// `Connection: close`; otherwise the close right after it is enough.
    BodyError { status: u16, body: Option<&'static str>, says_close: bool },
}

/// One step of what a case sends.
enum Step {
    Send(Vec<u8>),
    /// Wait until the case's handler has started reading its body.
    AwaitHandler,
}

struct Case {
    name: String,
    steps: Vec<Step>,
    expect: Expect,
}

/// Which request is appended: the smuggled one that must never run, or a last one that
/// must run once and asks the server to close after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Appended {
    Smuggled,
    Last,
}

fn appended(n: usize, kind: Appended) -> Vec<u8> {
    match kind {
        Appended::Smuggled => format!("GET /secret/{n} HTTP/1.1\r\nHost: t\r\n\r\n"),
        Appended::Last => {
            format!("GET /secret/{n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        }
    }
    .into_bytes()
}

/// A table being built: each case gets the next index for its appended request.
#[derive(Default)]
struct Table {
    cases: Vec<Case>,
}

impl Table {
    fn push(&mut self, name: impl Into<String>, bytes: &[u8], expect: Expect) {
        let n = self.cases.len();
        let kind = match expect {
            Expect::Served { .. } => Appended::Last,
            _ => Appended::Smuggled,
        };
        let mut all = bytes.to_vec();
        all.extend_from_slice(&appended(n, kind));
        self.cases.push(Case { name: name.into(), steps: vec![Step::Send(all)], expect });
    }

    fn refused(&mut self, name: impl Into<String>, status: u16, bytes: &[u8]) {
        self.push(name, bytes, Expect::Refused { before: 0, status });
    }

    fn served(
        &mut self,
        name: impl Into<String>,
        responses: usize,
        body: Option<&[u8]>,
        bytes: &[u8],
    ) {
        self.push(name, bytes, Expect::Served { responses, body: body.map(<[u8]>::to_vec) });
    }
}

/// `POST / HTTP/1.1` with `Host: t`, then `fields` (each line with its CRLF), then `body`.
fn post(fields: &[u8], body: &[u8]) -> Vec<u8> {
    post_to("/", fields, body)
}

fn post_to(path: &str, fields: &[u8], body: &[u8]) -> Vec<u8> {
    [format!("POST {path} HTTP/1.1\r\nHost: t\r\n").as_bytes(), fields, b"\r\n", body].concat()
}

/// A chunked body of `hello`.
const HELLO_CHUNKED: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";

/// Table 1: `/` reads the whole body (`req.read()`), `/ignore` never reads it, and
/// `/secret/{n}` counts the calls of case `n`.
fn request_app(secrets: &Arc<Vec<Counter>>) -> Application {
    let mut app = Application::new();
    app.add_route(None, "/", |mut req: Request| async move {
        Ok::<_, HttpError>(Response::bytes(req.read().await?))
    });
    app.add_route(None, "/ignore", |_req: Request| async { "ignored" });
    add_secret(&mut app, secrets);
    app
}

fn add_secret(app: &mut Application, secrets: &Arc<Vec<Counter>>) {
    let secrets = Arc::clone(secrets);
    app.add_route(None, "/secret/{n}", move |req: Request| {
        secrets[case_index(&req)].hit();
        async { "secret" }
    });
}

fn case_index(req: &Request) -> usize {
    req.match_info("n").and_then(|n| n.parse().ok()).expect("a case index")
}

/// V1–V11: framing fields.
fn framing_cases(t: &mut Table) {
    // V1, A 1.
    t.refused(
        "V1 CL then TE",
        400,
        &post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    );
    t.refused(
        "V1 TE then CL",
        400,
        &post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"),
    );
    // V2.
    t.refused(
        "V2 CL with TE identity",
        400,
        &post(b"Content-Length: 1\r\nTransfer-Encoding: identity\r\n", b"Z"),
    );
    // V3, V4, V5, A 2.
    t.refused("V3 CL 1 then CL 0", 400, &post(b"Content-Length: 1\r\nContent-Length: 0\r\n", b"Z"));
    t.refused("V3 CL 0 then CL 1", 400, &post(b"Content-Length: 0\r\nContent-Length: 1\r\n", b"Z"));
    t.refused(
        "V4 equal duplicate CL",
        400,
        &post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    );
    t.refused("V5 CL list", 400, &post(b"Content-Length: 5, 5\r\n", b"hello"));
    // V6, A 3.
    for value in ["+5", "-0", "+0_1", "0x5", "1Z", " 4 2", "", "\u{b9}", "\u{1d7d9}"] {
        let fields = format!("Content-Length: {value}\r\n");
        t.refused(format!("V6 CL {value:?}"), 400, &post(fields.as_bytes(), b"hello"));
    }
    t.served(
        "A 3 CL 010 is ten",
        2,
        Some(b"0123456789"),
        &post(b"Content-Length: 010\r\n", b"0123456789"),
    );
    // V7, A 4.
    t.refused(
        "V7 CL overflow",
        400,
        &post(b"Content-Length: 1000000000000000000000\r\n", b"hello"),
    );
    // V8, V9, A 5.
    for fields in [
        &b"Transfer-Encoding: chunked, deflate\r\n"[..],
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: deflate\r\n",
        b"Transfer-Encoding: pigeons\r\n",
        b"Transfer-Encoding: ,  \t ,\r\n",
        b"Transfer-Encoding: chunked, chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ] {
        t.refused(format!("V8/V9 {}", fields.escape_ascii()), 400, &post(fields, HELLO_CHUNKED));
    }
    // V10: obfuscated Transfer-Encoding, refused rather than read as an unknown field
    // (which would leave the chunked body to be parsed as the next request).
    for fields in [
        &b"Transfer-Encoding : chunked\r\n"[..],
        b"Transfer-Encoding:\x0bchunked\r\n",
        b"Transfer-Encoding: \xa0chunked\xa0\r\n",
        b"Transfer-Encoding: \"chunked\"\r\n",
        b"Transfer-Encoding: chunk\r\n",
        b"Transfer-Encoding: chunkedchunked\r\n",
        b"Transfer-Encoding: chunked123\r\n",
        b"Transfer\r-Encoding: chunked\r\n",
        b"Transfer Encoding: chunked\r\n",
    ] {
        t.refused(format!("V10 {}", fields.escape_ascii()), 400, &post(fields, HELLO_CHUNKED));
    }
    // V10b: legal spellings mean chunked; beside a Content-Length they are V1.
    let hello = Some(&b"hello"[..]);
    for te in [
        "TrAnSFer-EnCODinG: cHuNkeD",
        "Transfer-Encoding: ,chunked",
        "Transfer-Encoding: deflate, chunked",
    ] {
        let fields = format!("{te}\r\n");
        // `deflate, chunked` is framed as chunked; the deflate coding is not undone, so only
        // the framing is checked.
        let body = if te.contains("deflate") { None } else { hello };
        t.served(format!("V10b/A 5 {te}"), 2, body, &post(fields.as_bytes(), HELLO_CHUNKED));
        let with_cl = format!("Content-Length: 5\r\n{te}\r\n");
        t.refused(format!("V10b {te} with CL"), 400, &post(with_cl.as_bytes(), HELLO_CHUNKED));
    }
    // Unknown fields that only look like Transfer-Encoding: the Content-Length frames.
    t.served(
        "V10b Transfer_Encoding is an unknown field",
        2,
        hello,
        &post(b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n", b"hello"),
    );
    t.served(
        "V10b Content-Encoding: chunked is not framing",
        2,
        Some(b"ignored"),
        &post_to(
            "/ignore",
            b"Content-Encoding: chunked\r\nContent-Length: 10\r\n",
            b"0\r\n\r\nXXXXX",
        ),
    );
    // V11, A 7: obs-fold.
    t.refused(
        "V11 obs-fold after TE",
        400,
        &post(b"Transfer-Encoding: chunked\r\n  abc\r\n", HELLO_CHUNKED),
    );
    t.refused("V11 obs-folded CL", 400, &post(b"test: line\r\n Content-Length: 5\r\n", b"hello"));
    t.refused("A 7 obs-folded Host", 400, b"GET / HTTP/1.1\r\nHost: a\r\n  b\r\n\r\n");
    t.refused("A 7 tab-folded field", 400, &post(b"X: a\r\n\tContent-Length: 5\r\n", b"hello"));
}

/// V10: a list not ending in the bare token `chunked`, which llhttp, h11 and aiohttp do not
/// read as chunked: a front end framing it by length, or not at all, would see the chunked
/// body as requests of its own.
fn te_list_cases(t: &mut Table) {
    for value in ["chunked,", "chunked , ", "chunked;q=1", "gzip, chunked;x=1"] {
        let fields = format!("Transfer-Encoding: {value}\r\n");
        t.refused(format!("V10 TE {value:?}"), 400, &post(fields.as_bytes(), HELLO_CHUNKED));
    }
}

/// V12–V17: line endings, bytes in fields, field names.
fn field_cases(t: &mut Table) {
    // V12, A 8: bare LF.
    t.refused("V12 bare LF everywhere", 400, b"GET / HTTP/1.1\nHost: t\n\n");
    t.refused("V12 bare LF in the request line", 400, b"GET /\nHTTP/1.1\r\nHost: t\r\n\r\n");
    t.refused("V12 bare LF after a field", 400, b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n");
    t.refused("V12 bare LF ending the head", 400, b"GET / HTTP/1.1\r\nHost: t\r\n\n");
    // V13, A 8: bare CR.
    t.refused(
        "V13 bare CR before TE",
        400,
        &post(b"X-Abc: \rxTransfer-Encoding: chunked\r\n", HELLO_CHUNKED),
    );
    t.refused(
        "V13 bare CR in a value",
        400,
        &post(b"Visible: :/\rSmuggled: :)\r\nContent-Length: 0\r\n", b""),
    );
    // V14, A 9: control bytes in values.
    for byte in [0x00u8, 0x01, 0x1f, 0x7f] {
        let fields = [&b"Header: v"[..], &[byte], b"alue\r\nContent-Length: 0\r\n"].concat();
        t.refused(format!("V14 value with {byte:#04x}"), 400, &post(&fields, b""));
    }
    t.refused(
        "V14 Host with 0x01",
        400,
        b"GET / HTTP/1.1\r\nHost: trusted.example\x01@bad.test\r\n\r\n",
    );
    // V15: obs-text in a value is accepted.
    t.served(
        "V15 obs-text in a value",
        2,
        None,
        b"GET / HTTP/1.1\r\nHost: t\r\nX: caf\xe9\r\n\r\n",
    );
    // V16, A 10: whitespace before the colon, or leading the first field.
    t.refused("V16 space before the colon of CL", 400, &post(b"Content-Length : 4\r\n", b"abcd"));
    t.refused("V16 tab before a colon", 400, &post(b"Foo\t: bar\r\nContent-Length: 0\r\n", b""));
    t.refused(
        "V16 tab leading the first field",
        400,
        b"POST / HTTP/1.1\r\n\tContent-Length: 1\r\nHost: t\r\n\r\nZ",
    );
    t.refused("V16 space leading the first field", 400, b"GET / HTTP/1.1\r\n Host: t\r\n\r\n");
    // V17, A 11: field names.
    for fields in [&b"\xffoo: bar\r\n"[..], b": ignored\r\n", b":\r\n", b"Content\rLength: 3\r\n"] {
        t.refused(format!("V17 name {}", fields.escape_ascii()), 400, &post(fields, b"abc"));
    }
    t.refused("V17 no colon", 400, &post(b"Content-Length 10\r\n", b"0123456789"));
    for separator in "\"(),/;<=>?@[\\]{}".chars() {
        let fields = format!("X{separator}Y: v\r\nContent-Length: 0\r\n");
        t.refused(format!("V17 name with {separator:?}"), 400, &post(fields.as_bytes(), b""));
    }
}

/// V18–V26: chunked bodies. `/` reads them, so these are body errors met by the handler.
fn chunked_cases(t: &mut Table) {
    let chunked = b"Transfer-Encoding: chunked\r\n";
    // V18, A 12.
    for size in ["0_2e", "0x1", "+1", "-1", "", "1 ", "2 erfrferferf", "ZZ"] {
        let body = format!("{size}\r\nx\r\n0\r\n\r\n");
        t.refused(format!("V18 chunk size {size:?}"), 400, &post(chunked, body.as_bytes()));
    }
    // V19, A 13: `/` reads with the 1 MiB limit, which these sizes pass at their sixth
    // digit, before they are too long or overflow: 413 from the size line, at once.
    for size in ["f0000000000000003", "FFFFFFFFFFFFFFFFF", "fffffffffffffffe"] {
        let body = format!("{size}\r\nabc\r\n0\r\n\r\n");
        t.refused(format!("V19 chunk size {size}"), 413, &post(chunked, body.as_bytes()));
    }
    // Too long while small: malformed.
    let body = b"00000000000000003\r\nabc\r\n0\r\n\r\n";
    t.refused("V19 chunk size of 17 hex digits", 400, &post(chunked, body));
    // V20, A 14, A 15: bare LF or CR in a chunk extension.
    t.refused(
        "V20 bare LF in a chunk extension",
        400,
        &post(chunked, b"2;\nxx\r\nab\r\n0\r\n\r\n"),
    );
    t.refused(
        "V20 CR CR before a chunk extension",
        400,
        &post(chunked, b"5\r\r;ABCD\r\n34\r\nhello\r\n0\r\n\r\n"),
    );
    t.refused(
        "V20 CR CR after a chunk extension",
        400,
        &post(chunked, b"41;a=b\r\rXXX\r\n0\r\n\r\n"),
    );
    // V18: whitespace before a size line's CRLF, after an extension as after the size.
    for line in ["1;a ", "1;a=b\t", "1;a=\"b\" "] {
        let body = format!("{line}\r\nx\r\n0\r\n\r\n");
        t.refused(format!("V18 chunk size line {line:?}"), 400, &post(chunked, body.as_bytes()));
    }
    // V21, A 16: extension floods, on one chunk and across many.
    let flood = [&b"1;"[..], &vec![b'a'; 1024 * 1024], b"\r\nx\r\n0\r\n\r\n"].concat();
    t.refused("V21 1 MiB chunk extension", 400, &post(chunked, &flood));
    let spread = format!("{}0\r\n\r\n", format!("1;{}\r\nx\r\n", "a".repeat(1024)).repeat(17));
    t.refused("A 16 17 KiB of extensions across chunks", 400, &post(chunked, spread.as_bytes()));
    // V22, A 17.
    t.refused("V22 chunk data then 0", 400, &post(chunked, b"5\r\nABCDE0\r\n\r\n"));
    t.refused("V22 chunk data then XX", 400, &post(chunked, b"5\r\nABCDEXX0\r\n\r\n"));
    // V23, A 18: the appended request arrives as the rest of the chunk, and then no CRLF.
    t.refused("V23 chunk shorter than its size", 400, &post(chunked, b"a\r\nabc"));
    // V24.
    t.refused("V24 no last chunk", 400, &post(chunked, b"3\r\nfoo\r\n\r\n"));
    // V25, A 19: trailers.
    let hello = Some(&b"hello"[..]);
    t.served("V25 a legal trailer", 2, hello, &post(chunked, b"5\r\nhello\r\n0\r\nX: y\r\n\r\n"));
    t.served(
        "V25/A 19 framing trailers change nothing",
        2,
        hello,
        &post(chunked, b"5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n\r\n"),
    );
    t.refused(
        "V25 bare LF in a trailer",
        400,
        &post(chunked, b"5\r\nhello\r\n0\r\nbad\ntrailer\r\n\r\n"),
    );
    let many = format!("5\r\nhello\r\n0\r\n{}\r\n", "X: y\r\n".repeat(129));
    t.refused("V25 129 trailer lines", 400, &post(chunked, many.as_bytes()));
    let large =
        format!("5\r\nhello\r\n0\r\n{}\r\n", format!("X: {}\r\n", "y".repeat(1000)).repeat(17));
    t.refused("V25 17 KiB of trailers", 400, &post(chunked, large.as_bytes()));
    // V26: a trailer line that looks like a request line is a trailer.
    t.served(
        "V26 body ends on \\r\\nX:POST",
        2,
        hello,
        &post(chunked, b"5\r\nhello\r\n0\r\nX:POST / HTTP/1.1\r\n\r\n"),
    );
    // A 20: 1 MiB of 1-byte chunks.
    let bytes = [&"1\r\na\r\n".repeat(1024 * 1024).into_bytes()[..], b"0\r\n\r\n"].concat();
    t.served(
        "A 20 1 MiB of 1-byte chunks",
        2,
        Some(&vec![b'a'; 1024 * 1024]),
        &post(chunked, &bytes),
    );
}

/// V27–V40 and the rest of checklist A: messages, request lines, limits.
fn message_cases(t: &mut Table) {
    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    // V27, A 28.
    t.served("V27 pipelined", 3, None, &[GET, GET].concat());
    t.push(
        "V27/A 28 valid then invalid",
        &[GET, b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"]
            .concat(),
        Expect::Refused { before: 1, status: 400 },
    );
    // V28.
    t.served(
        "V28 pipelined after Content-Length: 0",
        2,
        Some(b""),
        &post(b"Content-Length: 0\r\n", b""),
    );
    // V29, A 27.
    t.push(
        "V29 data after Connection: close",
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Expect::AnsweredThenClosed,
    );
    // V30, A 26.
    t.push("V30 HTTP/1.0 closes", b"GET / HTTP/1.0\r\n\r\n", Expect::AnsweredThenClosed);
    t.served(
        "V30 HTTP/1.0 keep-alive",
        2,
        None,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    // V31, A 26.
    t.refused(
        "V31 HTTP/1.0 with TE",
        400,
        &[&b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"[..], HELLO_CHUNKED].concat(),
    );
    // V32.
    t.refused("V32 Expect: bogus", 417, &post(b"Expect: bogus\r\nContent-Length: 5\r\n", b"hello"));
    let two = b"Expect: bogus\r\nExpect: 100-continue\r\nContent-Length: 5\r\n";
    t.refused("V32 Expect: bogus, then 100-continue in a second field", 417, &post(two, b"hello"));
    t.served(
        "V32 Expect: 100-CONTINUE",
        2,
        Some(b"hello"),
        &post(b"Expect: 100-CONTINUE\r\nContent-Length: 5\r\n", b"hello"),
    );
    // V33, A 24: methods.
    for line in [&b"G=\":<>(e),[T];?\" /get HTTP/1.1"[..], b"GET/: HTTP/1.1", b"\x00 / HTTP/1.1"] {
        t.refused(
            format!("V33 {}", line.escape_ascii()),
            400,
            &[line, b"\r\nHost: t\r\n\r\n"].concat(),
        );
    }
    // A lowercase method is a valid token, and not GET.
    t.served("V33 lowercase method", 2, None, b"get / HTTP/1.1\r\nHost: t\r\n\r\n");
    // V34, A 24: versions.
    for version in [
        &b"HTTP/1.32"[..],
        b"HTTP/1\xc3\xb61",
        b"HTTP/4294967295.255",
        b"HTTP/\r\r1.1",
        b"HT/11",
        b"HTTP/2.0",
        b"HTTP/0.9",
    ] {
        t.refused(
            format!("V34 {}", version.escape_ascii()),
            400,
            &[b"GET / ", version, b"\r\nHost: t\r\n\r\n"].concat(),
        );
    }
    // V35, A 25: targets.
    for target in [&b"!"[..], b"/a b", b"/caf\xc3\xa9", b"/path?#frag", b"/a\x01b", b"/a\x7fb"] {
        t.refused(
            format!("V35 target {}", target.escape_ascii()),
            400,
            &[b"GET ", target, b" HTTP/1.1\r\nHost: t\r\n\r\n"].concat(),
        );
    }
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(8200));
    t.refused("V35/A 21 request line past 8190 bytes", 414, long.as_bytes());
    // V36, A 25.
    t.served(
        "V36 absolute-form",
        2,
        None,
        b"GET http://other.example/ HTTP/1.1\r\nHost: good.example\r\n\r\n",
    );
    // V37, A 23: Host.
    t.refused("V37 no Host", 400, b"GET / HTTP/1.1\r\n\r\n");
    t.refused("V37 two Host", 400, b"GET / HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n");
    t.refused("A 23 two Host in two cases", 400, b"GET / HTTP/1.1\r\nHost: t\r\nhost: t\r\n\r\n");
    t.refused("V37 Host: a, b", 400, b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n");
    t.refused("A 23 Host: a b", 400, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
    // V38.
    t.refused("V38 double spaces", 400, b"GET  /  HTTP/1.1\r\nHost: t\r\n\r\n");
}

/// V39–V40: upgrades answered without switching, and bodies on a GET.
fn tunnel_and_get_body_cases(t: &mut Table) {
    // V39: an upgrade (or CONNECT) answered without switching: a proxy may be tunnelling
    // already, so what follows is never parsed as a request.
    t.push(
        "V39 upgrade answered 200",
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        Expect::AnsweredThenClosed,
    );
    t.push(
        "V39 upgrade with a body answered 200",
        &post(b"Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n", b"hello"),
        Expect::AnsweredThenClosed,
    );
    t.push(
        "V39 upgrade with an empty Upgrade field after it answered 200",
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\nUpgrade: \r\n\r\n",
        Expect::AnsweredThenClosed,
    );
    t.push(
        "V39 Upgrade without Connection: upgrade answered 200",
        b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n",
        Expect::AnsweredThenClosed,
    );
    t.push(
        "V39 Upgrade on HTTP/1.0 keep-alive answered 200",
        b"GET / HTTP/1.0\r\nConnection: keep-alive, upgrade\r\nUpgrade: websocket\r\n\r\n",
        Expect::AnsweredThenClosed,
    );
    t.refused(
        "V39 CONNECT answered without a tunnel",
        404,
        b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
    );
    // V40: a GET body is framed by its length, read or not.
    t.served(
        "V40 GET with a body",
        2,
        Some(b"hello"),
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    t.served(
        "V40 GET with an unread body",
        2,
        Some(b"ignored"),
        b"GET /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    // A 21, A 22: size limits, 431 by the documented policy.
    let field = format!("GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n", "a".repeat(8200));
    t.refused("A 21 field past 8190 bytes", 431, field.as_bytes());
    let fields = format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", "X: y\r\n".repeat(129));
    t.refused("A 22 129 more fields", 431, fields.as_bytes());
    let fields = format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", "X: y\r\n".repeat(10_000));
    t.refused("A 22 10000 fields", 431, fields.as_bytes());
}

/// A 6: defparam/smuggler's Transfer-Encoding mutations, each beside `Content-Length: 10`
/// with a body that is a whole chunked body for 5 bytes and runs on for 5 more. So every
/// mutation is refused (a legal TE beside a CL is V1), except those that make an unknown
/// field, which the length frames: then both requests are served.
fn mutation_cases(t: &mut Table) {
    const BODY: &[u8] = b"0\r\n\r\nXXXXX";
    let request = |line: &[u8]| {
        post_to("/ignore", &[b"Content-Length: 10\r\n", line, b"\r\n"].concat(), BODY)
    };
    let named: [(&str, &[u8]); 32] = [
        ("nameprefix1", b"Foo: bar\r\n Transfer-Encoding: chunked"),
        ("tabprefix1", b"Transfer-Encoding:\tchunked"),
        ("tabprefix2", b"Transfer-Encoding\t:\tchunked"),
        ("space1", b"Transfer-Encoding : chunked"),
        ("spacejoin1", b"Transfer Encoding: chunked"),
        ("smashed", b"Transfer Encoding:chunked"),
        ("valueprefix1", b"Transfer-Encoding:  chunked"),
        ("vertprefix1", b"Transfer-Encoding:\x0bchunked"),
        ("commaCow", b"Transfer-Encoding: chunked, cow"),
        ("cowComma", b"Transfer-Encoding: cow, chunked"),
        ("linewrapped1", b"Transfer-Encoding:\n chunked"),
        ("quoted", b"Transfer-Encoding: \"chunked\""),
        ("aposed", b"Transfer-Encoding: 'chunked'"),
        ("lazygrep", b"Transfer-Encoding: chunk"),
        ("0dsuffix", b"Transfer-Encoding: chunked\r"),
        ("tabsuffix", b"Transfer-Encoding: chunked\t"),
        ("revdualchunk", b"Transfer-Encoding: chunked, identity"),
        ("0dspam", b"Transfer\r-Encoding: chunked"),
        ("nested", b"Transfer-Encoding: cow chunked bar"),
        ("spaceFF", b"Transfer-Encoding:\xffchunked"),
        ("accentCH", b"Transfer-Encoding: ch\x96nked"),
        ("accentTE", b"Transf\x82r-Encoding: chunked"),
        ("x-rout", b"X:X\rTransfer-Encoding: chunked"),
        ("x-nout", b"X:X\nTransfer-Encoding: chunked"),
        ("dualchunk", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity"),
        ("badwrap", b"Foo: bar\r\n\tTransfer-Encoding: chunked"),
        ("badsetupCR", b"Foo: bar\rTransfer-Encoding: chunked"),
        ("badsetupLF", b"Foo: bar\nTransfer-Encoding: chunked"),
        ("vertwrap", b"Transfer-Encoding: \n\x0bchunked"),
        ("tabwrap", b"Transfer-Encoding: \n\tchunked"),
        ("multiCase", b"TrAnSFer-EnCODinG: cHuNkeD"),
        ("UPPERCASE", b"TRANSFER-ENCODING: CHUNKED"),
    ];
    for (name, line) in named {
        t.refused(format!("A 6 {name}"), 400, &request(line));
    }
    for (name, line) in [
        ("underjoin1", &b"Transfer_Encoding: chunked"[..]),
        ("contentEnc", b"Content-Encoding: chunked"),
    ] {
        t.served(format!("A 6 {name}"), 2, Some(b"ignored"), &request(line));
    }
    // The byte sweeps, at smuggler's positions around the field.
    let positions: [(&str, &[u8], &[u8]); 10] = [
        ("midspace", b"Transfer-Encoding:", b"chunked"),
        ("postspace", b"Transfer-Encoding", b": chunked"),
        ("prespace", b"", b"Transfer-Encoding: chunked"),
        ("endspace", b"Transfer-Encoding: chunked", b""),
        ("xprespace", b"X: X", b"Transfer-Encoding: chunked"),
        ("endspacex", b"Transfer-Encoding: chunked", b"X: X"),
        ("rxprespace", b"X: X\r", b"Transfer-Encoding: chunked"),
        ("xnprespace", b"X: X", b"\nTransfer-Encoding: chunked"),
        ("endspacerx", b"Transfer-Encoding: chunked\r", b"X: X"),
        ("endspacexn", b"Transfer-Encoding: chunked", b"\nX: X"),
    ];
    for (position, before, after) in positions {
        for byte in (0x01..=0x20).chain(0x7f..=0xff) {
            let line = [before, &[byte], after].concat();
            let name = format!("A 6 {position}-{byte:02x}");
            // Only inside the value of `X` is the byte legal (whitespace or obs-text), and
            // then the line is one unknown field.
            if position == "xprespace" && matches!(byte, b'\t' | b' ' | 0x80..=0xff) {
                t.served(name, 2, Some(b"ignored"), &request(&line));
            } else {
                t.refused(name, 400, &request(&line));
            }
        }
    }
}

/// Table 2: `/echo/{n}` reads the whole body, `/stream/{n}` reads it chunk by chunk and
/// turns an error into its own 200, `/ignore/{n}` never reads it, `/partial/{n}` reads one
/// chunk and returns. Each tells case `n`'s `Notify` once it has started reading.
fn body_app(secrets: &Arc<Vec<Counter>>, started: &Arc<Vec<Notify>>) -> Application {
    let mut app = Application::new();
    let s = Arc::clone(started);
    app.add_post("/echo/{n}", move |mut req: Request| {
        let started = Arc::clone(&s);
        async move {
            started[case_index(&req)].notify_one();
            Ok::<_, HttpError>(Response::bytes(req.read().await?))
        }
    });
    let s = Arc::clone(started);
    app.add_post("/stream/{n}", move |mut req: Request| {
        let started = Arc::clone(&s);
        async move {
            let n = case_index(&req);
            loop {
                let chunk = req.content().chunk().await;
                started[n].notify_one();
                match chunk {
                    Ok(Some(_)) => {}
                    Ok(None) => return "complete",
                    Err(_) => return "handled",
                }
            }
        }
    });
    let s = Arc::clone(started);
    app.add_post("/ignore/{n}", move |req: Request| {
        s[case_index(&req)].notify_one();
        async { "ignored" }
    });
    let s = Arc::clone(started);
    app.add_post("/partial/{n}", move |mut req: Request| {
        let started = Arc::clone(&s);
        async move {
            let _ = req.content().chunk().await;
            started[case_index(&req)].notify_one();
            "partial"
        }
    });
    add_secret(&mut app, secrets);
    app
}

/// How a broken body is refused by a handler that reads all of it with the 1 MiB limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Malformed framing: 400.
    Malformed,
    /// A chunk size past the limit, and refused even without one (too many digits, or a
    /// body past `u64::MAX` with the first chunk): 413 from the size line where the limit
    /// applies, and an error for a streamed read, which has none.
    TooLarge,
    /// A chunk size past what is left of the limit only: 413 from the size line. A streamed
    /// read has no limit, so there it is a legal chunk and the case does not apply.
    PastTheLimit,
}

/// Chunked framing that breaks after a valid first chunk of 5 bytes.
const BROKEN_BODIES: [(&str, &[u8], Refusal); 13] = [
    ("bare LF in a chunk extension", b"2;\nxx\r\n0\r\n\r\n", Refusal::Malformed),
    ("CR CR before a chunk extension", b"5\r\r;ABCD\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk data not followed by CRLF", b"5\r\nABCDE0\r\n\r\n", Refusal::Malformed),
    ("chunk data followed by XX", b"5\r\nABCDEXX0\r\n\r\n", Refusal::Malformed),
    ("chunk size +3", b"+3\r\nabc\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk size 0x3", b"0x3\r\nabc\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk size -1", b"-1\r\na\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk size with a leading space", b" 3\r\nabc\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk size with a space inside", b"3 3\r\nabc\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk size of 17 hex digits", b"00000000000000003\r\nabc\r\n0\r\n\r\n", Refusal::Malformed),
    ("chunk size overflowing 64 bits", b"10000000000000000\r\nabc\r\n0\r\n\r\n", Refusal::TooLarge),
    ("chunk size ffffffffffffffff", b"ffffffffffffffff\r\n", Refusal::TooLarge),
    ("chunk size past what is left of the limit", b"100000\r\n", Refusal::PastTheLimit),
];

fn body_error_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for route in ["echo", "stream", "ignore", "partial"] {
        for (what, broken, refusal) in BROKEN_BODIES {
            if route == "stream" && refusal == Refusal::PastTheLimit {
                continue;
            }
            for split in [false, true] {
                let n = cases.len();
                let head = format!(
                    "POST /{route}/{n} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                )
                .into_bytes();
                let rest = [broken, &appended(n, Appended::Smuggled)].concat();
                let steps = if split {
                    vec![Step::Send(head), Step::AwaitHandler, Step::Send(rest)]
                } else {
                    vec![Step::Send([head, rest].concat())]
                };
                // The handlers that see the error must say close; the others cannot know.
                let (status, body, says_close) = match route {
                    "echo" => (if refusal == Refusal::Malformed { 400 } else { 413 }, None, true),
                    "stream" => (200, Some("handled"), true),
                    "ignore" => (200, Some("ignored"), false),
                    _ => (200, Some("partial"), false),
                };
                let expect = Expect::BodyError { status, body, says_close };
                let how = if split { "after the handler started" } else { "in one write" };
                cases.push(Case { name: format!("/{route}: {what}, {how}"), steps, expect });
            }
        }
    }
    cases
}

/// What came back on a case's connection.
struct Exchange {
    received: Vec<u8>,
    /// Whether the server closed within the bound.
    closed: bool,
    /// Whether the case's handler never said it had started reading.
    never_started: bool,
}

async fn exchange(addr: SocketAddr, steps: Vec<Step>, started: Option<&Notify>) -> Exchange {
    let stream = within(TcpStream::connect(addr)).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let deadline = Instant::now() + TIMEOUT;
    // The write half is handed back rather than dropped, which would half-close the
    // connection: the server must act on the bytes themselves, never on an EOF.
    let writer = async move {
        let mut never_started = false;
        for step in steps {
            match step {
                Step::Send(bytes) => {
                    // The server may close (and reset) before taking all of a flood.
                    if !matches!(timeout_at(deadline, write.write_all(&bytes)).await, Ok(Ok(()))) {
                        break;
                    }
                }
                Step::AwaitHandler => {
                    let notify = started.expect("a split case has a Notify");
                    never_started = timeout_at(deadline, notify.notified()).await.is_err();
                }
            }
        }
        (write, never_started)
    };
    let reader = async move {
        let mut received = Vec::new();
        let closed = loop {
            received.reserve(16 * 1024);
            match timeout_at(deadline, read.read_buf(&mut received)).await {
                // A reset counts as the close.
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(_)) => {}
                Err(_) => break false,
            }
        };
        (received, closed)
    };
    let ((write, never_started), (received, closed)) = tokio::join!(writer, reader);
    drop(write);
    Exchange { received, closed, never_started }
}

/// The final responses (interim 1xx left out) and how many bytes follow the last of them.
fn responses(received: &[u8], closed: bool) -> (Vec<Resp>, usize) {
    let mut at = 0;
    let mut finals = Vec::new();
    while let Some((resp, used)) = parse_response(&received[at..], false, closed) {
        at += used;
        if resp.status >= 200 {
            finals.push(resp);
        }
    }
    (finals, received.len() - at)
}

fn says_close(resp: &Resp) -> bool {
    resp.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// Checks one case; every problem found, each naming the case.
fn check(case: &Case, exchange: &Exchange, secret_runs: usize) -> Vec<String> {
    let name = &case.name;
    let (finals, leftover) = responses(&exchange.received, exchange.closed);
    let statuses: Vec<u16> = finals.iter().map(|r| r.status).collect();
    let mut text = String::from_utf8_lossy(&exchange.received).into_owned();
    if text.len() > 400 {
        let mut end = 400;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    let mut problems = Vec::new();
    let mut fail = |what: String| {
        problems.push(format!("{name}: {what}; statuses {statuses:?}; got {text:?}"));
    };
    if exchange.never_started {
        fail("the handler never started reading".into());
    }
    if !exchange.closed {
        fail(format!("the connection was still open after {TIMEOUT:?}"));
    }
    if leftover != 0 {
        fail(format!("{leftover} bytes after the last whole response"));
    }
    match &case.expect {
        Expect::Refused { before, status } => {
            let refusal = finals.get(*before);
            if finals.len() != before + 1 {
                fail(format!("{} responses, not {}", finals.len(), before + 1));
            }
            if finals.iter().take(*before).any(|r| r.status != 200) {
                fail("the requests before the bad one were not all answered 200".into());
            }
            if refusal.map(|r| r.status) != Some(*status) {
                fail(format!("the refusal is not a {status}"));
            }
            if refusal.is_some_and(|r| !says_close(r)) {
                fail("the refusal does not say Connection: close".into());
            }
            if secret_runs != 0 {
                fail(format!("the appended request was dispatched {secret_runs} times"));
            }
        }
        Expect::AnsweredThenClosed => {
            if statuses != [200] {
                fail("not one 200 alone".into());
            }
            if secret_runs != 0 {
                fail(format!("the appended request was dispatched {secret_runs} times"));
            }
        }
        Expect::Served { responses, body } => {
            if finals.len() != *responses || finals.iter().any(|r| r.status != 200) {
                fail(format!("not {responses} responses, all 200"));
            }
            if let Some((body, first)) = body.as_ref().zip(finals.first())
                && first.body != *body
            {
                fail(format!(
                    "the first body is {} bytes, not the {} expected",
                    first.body.len(),
                    body.len()
                ));
            }
            if finals.last().is_some_and(|r| r.body != b"secret") {
                fail("the last response is not the appended request's".into());
            }
            if secret_runs != 1 {
                fail(format!("the appended request was dispatched {secret_runs} times, not once"));
            }
        }
        Expect::BodyError { status, body, says_close: must_say } => {
            if statuses != [*status] {
                fail(format!("not one {status} alone"));
            }
            if body.zip(finals.first()).is_some_and(|(body, first)| first.body != body.as_bytes()) {
                fail(format!("the body is not {body:?}"));
            }
            if *must_say && finals.first().is_some_and(|r| !says_close(r)) {
                fail("the response does not say Connection: close".into());
            }
            if secret_runs != 0 {
                fail(format!("the appended request was dispatched {secret_runs} times"));
            }
        }
    }
    problems
}

/// Runs `cases` side by side against `server`; returns every problem found.
async fn run(
    server: &Server,
    cases: Vec<Case>,
    secrets: &[Counter],
    started: Option<&[Notify]>,
) -> Vec<String> {
    let addr = server.addr;
    let results: Vec<(usize, Case, Exchange)> =
        futures_util::stream::iter(cases.into_iter().enumerate())
            .map(|(n, case)| async move {
                let Case { name, steps, expect } = case;
                let exchange = exchange(addr, steps, started.map(|s| &s[n])).await;
                (n, Case { name, steps: Vec::new(), expect }, exchange)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut results = results;
    results.sort_by_key(|(n, ..)| *n);
    results
        .iter()
        .flat_map(|(n, case, exchange)| check(case, exchange, secrets[*n].get()))
        .collect()
}

fn report(table: &str, total: usize, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{table}: {} problems in {total} cases:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every request vector and checklist A item with a request appended: refused ones never let it
/// through, accepted ones serve it exactly once.
#[tokio::test]
async fn hostile_requests_never_let_the_next_one_through() {
    let mut table = Table::default();
    framing_cases(&mut table);
    te_list_cases(&mut table);
    field_cases(&mut table);
    chunked_cases(&mut table);
    message_cases(&mut table);
    tunnel_and_get_body_cases(&mut table);
    let cases = table.cases;
    let total = cases.len();
    let secrets: Arc<Vec<Counter>> = Arc::new((0..total).map(|_| Counter::default()).collect());
    let server = Server::start(request_app(&secrets)).await;
    let problems = run(&server, cases, &secrets, None).await;
    server.stop().await;
    report("hostile requests", total, &problems);
}

/// A 6: smuggler's Transfer-Encoding mutations and byte sweeps beside a Content-Length.
#[tokio::test]
async fn transfer_encoding_mutations_are_refused_or_framed_by_length() {
    let mut table = Table::default();
    mutation_cases(&mut table);
    let cases = table.cases;
    let total = cases.len();
    let secrets: Arc<Vec<Counter>> = Arc::new((0..total).map(|_| Counter::default()).collect());
    let server = Server::start(request_app(&secrets)).await;
    let problems = run(&server, cases, &secrets, None).await;
    server.stop().await;
    report("Transfer-Encoding mutations", total, &problems);
}

/// Chunked bodies that break after a valid first chunk, sent to handlers that read all of
/// the body, stream it and swallow the error, ignore it, or read a part: whatever the
/// handler does, one response, then the close, and the request behind never runs.
#[tokio::test]
async fn a_body_error_is_final_for_the_connection() {
    let cases = body_error_cases();
    let total = cases.len();
    let secrets: Arc<Vec<Counter>> = Arc::new((0..total).map(|_| Counter::default()).collect());
    let started: Arc<Vec<Notify>> = Arc::new((0..total).map(|_| Notify::new()).collect());
    let server = Server::start(body_app(&secrets, &started)).await;
    let problems = run(&server, cases, &secrets, Some(&started)).await;
    server.stop().await;
    report("body errors", total, &problems);
}
