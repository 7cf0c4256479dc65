//! `cargo xtask bench ws [--secs N] [--rounds R]`: Tandem's WebSockets against
//! tokio-tungstenite, client and server.
//!
//! Each round starts both echo servers pinned to core 0 (`examples/bench_server.rs`'s
//! `/ws` and `benches/peers`' `tungstenite_server`, one thread each) and runs three
//! loads, each client pinned to core 1 on a current-thread runtime: one connection
//! sending 32 B binary messages and awaiting each echo, the same with 1 MiB messages,
//! and 64 connections of 32 B messages. Each load runs every client against every
//! server: Tandem → Tandem and tungstenite → tungstenite are the comparison; the two
//! cross pairs show which half, client or server, makes a difference. The clients are
//! `examples/ws_load.rs` and the peers' `tungstenite_client`, the same program on the
//! two libraries; the pairs' order rotates by round. The table shows the median
//! messages/s of the rounds and each ratio against its target, and the CPU time each
//! side spent per message (the loaders' `client CPU` field, the server's from /proc),
//! which other load on the machine disturbs less than the rates.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::client::{self, Opts, Sample, parse_rounds};
use super::load::{self, Server};
use super::server::{self, PEERS_MANIFEST, Target, find_exe};
use crate::Result;

const USAGE: &str = "cargo xtask bench ws [--secs N] [--rounds R]";

/// One load: how many connections, and the size of every message.
struct Load {
    conns: usize,
    size: usize,
    name: &'static str,
    /// Tandem's messages/s over tokio-tungstenite's that the load must reach.
    target: f64,
}

const LOADS: [Load; 3] = [
    Load { conns: 1, size: 32, name: "1 connection × 32 B", target: 1.2 },
    Load { conns: 1, size: 1024 * 1024, name: "1 connection × 1 MiB", target: 1.0 },
    Load { conns: 64, size: 32, name: "64 connections × 32 B", target: 1.2 },
];

/// The two WebSocket stacks, indexing both clients and servers.
const STACKS: [&str; 2] = ["tandem", "tungstenite"];
const TANDEM: usize = 0;
const TUNGSTENITE: usize = 1;

/// (client, server) pairs, in table order: the two like-for-like pairs, then the crosses.
const PAIRS: [(usize, usize); 4] =
    [(TANDEM, TANDEM), (TUNGSTENITE, TUNGSTENITE), (TANDEM, TUNGSTENITE), (TUNGSTENITE, TANDEM)];

/// The executables one run needs, each indexed like [`STACKS`].
struct Exes {
    servers: [PathBuf; 2],
    clients: [PathBuf; 2],
}

fn build() -> Result<Exes> {
    let mut built = server::cargo_build(&["--example", "bench_server", "--example", "ws_load"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "tungstenite_server",
        "--bin",
        "tungstenite_client",
    ])?);
    Ok(Exes {
        servers: [find_exe(&built, "bench_server")?, find_exe(&built, "tungstenite_server")?],
        clients: [find_exe(&built, "ws_load")?, find_exe(&built, "tungstenite_client")?],
    })
}

/// What one client run against one server measured.
#[derive(Clone, Copy, Debug)]
struct WsSample {
    client: Sample,
    /// The server's CPU time (user + system) per message echoed.
    server_cpu_us_each: f64,
}

/// `samples[load][pair]`: one per round.
type Samples = [[Vec<WsSample>; PAIRS.len()]; LOADS.len()];

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse_rounds(args, USAGE)?;
    client::check_machine()?;
    let exes = build()?;
    let clk_tck = load::clk_tck();

    let mut samples: Samples = Default::default();
    for round in 1..=opts.rounds {
        println!("\n==> bench ws: round {round}/{}", opts.rounds);
        server::warn_if_busy();
        // Both are killed when dropped, on every path out. The idle one costs the
        // other nothing: each waits in epoll while the other is loaded.
        let tandem = Server::start("tandem", &exes.servers[TANDEM], &["--workers", "1"])?;
        let tungstenite = Server::start("tungstenite", &exes.servers[TUNGSTENITE], &[])?;
        let servers = [&tandem, &tungstenite];
        let urls = [
            format!("ws://127.0.0.1:{}/ws", tandem.port()),
            format!("ws://127.0.0.1:{}/", tungstenite.port()),
        ];
        for (load_index, load) in LOADS.iter().enumerate() {
            // Rotate who goes first, so no pair always meets the freshest servers.
            let mut order: Vec<usize> = (0..PAIRS.len()).collect();
            order.rotate_left(round % PAIRS.len());
            for pair in order {
                let (client, server) = PAIRS[pair];
                let size = load.size.to_string();
                let before = servers[server].cpu_ticks()?;
                let sample = client::run_client(
                    &exes.clients[client],
                    &urls[server],
                    opts.secs,
                    load.conns,
                    &["-s", &size],
                    "messages",
                )?;
                let ticks = servers[server].cpu_ticks()?.saturating_sub(before);
                let server_cpu_us_each =
                    load::to_f64(ticks) * 1e6 / load::to_f64(clk_tck) / sample.done;
                println!(
                    "  {}: {} client → {} server: {:.0} msg/s, cpu µs/msg: client {:.2}, \
                     server {server_cpu_us_each:.2}",
                    load.name, STACKS[client], STACKS[server], sample.per_sec, sample.cpu_us_each
                );
                samples[load_index][pair].push(WsSample { client: sample, server_cpu_us_each });
            }
        }
    }

    let report = report(&samples, &opts);
    println!("\n{report}");
    server::save("ws", &report);
    Ok(())
}

