//! Integration tests of the `tandem` facade, in one binary so they link once. Every test
//! talks to a real server on 127.0.0.1 through `tandem::test::TestClient`.

mod test_client;
