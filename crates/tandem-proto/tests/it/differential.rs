//! The request tables, run through aiohttp's own parsers as well: Tandem promises to be
//! "aiohttp-strict", and this is where that promise is checked, case by case.
//!
//! One Python process (`differential.py`) reads every input and prints the verdicts of
//! aiohttp's C parser (llhttp) and of its pure-Python parser. Tandem must agree with both
//! on accept or reject, and on method, target and body where both accept, except for the
//! cases in [`ALLOWED`], each a deliberate difference with its reason.

use std::{
    fmt::Write as _,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::{
    bodies, hostile, smuggler,
    support::{Outcome, parse_whole},
};

/// Which of aiohttp's parsers a difference is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    C,
    Py,
    Both,
}

/// Deliberate differences: (the parser Tandem differs from, the cases, why). The list is
/// exact: an entry whose cases stop differing fails the test, so it never grows stale.
#[rustfmt::skip]
const ALLOWED: &[(Peer, &[&str], &str)] = &[
    (Peer::Both, &["V8 TE not, chunked", "smuggler cowComma, no CL"],
        "Tandem refuses codings outside the IANA registry even before a final chunked (semantics.rs KNOWN_CODINGS)"),
    (Peer::Py, &["A5 V9 TE chunked, chunked"],
        "the Python parser looks at the last coding only; llhttp and Tandem refuse chunked twice (aiohttp #10611)"),
    (Peer::C, &["A21 request line of 8191 bytes", "A21 field line of 8191 bytes", "trailer line of 8191 bytes"],
        "llhttp's callbacks count only the target, or name and value without `: `, against 8190; Py and Tandem count the line"),
    (Peer::Py, &["A22 128 fields"],
        "the Python parser counts the request line against max_headers and so takes 127 fields; llhttp and Tandem take 128"),
    (Peer::Both, &["head over 64 KiB", "head of 64 KiB and one byte"],
        "Tandem caps a whole head at 64 KiB (DEFAULT_MAX_HEAD_SIZE); aiohttp caps only lines and their count"),
    (Peer::Both, &["A23 V37 Host: a, b", "A23 Host: a b", "Host with userinfo", "Host with a path"],
        "Tandem checks Host is uri-host [\":\" port] (RFC 9112 §3.2, checklist A23); aiohttp takes any value"),
    (Peer::Both, &["V33 lowercase get is its own method"],
        "methods are case-sensitive (RFC 9110 §9.1): llhttp refuses `get`, the Python parser upper-cases it, Tandem keeps it"),
    (Peer::Py, &["A25 V35 raw UTF-8 in the target"],
        "the Python parser takes raw UTF-8 in a target; llhttp (strict) and Tandem refuse it"),
    (Peer::Both, &["V35 fragment in the target"],
        "a fragment is never part of a request target (RFC 9112 §3.2): aiohttp splits it off, Tandem refuses `#`"),
    (Peer::Both, &["CONNECT with an origin-form target"],
        "CONNECT takes the authority form only (RFC 9112 §3.2.3); aiohttp takes `/`"),
    (Peer::C, &["V38 two spaces after the method"],
        "llhttp skips repeated spaces in the request line; the Python parser and Tandem refuse them (V38)"),
    (Peer::Both, &["A24 V34 version \"HTTP/2.0\"", "A24 V34 version \"HTTP/0.9\""],
        "Tandem speaks HTTP/1.0 and 1.1 only, as checklist A24 recommends (threat 1.5)"),
    (Peer::Both, &["A26 V31 HTTP/1.0 with TE chunked"],
        "RFC 9112 §6.1: TE on HTTP/1.0 is faulty framing; hyper, actix and nginx answer 400 (checklist A26)"),
    (Peer::Both, &["A27 V29 data after Connection: close"],
        "Tandem's parser reads on and reports keep_alive() false; not serving `/2` is the server's job"),
    (Peer::Both, &["V32 Expect bogus", "V32 Expect bogus, then 100-continue in a second field"],
        "aiohttp's parser passes any Expect to the expect handler, which answers 417; Tandem's parser refuses it (417)"),
    (Peer::C, &["A16 V21 1 MiB extension"],
        "llhttp does not limit chunk extensions; Tandem caps them at 16 KiB a body, the Python parser at a line"),
    (Peer::Both, &["A16 20 KB of extensions over 200 chunks"],
        "Tandem caps chunk extensions at 16 KiB per body, as hyper does; aiohttp limits each line only"),
    (Peer::Both, &["whitespace before an extension"],
        "RFC 9112 §7.1.1 allows BWS before `;`; llhttp (strict) and the Python parser refuse it"),
    (Peer::Py, &["whitespace after an extension name, before CRLF", "whitespace after an extension value, before CRLF",
                 "whitespace after a quoted extension, before CRLF"],
        "RFC 9112 §7.1.1 has no whitespace before a size line's CRLF; llhttp and Tandem refuse it, the Python parser checks extensions for LF only"),
    (Peer::C, &["A19 V25 framing trailers are not merged"],
        "llhttp's aiohttp glue counts trailers against the head's singletons (a second Host); Tandem keeps them apart"),
    (Peer::C, &["smuggler tabsuffix, no CL"],
        "trailing whitespace is not part of a field value (RFC 9110 §5.5); llhttp refuses a tab after `chunked`"),
];

