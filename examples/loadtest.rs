//! A load tester on Tandem's client, in the manner of wrk: C tasks on one current-thread
//! runtime share one `ClientSession`, whose connector allows C connections (aiohttp's
//! `TCPConnector(limit=C)`), and each sends requests back to back, reading every body whole.
//!
//! ```text
//! cargo run --release --example loadtest -- [-n N | -d SECS] [-c C] [-m METHOD] [--body-file F] [-H 'K: V']... [--timeout SECS] [--cacert PEM | --insecure] [--http1.1 | --http2-prior-knowledge] URL
//! cargo run --release --example loadtest -- -c 64 -d 10 http://127.0.0.1:8080/plaintext
//! ```
//!
//! For an https URL, `--cacert PEM` trusts the certificates in that file instead of the
//! webpki roots (curl's `--cacert`, for a server with a certificate of its own making), and
//! `--insecure` (`-k`) checks none, as wrk never does. HTTP/2 is spoken where ALPN settles it
//! (the session's default); `--http1.1` keeps to HTTP/1.1, and `--http2-prior-knowledge`
//! speaks HTTP/2 without asking (h2c on plain http), every task's requests then sharing one
//! connection as streams (`cargo xtask bench h2`'s client part).
//!
//! It runs for SECS seconds (10 by default) or until N requests have completed, with a
//! progress bar when stdout is a terminal, then prints the latency percentiles, the errors
//! by kind, the non-2xx/3xx count, the client's own CPU time, the body throughput, and last
//! `Requests/sec: R`, as wrk does. As in wrk, a request that takes longer than `--timeout`
//! (2 s by default) counts as a `timeout` error. `cargo xtask bench client` runs it against reqwest's
//! equivalent (`benches/peers`' `reqwest_client`) and reads the `requests in` line.
//!
//! This is the seeds' concurrency test done right: the connection count is bounded by the
//! connector rather than by opening a session per request, one clock reading brackets each
//! request, latencies go into an HDR histogram per task (merged at the end, so tasks never
//! contend), and failures are counted by kind instead of ending the run.

// Counts, bytes and microseconds stay far below 2^52, where f64 is exact, and the only
// f64s cast back to integers are elapsed times, which are never negative.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

use std::{
    collections::BTreeMap,
    io::IsTerminal,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::cpu_secs;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tandem_http::{
    ClientSession,
    bytes::Bytes,
    client::{ClientResponse, ClientTimeout, Connector, Error, Http2, TlsConfig},
    http::Method,
};

const USAGE: &str = "usage: loadtest [-n N | -d SECS] [-c C] [-m METHOD] [--body-file F] [-H 'K: V']... \
                     [--timeout SECS] [--cacert PEM | --insecure] [--http1.1 | --http2-prior-knowledge] URL";

/// wrk's defaults: 10 connections for 10 seconds.
const DEFAULT_CONNECTIONS: usize = 10;
const DEFAULT_SECS: f64 = 10.0;
/// wrk's default request timeout. It is the session's only timeout: one deadline per request
/// costs less client CPU than the default's several, and it bounds connecting too.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The histogram's range, in microseconds: 1 µs to an hour, at 3 significant digits.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// How often the progress bar is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// When the run ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// After this many requests, failed ones included.
    Requests(u64),
    /// After this long; requests in flight then are completed and counted.
    Secs(f64),
}

#[derive(Debug)]
pub(crate) struct Args {
    stop: Stop,
    connections: usize,
    method: Method,
    body: Option<Bytes>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    /// `--cacert` or `--insecure`; `None` keeps the client's default verification.
    tls: Option<TlsConfig>,
    /// `--http1.1` or `--http2-prior-knowledge`; `None` keeps the session's default.
    http2: Option<Http2>,
    url: String,
}

