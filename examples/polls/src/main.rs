//! `polls [--config PATH]`: serves the polls app until Ctrl+C or SIGTERM.

use std::path::PathBuf;

use polls::{Config, Db, build_app};
use tandem_web::{AppRunner, ServerConfig, TlsConfig};

const USAGE: &str = "usage: polls [--config PATH]  (TOML; see examples/polls/config/polls.toml)";

fn config_path() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => path = Some(args.next().ok_or(USAGE)?.into()),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(path)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polls: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let config = match config_path()? {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    };
    // Our own runtime rather than run_app's: the PostgreSQL pool and the Redis session
    // storage connect before the app is built, and their connections must live on the
    // runtime that serves.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        let db = Db::open(&config.database).await.map_err(|e| {
            let database = &config.database;
            // Not the URL: it may hold a password.
            let name = if database.url.is_empty() {
                database.path.display().to_string()
            } else {
                "(PostgreSQL)".to_owned()
            };
            format!("database {name}: {}", polls::with_causes(&e))
        })?;
        let app = build_app(&config, db).await?;
        let server_config =
            ServerConfig::default().with_shutdown_timeout(config.server.shutdown_timeout());
        let mut runner = AppRunner::with_config(app, server_config).map_err(|e| e.to_string())?;
        runner.setup().await.map_err(|e| e.to_string())?;
        let server = &config.server;
        let (host, port) = (server.host.as_str(), server.port);
        let listened = match tls(server)? {
            Some(tls) => runner.tls_site(host, port, &tls).await.map(|addr| ("https", addr)),
            None => runner.tcp_site(host, port).await.map(|addr| ("http", addr)),
        };
        let (scheme, addr) = listened.map_err(|e| format!("listen on {host}:{port}: {e}"))?;
        // Tests and scripts read this line to learn the port when the config says 0.
        println!("polls: listening on {scheme}://{addr}/");
        wait_for_stop().await;
        // Stops accepting, lets the requests in flight finish, closes WebSockets with 1001.
        if runner.cleanup().await {
            println!("polls: stopped");
            Ok(())
        } else {
            Err("shutdown timeout: requests still in flight were dropped".to_owned())
        }
    })
}

/// The HTTPS settings when the config names a certificate and key.
fn tls(server: &polls::config::Server) -> Result<Option<TlsConfig>, String> {
    let (cert, key) = (&server.tls_cert, &server.tls_key);
    match (cert.as_os_str().is_empty(), key.as_os_str().is_empty()) {
        (true, true) => Ok(None),
        (false, false) => TlsConfig::from_pem_files(cert, key)
            .map(Some)
            .map_err(|e| format!("TLS certificate and key: {e}")),
        _ => Err("[server] tls_cert and tls_key go together".to_owned()),
    }
}

async fn wait_for_stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
