//! The measuring half of `cargo xtask bench server`: one server process under
//! test (killed when dropped), wrk loads against it with the server's CPU time
//! read around each, and the idle keep-alive connection memory probe.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Cmd, Result, free_port};

/// The server runs on this core, wrk (or the client under test) on the other:
/// on a 2-core machine the two never steal each other's cycles.
const SERVER_CORE: &str = "0";
pub(super) const LOAD_CORE: &str = "1";
/// wrk's shape for every load: one thread, 64 keep-alive connections.
const WRK_CONNECTIONS: &str = "-c64";
/// Requests wrk writes back to back on each connection in the pipelined load.
pub(super) const PIPELINE_DEPTH: u32 = 16;
/// How long a server may take to start accepting connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Threads that open the idle connections (each blocks on one at a time).
const IDLE_THREADS: usize = 8;
/// Bound on every read and write of the idle probe, so a stuck server fails
/// the run instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// TechEmpower's pipeline.lua: `init` builds DEPTH copies of the request into
/// one string, and `request` sends that string whole on every write.
const PIPELINE_LUA: &str = "\
init = function(args)
  local r = {}
  local depth = tonumber(args[1]) or 1
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
";

/// A server under test. Dropping it kills the process, on every path out
/// (success, `?` error, panic), so no run leaves a server behind.
pub(crate) struct Server {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `exe --port P extra...` pinned to the server core on a free
    /// port, and returns once it accepts TCP connections.
    pub(crate) fn start(name: &'static str, exe: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_under(name, &[], exe, extra)
    }

    /// As [`start`](Self::start), with `exe` run by `wrapper` (valgrind, say), which
    /// must exec it in the same process.
    pub(super) fn start_under(
        name: &'static str,
        wrapper: &[&str],
        exe: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        let port = free_port()?;
        // The Drop guard below kills the server on every path out that
        // unwinds; `setpriv --pdeathsig` also covers xtask itself being
        // killed (a signal to xtask alone, as `timeout` sends), where no
        // destructor runs. setpriv and taskset exec in turn, so the child's
        // pid is the server's own.
        let cmd = Cmd::new("setpriv")
            .args(["--pdeathsig", "KILL", "taskset", "-c", SERVER_CORE])
            .args(wrapper)
            .arg(exe)
            .args(["--port", &port.to_string()])
            .args(extra);
        println!("$ {}", cmd.display());
        let child = cmd
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", cmd.display()))?;
        let mut server = Self { name, child, port };
        server.wait_ready()?;
        Ok(server)
    }

