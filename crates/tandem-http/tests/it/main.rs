//! Integration tests of the `tandem-http` facade, in one binary so they link once. Every test
//! talks to a real server on 127.0.0.1 through `tandem_http::test::TestClient`.

mod errors;
mod test_client;
