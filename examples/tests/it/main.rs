//! The examples, run: each server example's `app()` under a `TestClient`, and each client
//! example's work against a Tandem server, all on 127.0.0.1. One binary, so it links once.
//!
//! Each example file is compiled here as a module; its `main` is unused in this binary.

#[allow(dead_code)]
#[path = "../../concurrent_fetch.rs"]
mod concurrent_fetch;
#[allow(dead_code)]
#[path = "../../download.rs"]
mod download;
#[allow(dead_code)]
#[path = "../../hello.rs"]
mod hello;
#[allow(dead_code)]
#[path = "../../json_api.rs"]
mod json_api;
#[allow(dead_code)]
#[path = "../../loadtest.rs"]
mod loadtest;
#[allow(dead_code)]
#[path = "../../middlewares.rs"]
mod middlewares;
#[allow(dead_code)]
#[path = "../../query_match.rs"]
mod query_match;
#[allow(dead_code)]
#[path = "../../route_table.rs"]
mod route_table;
#[allow(dead_code)]
#[path = "../../sqlite_signals.rs"]
mod sqlite_signals;
#[allow(dead_code)]
#[path = "../../static_files.rs"]
mod static_files;
#[allow(dead_code)]
#[path = "../../upload.rs"]
mod upload;
#[allow(dead_code)]
#[path = "../../upload_file.rs"]
mod upload_file;
#[allow(dead_code)]
#[path = "../../ws_chat.rs"]
mod ws_chat;
#[allow(dead_code)]
#[path = "../../ws_echo_client.rs"]
mod ws_echo_client;

mod client_examples;
mod server_examples;
mod ws_examples;
