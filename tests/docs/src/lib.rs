//! The repository's README.md and guide, compiled as doc tests: `cargo test -p docs-tests
//! --doc`.

/// README.md's Rust examples.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The guide's Rust examples (`docs/guide/`).
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../../docs/guide/client-quickstart.md")]
    mod client_quickstart {}
    #[doc = include_str!("../../../docs/guide/client-advanced.md")]
    mod client_advanced {}
    #[doc = include_str!("../../../docs/guide/server-quickstart.md")]
    mod server_quickstart {}
    #[doc = include_str!("../../../docs/guide/server-advanced.md")]
    mod server_advanced {}
    #[doc = include_str!("../../../docs/guide/testing.md")]
    mod testing {}
    #[doc = include_str!("../../../docs/guide/websockets.md")]
    mod websockets {}
}
