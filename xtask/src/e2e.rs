//! `cargo xtask e2e`: the polls demo end to end, as deployed and as a person uses it.
//!
//! 1. The scale-out test (`examples/polls/tests/it/scale_out.rs`): redis-server, two polls
//!    processes and nginx on loopback; a vote through one instance, the session read through
//!    the other. CI runs it too, in `cargo test`.
//! 2. Headless Chromium (Debian's `chromium`, installed here if missing; never in CI, it is
//!    a large install) opens the question list, follows a link, picks a radio button, submits
//!    the form, and must land on the results page showing "1 vote", then sees the session
//!    remember the vote.
//!
//! Chromium is driven over its `DevTools` protocol on `--remote-debugging-pipe`: JSON messages
//! ended by NUL on file descriptors 3 (in) and 4 (out), which `sh` wires to our pipes. No
//! WebSocket client and no crate are needed, so xtask keeps its zero dependencies.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

use crate::{Cmd, Killed, Result, fmt_duration, peers};

/// The longest one browser step (a navigation, a form post) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a page is asked whether it has loaded while waiting for it.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Scratch space for the run: the database, the config, Chromium's profile (gitignored).
const WORK_DIR: &str = "target/e2e";

pub(crate) fn run() -> Result {
    let start = Instant::now();
    peers::ensure_commands(&[
        ("redis-server", "redis-server"),
        ("nginx", "nginx"),
        ("chromium", "chromium"),
    ])?;

    let t = Instant::now();
    println!("\n==> e2e: two polls instances behind nginx, sessions in Redis");
    Cmd::cargo().args(["test", "-p", "polls", "--test", "it", "--", "scale_out"]).run()?;
    let scale_out = t.elapsed();

    let t = Instant::now();
    println!("\n==> e2e: headless Chromium votes");
    Cmd::cargo().args(["build", "-q", "-p", "polls"]).run()?;
    let built = t.elapsed();
    let t = Instant::now();
    browser_votes()?;
    let browser = t.elapsed();

    println!("\n==> e2e: elapsed");
    println!("  {:<24} {:>9}", "scale-out test", fmt_duration(scale_out));
    println!("  {:<24} {:>9}", "build polls", fmt_duration(built));
    println!("  {:<24} {:>9}", "chromium votes", fmt_duration(browser));
    println!("  {:<24} {:>9}", "total", fmt_duration(start.elapsed()));
    println!("e2e: all passed");
    Ok(())
}

fn browser_votes() -> Result {
    let dir = Path::new(WORK_DIR);
    // A fresh database and profile each run, so the counts below are exact.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("clear {WORK_DIR}: {e}"))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {WORK_DIR}: {e}"))?;
    let config = dir.join("polls.toml");
    let db = std::env::current_dir().map_err(|e| e.to_string())?.join(dir).join("polls.sqlite3");
    // A JSON string literal is a valid TOML basic string.
    let db = json_string(&db.display().to_string());
    std::fs::write(&config, format!("[server]\nport = 0\n[database]\npath = {db}\n"))
        .map_err(|e| format!("write {}: {e}", config.display()))?;

    let (polls, base) = start_polls(&config)?;
    let _polls = Killed(polls);
    println!("polls: {base}");
    let mut browser = Browser::start(&dir.join("chromium"))?;

    browser.open(&format!("{base}/"))?;
    let list = browser.wait_for("the question list", "document.querySelector('ul.questions a')")?;
    println!("list: first question {list:?}");
    browser.eval("document.querySelector('ul.questions a').click()")?;
    browser.wait_for("the question page", "document.querySelector('form input[type=radio]')")?;
    browser.eval(
        "document.querySelector('input[name=choice]').checked = true; \
         document.querySelector('form').submit()",
    )?;
    let mine = browser.wait_for(
        "the results page",
        "location.pathname.endsWith('/results') && document.querySelector('li.mine')",
    )?;
    println!("results: {mine:?}");
    if !mine.ends_with("-- 1 vote") {
        return Err(format!("the results page shows {mine:?}, not one vote"));
    }
    // A fresh load of the question (not `history.back()`, which may show the cached page).
    browser.eval("location.assign(location.pathname.replace(/\\/results$/, ''))")?;
    let remembered = browser.wait_for(
        "the question page again",
        "document.querySelector('form') && document.querySelector('p.voted')",
    )?;
    println!("session: {remembered:?}");
    if !remembered.starts_with("You voted for") {
        return Err(format!("the session did not remember the vote: {remembered:?}"));
    }
    Ok(())
}

/// Starts `polls --config CONFIG` and returns it with its base URL, from the line it prints
/// once it listens.
fn start_polls(config: &Path) -> Result<(Child, String)> {
    let cmd = Cmd::cargo().args(["run", "-q", "-p", "polls", "--", "--config"]).arg(config);
    println!("$ {}", cmd.display());
    let mut child = cmd
        .command()
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start polls: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    let read = BufReader::new(stdout).read_line(&mut line);
    if let (Ok(_), Some(url)) = (read, line.trim().strip_prefix("polls: listening on ")) {
        return Ok((child, url.trim_end_matches('/').to_owned()));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("polls did not start: it printed {line:?}"))
}

/// Headless Chromium on the `DevTools` pipe, with one page attached.
struct Browser {
    child: Killed,
    input: ChildStdin,
    messages: Receiver<String>,
    next_id: u64,
    session: String,
}

