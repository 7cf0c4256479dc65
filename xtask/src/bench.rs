//! `cargo xtask bench [NAME] [-- ARGS...]`: run the criterion benches in
//! `benches/`, passing ARGS (e.g. `--save-baseline main`, a filter) through.
//!
//! `cargo xtask bench server [...]` is not a criterion bench: it is the
//! server throughput harness in `bench/server.rs` (wrk against Tandem, hyper
//! and actix-web), and `cargo xtask bench proto-count` counts instructions per
//! parse under callgrind (`bench/instructions.rs`), as `cargo xtask bench server-count`
//! counts each server's per request (`bench/server_count.rs`). `cargo xtask bench client`
//! drives one fixed server with Tandem's client and with reqwest
//! (`bench/client.rs`). `cargo xtask bench ws` drives Tandem's WebSockets and
//! tokio-tungstenite, each client against each server (`bench/ws.rs`).
//! `cargo xtask bench loadtest` sets `examples/loadtest.rs` beside wrk against
//! our server (`bench/loadtest.rs`). `cargo xtask bench tls` sets Tandem's HTTPS server
//! beside hyper on the same rustls, with nginx for reference (`bench/tls.rs`), and `cargo
//! xtask bench h2` its HTTP/2 server (h2c) beside hyper's under h2load (`bench/h2.rs`).
//! `cargo xtask bench build` times a hello-world server's cold build, Tandem's beside axum's
//! (`bench/build.rs`). `cargo xtask bench bulk` moves bytes: static files beside nginx,
//! 1 MiB uploads and 1 GiB uploads to a file beside hyper, the client's 1 GiB downloads beside
//! curl and reqwest and uploads beside curl (`bench/bulk.rs`, `bench/upload.rs`,
//! `bench/bulk_client.rs`).

mod build;
mod bulk;
mod bulk_client;
mod client;
mod h2;
mod instructions;
mod load;
mod loadtest;
pub(crate) mod server;
mod server_count;
mod tls;
pub(crate) use load::Server;
pub(crate) use tls::{path_str, prepare as tls_scratch};
mod tls_count;
mod upload;
mod ws;

use crate::{Cmd, Result};

pub(crate) fn run(args: &[String]) -> Result {
    match args.split_first().map(|(a, r)| (a.as_str(), r)) {
        Some(("build", rest)) => return build::run(rest),
        Some(("bulk", rest)) => return bulk::run(rest),
        Some(("server", rest)) => return server::run(rest),
        Some(("client", rest)) => return client::run(rest),
        Some(("ws", rest)) => return ws::run(rest),
        Some(("loadtest", rest)) => return loadtest::run(rest),
        Some(("tls", rest)) => return tls::run(rest),
        Some(("h2", rest)) => return h2::run(rest),
        Some(("tls-client", rest)) => return tls::run_client(rest),
        Some(("tls-count", [])) => return tls_count::run(),
        Some(("proto-count", [])) => return instructions::run(),
        Some(("server-count", [])) => return server_count::run(),
        _ => {}
    }
    command(args)?.run()
}

fn command(args: &[String]) -> Result<Cmd> {
    // Everything after `--` belongs to criterion, untouched.
    let (ours, passthrough) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let name = match ours {
        [] => None,
        [name] if !name.starts_with('-') => Some(name.as_str()),
        _ => {
            return Err(format!(
                "usage: cargo xtask bench [NAME] [-- criterion args]; got `{}`",
                ours.join(" ")
            ));
        }
    };

    let mut cmd = Cmd::cargo().args(["bench", "-p", "benches", "--bench"]);
    // With no name, `--bench '*'` selects every [[bench]] target and nothing
    // else: plain `cargo bench` would also run libtest harnesses, which reject
    // criterion's arguments.
    cmd = cmd.arg(name.unwrap_or("*"));
    if !passthrough.is_empty() {
        cmd = cmd.arg("--").args(passthrough);
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::command;

    fn line(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        command(&args).map_or_else(|e| format!("error: {e}"), |c| c.display())
    }

    #[test]
    fn names_and_passthrough() {
        assert_eq!(line(&[]), "cargo bench -p benches --bench '*'");
        assert_eq!(line(&["proto"]), "cargo bench -p benches --bench proto");
        assert_eq!(
            line(&["proto", "--", "--save-baseline", "main"]),
            "cargo bench -p benches --bench proto -- --save-baseline main"
        );
        assert_eq!(line(&["--", "head"]), "cargo bench -p benches --bench '*' -- head");
        assert!(line(&["a", "b"]).starts_with("error"));
    }
}
