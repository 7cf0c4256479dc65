//! Many fetches at once, with the concurrency bounded two ways, as the seeds show:
//!
//! - by the connector: `Connector::builder().limit(3)` is aiohttp's `TCPConnector(limit=3)`;
//!   requests past the limit wait for a free connection;
//! - by a semaphore: `tokio::sync::Semaphore::new(2)` is `asyncio.Semaphore(2)`; a task
//!   waits for a permit before it sends, whatever the connector allows.
//!
//! ```text
//! cargo run --example concurrent_fetch -- URL [COUNT]
//! cargo run --example concurrent_fetch -- http://127.0.0.1:8080/ 10
//! ```

use std::{sync::Arc, time::Instant};

use tandem_http::{
    ClientSession,
    client::{Connector, Error},
};
use tokio::{sync::Semaphore, task::JoinSet};

/// GETs `url` and reads the body; its length.
async fn fetch(session: ClientSession, url: String) -> Result<usize, Error> {
    let mut response = session.get(&url).send().await?.error_for_status()?;
    Ok(response.read().await?.len())
}

/// Fetches `url` `count` times over a session whose connector opens at most `limit`
/// connections; the body lengths, in completion order.
pub(crate) async fn with_connector_limit(
    url: &str,
    count: usize,
    limit: usize,
) -> Result<Vec<usize>, Error> {
    let connector = Connector::builder().limit(limit).build();
    let session = ClientSession::builder().connector(connector).build();
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        tasks.spawn(fetch(session.clone(), url.to_owned()));
    }
    collect(tasks).await
}

/// Fetches `url` `count` times with at most `permits` requests in flight, held back by a
/// semaphore rather than the connector.
pub(crate) async fn with_semaphore(
    url: &str,
    count: usize,
    permits: usize,
) -> Result<Vec<usize>, Error> {
    let session = ClientSession::new();
    let semaphore = Arc::new(Semaphore::new(permits));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (session, url, semaphore) = (session.clone(), url.to_owned(), Arc::clone(&semaphore));
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("the semaphore is never closed");
            fetch(session, url).await
        });
    }
    collect(tasks).await
}

async fn collect(mut tasks: JoinSet<Result<usize, Error>>) -> Result<Vec<usize>, Error> {
    let mut lengths = Vec::new();
    while let Some(done) = tasks.join_next().await {
        lengths.push(done.expect("a fetch task panicked")?);
    }
    Ok(lengths)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: concurrent_fetch URL [COUNT]");
        std::process::exit(2);
    };
    let count = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);

    let start = Instant::now();
    let lengths = with_connector_limit(&url, count, 3).await?;
    println!("connector limit 3: {} responses, {:?}", lengths.len(), start.elapsed());

    let start = Instant::now();
    let lengths = with_semaphore(&url, count, 2).await?;
    println!("semaphore of 2:    {} responses, {:?}", lengths.len(), start.elapsed());
    Ok(())
}
