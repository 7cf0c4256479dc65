//! Integration tests of the polls demo: the app served on a free loopback port and driven as
//! a browser without scripts would, with plain HTML forms through Tandem's client, on
//! `SQLite` and on a `PostgreSQL` server of the test's own; the scale-out setup, `polls`
//! processes behind nginx sharing sessions in Redis and votes in `PostgreSQL`; and the
//! faults that setup survives under load.

mod admin;
mod deployment;
mod faults;
mod https;
mod load;
mod pages;
mod postgres_server;
#[path = "../../../../crates/tandem-session/tests/it/redis_server.rs"]
mod redis_server;
mod scale_out;
mod support;