    /// The name it was started under.
    pub(super) fn name(&self) -> &'static str {
        self.name
    }

    /// The process id (the server's own: setpriv and taskset exec in turn).
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The loopback port the server listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Polls connect until it succeeds, the server exits, or 30 s pass.
    fn wait_ready(&mut self) -> Result {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "{} exited before accepting connections ({status})",
                    self.name
                ));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                println!(
                    "{} accepts connections on port {} after {:?}",
                    self.name,
                    self.port,
                    start.elapsed()
                );
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "{} did not accept connections on port {} within {READY_TIMEOUT:?}",
                    self.name, self.port
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process's user + system CPU time so far, all threads, in clock ticks.
    pub(super) fn cpu_ticks(&self) -> Result<u64> {
        let path = format!("/proc/{}/stat", self.child.id());
        let stat = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        parse_cpu_ticks(&stat, 14).ok_or_else(|| format!("cannot parse utime/stime in {path}"))
    }

    /// Resident set size now, from `VmRSS` in /proc/PID/status.
    fn rss_bytes(&self) -> Result<u64> {
        self.status_bytes("VmRSS:")
    }

    /// The peak resident set size since the start or [`Self::reset_peak_rss`], from `VmHWM`.
    pub(super) fn peak_rss_bytes(&self) -> Result<u64> {
        self.status_bytes("VmHWM:")
    }

    /// Starts the peak resident set size afresh from the present one.
    pub(super) fn reset_peak_rss(&self) -> Result {
        let path = format!("/proc/{}/clear_refs", self.child.id());
        fs::write(&path, "5").map_err(|e| format!("cannot write {path}: {e}"))
    }

    fn status_bytes(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        parse_status_bytes(&status, field).ok_or_else(|| format!("no {field} line in {path}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second, the unit of [`Server::cpu_ticks`].
pub(super) fn clk_tck() -> u64 {
    Cmd::new("getconf").arg("CLK_TCK").read().and_then(|s| s.parse().ok()).unwrap_or(100)
}

/// The CPU time, in clock ticks, of every child process this one has waited for (and of
/// theirs, which they waited for): a build's work, whatever else shares the machine.
pub(super) fn waited_children_cpu_ticks() -> Result<u64> {
    let stat = fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    parse_cpu_ticks(&stat, 16).ok_or_else(|| "cannot parse cutime/cstime in /proc/self/stat".into())
}

/// The sum of fields `first` and `first + 1` of /proc/PID/stat: utime and stime (14, 15),
/// or the waited-for children's cutime and cstime (16, 17). Field 2 (the command name) may
/// hold spaces and parentheses, so count from the last `)`.
fn parse_cpu_ticks(stat: &str, first: usize) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let mut fields = rest.split_whitespace().skip(first - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS:     1234 kB` (for `field` `VmRSS:`) → bytes.
fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The pipeline script, written to a temp file and removed on drop.
pub(super) struct PipelineScript(PathBuf);

impl PipelineScript {
    pub(super) fn write() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("tandem-pipeline-{}.lua", std::process::id()));
        fs::write(&path, PIPELINE_LUA)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for PipelineScript {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// One of the three wrk loads.
#[derive(Clone, Copy)]
pub(super) enum Load<'a> {
    Plaintext,
    Pipelined(&'a PipelineScript),
    Json,
}

impl<'a> Load<'a> {
    /// The three loads, in the order the reports' columns list them.
    pub(super) fn all(script: &'a PipelineScript) -> [Load<'a>; 3] {
        [Load::Plaintext, Load::Pipelined(script), Load::Json]
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Load::Plaintext => "plaintext",
            Load::Pipelined(_) => "pipelined",
            Load::Json => "json",
        }
    }
}

/// What one load measured.
#[derive(Clone, Copy, Debug)]
pub(super) struct LoadResult {
    pub(super) requests: u64,
    pub(super) req_per_sec: f64,
    /// Server CPU time (user + system) per completed request.
    pub(super) cpu_us_per_req: f64,
}

/// Runs wrk pinned to the load core against `server` for `secs` seconds,
/// reading the server's CPU time before and after.
pub(super) fn run_load(
    server: &Server,
    load: Load<'_>,
    secs: u64,
    clk_tck: u64,
) -> Result<LoadResult> {
    let path = if matches!(load, Load::Json) { "/json" } else { "/plaintext" };
    let depth = PIPELINE_DEPTH.to_string();
    let wrk = match load {
        Load::Pipelined(script) => {
            let script = script.0.to_str().ok_or("the pipeline script's path is not UTF-8")?;
            Wrk { connections: WRK_CONNECTIONS, script: Some(script), script_args: &[&depth] }
        }
        _ => Wrk { connections: WRK_CONNECTIONS, script: None, script_args: &[] },
    };
    run_wrk(server, &wrk, path, secs, clk_tck)
}

/// A wrk load's shape besides its URL and length: `-cN`, and a Lua script with its
/// arguments.
pub(super) struct Wrk<'a> {
    pub(super) connections: &'a str,
    pub(super) script: Option<&'a str>,
    pub(super) script_args: &'a [&'a str],
}

/// Runs wrk, one thread on the load core, against `path` on `server` for `secs` seconds,
/// reading the server's CPU time before and after. Any non-2xx answer fails the run.
pub(super) fn run_wrk(
    server: &Server,
    wrk: &Wrk<'_>,
    path: &str,
    secs: u64,
    clk_tck: u64,
) -> Result<LoadResult> {
    let mut cmd = Cmd::new("taskset")
        .args(["-c", LOAD_CORE, "wrk", "-t1", wrk.connections])
        .arg(format!("-d{secs}s"));
    if let Some(script) = wrk.script {
        cmd = cmd.args(["-s", script]);
    }
    cmd = cmd.arg(format!("http://127.0.0.1:{}{path}", server.port));
    if !wrk.script_args.is_empty() {
        cmd = cmd.arg("--").args(wrk.script_args);
    }
    let before = server.cpu_ticks()?;
    let text = cmd.capture()?;
    let after = server.cpu_ticks()?;
    let wrk = parse_wrk(&text).ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
        return Err(format!("{}: {path} answered errors under load: {}", server.name, line.trim()));
    }
    if let Some(line) = text.lines().find(|l| l.contains("Socket errors")) {
        println!("note: {}: {}", server.name, line.trim());
    }
    if wrk.requests == 0 {
        return Err(format!("{}: wrk completed no requests:\n{text}", server.name));
    }
    let cpu_secs = to_f64(after.saturating_sub(before)) / to_f64(clk_tck);
    let result = LoadResult {
        requests: wrk.requests,
        req_per_sec: wrk.req_per_sec,
        cpu_us_per_req: cpu_secs * 1e6 / to_f64(wrk.requests),
    };
    println!(
        "  {:.0} req/s, {} requests, server cpu {cpu_secs:.2} s, {:.2} µs/req",
        result.req_per_sec, wrk.requests, result.cpu_us_per_req
    );
    Ok(result)
}

#[derive(Debug, PartialEq)]
pub(super) struct WrkOutput {
    pub(super) req_per_sec: f64,
    pub(super) requests: u64,
}

/// Pulls `Requests/sec: R` and `N requests in T, ...` out of wrk's report.
pub(super) fn parse_wrk(text: &str) -> Option<WrkOutput> {
    let mut req_per_sec = None;
    let mut requests = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            req_per_sec = v.trim().parse().ok();
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.trim().parse().ok();
        }
    }
    Some(WrkOutput { req_per_sec: req_per_sec?, requests: requests? })
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52; reports need no more")]
pub(super) fn to_f64(n: u64) -> f64 {
    n as f64
}

/// Opens `conns` keep-alive connections, completes one `GET /plaintext` on
/// each, and returns the server's RSS growth per connection while all are
/// open. Every connection is closed again before this returns.
pub(super) fn idle_bytes_per_conn(server: &Server, conns: usize) -> Result<f64> {
    let before = server.rss_bytes()?;
    let start = Instant::now();
    let addr = server.addr();
    let streams: Vec<TcpStream> = thread::scope(|s| {
        let handles: Vec<_> = (0..IDLE_THREADS)
            .map(|i| {
                let share = conns / IDLE_THREADS + usize::from(i < conns % IDLE_THREADS);
                s.spawn(move || open_idle(addr, share))
            })
            .collect();
        let mut all = Vec::with_capacity(conns);
        for h in handles {
            all.extend(h.join().map_err(|_| "an idle-connection thread panicked".to_owned())??);
        }
        Ok::<_, String>(all)
    })?;
    let after = server.rss_bytes()?;
    println!(
        "  {} idle connections open in {:?}; VmRSS {} KiB -> {} KiB",
        streams.len(),
        start.elapsed(),
        before / 1024,
        after / 1024
    );
    drop(streams);
    Ok((to_f64(after) - to_f64(before)) / to_f64(conns as u64))
}

fn open_idle(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>> {
    const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(|e| format!("idle connection {} to {addr}: {e}", streams.len()))?;
        s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
        s.write_all(REQUEST).map_err(|e| format!("idle connection write: {e}"))?;
        read_response(&mut s)?;
        streams.push(s);
    }
    Ok(streams)
}

/// Reads one whole response (head, then Content-Length bytes of body) and
/// checks it is a 200.
fn read_response(s: &mut TcpStream) -> Result {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let mut want: Option<usize> = None;
    loop {
        if let Some(total) = want {
            if buf.len() >= total {
                return Ok(());
            }
        } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            if !head.starts_with("HTTP/1.1 200") {
                return Err(format!("idle connection got `{}`", head.lines().next().unwrap_or("")));
            }
            let len =
                content_length(&head).ok_or("idle connection response has no Content-Length")?;
            want = Some(end + 4 + len);
            continue;
        }
        let n = s.read(&mut chunk).map_err(|e| format!("idle connection read: {e}"))?;
        if n == 0 {
            return Err("server closed an idle connection mid-response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::{WrkOutput, content_length, parse_cpu_ticks, parse_status_bytes, parse_wrk};

    #[test]
    fn proc_files() {
        let stat =
            "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 312 0 0 0 1234 56 700 8 20 0 2 0";
        assert_eq!(parse_cpu_ticks(stat, 14), Some(1290));
        assert_eq!(parse_cpu_ticks(stat, 16), Some(708));
        let status = "Name:\tx\nVmHWM:\t    4096 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_bytes(status, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(parse_status_bytes(status, "VmHWM:"), Some(4096 * 1024));
        assert_eq!(parse_status_bytes("Name:\tx\n", "VmRSS:"), None);
    }

    #[test]
    fn wrk_report() {
        let text = "Running 5s test @ http://127.0.0.1:1/plaintext
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   310.12us  101.00us   4.00ms   90.00%
    Req/Sec   200.00k     5.00k  210.00k    80.00%
  1000123 requests in 5.00s, 120.00MB read
Requests/sec: 200024.60
Transfer/sec:     24.00MB
";
        assert_eq!(
            parse_wrk(text),
            Some(WrkOutput { req_per_sec: 200_024.6, requests: 1_000_123 })
        );
        assert_eq!(parse_wrk("garbage"), None);
    }

    #[test]
    fn content_length_any_case() {
        assert_eq!(content_length("HTTP/1.1 200 OK\r\ncontent-length: 13\r\nx: y"), Some(13));
        assert_eq!(content_length("HTTP/1.1 200 OK\r\nContent-Length:27"), Some(27));
        assert_eq!(content_length("HTTP/1.1 200 OK\r\nx: y"), None);
    }
}
