//! Tandem's automation entry point, run as `cargo xtask <command>`.
//!
//! It is plain Rust with one small dependency, lexopt for its arguments (the "xtask"
//! pattern), so that CI needs nothing but cargo and it builds in seconds. `.ci/run` ends in
//! `cargo xtask ci`, so what runs locally and what runs in CI are the same steps by
//! construction.

mod autobahn;
mod bench;
mod ci;
mod e2e;
mod fuzz;
mod har_check;
mod peers;

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// Every step reports failure as a message for a person; nothing here is
/// recovered from, so a string is all the structure an error needs.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  ci                              run every check CI runs, in CI's order
  peers                           install what the tests need (apt packages, .venv with
                                  aiohttp, httpbin and gunicorn)
  fuzz [--secs N] [--sanitizer S] [TARGET...]
                                  run the cargo-fuzz targets in fuzz/ (default 60 s each)
  bench [NAME] [-- ARGS...]       run criterion benches (all when no NAME), passing ARGS on
  bench server [--secs N] [--rounds R] [--only tandem|hyper|actix-web|floor]
                                  wrk: our bench_server example vs hyper and actix-web
                                  (peers in benches/peers/; defaults 5 s, 3 rounds)
  bench server-count              the same servers' instructions per request under callgrind
  bench build [--rounds R]        a hello-world server's cold debug build time: axum 0.8,
                                  Tandem server-only and Tandem default, side by side
  bench client [--secs N] [--rounds R]
                                  ClientSession vs reqwest against hyper_server, 1 and 32
                                  concurrent GET loops (defaults 5 s, 3 rounds)
  bench loadtest [--secs N] [--rounds R]
                                  examples/loadtest vs wrk, both driving bench_server with
                                  64 connections (target: at least 0.8x wrk's req/s)
  bench ws [--secs N] [--rounds R]
                                  WebSocket echo: ws_load and bench_server's /ws vs
                                  tokio-tungstenite, 1 and 64 connections, 32 B and 1 MiB
  bench tls [--secs N] [--rounds R]
                                  HTTPS: bench_server vs hyper on the same rustls, nginx for
                                  reference; keep-alive, new and resumed connections
  bench tls-client [--secs N] [--rounds R]
                                  HTTPS client: loadtest vs reqwest on the same rustls,
                                  against nginx; 1 and 32 loops, new connections
  bench bulk [--secs N] [--rounds R]
                                  moving bytes: bench_server --static vs nginx (sendfile,
                                  open_file_cache), a 4 KiB file (-c64) and 1 MiB (-c16);
                                  POST /echo of 1 MiB vs hyper (-c8); a 1 GiB upload a
                                  handler streams to a file vs hyper; the client's 1 GiB
                                  download and upload vs curl (and reqwest)
  bench tls-count                 Tandem's and hyper's HTTPS servers' instructions per
                                  request under callgrind, keep-alive, new connections
                                  and resumed ones, fixed request counts
  autobahn [--quick] [--bless] [server|client]
                                  the WebSocket conformance suite against our server and
                                  client, diffed against autobahn/expected-*.txt (--quick:
                                  the groups CI runs; --bless: record the full results)
  e2e                             the polls demo end to end: two instances behind nginx
                                  with Redis sessions, then headless Chromium votes
                                  (installs redis-server, nginx and chromium if missing)
  har-check                       a HAR recorded by examples/fetch over HTTP and HTTPS,
                                  parsed by Chromium DevTools' own HAR parser under node
  help                            print this message
";

fn main() -> ExitCode {
    let root = project_root();
    // Every path below is relative to the root, whatever directory cargo was
    // started from (`cargo xtask` works from any subdirectory).
    if let Err(e) = env::set_current_dir(&root) {
        eprintln!("xtask: cannot enter project root {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Err("no command given".into());
    };
    match cmd.as_str() {
        "ci" => {
            no_args("ci", rest)?;
            ci::run()
        }
        "peers" => {
            no_args("peers", rest)?;
            peers::run()
        }
        "e2e" => {
            no_args("e2e", rest)?;
            e2e::run()
        }
        "har-check" => {
            no_args("har-check", rest)?;
            har_check::run()
        }
        "fuzz" => fuzz::run(rest),
        "autobahn" => autobahn::run(rest),
        "bench" => bench::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            Err(format!("unknown command `{other}`"))
        }
    }
}

fn no_args(cmd: &str, rest: &[String]) -> Result {
    match rest.first() {
        None => Ok(()),
        Some(a) => Err(format!("`{cmd}` takes no arguments, got `{a}`")),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` at run time too; that value is
/// preferred over the compile-time one so a binary built in one checkout and
/// reused through a shared `CARGO_TARGET_DIR` still acts on the right tree.
fn project_root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().expect("xtask/ always has a parent directory").to_path_buf()
}

/// The cargo that started us (cargo sets `CARGO` for `cargo run`), so every
/// step uses the same toolchain even if PATH holds another one.
fn cargo_bin() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A command to run with its line printed first, so a log shows exactly what
/// to paste to reproduce a failing step.
pub(crate) struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
}

impl Cmd {
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Self {
        Self { program: program.as_ref().to_owned(), args: Vec::new(), envs: Vec::new() }
    }

    /// `cargo <args>`, printed as plain `cargo` whatever path `CARGO` holds.
    pub(crate) fn cargo() -> Self {
        Self::new(cargo_bin())
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), val.as_ref().to_owned()));
        self
    }

    /// The command as a shell line: `KEY='v' program arg...`.
    pub(crate) fn display(&self) -> String {
        let mut line = String::new();
        for (k, v) in &self.envs {
            let _ = write!(line, "{}={} ", k.to_string_lossy(), quote(v));
        }
        // Show `cargo`, not the toolchain's absolute path to it.
        if self.program == cargo_bin() {
            line.push_str("cargo");
        } else {
            line.push_str(&quote(&self.program));
        }
        for a in &self.args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        line
    }

    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Prints the command, runs it with inherited stdio, and fails unless it
    /// exits 0.
    pub(crate) fn run(&self) -> Result {
        println!("$ {}", self.display());
        let status = self
            .command()
            .status()
            .map_err(|e| format!("could not start `{}`: {e}", self.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed ({status})", self.display()))
        }
    }

    /// A quiet check (is a tool there? is a package installed?): prints the
    /// command and its answer on one line, hides the command's own output.
    pub(crate) fn probe(&self) -> bool {
        let ok = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        println!("? {} -> {}", self.display(), if ok { "yes" } else { "no" });
        ok
    }

    /// Prints and runs the command, and returns its stdout; a failure's error carries both
    /// outputs, for a load tool whose report is the point.
    pub(crate) fn capture(&self) -> Result<String> {
        println!("$ {}", self.display());
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not start `{}`: {e}", self.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "`{}` failed ({}):\n{text}{}",
                self.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(text)
    }

    /// Runs quietly and returns trimmed stdout when the command succeeds.
    pub(crate) fn read(&self) -> Option<String> {
        let out = self.command().stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// Single-quotes an argument for display when a shell would split or expand it.
fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain =
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain { s.into_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// A parser over a subcommand's arguments (lexopt: `--flag value`, `--flag=value`, values
/// in any position).
pub(crate) fn arg_parser(args: &[String]) -> lexopt::Parser {
    lexopt::Parser::from_args(args)
}

/// A bad argument, said with the subcommand's usage line.
pub(crate) fn bad_arg(e: &lexopt::Error, usage: &str) -> String {
    format!("{e} (usage: {usage})")
}

/// Owned arguments for the option parsers' tests.
#[cfg(test)]
pub(crate) fn test_args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// The value of `flag` as a count above zero (seconds, rounds).
pub(crate) fn positive<T: std::str::FromStr + PartialOrd + Default>(
    parser: &mut lexopt::Parser,
    flag: &str,
) -> Result<T> {
    let value = parser.value().map_err(|e| e.to_string())?;
    let value = value.to_string_lossy();
    value
        .parse()
        .ok()
        .filter(|n| *n > T::default())
        .ok_or_else(|| format!("{flag} wants a whole number above 0, got `{value}`"))
}

/// A port the kernel just handed out and that nothing holds now.
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind a probe port on 127.0.0.1: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A child process killed and reaped when dropped, whatever the outcome.
pub(crate) struct Killed(pub(crate) std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `1m05.3s` / `4.2s`: short enough for a summary column.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let mins = (secs / 60.0).floor();
        format!("{mins:.0}m{:04.1}s", secs - mins * 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{fmt_duration, quote};
    use std::time::Duration;

    #[test]
    fn quotes_only_what_a_shell_would_split() {
        assert_eq!(quote("fmt".as_ref()), "fmt");
        assert_eq!(quote("-max_total_time=60".as_ref()), "-max_total_time=60");
        assert_eq!(quote("-D warnings".as_ref()), "'-D warnings'");
        assert_eq!(quote("it's".as_ref()), r"'it'\''s'");
        assert_eq!(quote("".as_ref()), "''");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(fmt_duration(Duration::from_millis(65_300)), "1m05.3s");
    }
}
