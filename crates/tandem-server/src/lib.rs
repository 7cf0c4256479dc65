//! Tandem's web server: `Application`, the router, handlers, middleware, signals and
//! `run_app`, in the manner of aiohttp's `web` module.
//!
//! This crate is a skeleton for now: its work is tracked by the server issue. Requests are
//! framed by `tandem-proto`, whose strict parser decides what reaches a handler.
