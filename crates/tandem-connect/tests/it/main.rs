//! Integration tests for tandem-connect against real listeners on loopback. Every wait is
//! bounded by a timeout; ordering is established by polling futures, never by sleeping.

mod dns;
mod fairness;
mod http2;
#[cfg(not(feature = "tls"))]
mod no_tls;
mod pool;
// The proxy tests run TLS servers and tunnel https through them.
#[cfg(feature = "tls")]
mod proxy;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
mod unix;

use std::{future::Future, pin::Pin, task::Poll, time::Duration};

use tandem_connect::{Origin, Scheme};
use tokio::{net::TcpListener, sync::watch};

/// The bound on anything that should happen promptly.
const PROMPT: Duration = Duration::from_secs(5);

/// A listener on 127.0.0.1 that accepts forever, keeps every connection open, and counts
/// them.
struct Server {
    port: u16,
    accepted: watch::Receiver<usize>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count, accepted) = watch::channel(0);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
                count.send_replace(held.len());
            }
        });
        Server { port, accepted }
    }

    fn origin(&self) -> Origin {
        Origin::new(Scheme::Http, "127.0.0.1", self.port)
    }

    /// Waits until the server has accepted `n` connections in all, and checks it has not
    /// accepted more. (A client's connect completes before the server's accept runs.)
    async fn accepted(&self, n: usize) {
        let mut rx = self.accepted.clone();
        let got = *rx.wait_for(|&a| a >= n).await.unwrap();
        assert_eq!(got, n, "accepted more connections than expected");
    }
}

/// Polls `fut` once: whether it is still pending.
async fn still_pending<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

/// `fut`, which must finish within [`PROMPT`].
async fn prompt<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PROMPT, fut).await.expect("did not finish promptly")
}
