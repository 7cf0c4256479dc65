//! `cargo xtask bench bulk [--secs N] [--rounds R]`: moving bytes, Tandem beside a reference
//! for each workload.
//!
//! - static files: `examples/bench_server --static DIR` (`add_static`) beside nginx (Debian's,
//!   one worker process on the same core, `sendfile on`, `tcp_nopush on` and
//!   `open_file_cache` on, as a production configuration has them), a 4 KiB file under wrk
//!   `-c64` and a 1 MiB file under wrk `-c16`.
//!
//! Each round starts every server pinned to core 0 and runs each load against each in turn
//! with wrk pinned to core 1, reading the server's CPU time around it; the order alternates
//! by round. The table shows the medians of the rounds, and the ratios the median of the
//! rounds' own ratios, as in `bench server`: the machine drifts between rounds more than
//! the servers differ.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::client::{Opts, parse_rounds};
use super::load::{self, LoadResult, Server, Wrk};
use super::server::{self, Target, find_exe, median, paired_ratio};
use super::tls::{Scratch, path_str, write_nginx};
use crate::{Cmd, Result};

const USAGE: &str = "cargo xtask bench bulk [--secs N] [--rounds R]";

/// nginx serving the scratch folder's `static/` under `/static/`, configured as a
/// production site would be for static files.
const NGINX_STATIC_SERVER: &str = "\
        listen 127.0.0.1:@PORT@;
        sendfile on;
        tcp_nopush on;
        open_file_cache max=1000 inactive=60s;
        open_file_cache_valid 60s;
        location /static/ { root @DIR@; }";

/// One workload: the file fetched, its size, and wrk's connections.
struct Row {
    name: &'static str,
    file: &'static str,
    size: usize,
    connections: &'static str,
}

const ROWS: [Row; 2] = [
    Row { name: "static 4 KiB, wrk -c64", file: "4k.bin", size: 4 * 1024, connections: "-c64" },
    Row { name: "static 1 MiB, wrk -c16", file: "1m.bin", size: 1024 * 1024, connections: "-c16" },
];

/// The servers of the static rows, Tandem first.
const STATIC_SERVERS: [&str; 2] = ["tandem", "nginx"];

pub(super) fn run(args: &[String]) -> Result {
    let opts = parse_rounds(args, USAGE)?;
    server::check_machine()?;
    if !Cmd::new("sh").args(["-c", "command -v nginx"]).probe() {
        crate::peers::apt_install(&["nginx"])?;
    }
    let scratch = prepare()?;
    let built = server::cargo_build(&["--example", "bench_server"])?;
    let tandem = find_exe(&built, "bench_server")?;
    let nginx = scratch.path().join("nginx.sh");
    let static_dir = scratch.path().join("static");
    let tandem_args = ["--workers", "1", "--static", path_str(&static_dir)?];
    let clk_tck = load::clk_tck();

    // samples[row][server]: one a round.
    let mut samples: Vec<[Vec<LoadResult>; 2]> = ROWS.iter().map(|_| Default::default()).collect();
    for round in 1..=opts.rounds {
        println!("\n==> bench bulk: round {round}/{}", opts.rounds);
        let started =
            [Server::start("tandem", &tandem, &tandem_args)?, Server::start("nginx", &nginx, &[])?];
        for (row, samples) in ROWS.iter().zip(&mut samples) {
            let mut order = [0, 1];
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                server::warn_if_busy();
                println!("{}: {}", started[i].name(), row.name);
                let wrk = Wrk { connections: row.connections, script: None, script_args: &[] };
                let path = format!("/static/{}", row.file);
                samples[i].push(load::run_wrk(&started[i], &wrk, &path, opts.secs, clk_tck)?);
            }
        }
    }
    let report = report(&samples, &opts);
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
    for row in &ROWS {
        write_file(&files.join(row.file), row.size)?;
    }
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

fn report(samples: &[[Vec<LoadResult>; 2]], opts: &Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench bulk: medians of {} round(s), {} s per load, wrk -t1 on core 1, server on core 0\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| workload | tandem req/s | reference | reference req/s | tandem server µs/req | reference server µs/req |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
    let col = |v: &[LoadResult], f: fn(&LoadResult) -> f64| median(v.iter().map(f).collect());
    for (row, s) in ROWS.iter().zip(samples) {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.0} | {:.1} | {:.1} |",
            row.name,
            col(&s[0], |r| r.req_per_sec),
            STATIC_SERVERS[1],
            col(&s[1], |r| r.req_per_sec),
            col(&s[0], |r| r.cpu_us_per_req),
            col(&s[1], |r| r.cpu_us_per_req),
        );
    }
    out.push('\n');
    let rounds = |v: &[LoadResult], f: fn(&LoadResult) -> f64| Some(v.iter().map(f).collect());
    for (row, s) in ROWS.iter().zip(samples) {
        paired_ratio(
            &mut out,
            &format!("{}: tandem req/s ÷ {} req/s", row.name, STATIC_SERVERS[1]),
            rounds(&s[0], |r| r.req_per_sec),
            rounds(&s[1], |r| r.req_per_sec),
            Target::AtLeast(1.0),
        );
        paired_ratio(
            &mut out,
            &format!("{}: tandem server µs/req ÷ {}'s", row.name, STATIC_SERVERS[1]),
            rounds(&s[0], |r| r.cpu_us_per_req),
            rounds(&s[1], |r| r.cpu_us_per_req),
            Target::AtMost(1.0),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{USAGE, parse_rounds, write_file};

    use crate::test_args as args;

    #[test]
    fn options_and_files() {
        let o = parse_rounds(&args(&["--secs=2", "--rounds", "1"]), USAGE).unwrap();
        assert_eq!((o.secs, o.rounds), (2, 1));
        let path = std::env::temp_dir().join(format!("bulk-file-{}", std::process::id()));
        write_file(&path, 4096).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(bytes.len(), 4096);
        // Not a run of one byte: a compressing layer could not shrink it to nothing.
        assert!(bytes.windows(2).filter(|w| w[0] != w[1]).count() > 4000);
    }
}