fn report(samples: &Samples, opts: &Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench ws: medians of {} round(s), {} s per load, binary messages \
         echoed by each server on core 0 (one thread), each client on core 1 \
         (current-thread runtime), awaiting every echo before the next send\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| load | tandem msg/s | tungstenite msg/s | tandem ÷ tungstenite | \
         tandem client → tungstenite server | tungstenite client → tandem server | \
         client CPU µs/msg tandem / tungstenite | server CPU µs/msg tandem / tungstenite |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (load_index, load) in LOADS.iter().enumerate() {
        let col = |pair: usize, f: fn(&WsSample) -> f64| {
            server::median(samples[load_index][pair].iter().map(f).collect())
        };
        let rate = |pair| col(pair, |s| s.client.per_sec);
        let client_cpu = |pair| col(pair, |s| s.client.cpu_us_each);
        let server_cpu = |pair| col(pair, |s| s.server_cpu_us_each);
        let (ours, theirs) = (rate(0), rate(1));
        let _ = writeln!(
            out,
            "| {} | {ours:.0} | {theirs:.0} | {:.2} | {:.0} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} |",
            load.name,
            ours / theirs,
            rate(2),
            rate(3),
            client_cpu(0),
            client_cpu(1),
            server_cpu(0),
            server_cpu(1),
        );
        ratios.push((load, ours, theirs));
    }
    out.push('\n');
    for (load, ours, theirs) in ratios {
        server::ratio(
            &mut out,
            &format!("{}: tandem msg/s ÷ tungstenite msg/s", load.name),
            Some(ours),
            Some(theirs),
            Target::AtLeast(load.target),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Opts, Sample, Samples, WsSample, report};

    #[test]
    fn table() {
        let s = |per_sec, cpu_us_each| WsSample {
            client: Sample { done: 1.0, per_sec, cpu_us_each },
            server_cpu_us_each: cpu_us_each * 2.0,
        };
        let mut samples: Samples = Default::default();
        samples[0] = [
            vec![s(30_000.0, 20.0), s(36_000.0, 18.0), s(33_000.0, 19.0)],
            vec![s(25_000.0, 25.0); 3],
            vec![s(28_000.0, 21.0); 3],
            vec![s(27_000.0, 24.0); 3],
        ];
        samples[1] = [
            vec![s(900.0, 500.0)],
            vec![s(1000.0, 400.0)],
            vec![s(950.0, 450.0)],
            vec![s(940.0, 420.0)],
        ];
        samples[2] = [vec![s(1.0, 1.0)], vec![s(1.0, 1.0)], vec![s(1.0, 1.0)], vec![s(1.0, 1.0)]];
        let text = report(&samples, &Opts { secs: 5, rounds: 3 });
        let rows = [
            "| 1 connection × 32 B | 33000 | 25000 | 1.32 | 28000 | 27000 | 19.00 / 25.00 | 38.00 / 50.00 |",
            "| 1 connection × 1 MiB | 900 | 1000 | 0.90 | 950 | 940 | 500.00 / 400.00 | 1000.00 / 800.00 |",
            "- 1 connection × 32 B: tandem msg/s ÷ tungstenite msg/s: 1.32 (target ≥ 1.2: met)",
            "- 1 connection × 1 MiB: tandem msg/s ÷ tungstenite msg/s: 0.90 (target ≥ 1: MISSED)",
        ];
        for row in rows {
            assert!(text.contains(row), "no `{row}` in:\n{text}");
        }
    }
}