impl Browser {
    fn start(profile: &Path) -> Result<Browser> {
        // fd 3 is what Chromium reads commands from, fd 4 where it writes answers; stdin and
        // stdout are moved there, then pointed at /dev/null. `--no-sandbox`: CI and dev
        // machines here run as root, where Chromium's sandbox refuses to start.
        let script = format!(
            "exec chromium --headless --no-sandbox --disable-gpu --no-first-run \
             --remote-debugging-pipe --user-data-dir='{}' about:blank \
             3<&0 4>&1 0</dev/null 1>/dev/null",
            profile.display()
        );
        let mut child = Cmd::new("sh")
            .args(["-c", &script])
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start chromium: {e}"))?;
        let input = child.stdin.take().expect("stdin is piped");
        let output = child.stdout.take().expect("stdout is piped");
        let (tx, messages) = mpsc::channel();
        // A reader thread, so that every wait below has a timeout even if Chromium hangs.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop();
                if tx.send(String::from_utf8_lossy(&message).into_owned()).is_err() {
                    break;
                }
                message.clear();
            }
        });
        let mut browser =
            Browser { child: Killed(child), input, messages, next_id: 0, session: String::new() };
        let target = browser.call("Target.createTarget", r#"{"url":"about:blank"}"#)?;
        let target = string_field(&target, "targetId").ok_or("no targetId")?;
        let params = format!(r#"{{"targetId":"{target}","flatten":true}}"#);
        let attached = browser.call("Target.attachToTarget", &params)?;
        browser.session = string_field(&attached, "sessionId").ok_or("no sessionId")?;
        Ok(browser)
    }

    /// Sends one command (to the attached page once there is one) and returns its answer.
    fn call(&mut self, method: &str, params: &str) -> Result<String> {
        self.next_id += 1;
        let id = self.next_id;
        let session = if self.session.is_empty() {
            String::new()
        } else {
            format!(r#","sessionId":"{}""#, self.session)
        };
        let message = format!(r#"{{"id":{id},"method":"{method}","params":{params}{session}}}"#);
        self.input
            .write_all(message.as_bytes())
            .and_then(|()| self.input.write_all(b"\0"))
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("chromium went away: {e}"))?;
        // Answers start with their id; events (no id) are skipped.
        let prefix = format!(r#"{{"id":{id},"#);
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(answer) if answer.starts_with(&prefix) => {
                    if answer.contains(r#""error":"#) {
                        return Err(format!("{method} failed: {answer}"));
                    }
                    return Ok(answer);
                }
                Ok(_event) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("chromium did not answer {method} in {STEP_TIMEOUT:?}"));
                }
                Err(RecvTimeoutError::Disconnected) => return Err("chromium exited".into()),
            }
        }
    }

    fn open(&mut self, url: &str) -> Result {
        self.call("Page.navigate", &format!(r#"{{"url":{}}}"#, json_string(url))).map(drop)
    }

    /// Evaluates `expression` in the page; returns its value as text (empty for none).
    fn eval(&mut self, expression: &str) -> Result<String> {
        let params =
            format!(r#"{{"expression":{},"returnByValue":true}}"#, json_string(expression));
        let answer = self.call("Runtime.evaluate", &params)?;
        if answer.contains(r#""exceptionDetails""#) {
            return Err(format!("{expression} threw: {answer}"));
        }
        Ok(string_field(&answer, "value").unwrap_or_default())
    }

    /// Polls until the loaded page has an element for `selector_expr` (a JS expression that
    /// gives an element or null), and returns that element's text.
    fn wait_for(&mut self, what: &str, selector_expr: &str) -> Result<String> {
        let probe = format!(
            "(() => {{ if (document.readyState !== 'complete') return ''; \
             const e = {selector_expr}; return e ? '=' + e.textContent.trim() : ''; }})()"
        );
        let deadline = Instant::now() + STEP_TIMEOUT;
        while Instant::now() < deadline {
            // Mid-navigation the old document may be gone: an exception is "not yet".
            if let Ok(text) = self.eval(&probe)
                && let Some(text) = text.strip_prefix('=')
            {
                return Ok(text.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let url = self.eval("location.href").unwrap_or_default();
        Err(format!("{what} did not appear in {STEP_TIMEOUT:?} (the page is {url})"))
    }
}

/// How long Chromium may take to exit after `Browser.close` before it is killed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl Drop for Browser {
    fn drop(&mut self) {
        // Closed through the protocol, Chromium ends its renderer and helper processes
        // itself; killed outright, it would leave them behind.
        self.session.clear();
        if self.call("Browser.close", "{}").is_ok() {
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            while Instant::now() < deadline && matches!(self.child.0.try_wait(), Ok(None)) {
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The first string value of `"key":` in a JSON message, unescaped. Enough for the few
/// fields read here (ids and evaluation results), which never nest a same-named key before
/// the one wanted.
fn string_field(message: &str, key: &str) -> Option<String> {
    let start = message.find(&format!(r#""{key}":""#))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = message[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?).unwrap_or('\u{fffd}'),
                    );
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{json_string, string_field};

    #[test]
    fn strings_in_and_out_of_json() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
        let answer =
            r#"{"id":4,"result":{"result":{"type":"string","value":"1 \"vote\"\u2014ok"}}}"#;
        assert_eq!(string_field(answer, "value").as_deref(), Some("1 \"vote\"—ok"));
        assert_eq!(string_field(answer, "missing"), None);
        assert_eq!(string_field(r#"{"value":"unterminated"#, "value"), None);
    }
}