pub(crate) fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    use lexopt::prelude::*;
    let (mut requests, mut secs, mut body_file) = (None, None, None);
    let mut connections = DEFAULT_CONNECTIONS;
    let mut method = Method::GET;
    let mut headers = Vec::new();
    let mut timeout = DEFAULT_TIMEOUT;
    let (mut cacert, mut insecure) = (None, false);
    let mut http2 = None;
    let mut url = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|e| bad(&e))? {
        let flag = match arg {
            Short(c) => format!("-{c}"),
            Long(name) => format!("--{name}"),
            Value(_) => String::new(),
        };
        match arg {
            Short('n') => requests = Some(positive::<u64>(&flag, &value_of(&mut parser)?)?),
            // wrk writes durations as `10s`; plain seconds work too.
            Short('d') => secs = Some(seconds(&flag, &value_of(&mut parser)?)?),
            Long("timeout") => {
                timeout = Duration::from_secs_f64(seconds(&flag, &value_of(&mut parser)?)?);
            }
            Short('c') => connections = positive(&flag, &value_of(&mut parser)?)?,
            Short('m') => {
                method = Method::from_bytes(value_of(&mut parser)?.as_bytes())
                    .map_err(|e| e.to_string())?;
            }
            Long("body-file") => body_file = Some(value_of(&mut parser)?),
            Long("cacert") => cacert = Some(value_of(&mut parser)?),
            Short('k') | Long("insecure") => insecure = true,
            Long("http1.1") => http2 = Some(Http2::Never),
            Long("http2-prior-knowledge") => http2 = Some(Http2::PriorKnowledge),
            Short('H') => {
                let header = value_of(&mut parser)?;
                let (name, val) =
                    header.split_once(':').ok_or_else(|| format!("bad header {header:?}"))?;
                headers.push((name.trim().to_owned(), val.trim().to_owned()));
            }
            Short('h') | Long("help") => return Err(USAGE.to_owned()),
            Value(v) if url.is_none() => {
                url = Some(v.string().map_err(|e| bad(&e))?);
            }
            _ => return Err(bad(&arg.unexpected())),
        }
    }
    let stop = match (requests, secs) {
        (Some(_), Some(_)) => return Err(format!("-n and -d exclude each other\n{USAGE}")),
        (Some(n), None) => Stop::Requests(n),
        (None, Some(s)) => Stop::Secs(s),
        (None, None) => Stop::Secs(DEFAULT_SECS),
    };
    let body = match body_file {
        Some(path) => {
            Some(std::fs::read(&path).map_err(|e| format!("--body-file {path}: {e}"))?.into())
        }
        None => None,
    };
    let tls = match (cacert, insecure) {
        (Some(_), true) => {
            return Err(format!("--cacert and --insecure exclude each other\n{USAGE}"));
        }
        (Some(path), false) => {
            let pem = std::fs::read(&path).map_err(|e| format!("--cacert {path}: {e}"))?;
            let tls = TlsConfig::builder()
                .webpki_roots(false)
                .add_root_certificates_pem(&pem)
                .map_err(|e| format!("--cacert {path}: {e}"))?
                .build()
                .map_err(|e| format!("--cacert {path}: {e}"))?;
            Some(tls)
        }
        (None, true) => Some(
            TlsConfig::builder()
                .verify_ssl(false)
                .build()
                .map_err(|e| format!("--insecure: {e}"))?,
        ),
        (None, false) => None,
    };
    let url = url.ok_or_else(|| USAGE.to_owned())?;
    Ok(Args { stop, connections, method, body, headers, timeout, tls, http2, url })
}

/// A bad argument, with the usage line.
fn bad(e: &lexopt::Error) -> String {
    format!("{e}\n{USAGE}")
}

/// The value of the option that `parser` just returned, as UTF-8.
fn value_of(parser: &mut lexopt::Parser) -> Result<String, String> {
    parser.value().and_then(lexopt::ValueExt::string).map_err(|e| bad(&e))
}

/// A positive number of seconds; wrk writes durations as `10s`, and plain numbers work too.
fn seconds(flag: &str, text: &str) -> Result<f64, String> {
    match text.strip_suffix('s').unwrap_or(text).parse::<f64>() {
        // Bounded so that `Duration::from_secs_f64` cannot overflow.
        Ok(s) if s > 0.0 && s < 1e9 => Ok(s),
        _ => Err(format!("{flag} needs a positive number of seconds, not {text:?}")),
    }
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    flag: &str,
    text: &str,
) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("{flag} needs a positive whole number, not {text:?}")),
    }
}

/// What one task measured; the tasks' reports are merged at the end.
pub(crate) struct Report {
    pub(crate) latency_us: Histogram<u64>,
    /// Failed requests by [`Error::kind_name`].
    pub(crate) errors: BTreeMap<&'static str, u64>,
    /// Responses whose status was not 2xx or 3xx (wrk's count of the same name).
    pub(crate) non_success: u64,
    pub(crate) body_bytes: u64,
}

impl Report {
    fn new() -> Self {
        Report {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("the histogram's bounds are valid"),
            errors: BTreeMap::new(),
            non_success: 0,
            body_bytes: 0,
        }
    }

    fn merge(&mut self, other: Report) {
        self.latency_us.add(&other.latency_us).expect("the histograms share their bounds");
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.non_success += other.non_success;
        self.body_bytes += other.body_bytes;
    }

    pub(crate) fn requests(&self) -> u64 {
        self.latency_us.len() + self.errors.values().sum::<u64>()
    }
}

/// What every task shares.
struct Load {
    session: ClientSession,
    method: Method,
    url: String,
    body: Option<Bytes>,
    stop: Stop,
    deadline: Instant,
    /// Requests started, for `-n` and the progress bar.
    started: AtomicU64,
}

