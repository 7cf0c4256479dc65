//! Request heads from `docs/security.md`: checklist A items 1–11 and 21–28, vectors V1–V17
//! and V27–V40. Chunked bodies and trailers (A12–A20, V18–V26) are in `bodies.rs`.
//!
//! Each case is named after the items it covers. Expectations follow aiohttp-strict, except
//! for the size limits, where `Error::status` documents 414 and 431 (aiohttp answers 400).

use http::Version;
use tandem_proto::{BodyFraming, ErrorKind as K};

use crate::support::{Case, Expect, Outcome, get, post, run_cases};

const fn refuse(kind: K) -> Expect {
    Expect::Refuse(kind, 400)
}

/// A chunked body holding `abc`.
const ABC_CHUNKED: &[u8] = b"3\r\nabc\r\n0\r\n\r\n";
const CHUNKED_ABC: Expect = Expect::One(BodyFraming::Chunked, b"abc");

/// A1–A4, V1–V7, V40: Content-Length, alone and against Transfer-Encoding.
#[rustfmt::skip]
pub(crate) fn content_length_cases() -> Vec<Case> {
    let te_cl = b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n";
    let mut cases = vec![
        Case::new("A1 V1 CL then TE", post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), refuse(K::ContentLengthWithTransferEncoding)),
        Case::new("A1 V1 TE then CL", post(te_cl, b"0\r\n\r\n"), refuse(K::ContentLengthWithTransferEncoding)),
        Case::new("V2 CL with TE identity", post(b"Content-Length: 1\r\nTransfer-Encoding: identity\r\n", b"Z"), refuse(K::TransferEncoding)),
        Case::new("A2 V3 CL 1 then CL 0", post(b"Content-Length: 1\r\nContent-Length: 0\r\n", b"Z"), refuse(K::DuplicateHeader)),
        Case::new("A2 V3 CL 0 then CL 1", post(b"Content-Length: 0\r\nContent-Length: 1\r\n", b"Z"), refuse(K::DuplicateHeader)),
        Case::new("A2 V4 CL 5 twice", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), refuse(K::DuplicateHeader)),
        Case::new("V5 CL list 5, 5", post(b"Content-Length: 5, 5\r\n", b"hello"), refuse(K::ContentLength)),
        Case::new("A3 V6 CL 010 is ten", post(b"Content-Length: 010\r\n", b"0123456789"), Expect::One(BodyFraming::Length(10), b"0123456789")),
        Case::new("A4 V7 CL overflow", post(b"Content-Length: 1000000000000000000000\r\n", b"x"), refuse(K::ContentLength)),
        Case::new("CL 0 is no body", post(b"Content-Length: 0\r\n", b""), Expect::One(BodyFraming::Empty, b"")),
        Case::new("CL with a trailing tab", post(b"Content-Length: 5\t\r\n", b"hello"), Expect::One(BodyFraming::Length(5), b"hello")),
        Case::new("CL u64::MAX, then close", post(b"Content-Length: 18446744073709551615\r\n", b"abc"), Expect::Check(u64_max_length)),
        Case::new("V40 GET with a body by CL", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec(), Expect::One(BodyFraming::Length(5), b"hello")),
    ];
    let bad: [&[u8]; 11] = [b"+5", b"-0", b"+0_1", b"0x5", b"1Z", b"4 2", b" 4 2", b"", "¹".as_bytes(), "𝟙".as_bytes(), b"5;"];
    for value in bad {
        let line = [&b"Content-Length: "[..], value, b"\r\n"].concat();
        let name = format!("A3 V6 CL {:?}", String::from_utf8_lossy(value));
        cases.push(Case::new(name, post(&line, b"hello"), refuse(K::ContentLength)));
    }
    cases
}

fn u64_max_length(outcome: &Outcome) -> Result<(), String> {
    ensure!(outcome.kind() == Some(K::IncompleteBody), "{outcome:?}");
    let [message] = &outcome.messages[..] else { return Err(format!("{outcome:?}")) };
    ensure!(message.framing == BodyFraming::Length(u64::MAX), "{message:?}");
    ensure!(message.body == b"abc", "{message:?}");
    Ok(())
}

