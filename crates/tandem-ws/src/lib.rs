//! WebSocket support for Tandem, on both sides: `WebSocketResponse` in server handlers and
//! `ws_connect` on client sessions.
//!
//! This crate is a skeleton for now: its work is tracked by the WebSocket issue.
