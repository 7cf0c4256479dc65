//! Integration tests of the polls demo: the app served on a free loopback port and driven as
//! a browser without scripts would, with plain HTML forms through Tandem's client; and the
//! scale-out setup, two `polls` processes behind nginx sharing sessions in Redis.

mod pages;
#[path = "../../../../crates/tandem-session/tests/it/redis_server.rs"]
mod redis_server;
mod scale_out;
mod support;
