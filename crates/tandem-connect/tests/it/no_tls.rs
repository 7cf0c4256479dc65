//! Without the `tls` feature, https fails at once and says how to get it.

use tandem_connect::{Connector, Origin, Scheme};

use crate::{Server, prompt};

#[tokio::test]
async fn https_says_tls_is_not_compiled_in() {
    let server = Server::start().await;
    let origin = Origin::new(Scheme::Https, "127.0.0.1", server.port);
    let err = prompt(Connector::new().connect(&origin)).await.unwrap_err();
    let why = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(why.contains("enable the `tls` feature"), "{err:?}");
    server.accepted(0).await;
}