impl Load {
    /// Claims the next request, or says the run is over.
    fn next(&self) -> bool {
        match self.stop {
            Stop::Requests(n) => self
                .started
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s < n).then_some(s + 1))
                .is_ok(),
            Stop::Secs(_) => {
                let go = Instant::now() < self.deadline;
                if go {
                    self.started.fetch_add(1, Ordering::Relaxed);
                }
                go
            }
        }
    }

    /// Sends one request and reads its body; the body's length.
    async fn exchange(&self) -> Result<(ClientResponse, u64), Error> {
        let mut request = self.session.request(self.method.clone(), &self.url);
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let mut response = request.send().await?;
        let mut read = 0;
        // Chunk by chunk rather than `read()`, so a large body is counted, not collected.
        while let Some(chunk) = response.content().chunk().await? {
            read += chunk.len() as u64;
        }
        Ok((response, read))
    }
}

async fn worker(load: Arc<Load>) -> Report {
    let mut report = Report::new();
    while load.next() {
        let start = Instant::now();
        match load.exchange().await {
            Ok((response, bytes)) => {
                let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                report.latency_us.saturating_record(micros.max(1));
                report.body_bytes += bytes;
                let status = response.status();
                if !(status.is_success() || status.is_redirection()) {
                    report.non_success += 1;
                }
            }
            Err(e) => *report.errors.entry(e.kind_name()).or_default() += 1,
        }
    }
    report
}

/// A bar on stdout when it is a terminal, or nothing.
fn progress_bar(stop: Stop) -> Option<ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let (bar, template) = match stop {
        Stop::Requests(n) => (ProgressBar::new(n), "{bar:40} {pos}/{len} requests, {elapsed}"),
        // Tenths of a second, so the bar moves smoothly.
        Stop::Secs(secs) => {
            (ProgressBar::new((secs * 10.0) as u64), "{bar:40} {elapsed}, {msg} requests")
        }
    };
    bar.set_style(ProgressStyle::with_template(template).expect("the template is valid"));
    Some(bar)
}

/// Redraws `bar` every [`TICK`] until the load is over.
async fn tick(bar: ProgressBar, load: Arc<Load>, start: Instant) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let started = load.started.load(Ordering::Relaxed);
        match load.stop {
            Stop::Requests(_) => bar.set_position(started),
            Stop::Secs(_) => {
                bar.set_position((start.elapsed().as_secs_f64() * 10.0) as u64);
                bar.set_message(started.to_string());
            }
        }
    }
}

/// Runs the load; what it measured, and how long it took.
pub(crate) fn run(args: Args) -> Result<(Report, Duration), Error> {
    let mut connector = Connector::builder().limit(args.connections);
    if let Some(tls) = args.tls {
        connector = connector.tls(tls);
    }
    let mut builder = ClientSession::builder()
        .connector(connector.build())
        .timeout(ClientTimeout::NONE.with_total(args.timeout));
    if let Some(mode) = args.http2 {
        builder = builder.http2(mode);
    }
    for (name, value) in &args.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let session = builder.try_build()?;
    // wrk runs one thread per core it is given; so does this, on one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");

    Ok(runtime.block_on(async move {
        let start = Instant::now();
        let secs = match args.stop {
            Stop::Secs(s) => s,
            Stop::Requests(_) => 0.0,
        };
        let load = Arc::new(Load {
            session,
            method: args.method,
            url: args.url,
            body: args.body,
            stop: args.stop,
            deadline: start + Duration::from_secs_f64(secs),
            started: AtomicU64::new(0),
        });
        let bar = progress_bar(args.stop);
        let ticker = bar.clone().map(|bar| tokio::spawn(tick(bar, Arc::clone(&load), start)));
        let tasks: Vec<_> =
            (0..args.connections).map(|_| tokio::spawn(worker(Arc::clone(&load)))).collect();
        let mut report = Report::new();
        for task in tasks {
            report.merge(task.await.expect("a load task panicked"));
        }
        let elapsed = start.elapsed();
        if let (Some(ticker), Some(bar)) = (ticker, bar) {
            ticker.abort();
            bar.finish_and_clear();
        }
        (report, elapsed)
    }))
}

