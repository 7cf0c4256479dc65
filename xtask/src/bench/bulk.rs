//! `cargo xtask bench bulk [--secs N] [--rounds R] [--only PARTS]`: moving bytes, Tandem
//! beside a reference for each workload. `--only` takes a comma-separated list of the parts
//! below (`static`, `echo`, `upload`, `client`; repeatable) and runs just those, to iterate
//! on one row.
//!
//! - static files: `examples/bench_server --static DIR` (`add_static`) beside nginx (Debian's,
//!   one worker process on the same core, `sendfile on`, `tcp_nopush on` and
//!   `open_file_cache` on, as a production configuration has them), a 4 KiB file under wrk
//!   `-c64` and a 1 MiB file under wrk `-c16`;
//! - uploads: `POST /echo` of 1 MiB, read whole and sent back, beside `benches/peers`'
//!   `hyper_server`, under wrk `-c8`; and a 1 GiB body streamed to a file by a handler, beside
//!   the same written by hyper (`bench/upload.rs`), with each server's peak memory;
//! - the client: a 1 GiB download from nginx through `content()` beside curl and reqwest,
//!   and a 1 GiB streamed upload beside curl (`bench/bulk_client.rs`).
//!
//! Each round starts every server pinned to core 0 and runs each load against each in turn
//! with wrk pinned to core 1, reading the server's CPU time around it; the order alternates
//! by round. The table shows the medians of the rounds, and the ratios the median of the
//! rounds' own ratios, as in `bench server`: the machine drifts between rounds more than
//! the servers differ.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::bulk_client;
use super::client::{Opts, parse_rounds_only};
use super::load::{self, LoadResult, Server, Wrk};
use super::server::{self, PEERS_MANIFEST, Target, find_exe, median, paired_ratio};
use super::tls::{Scratch, path_str, write_nginx};
use super::upload::{self, UploadResult};
use crate::{Cmd, Result};

const USAGE: &str =
    "cargo xtask bench bulk [--secs N] [--rounds R] [--only static,echo,upload,client]";

/// The parts of the bench `--only` picks from, by their names there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Part {
    Static,
    Echo,
    Upload,
    Client,
}

const PARTS: [(&str, Part); 4] = [
    ("static", Part::Static),
    ("echo", Part::Echo),
    ("upload", Part::Upload),
    ("client", Part::Client),
];

/// What one run does: the rounds' options, and the parts run (all unless `--only` says).
#[derive(Debug)]
struct BulkOpts {
    rounds: Opts,
    parts: Vec<Part>,
}