/// One parser's answer to one input.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    accepted: bool,
    error: String,
    /// (method, target, body) of each message, for accepted inputs.
    messages: Vec<(String, String, Vec<u8>)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from the script"))
        .collect()
}

/// Parses `<accept|reject> <error> <count> <method:path:body>...`.
fn parse_verdict(words: &[&str]) -> Verdict {
    let messages = words[3..]
        .iter()
        .map(|m| {
            let parts: Vec<Vec<u8>> = m.split(':').map(unhex).collect();
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(&parts[0]), text(&parts[1]), parts[2].clone())
        })
        .collect();
    Verdict { accepted: words[0] == "accept", error: words[1].to_owned(), messages }
}

fn tandem_verdict(outcome: &Outcome) -> Verdict {
    Verdict {
        accepted: outcome.error.is_none(),
        error: outcome.kind().map_or("-".to_owned(), |k| format!("{k:?}")),
        messages: outcome
            .messages
            .iter()
            .map(|m| (m.method.clone(), m.target.clone(), m.body.clone()))
            .collect(),
    }
}

/// Runs every input through `differential.py` in one process; returns, per input, the
/// verdicts of the C and the Python parser.
fn aiohttp_verdicts(cases: &[(String, Vec<u8>)]) -> Vec<(Verdict, Verdict)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask peers` to install the aiohttp peer",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(root.join("tests/it/differential.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run `cargo xtask peers` to install the aiohttp peer");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input: String = cases.iter().map(|(_, input)| hex(input) + "\n").collect();
    // Written from a thread: the script answers while it reads, and both pipes are finite.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("the aiohttp script runs");
    writer.join().expect("writer thread").expect("inputs written");
    assert!(
        output.status.success(),
        "differential.py failed ({:?}); run `cargo xtask peers` to install the aiohttp peer",
        output.status
    );
    let text = String::from_utf8(output.stdout).expect("ASCII output");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), cases.len() * 2, "one line per parser per case");
    lines
        .chunks(2)
        .map(|pair| {
            assert!(pair[0][0] == "c" && pair[1][0] == "py", "{pair:?}");
            (parse_verdict(&pair[0][1..]), parse_verdict(&pair[1][1..]))
        })
        .collect()
}

/// Whether two verdicts agree: both reject, or both accept the same messages.
fn agree(tandem: &Verdict, peer: &Verdict) -> bool {
    tandem.accepted == peer.accepted && (!tandem.accepted || tandem.messages == peer.messages)
}

#[test]
fn agrees_with_aiohttp() {
    let tables = [hostile::all_cases(), bodies::all_cases()].into_iter().flatten();
    let mut cases: Vec<(String, Vec<u8>)> = tables.map(|c| (c.name, c.input)).collect();
    cases.extend(smuggler::named_probes());
    let peers = aiohttp_verdicts(&cases);
    let (mut agreed, mut allowed) = (0, 0);
    let mut failures = Vec::new();
    let mut seen = vec![Vec::new(); ALLOWED.len()];
    for ((name, input), (c, py)) in cases.iter().zip(&peers) {
        let tandem = tandem_verdict(&parse_whole(input));
        let differs = match (agree(&tandem, c), agree(&tandem, py)) {
            (true, true) => {
                agreed += 1;
                continue;
            }
            (false, true) => Peer::C,
            (true, false) => Peer::Py,
            (false, false) => Peer::Both,
        };
        let entry = ALLOWED
            .iter()
            .position(|(peer, names, _)| *peer == differs && names.contains(&name.as_str()));
        if let Some(i) = entry {
            allowed += 1;
            seen[i].push(name.as_str());
        } else {
            failures.push(format!(
                "[{name}] differs from {differs:?}:\n  tandem {tandem:?}\n  c      {c:?}\n  py     {py:?}"
            ));
        }
    }
    // An entry that no longer differs is stale: the list must stay exact.
    for ((peer, names, _), seen) in ALLOWED.iter().zip(&seen) {
        for name in names.iter().filter(|n| !seen.contains(n)) {
            failures.push(format!("[{name}] is allowed to differ from {peer:?} but does not"));
        }
    }
    println!(
        "differential against aiohttp 3.14.5: {} inputs, {agreed} agree, {allowed} differ on \
         purpose ({} reasons), {} unexpected",
        cases.len(),
        ALLOWED.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
}