/// The report after the run; its last line is `Requests/sec: R`.
fn summary(report: &Report, elapsed: Duration, cpu: f64) -> String {
    use std::fmt::Write as _;

    let mut out = String::new();
    let secs = elapsed.as_secs_f64();
    let h = &report.latency_us;
    if h.is_empty() {
        out.push_str("  Latency: no request succeeded\n");
    } else {
        let _ = writeln!(
            out,
            "  Latency {:>9} {:>9} {:>9} {:>9} {:>9}",
            "min", "p50", "p90", "p99", "max"
        );
        let _ = writeln!(
            out,
            "          {:>9} {:>9} {:>9} {:>9} {:>9}",
            micros(h.min()),
            micros(h.value_at_quantile(0.5)),
            micros(h.value_at_quantile(0.9)),
            micros(h.value_at_quantile(0.99)),
            micros(h.max()),
        );
    }
    let requests = report.requests();
    let megabytes = report.body_bytes as f64 / 1e6;
    let _ = writeln!(
        out,
        "  {requests} requests in {secs:.3}s, {megabytes:.2} MB read, client CPU {cpu:.3}s"
    );
    if report.errors.is_empty() {
        out.push_str("  Errors: none\n");
    } else {
        let kinds: Vec<_> = report.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "  Errors: {}", kinds.join(", "));
    }
    if report.non_success > 0 {
        let _ = writeln!(out, "  Non-2xx or 3xx responses: {}", report.non_success);
    }
    let _ = writeln!(out, "Transfer/sec: {:.2} MB", megabytes / secs);
    let _ = writeln!(out, "Requests/sec: {:.2}", requests as f64 / secs);
    out
}

/// A latency for people: µs below a millisecond, ms below a second, else s.
fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let what = match args.stop {
        Stop::Requests(n) => format!("{n} requests"),
        Stop::Secs(s) => format!("{s}s"),
    };
    println!("Running {what} test @ {}", args.url);
    println!("  {} connections, {}", args.connections, args.method);
    match run(args) {
        Ok((report, elapsed)) => {
            print!("{}", summary(&report, elapsed, cpu_secs()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadtest: {} error: {e}", e.kind_name());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|&a| a.to_owned()))
    }

    #[test]
    fn arguments() {
        let a = parse(&["http://h/"]).unwrap();
        assert_eq!((a.stop, a.connections, &a.method), (Stop::Secs(10.0), 10, &Method::GET));
        let a =
            parse(&["-n", "500", "-c", "8", "-m", "POST", "-H", "X-A: b", "http://h/"]).unwrap();
        assert_eq!((a.stop, a.connections, &a.method), (Stop::Requests(500), 8, &Method::POST));
        assert_eq!(a.headers, [("X-A".to_owned(), "b".to_owned())]);
        assert_eq!(parse(&["-d", "2.5s", "http://h/"]).unwrap().stop, Stop::Secs(2.5));
        assert_eq!(parse(&["http://h/"]).unwrap().timeout, DEFAULT_TIMEOUT);
        let a = parse(&["--timeout", "0.5", "http://h/"]).unwrap();
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert!(a.tls.is_none());
        assert!(parse(&["-k", "https://h/"]).unwrap().tls.is_some());
        assert_eq!(parse(&["http://h/"]).unwrap().http2, None);
        let a = parse(&["--http2-prior-knowledge", "http://h/"]).unwrap();
        assert_eq!(a.http2, Some(Http2::PriorKnowledge));
        assert_eq!(parse(&["--http1.1", "https://h/"]).unwrap().http2, Some(Http2::Never));
        for bad in [
            &["-n", "1", "-d", "1", "http://h/"][..],
            &["-c", "0", "http://h/"],
            &["-d", "-1", "http://h/"],
            &["-d", "inf", "http://h/"],
            &["--timeout", "0", "http://h/"],
            &["-H", "no-colon", "http://h/"],
            &["--body-file", "/nonexistent/body", "http://h/"],
            &["--cacert", "/nonexistent/ca.pem", "https://h/"],
            &["--cacert", "/dev/null", "https://h/"],
            &["--cacert", "/dev/null", "--insecure", "https://h/"],
            &["-c", "4"],
            &["http://a/", "http://b/"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn report_ends_with_the_rate() {
        let mut report = Report::new();
        for us in [100, 200, 300, 4_000] {
            report.latency_us.record(us).unwrap();
        }
        report.errors.insert("connect", 1);
        report.non_success = 2;
        report.body_bytes = 2_000_000;
        let text = summary(&report, Duration::from_secs(2), 0.5);
        assert!(
            text.contains("  5 requests in 2.000s, 2.00 MB read, client CPU 0.500s\n"),
            "{text}"
        );
        assert!(text.contains("  Errors: connect 1\n"), "{text}");
        assert!(text.contains("Non-2xx or 3xx responses: 2"), "{text}");
        assert!(text.contains("100µs") && text.contains("4.00ms"), "{text}");
        assert!(text.contains("Transfer/sec: 1.00 MB\n"), "{text}");
        assert!(text.ends_with("Requests/sec: 2.50\n"), "{text}");
    }
}