impl BulkOpts {
    fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

/// `--secs N` (default 5), `--rounds R` (default 3) and `--only PARTS` (default all).
fn parse_opts(args: &[String]) -> Result<BulkOpts> {
    let (rounds, parts) = parse_rounds_only(args, &PARTS, "part", USAGE)?;
    Ok(BulkOpts { rounds, parts })
}

/// nginx serving the scratch folder's `static/` under `/static/`, configured as a
/// production site would be for static files.
const NGINX_STATIC_SERVER: &str = "\
        listen 127.0.0.1:@PORT@;
        sendfile on;
        tcp_nopush on;
        open_file_cache max=1000 inactive=60s;
        open_file_cache_valid 60s;
        location /static/ { root @DIR@; }";

/// One workload: the path fetched (or posted to, with a script), wrk's connections, the
/// reference it is measured beside, and the requests/s ratio to reach.
struct Row {
    name: &'static str,
    path: &'static str,
    connections: &'static str,
    /// A wrk script of the scratch folder, for a request other than a plain GET.
    script: Option<&'static str>,
    peer: Peer,
    target: f64,
    /// The `--only` part it belongs to.
    part: Part,
}

/// A reference server: its place in [`SERVERS`].
#[derive(Clone, Copy)]
enum Peer {
    Nginx = 1,
    Hyper = 2,
}

/// The servers of a round, in this order: Tandem, then the references.
const SERVERS: [&str; 3] = ["tandem", "nginx", "hyper"];

/// The static files served, and their sizes.
const FILES: [(&str, usize); 2] = [("4k.bin", 4 * 1024), ("1m.bin", 1024 * 1024)];

/// wrk's script for the upload row: every request a POST of 1 MiB.
const ECHO_LUA: &str = "\
wrk.method = \"POST\"
wrk.headers[\"Content-Type\"] = \"application/octet-stream\"
wrk.body = string.rep(\"x\", 1048576)
";

const ROWS: [Row; 3] = [
    Row {
        name: "static 4 KiB, wrk -c64",
        path: "/static/4k.bin",
        connections: "-c64",
        script: None,
        peer: Peer::Nginx,
        target: 1.0,
        part: Part::Static,
    },
    Row {
        name: "static 1 MiB, wrk -c16",
        path: "/static/1m.bin",
        connections: "-c16",
        script: None,
        peer: Peer::Nginx,
        target: 1.0,
        part: Part::Static,
    },
    Row {
        name: "POST 1 MiB echoed, wrk -c8",
        path: "/echo",
        connections: "-c8",
        script: Some("echo.lua"),
        peer: Peer::Hyper,
        target: 1.1,
        part: Part::Echo,
    },
];

pub(super) fn run(args: &[String]) -> Result {
    let opts = parse_opts(args)?;
    server::check_machine()?;
    if !Cmd::new("sh").args(["-c", "command -v nginx"]).probe() {
        crate::peers::apt_install(&["nginx"])?;
    }
    let scratch = prepare()?;
    let mut built = server::cargo_build(&["--example", "bench_server"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "hyper_server",
    ])?);
    let exes = [
        find_exe(&built, "bench_server")?,
        scratch.path().join("nginx.sh"),
        find_exe(&built, "hyper_server")?,
    ];
    let static_dir = scratch.path().join("static");
    let uploads = upload::scratch()?;
    let upload_files = [upload::file(&uploads, "tandem"), upload::file(&uploads, "hyper")];
    let tandem_args = [
        "--workers",
        "1",
        "--static",
        path_str(&static_dir)?,
        "--upload-file",
        path_str(&upload_files[0])?,
    ];
    let hyper_args = ["--upload-file", path_str(&upload_files[1])?];
    let clk_tck = load::clk_tck();
    let client = if opts.runs(Part::Client) {
        Some((bulk_client::build()?, bulk_client::write_body(&static_dir)?))
    } else {
        None
    };
    let mut client_samples = bulk_client::Samples::default();

    // samples[row][0 for Tandem, 1 for its reference]: one a round.
    let mut samples: Vec<[Vec<LoadResult>; 2]> = ROWS.iter().map(|_| Default::default()).collect();
    let mut upload_samples: [Vec<UploadResult>; 2] = Default::default();
    let rounds = opts.rounds.rounds;
    for round in 1..=rounds {
        println!("\n==> bench bulk: round {round}/{rounds}");
        let mut started = Vec::new();
        for (name, exe) in SERVERS.iter().zip(&exes) {
            let extra: &[&str] = match *name {
                "tandem" => &tandem_args,
                "hyper" => &hyper_args,
                _ => &[],
            };
            started.push(Server::start(name, exe, extra)?);
        }
        for (row, samples) in ROWS.iter().zip(&mut samples) {
            if !opts.runs(row.part) {
                continue;
            }
            let mut order = [(0, 0), (row.peer as usize, 1)];
            if round % 2 == 0 {
                order.reverse();
            }
            let script = row.script.map(|s| scratch.path().join(s));
            let script = script.as_deref().map(path_str).transpose()?;
            for (server, column) in order {
                server::warn_if_busy();
                println!("{}: {}", started[server].name(), row.name);
                let wrk = Wrk { connections: row.connections, script, script_args: &[] };
                let result =
                    load::run_wrk(&started[server], &wrk, row.path, opts.rounds.secs, clk_tck)?;
                samples[column].push(result);
            }
        }
        if opts.runs(Part::Upload) {
            let mut order = [(0, 0), (Peer::Hyper as usize, 1)];
            if round % 2 == 0 {
                order.reverse();
            }
            for (server, column) in order {
                server::warn_if_busy();
                println!("{}: {}", started[server].name(), upload::ROW);
                let result = upload::run(&started[server], &upload_files[column], clk_tck)?;
                upload_samples[column].push(result);
            }
        }
        if let Some((clients, client_body)) = &client {
            let sink = Server::start("hyper", &exes[2], &["--upload-file", "/dev/null"])?;
            let servers = (&started[Peer::Nginx as usize], &sink);
            bulk_client::round(round, servers, clients, client_body, &mut client_samples)?;
        }
    }
    let mut report = report(&samples, &opts);
    if opts.runs(Part::Upload) {
        report.push('\n');
        upload::report(&mut report, &upload_samples);
    }
    if client.is_some() {
        report.push('\n');
        bulk_client::report(&mut report, &client_samples);
    }
    println!("\n{report}");
    server::save("bulk", &report);
    Ok(())
}

/// The scratch folder: the files served, and nginx's start script.
fn prepare() -> Result<Scratch> {
    let dir = std::env::temp_dir().join(format!("tandem-bench-bulk-{}", std::process::id()));
    let files = dir.join("static");
    fs::create_dir_all(&files).map_err(|e| format!("cannot create {}: {e}", files.display()))?;
    let scratch = Scratch(dir);
    for (name, size) in FILES {
        write_file(&files.join(name), size)?;
    }
    let script = scratch.path().join("echo.lua");
    fs::write(&script, ECHO_LUA).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    write_nginx(scratch.path(), NGINX_STATIC_SERVER)?;
    Ok(scratch)
}

/// `size` bytes that do not compress to nothing, so no layer can shortcut them.
fn write_file(path: &Path, size: usize) -> Result {
    let mut state: u32 = 0x9e37_79b9;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn report(samples: &[[Vec<LoadResult>; 2]], opts: &BulkOpts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench bulk: medians of {} round(s), {} s per load, wrk -t1 on core 1, server on core 0\n",
        opts.rounds.rounds, opts.rounds.secs
    );
    let ran: Vec<_> = ROWS.iter().zip(samples).filter(|(row, _)| opts.runs(row.part)).collect();
    if ran.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "| workload | tandem req/s | reference | reference req/s | tandem server µs/req | reference server µs/req |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
    let col = |v: &[LoadResult], f: fn(&LoadResult) -> f64| median(v.iter().map(f).collect());
    for (row, s) in &ran {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.0} | {:.1} | {:.1} |",
            row.name,
            col(&s[0], |r| r.req_per_sec),
            SERVERS[row.peer as usize],
            col(&s[1], |r| r.req_per_sec),
            col(&s[0], |r| r.cpu_us_per_req),
            col(&s[1], |r| r.cpu_us_per_req),
        );
    }
    out.push('\n');
    let rounds = |v: &[LoadResult], f: fn(&LoadResult) -> f64| Some(v.iter().map(f).collect());
    for (row, s) in &ran {
        let peer = SERVERS[row.peer as usize];
        paired_ratio(
            &mut out,
            &format!("{}: tandem req/s ÷ {peer} req/s", row.name),
            rounds(&s[0], |r| r.req_per_sec),
            rounds(&s[1], |r| r.req_per_sec),
            Target::AtLeast(row.target),
        );
        paired_ratio(
            &mut out,
            &format!("{}: tandem server µs/req ÷ {peer}'s", row.name),
            rounds(&s[0], |r| r.cpu_us_per_req),
            rounds(&s[1], |r| r.cpu_us_per_req),
            Target::AtMost(1.0),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{PARTS, Part, parse_opts, write_file};

    use crate::test_args as args;

    #[test]
    fn options_and_files() {
        let o = parse_opts(&args(&["--secs=2", "--rounds", "1"])).unwrap();
        assert_eq!((o.rounds.secs, o.rounds.rounds), (2, 1));
        assert_eq!(o.parts.len(), PARTS.len());
        let o = parse_opts(&args(&["--only", "static,upload", "--only=client"])).unwrap();
        assert_eq!(o.parts, [Part::Static, Part::Upload, Part::Client]);
        assert!(!o.runs(Part::Echo));
        let err = parse_opts(&args(&["--only", "statics"])).unwrap_err();
        assert!(err.contains("no part `statics`"), "{err}");
        let path = std::env::temp_dir().join(format!("bulk-file-{}", std::process::id()));
        write_file(&path, 4096).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(bytes.len(), 4096);
        // Not a run of one byte: a compressing layer could not shrink it to nothing.
        assert!(bytes.windows(2).filter(|w| w[0] != w[1]).count() > 4000);
    }
}
