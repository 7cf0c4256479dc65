//! `docs/security.md`'s A6 and vectors V10/V10b: defparam/smuggler's `Transfer-Encoding` mutations
//! (`configs/{default,doubles,exhaustive}.py`) and its byte sweeps, each sent with a
//! `Content-Length` before and after it, and alone.
//!
//! A mutation may be refused (with any error) or read exactly as RFC 9110/9112 say; what
//! must never happen is a second reading of the same bytes: no body while a length was
//! sent, a length framing when a real `Transfer-Encoding` was present (CL+TE is refused),
//! or chunked framing from a field whose name is not `transfer-encoding`.

use tandem_proto::{BodyFraming, ErrorKind};

use crate::support::{Outcome, post, try_check_request};

/// The body every probe carries: valid chunked (`abc`), and 13 bytes.
const BODY: &[u8] = b"3\r\nabc\r\n0\r\n\r\n";
const CONTENT_LENGTH: &[u8] = b"Content-Length: 13\r\n";

/// What RFC 9110/9112 make of a mutated line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// A legal spelling of `Transfer-Encoding: chunked`: chunked alone, refused with a CL.
    Chunked,
    /// Some other field: the CL frames the body.
    Other,
    /// Malformed: refused.
    Refused,
    /// The sweeps: any of the above, as long as the invariants hold.
    Any,
}