/// A5, V8–V10b: Transfer-Encoding lists. A6 (the smuggler mutations) is `smuggler.rs`.
#[rustfmt::skip]
pub(crate) fn transfer_encoding_cases() -> Vec<Case> {
    let te = |value: &str| format!("Transfer-Encoding: {value}\r\n").into_bytes();
    vec![
        Case::new("A5 V8 TE chunked, deflate", post(&te("chunked, deflate"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("A5 V8 TE chunked then deflate lines", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: deflate\r\n", ABC_CHUNKED), refuse(K::DuplicateHeader)),
        Case::new("A5 V8 TE pigeons", post(&te("pigeons"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("A5 V10 TE chunked123", post(&te("chunked123"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("A5 V9 TE chunked, chunked", post(&te("chunked, chunked"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("A5 V9 TE chunked on two lines", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", ABC_CHUNKED), refuse(K::DuplicateHeader)),
        Case::new("A5 V8 TE empty list , ,", post(&te(", ,"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V8 TE empty list with tab", post(b"Transfer-Encoding: ,  \t ,\r\n", ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10 TE identity", post(&te("identity"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10 TE quoted", post(&te("\"chunked\""), ABC_CHUNKED), refuse(K::TransferEncoding)),
        // Tandem refuses codings outside the IANA registry even before a final chunked;
        // llhttp and aiohttp accept `not, chunked` (see the differential allow-list).
        Case::new("V8 TE not, chunked", post(&te("not, chunked"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("A5 V8 TE deflate, chunked", post(&te("deflate, chunked"), ABC_CHUNKED), CHUNKED_ABC),
        Case::new("A5 V10b TE ,chunked", post(&te(",chunked"), ABC_CHUNKED), CHUNKED_ABC),
        // The list must end in the bare token: llhttp, h11 and aiohttp's Python parser do not
        // read these as chunked, so a front end may frame them by length or not at all.
        Case::new("V10 TE chunked, (trailing comma)", post(&te("chunked,"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10 TE chunked , with spaces", post(&te("chunked , "), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10 TE chunked;q=1", post(&te("chunked;q=1"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10 TE chunked; (empty parameter)", post(&te("chunked;"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10 TE gzip, chunked;x=1", post(&te("gzip, chunked;x=1"), ABC_CHUNKED), refuse(K::TransferEncoding)),
        Case::new("V10b TE case variants", post(b"TrAnSFer-EnCODinG: cHuNkeD\r\n", ABC_CHUNKED), CHUNKED_ABC),
        Case::new("V10b Transfer_Encoding is another header", post(b"Transfer_Encoding: chunked\r\nContent-Length: 13\r\n", ABC_CHUNKED), Expect::One(BodyFraming::Length(13), ABC_CHUNKED)),
        Case::new("V10b Content-Encoding: chunked is not framing", post(b"Content-Encoding: chunked\r\nContent-Length: 13\r\n", ABC_CHUNKED), Expect::One(BodyFraming::Length(13), ABC_CHUNKED)),
        Case::new("V10 Transfer-Encoding space colon", post(b"Transfer-Encoding : chunked\r\n", ABC_CHUNKED), refuse(K::HeaderName)),
    ]
}

/// A7–A11, V11–V17: line endings, field syntax and names.
#[rustfmt::skip]
pub(crate) fn field_syntax_cases() -> Vec<Case> {
    let cve_2023_37276 = b"POST / HTTP/1.1\r\nHost: localhost:8080\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n";
    let mut cases = vec![
        // A folded line starts with whitespace where a field name should be: `HeaderName`.
        Case::new("A7 V11 obs-fold after TE", post(b"Transfer-Encoding: chunked\r\n  abc\r\n", ABC_CHUNKED), refuse(K::HeaderName)),
        Case::new("A7 obs-fold of Host", b"GET / HTTP/1.1\r\nHost: a\r\n  b\r\n\r\n".to_vec(), refuse(K::HeaderName)),
        Case::new("A7 V11 obs-fold hiding CL", post(b"X: a\r\n Content-Length: 48\r\n", b""), refuse(K::HeaderName)),
        Case::new("A8 V12 bare LF everywhere", b"GET / HTTP/1.1\nHost: a\n\n".to_vec(), refuse(K::LineEnding)),
        // Whole, httparse would say Target; the scanner's verdict (what a split delivery
        // hears) wins, so the kind does not depend on delivery.
        Case::new("A8 V12 bare LF in the request line", b"GET /\nHTTP/1.1\r\n\r\n".to_vec(), refuse(K::LineEnding)),
        Case::new("A8 bare LF after a field", b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n".to_vec(), refuse(K::LineEnding)),
        Case::new("A8 bare LF ending the head", b"GET / HTTP/1.1\r\nHost: a\r\n\n".to_vec(), refuse(K::LineEnding)),
        // A bad byte before a bare LF on its line is refused first, as a byte-by-byte delivery
        // hears it before the LF arrives; whole, the LF's verdict came out instead.
        Case::new("A8 bad method byte before a bare LF", b"G;T / HTTP/1.1\nHost: a\r\n\r\n".to_vec(), refuse(K::Method)),
        Case::new("A8 bad name byte before a bare LF", b"GET / HTTP/1.1\r\nX;y: v\nHost: a\r\n\r\n".to_vec(), refuse(K::HeaderName)),
        Case::new("A8 V13 bare CR before TE (CVE-2023-37276)", cve_2023_37276.to_vec(), refuse(K::HeaderValue)),
        Case::new("V13 bare CR between fields", get(b"Visible: :/\rSmuggled: :)\r\n"), refuse(K::HeaderValue)),
        Case::new("GHSA-pjjw head ended by CR Z", b"GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), refuse(K::LineEnding)),
        Case::new("V14 Host with a CTL and userinfo", b"GET / HTTP/1.1\r\nHost: trusted.example\x01@bad.test\r\n\r\n".to_vec(), refuse(K::HeaderValue)),
        Case::new("V15 obs-text in a value is kept as bytes", get(b"X: caf\xe9\r\n"), Expect::Check(obs_text_kept)),
        Case::new("A10 V16 CL space colon", post(b"Content-Length : 1\r\n", b"x"), refuse(K::HeaderName)),
        Case::new("A10 V16 tab before colon", get(b"Foo\t: bar\r\n"), refuse(K::HeaderName)),
        Case::new("A10 V16 tab before the first field", b"GET / HTTP/1.1\r\n\tContent-Length: 1\r\nHost: a\r\n\r\nx".to_vec(), refuse(K::HeaderName)),
        Case::new("A10 V16 space before the first field", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n".to_vec(), refuse(K::HeaderName)),
        Case::new("A11 V17 name \\xffoo", get(b"\xffoo: bar\r\n"), refuse(K::HeaderName)),
        Case::new("A11 V17 empty name", get(b": ignored\r\n"), refuse(K::HeaderName)),
        Case::new("A11 V17 colon alone", get(b":\r\n"), refuse(K::HeaderName)),
        Case::new("A11 V17 no colon", post(b"Content-Length 10\r\n", b"0123456789"), refuse(K::HeaderName)),
        Case::new("A11 V17 CR in a name", post(b"Content\rLength: 3\r\n", b"abc"), refuse(K::HeaderName)),
        Case::new("CVE-2024-23829 Content-Encoding?", get(b"Content-Encoding?: chunked\r\n"), refuse(K::HeaderName)),
    ];
    for (byte, name) in [(0x00, "NUL"), (0x01, "SOH"), (0x1f, "US"), (0x7f, "DEL")] {
        let line = [&b"X-Test: abc"[..], &[byte], b"def\r\n"].concat();
        cases.push(Case::new(format!("A9 V14 {name} in a value"), get(&line), refuse(K::HeaderValue)));
    }
    for sep in br#""(),/;<=>?@[]{}"# {
        let line = [&b"X"[..], &[*sep], b"Y: z\r\n"].concat();
        let name = format!("A11 V17 separator {:?} in a name", char::from(*sep));
        cases.push(Case::new(name, get(&line), refuse(K::HeaderName)));
    }
    cases
}

fn obs_text_kept(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.field("x") == Some(&b"caf\xe9"[..]), "{message:?}");
    Ok(())
}

/// A21–A22: line, field, count and head limits, answered per `Error::status` (414, 431).
#[rustfmt::skip]
pub(crate) fn limit_cases() -> Vec<Case> {
    // `GET /aaa… HTTP/1.1` of exactly `len` bytes before its CRLF.
    let request_line = |len: usize| {
        let target = "a".repeat(len - "GET / HTTP/1.1".len());
        format!("GET /{target} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes()
    };
    // A field line of exactly `len` bytes before its CRLF.
    let field_line = |len: usize| {
        let value = "v".repeat(len - "X: ".len());
        get(format!("X: {value}\r\n").as_bytes())
    };
    // `Host` plus `extra` more fields.
    let fields = |extra: usize| get("X: y\r\n".repeat(extra).as_bytes());
    let big_fields = get(format!("X: {}\r\n", "v".repeat(8000)).repeat(9).as_bytes());
    let endless_target = [&b"GET /"[..], &vec![b'a'; 1 << 20]].concat();
    let mib = 1 << 20;
    // A head of exactly `len` bytes, its empty line included, in fields of at most 8 KiB.
    let head_of = |len: usize| {
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        while len - head.len() > 2 {
            let line = (len - head.len() - 2).clamp(6, 8192);
            head.extend_from_slice(format!("X: {}\r\n", "v".repeat(line - 5)).as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(head.len(), len);
        head
    };
    let ok = |outcome: &Outcome| outcome.only().map(|_| ());
    vec![
        Case::new("A21 request line of 8190 bytes", request_line(8190), Expect::Check(ok)),
        Case::new("A21 request line of 8191 bytes", request_line(8191), Expect::Refuse(K::RequestLineTooLong, 414)),
        Case::new("A21 1 MiB target never ended", endless_target, Expect::Refuse(K::RequestLineTooLong, 414)),
        // Line limits are checked before the head cap whole and split alike, so the status
        // does not depend on delivery (it did: 431 whole, 414 split).
        Case::new("A21 1 MiB target, then the rest of the head", request_line(mib), Expect::Refuse(K::RequestLineTooLong, 414)),
        Case::new("A21 1 MiB field line, then the rest of the head", field_line(mib), Expect::Refuse(K::FieldTooLong, 431)),
        Case::new("A21 field line of 8190 bytes", field_line(8190), Expect::Check(ok)),
        Case::new("A21 field line of 8191 bytes", field_line(8191), Expect::Refuse(K::FieldTooLong, 431)),
        Case::new("A22 128 fields", fields(127), Expect::Check(ok)),
        Case::new("A22 129 fields", fields(128), Expect::Refuse(K::TooManyHeaders, 431)),
        Case::new("A22 10 000 fields", fields(9_999), Expect::Refuse(K::TooManyHeaders, 431)),
        Case::new("head over 64 KiB", big_fields, Expect::Refuse(K::HeadTooLarge, 431)),
        Case::new("head of exactly 64 KiB", head_of(64 * 1024), Expect::Check(ok)),
        Case::new("head of 64 KiB and one byte", head_of(64 * 1024 + 1), Expect::Refuse(K::HeadTooLarge, 431)),
    ]
}

/// A23, V37: Host.
#[rustfmt::skip]
pub(crate) fn host_cases() -> Vec<Case> {
    let ok = |outcome: &Outcome| outcome.only().map(|_| ());
    vec![
        Case::new("A23 V37 Host twice, same case", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n".to_vec(), refuse(K::DuplicateHeader)),
        Case::new("A23 V37 Host twice, other case", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n".to_vec(), refuse(K::DuplicateHeader)),
        Case::new("A23 Host twice, two hosts (CVE-2026-34525)", b"GET /admin HTTP/1.1\r\nHost: public.example\r\nHost: admin.internal\r\n\r\n".to_vec(), refuse(K::DuplicateHeader)),
        Case::new("A23 V37 no Host on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n".to_vec(), refuse(K::Host)),
        Case::new("A23 V37 Host: a, b", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n".to_vec(), refuse(K::Host)),
        Case::new("A23 Host: a b", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), refuse(K::Host)),
        Case::new("Host with userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n".to_vec(), refuse(K::Host)),
        Case::new("Host with a path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(), refuse(K::Host)),
        Case::new("no Host on HTTP/1.0", b"GET / HTTP/1.0\r\n\r\n".to_vec(), Expect::Check(ok)),
        Case::new("empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n".to_vec(), Expect::Check(ok)),
        Case::new("Host IPv6 literal and port", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n".to_vec(), Expect::Check(ok)),
    ]
}

/// A24–A25, V33–V36, V38: methods, versions and targets.
#[rustfmt::skip]
pub(crate) fn request_line_cases() -> Vec<Case> {
    let line = |l: &[u8]| [l, b"\r\nHost: a\r\n\r\n"].concat();
    let mut cases = vec![
        Case::new("A24 V33 method G=\":<>(e),[T];?\"", line(br#"G=":<>(e),[T];?" /get HTTP/1.1"#), refuse(K::Method)),
        Case::new("A24 V33 method GET/:", line(b"GET/: HTTP/1.1"), refuse(K::Method)),
        Case::new("A24 V33 method NUL", line(b"\x00 / HTTP/1.1"), refuse(K::Method)),
        Case::new("V33 lowercase get is its own method", line(b"get / HTTP/1.1"), Expect::Check(lowercase_get)),
        Case::new("A25 V35 target !", line(b"GET ! HTTP/1.1"), refuse(K::Target)),
        // Four words: the parser cannot tell a split target from a bad version, and says Version.
        Case::new("A25 V35 space inside the target", line(b"GET /a b HTTP/1.1"), refuse(K::Version)),
        Case::new("A25 V35 raw UTF-8 in the target", line("GET /caf\u{e9} HTTP/1.1".as_bytes()), refuse(K::Target)),
        Case::new("A25 V35 CTL in the target", line(b"GET /a\x01b HTTP/1.1"), refuse(K::Target)),
        Case::new("A25 DEL in the target", line(b"GET /a\x7fb HTTP/1.1"), refuse(K::Target)),
        Case::new("V35 fragment in the target", line(b"GET /path?#frag HTTP/1.1"), refuse(K::Target)),
        Case::new("A25 V35 OPTIONS *", line(b"OPTIONS * HTTP/1.1"), Expect::Check(|o| target_is(o, "*"))),
        Case::new("A25 GET *", line(b"GET * HTTP/1.1"), refuse(K::Target)),
        Case::new("A25 V36 absolute-form", b"GET http://other.example/x HTTP/1.1\r\nHost: good.example\r\n\r\n".to_vec(), Expect::Check(absolute_form)),
        Case::new("V35 CONNECT authority-form", line(b"CONNECT h.example:443 HTTP/1.1"), Expect::Check(|o| target_is(o, "h.example:443"))),
        Case::new("CONNECT with an origin-form target", line(b"CONNECT / HTTP/1.1"), refuse(K::Target)),
        Case::new("V38 two spaces after the method", line(b"GET  / HTTP/1.1"), refuse(K::Target)),
    ];
    let versions: [&[u8]; 7] = [b"HTTP/1.32", "HTTP/1\u{f6}1".as_bytes(), b"HTTP/4294967295.255", b"HT/11", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/\r\r1.1"];
    for version in versions {
        let name = format!("A24 V34 version {:?}", String::from_utf8_lossy(version));
        cases.push(Case::new(name, line(&[b"GET / ", version].concat()), refuse(K::Version)));
    }
    cases
}

fn target_is(outcome: &Outcome, target: &str) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.target == target, "{message:?}");
    Ok(())
}

fn lowercase_get(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.method == "get", "{message:?}");
    Ok(())
}

/// V36: the target is reported as sent; choosing between its authority and `Host` is the
/// router's documented rule, not the parser's.
fn absolute_form(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.target == "http://other.example/x", "{message:?}");
    ensure!(message.field("host") == Some(&b"good.example"[..]), "{message:?}");
    Ok(())
}

/// A26–A28, V27–V32, V39: versions, persistence, pipelining, Expect and Upgrade.
#[rustfmt::skip]
pub(crate) fn connection_cases() -> Vec<Case> {
    let three = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    let bad_middle = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    vec![
        Case::new("A26 V31 HTTP/1.0 with TE chunked", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(), refuse(K::TransferEncoding)),
        Case::new("A26 V30 HTTP/1.0 keep-alive, then another", b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n".to_vec(), Expect::Check(http10_keep_alive)),
        Case::new("HTTP/1.1 persists by default", get(b""), Expect::Check(|o| keep_alive_is(o, true))),
        Case::new("A27 V29 data after Connection: close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), Expect::Check(data_after_close)),
        Case::new("A28 V27 three pipelined", three.to_vec(), Expect::Check(|o| targets_are(o, &["/1", "/2", "/3"], None))),
        Case::new("A28 V27 valid, invalid, valid", bad_middle.to_vec(), Expect::Check(|o| targets_are(o, &["/1"], Some(K::DuplicateHeader)))),
        Case::new("V28 POST CL 0 then another", b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), Expect::Check(|o| targets_are(o, &["/1", "/2"], None))),
        Case::new("pipelined after a chunked body, with a stray CRLF", [&post(b"Transfer-Encoding: chunked\r\n", ABC_CHUNKED)[..], b"\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"].concat(), Expect::Check(|o| targets_are(o, &["/", "/2"], None))),
        Case::new("V32 Expect 100-continue", post(b"Expect: 100-continue\r\nContent-Length: 2\r\n", b"hi"), Expect::Check(|o| expect_continue_is(o, true))),
        Case::new("V32 Expect 100-CONTINUE", post(b"Expect: 100-CONTINUE\r\nContent-Length: 2\r\n", b"hi"), Expect::Check(|o| expect_continue_is(o, true))),
        Case::new("V32 Expect bogus", post(b"Expect: bogus\r\nContent-Length: 2\r\n", b"hi"), Expect::Refuse(K::Expectation, 417)),
        Case::new("V32 Expect bogus, then 100-continue in a second field", post(b"Expect: bogus\r\nExpect: 100-continue\r\nContent-Length: 2\r\n", b"hi"), Expect::Refuse(K::Expectation, 417)),
        Case::new("V32 Expect bogus on HTTP/1.0 is ignored", b"GET / HTTP/1.0\r\nExpect: bogus\r\n\r\n".to_vec(), Expect::Check(|o| expect_continue_is(o, false))),
        Case::new("V39 Upgrade websocket", get(b"Connection: Upgrade\r\nUpgrade: websocket\r\n"), Expect::Check(|o| upgrade_is(o, Some(b"websocket")))),
        Case::new("V39 Upgrade with a body: framed by its length", post(b"Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n", b"hello"), Expect::Check(upgrade_with_body)),
        Case::new("V39 Upgrade without Connection: upgrade", get(b"Upgrade: websocket\r\n"), Expect::Check(|o| upgrade_is(o, None))),
        Case::new("V39 Upgrade websocket, then an empty Upgrade", get(b"Connection: upgrade\r\nUpgrade: websocket\r\nUpgrade: \r\n"), Expect::Check(|o| upgrade_is(o, Some(b"websocket")))),
        Case::new("V39 an empty Upgrade, then Upgrade websocket", get(b"Connection: upgrade\r\nUpgrade: \r\nUpgrade: websocket\r\n"), Expect::Check(|o| upgrade_is(o, Some(b"websocket")))),
        Case::new("Connection: keep-alive, Upgrade", get(b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"), Expect::Check(|o| upgrade_is(o, Some(b"websocket")))),
    ]
}

fn http10_keep_alive(outcome: &Outcome) -> Result<(), String> {
    targets_are(outcome, &["/1", "/2"], None)?;
    let [first, second] = &outcome.messages[..] else { unreachable!() };
    ensure!(first.version == Version::HTTP_10 && first.keep_alive, "{first:?}");
    ensure!(second.version == Version::HTTP_10 && !second.keep_alive, "{second:?}");
    Ok(())
}

fn keep_alive_is(outcome: &Outcome, keep_alive: bool) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.keep_alive == keep_alive, "{message:?}");
    Ok(())
}

/// The parser reads on after `Connection: close` (stopping is the server's job); what it
/// must do is report that the connection may not carry the second request.
fn data_after_close(outcome: &Outcome) -> Result<(), String> {
    targets_are(outcome, &["/", "/2"], None)?;
    ensure!(!outcome.messages[0].keep_alive, "{:?}", outcome.messages[0]);
    Ok(())
}

fn targets_are(outcome: &Outcome, targets: &[&str], error: Option<K>) -> Result<(), String> {
    ensure!(outcome.targets() == targets && outcome.kind() == error, "{outcome:?}");
    Ok(())
}

fn expect_continue_is(outcome: &Outcome, expect: bool) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.expect_continue == expect, "{message:?}");
    Ok(())
}

/// The body of an upgrade request is read by its framing before any protocol switch, so
/// it can never be taken for the upgraded protocol's bytes (aiohttp #13016).
fn upgrade_with_body(outcome: &Outcome) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.upgrade.as_deref() == Some(b"websocket"), "{message:?}");
    ensure!(message.framing == BodyFraming::Length(5) && message.body == b"hello", "{message:?}");
    Ok(())
}

fn upgrade_is(outcome: &Outcome, upgrade: Option<&[u8]>) -> Result<(), String> {
    let message = outcome.only()?;
    ensure!(message.upgrade.as_deref() == upgrade, "{message:?}");
    Ok(())
}

/// Every request case of this module, for the differential test.
#[rustfmt::skip]
pub(crate) fn all_cases() -> Vec<Case> {
    [
        content_length_cases(),
        transfer_encoding_cases(),
        field_syntax_cases(),
        limit_cases(),
        host_cases(),
        request_line_cases(),
        connection_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn content_length() {
    run_cases(&content_length_cases());
}

#[test]
fn transfer_encoding() {
    run_cases(&transfer_encoding_cases());
}

#[test]
fn field_syntax() {
    run_cases(&field_syntax_cases());
}

#[test]
fn limits() {
    run_cases(&limit_cases());
}

#[test]
fn host() {
    run_cases(&host_cases());
}

#[test]
fn request_line() {
    run_cases(&request_line_cases());
}

#[test]
fn connection() {
    run_cases(&connection_cases());
}
