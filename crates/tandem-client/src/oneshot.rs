//! aiohttp's `aiohttp.request(method, url)`: one request without a session of the caller's.

use http::Method;

use crate::{ClientSession, Connector, RequestBuilder};

/// One request on a session of its own (aiohttp's `aiohttp.request`): a fresh connector
/// whose connections close after their response (`force_close`), and a jar that lives only
/// as long as the request's redirects. Nothing is kept between two calls, so a program that
/// makes more than a few requests wants a [`ClientSession`] instead.
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem_client::Error> {
/// let mut resp = tandem_client::request(http::Method::GET, "http://127.0.0.1:8080/").send().await?;
/// println!("{}", resp.text().await?);
/// # Ok(()) }
/// ```
pub fn request(method: Method, url: &str) -> RequestBuilder {
    let connector = Connector::builder().force_close(true).build();
    ClientSession::builder().connector(connector).build().request(method, url)
}
