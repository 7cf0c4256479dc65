//! The byte-stream pieces Tandem's client, server and connector share, each in one copy:
//!
//! - [`Rewind`]: a stream whose first bytes were already read, which are read again first.
//!   A parser that read past a head (a proxy's `CONNECT` answer, a `101` response, a request
//!   whose client did not wait for the `101`) hands the rest back this way.
//! - [`Upgraded`]: a connection after `101 Switching Protocols`, on either side, as one type.
//!
//! `tandem-proto` does no IO; this crate is where the IO that more than one crate needs
//! lives.

mod rewind;
mod upgraded;

pub use rewind::Rewind;
pub use upgraded::{Io, Upgraded};

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
