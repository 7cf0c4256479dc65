//! `cargo xtask e2e`: the polls demo end to end, as deployed and as a person uses it.
//!
//! 1. The scale-out test (`examples/polls/tests/it/scale_out.rs`): redis-server, `PostgreSQL`,
//!    two polls processes and nginx on loopback; a vote through one instance, the session
//!    read through the other. CI runs it too, in `cargo test`.
//! 2. The fault tests (`examples/polls/tests/it/faults.rs`), one at a time, each printing its
//!    figures: Redis down for 10 s, `PostgreSQL` restarting, one of three instances killed
//!    behind nginx and then each restarted, one instance shut down, all under load. CI runs
//!    them too, with a 3 s Redis outage, which proves the same in less time.
//! 3. Headless Chromium (Debian's `chromium` and `chromium-driver`, installed here if
//!    missing; never in CI, it is a large install) opens the question list, follows a link,
//!    picks a radio button, submits the form, and must land on the results page showing
//!    "1 vote", then sees the session remember the vote. `xtask/browser` drives it over
//!    WebDriver (fantoccini, through chromedriver); it is a workspace of its own, so xtask
//!    keeps to std and lexopt and starts in seconds.
//! 4. `cargo xtask har-check`: HAR files `examples/fetch --har` records, over HTTP and
//!    HTTPS, parsed by Chromium's own `DevTools` HAR parser under node.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Stdio},
    time::Instant,
};

use crate::{Cmd, Killed, Result, fmt_duration, free_port, peers};

/// Scratch space for the run: the database and the config (gitignored).
const WORK_DIR: &str = "target/e2e";

/// How long the fault tests keep Redis down here (`POLLS_FAULT_OUTAGE_SECS`).
const REDIS_OUTAGE_SECS: &str = "10";

/// The WebDriver client that drives Chromium through the pages.
const BROWSER_MANIFEST: &str = "xtask/browser/Cargo.toml";

pub(crate) fn run() -> Result {
    let start = Instant::now();
    peers::ensure_commands(&[
        ("redis-server", "redis-server"),
        ("nginx", "nginx"),
        ("chromium", "chromium"),
        ("chromium-driver", "chromedriver"),
    ])?;
    peers::ensure_packages(&["postgresql"])?;

    let t = Instant::now();
    println!("\n==> e2e: two polls instances behind nginx, sessions in Redis");
    Cmd::cargo().args(["test", "-p", "polls", "--test", "it", "--", "scale_out"]).run()?;
    let scale_out = t.elapsed();

    let t = Instant::now();
    println!(
        "\n==> e2e: faults under load (Redis down {REDIS_OUTAGE_SECS} s, PostgreSQL, instances)"
    );
    Cmd::cargo()
        .env("POLLS_FAULT_OUTAGE_SECS", REDIS_OUTAGE_SECS)
        .args(["test", "-p", "polls", "--test", "it", "--", "fault", "--nocapture"])
        .run()?;
    let faults = t.elapsed();

    let t = Instant::now();
    println!("\n==> e2e: headless Chromium votes");
    Cmd::cargo().args(["build", "-q", "-p", "polls"]).run()?;
    Cmd::cargo().args(["build", "-q", "--manifest-path", BROWSER_MANIFEST]).run()?;
    let built = t.elapsed();
    let t = Instant::now();
    browser_votes()?;
    let browser = t.elapsed();

    let t = Instant::now();
    println!("\n==> e2e: recorded HAR files in Chromium DevTools' HAR parser");
    crate::har_check::run()?;
    let har = t.elapsed();

    println!("\n==> e2e: elapsed");
    println!("  {:<24} {:>9}", "scale-out test", fmt_duration(scale_out));
    println!("  {:<24} {:>9}", "fault tests", fmt_duration(faults));
    println!("  {:<24} {:>9}", "build polls and driver", fmt_duration(built));
    println!("  {:<24} {:>9}", "chromium votes", fmt_duration(browser));
    println!("  {:<24} {:>9}", "HAR in DevTools' parser", fmt_duration(har));
    println!("  {:<24} {:>9}", "total", fmt_duration(start.elapsed()));
    println!("e2e: all passed");
    Ok(())
}

fn browser_votes() -> Result {
    let dir = Path::new(WORK_DIR);
    // A fresh database each run, so the counts below are exact.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("clear {WORK_DIR}: {e}"))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {WORK_DIR}: {e}"))?;
    let config = dir.join("polls.toml");
    let db = std::env::current_dir().map_err(|e| e.to_string())?.join(dir).join("polls.sqlite3");
    // A TOML literal string: everything but `'` and line breaks as it is.
    let db = db.display().to_string();
    if db.contains(['\'', '\n', '\r']) {
        return Err(format!("the checkout's path {db:?} cannot be written into polls.toml"));
    }
    std::fs::write(&config, format!("[server]\nport = 0\n[database]\npath = '{db}'\n"))
        .map_err(|e| format!("write {}: {e}", config.display()))?;

    let (polls, base) = start_polls(&config)?;
    let _polls = Killed(polls);
    println!("polls: {base}");
    let (chromedriver, webdriver) = start_chromedriver()?;
    let _chromedriver = Killed(chromedriver);
    Cmd::cargo()
        .args(["run", "-q", "--manifest-path", BROWSER_MANIFEST, "--"])
        .args(["--webdriver", &webdriver, "--base", &base])
        .run()
}

/// Starts chromedriver on a free loopback port and returns it with its URL, once it says it
/// listens.
fn start_chromedriver() -> Result<(Child, String)> {
    let port = free_port()?;
    let cmd = Cmd::new("chromedriver").arg(format!("--port={port}"));
    let url = format!("http://127.0.0.1:{port}");
    start_announced(&cmd, |line| line.contains("started successfully").then(|| url.clone()))
}

/// Starts `polls --config CONFIG` and returns it with its base URL, from the line it prints
/// once it listens.
fn start_polls(config: &Path) -> Result<(Child, String)> {
    let cmd = Cmd::cargo().args(["run", "-q", "-p", "polls", "--", "--config"]).arg(config);
    start_announced(&cmd, |line| {
        let url = line.trim().strip_prefix("polls: listening on ")?;
        Some(url.trim_end_matches('/').to_owned())
    })
}

/// Starts `cmd` and reads its standard output until `ready` recognises a line; returns the
/// process and what `ready` made of that line. The rest of its output is read and dropped on
/// a thread of its own, so that a later line never meets a closed pipe.
fn start_announced(cmd: &Cmd, ready: impl Fn(&str) -> Option<String>) -> Result<(Child, String)> {
    println!("$ {}", cmd.display());
    let mut child = cmd
        .command()
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `{}`: {e}", cmd.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut said = String::new();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(found) = ready(&line) {
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, found));
        }
        said.push_str(&line);
        said.push('\n');
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("`{}` did not start; it printed:\n{said}", cmd.display()))
}
