//! The byte-stream pieces Tandem's client, server and connector share, each in one copy:
//!
//! - [`Rewind`]: a stream whose first bytes were already read, which are read again first.
//!   A parser that read past a head (a proxy's `CONNECT` answer, a `101` response, a request
//!   whose client did not wait for the `101`) hands the rest back this way.
//! - [`Upgraded`]: a connection after `101 Switching Protocols`, on either side, as one type.
//! - `ContentEncoder` (the `compression` feature): a body encoded in gzip, deflate or br as
//!   it goes, for the server's responses and the client's requests.
//! - `BrotliDecoder` (the `compression` feature): a `br` body decoded with its window held to
//!   a maximum ([`DEFAULT_BROTLI_WINDOW_LOG_MAX`] by default), for the client's responses and
//!   the server's requests.
//! - `SendfileTo` (the `sendfile` feature): a range of a file sent to a plain TCP socket
//!   with `sendfile(2)` (on Linux), paced so that a fast peer does not keep the runtime's
//!   thread: the server's file responses and the client's file bodies.
//!
//! `tandem-proto` does no IO; this crate is where the IO that more than one crate needs
//! lives.

#[cfg(feature = "compression")]
mod brotli_decoder;
#[cfg(feature = "compression")]
mod coding;
mod rewind;
#[cfg(feature = "sendfile")]
mod sendfile;
// For the tests of the crates that send files (client and server): hidden, as it is no API.
#[cfg(all(feature = "__test-util", target_os = "linux"))]
#[doc(hidden)]
pub mod test_util;
mod upgraded;

#[cfg(feature = "compression")]
pub use brotli_decoder::BrotliDecoder;
#[cfg(feature = "compression")]
pub use coding::ContentEncoder;
pub use rewind::Rewind;
#[cfg(feature = "sendfile")]
pub use sendfile::SendfileTo;
#[cfg(all(feature = "sendfile", target_os = "linux"))]
pub use sendfile::{FileSent, SENDFILE_CALL_BYTES, SENDFILE_YIELD_BYTES};
pub use upgraded::{Io, Upgraded};

/// The largest brotli window a `br` body may declare, as a power of two: 2^24 (16 MiB less
/// 16 bytes), the most RFC 7932 allows, so no `br` body is refused by default (the `brotli`
/// tool uses it for any input over 8 MiB). The decoder allocates the whole declared window
/// before its first output (less only for a stream of one metablock): a few bytes declaring
/// 2^24 cost 16 MiB, which a bound on the decoded size does not bound. Streams in brotli's
/// large-window extension (up to 2^30, 1 GiB) are not `br` and are always refused. The
/// client's and the server's default; outside the `compression` feature too, as both name it
/// whether or not they decode.
pub const DEFAULT_BROTLI_WINDOW_LOG_MAX: u32 = 24;

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