#[rustfmt::skip]
const MUTATIONS: &[(&str, &[u8], Reading)] = &[
    ("plain", b"Transfer-Encoding: chunked", Reading::Chunked),
    ("nospace1", b"Transfer-Encoding:chunked", Reading::Chunked),
    ("valueprefix1", b"Transfer-Encoding:  chunked", Reading::Chunked),
    ("tabprefix1", b"Transfer-Encoding:\tchunked", Reading::Chunked),
    ("tabsuffix", b"Transfer-Encoding: chunked\t", Reading::Chunked),
    ("spacesuffix", b"Transfer-Encoding: chunked ", Reading::Chunked),
    ("UPPERCASE", b"TRANSFER-ENCODING: CHUNKED", Reading::Chunked),
    ("multiCase", b"TrAnSFer-EnCODinG: cHuNkeD", Reading::Chunked),
    ("commaprefix", b"Transfer-Encoding: ,chunked", Reading::Chunked),
    ("gzip-chunked", b"Transfer-Encoding: gzip, chunked", Reading::Chunked),
    ("space1", b"Transfer-Encoding : chunked", Reading::Refused),
    ("tabprefix2", b"Transfer-Encoding\t:\tchunked", Reading::Refused),
    ("vertprefix1", b"Transfer-Encoding:\x0bchunked", Reading::Refused),
    ("spaceFF", b"Transfer-Encoding:\xffchunked", Reading::Refused),
    ("nbsp", b"Transfer-Encoding: \xa0chunked\xa0", Reading::Refused),
    ("quoted", b"Transfer-Encoding: \"chunked\"", Reading::Refused),
    ("aposed", b"Transfer-Encoding: 'chunked'", Reading::Refused),
    ("lazygrep", b"Transfer-Encoding: chunk", Reading::Refused),
    ("chunkedchunked", b"Transfer-Encoding: chunkedchunked", Reading::Refused),
    ("chunked123", b"Transfer-Encoding: chunked123", Reading::Refused),
    ("commasuffix", b"Transfer-Encoding: chunked,", Reading::Refused),
    ("paramsuffix", b"Transfer-Encoding: chunked;x=1", Reading::Refused),
    ("commaCow", b"Transfer-Encoding: chunked, cow", Reading::Refused),
    ("cowComma", b"Transfer-Encoding: cow, chunked", Reading::Refused),
    ("revdualchunk", b"Transfer-Encoding: chunked, identity", Reading::Refused),
    ("nested", b"Transfer-Encoding: cow chunked bar", Reading::Refused),
    ("accentCH", b"Transfer-Encoding: ch\x96nked", Reading::Refused),
    ("accentTE", b"Transf\x82r-Encoding: chunked", Reading::Refused),
    ("0dspam", b"Transf\rer-Encoding: chunked", Reading::Refused),
    ("cr-in-name", b"Transfer\r-Encoding: chunked", Reading::Refused),
    ("spacejoin1", b"Transfer Encoding: chunked", Reading::Refused),
    ("x-rout", b"X: X\rTransfer-Encoding: chunked", Reading::Refused),
    ("x-nout", b"X: X\nTransfer-Encoding: chunked", Reading::Refused),
    ("nameprefix1", b"Foo: bar\r\n Transfer-Encoding: chunked", Reading::Refused),
    ("linewrapped1", b"Transfer-Encoding:\r\n chunked", Reading::Refused),
    ("0dsuffix", b"Transfer-Encoding: chunked\r", Reading::Refused),
    ("dualchunk", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", Reading::Refused),
    ("identity-then-chunked", b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked", Reading::Refused),
    ("underjoin1", b"Transfer_Encoding: chunked", Reading::Other),
    ("contentEnc", b"Content-Encoding: chunked", Reading::Other),
    ("x-prefixed", b"X-Transfer-Encoding: chunked", Reading::Other),
    ("plural", b"Transfer-Encodings: chunked", Reading::Other),
    ("TE", b"TE: chunked", Reading::Other),
];

/// The three probes of one mutated line: CL before it, CL after it, and no CL.
fn probes(line: &[u8]) -> [(&'static str, Vec<u8>); 3] {
    let line = [line, b"\r\n"].concat();
    [
        ("CL first", post(&[CONTENT_LENGTH, &line].concat(), BODY)),
        ("CL last", post(&[&line, CONTENT_LENGTH].concat(), BODY)),
        ("no CL", post(&line, BODY)),
    ]
}

/// Whether the head has a field whose name is `transfer-encoding` in any case.
fn has_te(outcome: &Outcome) -> bool {
    outcome.messages.first().is_some_and(|m| m.field("transfer-encoding").is_some())
}

/// The invariants for every probe, then what `reading` says of it.
fn verify(probe: &str, outcome: &Outcome, reading: Reading) -> Result<(), String> {
    let with_cl = probe != "no CL";
    if outcome.error.is_none() {
        let message = outcome.only()?;
        if with_cl {
            ensure!(!has_te(outcome), "a length framing despite Transfer-Encoding: {message:?}");
            ensure!(message.framing == BodyFraming::Length(13), "CL ignored: {message:?}");
            ensure!(message.body == BODY, "{message:?}");
        }
    }
    if outcome.messages.first().is_some_and(|m| m.framing == BodyFraming::Chunked) {
        ensure!(has_te(outcome), "chunked without a Transfer-Encoding field: {outcome:?}");
    }
    match (reading, with_cl) {
        (Reading::Chunked, true) => ensure!(
            outcome.kind() == Some(ErrorKind::ContentLengthWithTransferEncoding),
            "CL+TE not refused: {outcome:?}"
        ),
        (Reading::Chunked, false) => {
            let message = outcome.only()?;
            ensure!(
                message.framing == BodyFraming::Chunked && message.body == b"abc",
                "{message:?}"
            );
        }
        (Reading::Other, true) => ensure!(outcome.only().is_ok(), "{outcome:?}"),
        (Reading::Refused, _) => ensure!(outcome.error.is_some(), "accepted: {outcome:?}"),
        (Reading::Other, false) | (Reading::Any, _) => {}
    }
    Ok(())
}

/// Runs the probes of each line; returns the failures and how many probes were accepted.
fn run(lines: &[(String, Vec<u8>, Reading)]) -> (Vec<String>, usize, usize) {
    let (mut failures, mut accepted, mut total) = (Vec::new(), 0, 0);
    for (name, line, reading) in lines {
        for (probe, input) in probes(line) {
            total += 1;
            let result = try_check_request(&input).and_then(|outcome| {
                accepted += usize::from(outcome.error.is_none());
                verify(probe, &outcome, *reading)
            });
            if let Err(e) = result {
                failures.push(format!("[{name}, {probe}] {e}"));
            }
        }
    }
    (failures, accepted, total)
}

/// Every probe of the named mutations, for the differential test.
pub(crate) fn named_probes() -> Vec<(String, Vec<u8>)> {
    MUTATIONS
        .iter()
        .flat_map(|&(name, line, _)| {
            probes(line).map(|(probe, input)| (format!("smuggler {name}, {probe}"), input))
        })
        .collect()
}

#[test]
fn named_mutations() {
    let lines: Vec<_> = MUTATIONS
        .iter()
        .map(|&(name, line, reading)| (name.to_owned(), line.to_vec(), reading))
        .collect();
    let (failures, accepted, total) = run(&lines);
    println!("smuggler mutations: {total} probes, {accepted} accepted");
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
}

/// A sweep position: its name in `exhaustive.py`, and the line it makes of a byte.
type Position = (&'static str, fn(u8) -> Vec<u8>);

/// smuggler's `exhaustive.py` sweeps: each byte 0x01–0x20 and 0x7f–0xff at six positions
/// around `Transfer-Encoding: chunked`.

#[test]
fn byte_sweeps() {
    let positions: [Position; 6] = [
        ("prespace", |b| [&[b][..], b"Transfer-Encoding: chunked"].concat()),
        ("postspace", |b| [&b"Transfer-Encoding"[..], &[b], b": chunked"].concat()),
        ("midspace", |b| [&b"Transfer-Encoding:"[..], &[b], b"chunked"].concat()),
        ("endspace", |b| [&b"Transfer-Encoding: chunked"[..], &[b]].concat()),
        ("xprespace", |b| [&b"X: X"[..], &[b], b"Transfer-Encoding: chunked"].concat()),
        ("endspacex", |b| [&b"Transfer-Encoding: chunked"[..], &[b], b"X: X"].concat()),
    ];
    let mut lines = Vec::new();
    for (position, make) in positions {
        for byte in (0x01..=0x20).chain(0x7f..=0xff) {
            // Space and tab around the value are OWS: those lines are legal TE spellings.
            let ows = matches!(position, "midspace" | "endspace") && matches!(byte, b' ' | b'\t');
            let reading = if ows { Reading::Chunked } else { Reading::Any };
            lines.push((format!("{position}-{byte:02x}"), make(byte), reading));
        }
    }
    let (failures, accepted, total) = run(&lines);
    println!("smuggler sweeps: {total} probes, {accepted} accepted");
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
}
