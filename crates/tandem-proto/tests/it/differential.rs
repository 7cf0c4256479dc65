//! The request tables, run through aiohttp's own parsers as well: Tandem promises to be
//! "aiohttp-strict", and this is where that promise is checked, case by case.
//!
//! One Python process (`differential.py`) reads every input and prints the verdicts of
//! aiohttp's C parser (llhttp) and of its pure-Python parser. Tandem must agree with both
//! on accept or reject, and on method, target and body where both accept, except for the
//! cases in [`ALLOWED`], each a deliberate difference with its reason.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::{
    bodies, hostile,
    support::{Case, Outcome, parse_whole},
};

/// Which of aiohttp's parsers a difference is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    C,
    Py,
    Both,
}

/// Known, deliberate differences: (case name, parser, why Tandem answers otherwise).
#[rustfmt::skip]
const ALLOWED: &[(&str, Peer, &str)] = &[
    ("placeholder", Peer::Both, "replaced once the first run shows the real differences"),
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
fn aiohttp_verdicts(cases: &[Case]) -> Vec<(Verdict, Verdict)> {
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
    let input: String = cases.iter().map(|c| hex(&c.input) + "\n").collect();
    // Written from a thread: the script answers while it reads, and both pipes are finite.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("the aiohttp script runs");
    writer.join().expect("writer thread").expect("inputs written");
    assert!(output.status.success(), "differential.py failed: {:?}", output.status);
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
    let cases: Vec<Case> =
        [hostile::all_cases(), bodies::all_cases()].into_iter().flatten().collect();
    let peers = aiohttp_verdicts(&cases);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut used = vec![false; ALLOWED.len()];
    for (case, (c, py)) in cases.iter().zip(&peers) {
        let tandem = tandem_verdict(&parse_whole(&case.input));
        let differs = match (agree(&tandem, c), agree(&tandem, py)) {
            (true, true) => None,
            (false, true) => Some(Peer::C),
            (true, false) => Some(Peer::Py),
            (false, false) => Some(Peer::Both),
        };
        let allowed =
            ALLOWED.iter().position(|(name, peer, _)| *name == case.name && Some(*peer) == differs);
        *counts
            .entry(match (differs, allowed) {
                (None, _) => "agree",
                (Some(_), Some(_)) => "differ, allowed",
                (Some(_), None) => "differ",
            })
            .or_default() += 1;
        match (differs, allowed) {
            (Some(_), Some(i)) => used[i] = true,
            (Some(peer), None) => failures.push(format!(
                "[{}] differs from {peer:?}:\n  tandem {tandem:?}\n  c      {c:?}\n  py     {py:?}",
                case.name
            )),
            (None, _) => {}
        }
    }
    for ((name, peer, _), used) in ALLOWED.iter().zip(used) {
        if !used {
            failures.push(format!("[{name}] is allowed to differ from {peer:?} but does not"));
        }
    }
    println!("differential against aiohttp: {} cases, {counts:?}", cases.len());
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
}
