//! `cargo xtask autobahn`: the WebSocket conformance suite (Autobahn|Testsuite) against our
//! server and our client, diffed against the results committed in `autobahn/`.
//!
//! The suite is installed by `autobahn/setup.sh` (its own Python 2.7, no Docker). Each
//! case's verdict (`behavior` and `behaviorClose`) is compared, durations are not, so any
//! change, better or worse, shows as a diff to review; `--bless` writes the new results as
//! the expectation.

use std::{
    fmt::Write as _,
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use crate::{
    Cmd, Killed, Result, arg_parser, bad_arg,
    bench::server::{cargo_build_profile, find_exe},
    free_port, peers,
};

/// Groups that run in seconds; CI runs these (`--quick`). Groups 9, 12 and 13 move hundreds
/// of megabytes through the suite's Python and take about half an hour on two cores.
const QUICK_CASES: &[&str] =
    &["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*", "12.1.1", "13.1.1"];
const AGENT: &str = "Tandem";
/// How long a side may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq)]
struct Options {
    quick: bool,
    bless: bool,
    side: Option<Side>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Server,
    Client,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

const USAGE: &str = "cargo xtask autobahn [--quick] [--bless] [server|client]";

fn parse(args: &[String]) -> Result<Options> {
    use lexopt::prelude::*;
    let mut opts = Options { quick: false, bless: false, side: None };
    let mut parser = arg_parser(args);
    while let Some(arg) = parser.next().map_err(|e| bad_arg(&e, USAGE))? {
        match arg {
            Long("quick") => opts.quick = true,
            Long("bless") => opts.bless = true,
            Value(side) if side == "server" => opts.side = Some(Side::Server),
            Value(side) if side == "client" => opts.side = Some(Side::Client),
            _ => return Err(bad_arg(&arg.unexpected(), USAGE)),
        }
    }
    if opts.quick && opts.bless {
        return Err("autobahn: --bless records the full suite; drop --quick".into());
    }
    Ok(opts)
}

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse(args)?;
    let tools = tools_dir()?;
    // setup.sh fetches wheels with pip: the project's venv (made by `cargo xtask peers`)
    // has pip even where the system's python3 does not.
    let mut setup = Cmd::new("bash").arg(tools.join("setup.sh"));
    if std::path::Path::new(&peers::venv_python()).exists() {
        setup = setup.env("PYTHON3", peers::venv_python());
    }
    setup.run()?;
    // The quick groups move little data, so CI's debug build (already made by the test
    // step) serves; the whole suite, with its 16 MiB messages, wants release.
    let built = cargo_build_profile(!opts.quick, &["--example", "autobahn"])?;
    let exe = find_exe(&built, "autobahn")?;
    let work = PathBuf::from("target/autobahn");
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let cases: Vec<&str> = if opts.quick { QUICK_CASES.to_vec() } else { vec!["*"] };
    let mut failures = Vec::new();
    for side in [Side::Server, Side::Client] {
        if opts.side.is_some_and(|s| s != side) {
            continue;
        }
        let started = Instant::now();
        let report = match side {
            Side::Server => test_server(&exe, &tools, &work, &cases)?,
            Side::Client => test_client(&exe, &tools, &work, &cases)?,
        };
        let got = verdicts(
            &fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?,
        );
        println!(
            "autobahn {}: {} cases in {}",
            side.name(),
            got.len(),
            crate::fmt_duration(started.elapsed())
        );
        print_counts(&got);
        let expected_path = PathBuf::from(format!("autobahn/expected-{}.txt", side.name()));
        if opts.bless {
            fs::write(&expected_path, render(&got))
                .map_err(|e| format!("{}: {e}", expected_path.display()))?;
            println!("wrote {}", expected_path.display());
            continue;
        }
        let expected = fs::read_to_string(&expected_path).map_err(|e| {
            format!("{}: {e} (run with --bless to record)", expected_path.display())
        })?;
        let diff = compare(&parse_expected(&expected), &got);
        if !diff.is_empty() {
            failures.push(format!(
                "{} side differs from {}:\n{}",
                side.name(),
                expected_path.display(),
                diff.join("\n")
            ));
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n")) }
}

/// `autobahn/` (setup.sh and wstest.sh, kept in the repository so a fresh machine needs
/// nothing else), or `$AUTOBAHN_TOOLS`.
fn tools_dir() -> Result<PathBuf> {
    let dir =
        std::env::var_os("AUTOBAHN_TOOLS").map_or_else(|| PathBuf::from("autobahn"), PathBuf::from);
    if dir.join("wstest.sh").is_file() {
        Ok(dir)
    } else {
        Err(format!("no wstest.sh in {} (set AUTOBAHN_TOOLS)", dir.display()))
    }
}

/// Our echo server under the suite's fuzzing client.
fn test_server(exe: &Path, tools: &Path, work: &Path, cases: &[&str]) -> Result<PathBuf> {
    let port = free_port()?;
    let _server = Killed(
        Cmd::new(exe)
            .args(["server", "--port", &port.to_string()])
            .command()
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the example server: {e}"))?,
    );
    wait_for_port(port)?;
    let outdir = work.join("server");
    let spec = work.join("fuzzingclient.json");
    write_spec(
        &spec,
        &format!(r#""servers": [{{"agent": "{AGENT}", "url": "ws://127.0.0.1:{port}"}}]"#),
        &outdir,
        cases,
    )?;
    Cmd::new("bash")
        .arg(tools.join("wstest.sh"))
        .args(["-m", "fuzzingclient", "-s"])
        .arg(&spec)
        .command()
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("running wstest: {e}"))?
        .success()
        .then_some(())
        .ok_or("wstest -m fuzzingclient failed")?;
    Ok(outdir.join("index.json"))
}

/// Our client against the suite's fuzzing server.
fn test_client(exe: &Path, tools: &Path, work: &Path, cases: &[&str]) -> Result<PathBuf> {
    let port = free_port()?;
    let outdir = work.join("client");
    let spec = work.join("fuzzingserver.json");
    write_spec(&spec, &format!(r#""url": "ws://127.0.0.1:{port}""#), &outdir, cases)?;
    let _suite = Killed(
        Cmd::new("bash")
            .arg(tools.join("wstest.sh"))
            .args(["-m", "fuzzingserver", "-u", "0", "-s"])
            .arg(&spec)
            .command()
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting wstest: {e}"))?,
    );
    wait_for_port(port)?;
    Cmd::new(exe).args(["client", "--url", &format!("ws://127.0.0.1:{port}")]).run()?;
    Ok(outdir.join("index.json"))
}

fn write_spec(path: &Path, peer: &str, outdir: &Path, cases: &[&str]) -> Result {
    let cases = cases.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    let spec = format!(
        "{{{peer}, \"outdir\": \"{}\", \"cases\": [{cases}], \"exclude-cases\": [], \
         \"exclude-agent-cases\": {{}}}}\n",
        outdir.display()
    );
    fs::write(path, spec).map_err(|e| format!("{}: {e}", path.display()))
}

/// Polls until something accepts on `port`: the child's readiness, bounded.
fn wait_for_port(port: u16) -> Result {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listened on 127.0.0.1:{port} within {START_TIMEOUT:?}"))
}

/// `(case, behavior, behaviorClose)` for each case of an `index.json`, in case order.
///
/// The report's shape is fixed (`{"Agent": {"1.1.1": {"behavior": "OK", ...}, ...}}`), so
/// a scan for the two fields keeps xtask free of a JSON dependency.
fn verdicts(index: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = index;
    while let Some(at) = rest.find("\"behavior\"") {
        // The case id is the last quoted key before this object's opening brace.
        let before = &rest[..at];
        let case = before
            .rfind(": {")
            .and_then(|brace| {
                let key_end = before[..brace].rfind('"')?;
                let key_start = before[..key_end].rfind('"')? + 1;
                Some(before[key_start..key_end].to_owned())
            })
            .unwrap_or_default();
        let field = |name: &str, s: &str| {
            let at = s.find(&format!("\"{name}\": \""))? + name.len() + 5;
            Some(s[at..at + s[at..].find('"')?].to_owned())
        };
        let object = &rest[at..rest[at..].find('}').map_or(rest.len(), |end| at + end)];
        let behavior = field("behavior", object).unwrap_or_default();
        let close = field("behaviorClose", object).unwrap_or_default();
        out.push((case, behavior, close));
        rest = &rest[at + object.len()..];
    }
    out.sort_by_key(|v| case_key(&v.0));
    out
}

fn case_key(case: &str) -> Vec<u32> {
    case.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

fn render(verdicts: &[(String, String, String)]) -> String {
    let mut text = String::from("# case behavior behaviorClose (cargo xtask autobahn --bless)\n");
    for (case, behavior, close) in verdicts {
        let _ = writeln!(text, "{case} {behavior} {close}");
    }
    text
}

fn parse_expected(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(str::to_owned);
            Some((f.next()?, f.next()?, f.next()?))
        })
        .collect()
}

/// Lines for each case whose verdict changed; a quick run checks only the cases it ran.
fn compare(expected: &[(String, String, String)], got: &[(String, String, String)]) -> Vec<String> {
    let mut diff = Vec::new();
    for (case, behavior, close) in got {
        match expected.iter().find(|(c, ..)| c == case) {
            Some((_, b, c)) if b == behavior && c == close => {}
            Some((_, b, c)) => {
                diff.push(format!("  {case}: expected {b} {c}, got {behavior} {close}"));
            }
            None => diff.push(format!("  {case}: not in the expectation, got {behavior} {close}")),
        }
    }
    if got.len() > 1 && got.iter().all(|(c, ..)| c.is_empty()) {
        diff.push("  the report had no case ids".into());
    }
    diff
}

fn print_counts(verdicts: &[(String, String, String)]) {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, behavior, _) in verdicts {
        match counts.iter_mut().find(|(b, _)| *b == behavior) {
            Some((_, n)) => *n += 1,
            None => counts.push((behavior, 1)),
        }
    }
    let line: Vec<String> = counts.iter().map(|(b, n)| format!("{b}={n}")).collect();
    println!("  {}", line.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_args;

    const INDEX: &str = r#"{
   "Tandem": {
      "1.1.10": {
         "behavior": "OK",
         "behaviorClose": "OK",
         "duration": 2,
         "remoteCloseCode": 1000,
         "reportfile": "tandem_case_1_1_10.json"
      },
      "1.1.2": {
         "behavior": "NON-STRICT",
         "behaviorClose": "OK",
         "duration": 1,
         "remoteCloseCode": 1000,
         "reportfile": "tandem_case_1_1_2.json"
      }
   }
}"#;

    #[test]
    fn verdicts_are_read_in_case_order() {
        let v = verdicts(INDEX);
        assert_eq!(
            v,
            vec![
                ("1.1.2".into(), "NON-STRICT".into(), "OK".into()),
                ("1.1.10".into(), "OK".into(), "OK".into()),
            ]
        );
        assert_eq!(parse_expected(&render(&v)), v);
    }

    #[test]
    fn any_change_is_a_difference() {
        let expected = verdicts(INDEX);
        assert!(compare(&expected, &expected).is_empty());
        let mut better = expected.clone();
        better[0].1 = "OK".into();
        assert_eq!(compare(&expected, &better).len(), 1);
        let extra = vec![("9.9.9".into(), "OK".into(), "OK".into())];
        assert_eq!(compare(&expected, &extra).len(), 1);
    }

    #[test]
    fn options() {
        assert_eq!(
            parse(&test_args(&["--quick", "server"])).unwrap(),
            Options { quick: true, bless: false, side: Some(Side::Server) }
        );
        assert!(parse(&test_args(&["--quick", "--bless"])).is_err());
        assert!(parse(&test_args(&["--nope"])).is_err());
    }
}
