//! TCP connects with Happy Eyeballs (RFC 8305), as aiohttp's `happy_eyeballs_delay` (250 ms)
//! and `interleave` (1).
//!
//! The resolver's addresses are reordered to alternate families, starting with the family of
//! the first one. The first attempt starts at once; each next one starts when the previous
//! has been running for the delay, or as soon as one fails, so a black-holed address costs one
//! delay rather than a whole connect timeout. The first attempt to connect wins and the others
//! are dropped (closed). Each attempt is bounded by `sock_connect`.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::{Error, Kind};

/// aiohttp's `happy_eyeballs_delay`: 250 ms.
pub const DEFAULT_HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

/// Only IPv4 or only IPv6 addresses (aiohttp's `family=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl AddressFamily {
    fn matches(self, addr: &SocketAddr) -> bool {
        match self {
            AddressFamily::V4 => addr.is_ipv4(),
            AddressFamily::V6 => addr.is_ipv6(),
        }
    }
}

/// The connector's TCP settings.
#[derive(Clone, Debug)]
pub(crate) struct TcpOptions {
    pub(crate) happy_eyeballs_delay: Option<Duration>,
    pub(crate) family: Option<AddressFamily>,
    pub(crate) local_address: Option<IpAddr>,
}

/// One attempt, from `local` if given (aiohttp's `local_addr`, any port).
async fn dial(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(local) = local else { return TcpStream::connect(addr).await };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(addr).await
}

/// Alternates address families (RFC 8305 §4), keeping the resolver's order within each.
pub(crate) fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return Vec::new() };
    let (mut same, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().copied().partition(|a| a.is_ipv4() == first.is_ipv4());
    same.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !same.is_empty() || !other.is_empty() {
        out.extend(same.pop());
        out.extend(other.pop());
    }
    out
}

/// Connects to the first of `addrs` that answers. `delay: None` tries them one after another.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    opts: &TcpOptions,
    sock_connect: Option<Duration>,
) -> Result<TcpStream, Error> {
    let delay = opts.happy_eyeballs_delay;
    let local = opts.local_address;
    let usable: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| opts.family.is_none_or(|f| f.matches(a)))
        // A source address of one family cannot reach the other.
        .filter(|a| local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .collect();
    if usable.is_empty() && !addrs.is_empty() {
        return Err(Error::new(Kind::Connect, "no address of the wanted family"));
    }
    let order = interleave(&usable);
    let mut next = order.into_iter();
    let mut running = FuturesUnordered::new();
    let mut last_error: Option<io::Error> = None;
    let attempt = |addr: SocketAddr| async move {
        let stream = match sock_connect {
            Some(t) => tokio::time::timeout(t, dial(addr, local)).await.unwrap_or_else(|_| {
                Err(io::Error::new(io::ErrorKind::TimedOut, "sock_connect timed out"))
            }),
            None => dial(addr, local).await,
        };
        stream.map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))
    };
    if let Some(addr) = next.next() {
        running.push(attempt(addr));
    }
    loop {
        if running.is_empty() {
            let e = last_error
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses"));
            // The last attempt's failure names the error: a timeout if it timed out.
            let kind = if e.kind() == io::ErrorKind::TimedOut {
                Kind::SockConnectTimeout
            } else {
                Kind::Connect
            };
            return Err(Error::new(kind, e));
        }
        // The timer for starting the next attempt; without more addresses, wait forever.
        let stagger = async {
            match delay {
                Some(d) if next.len() > 0 => tokio::time::sleep(d).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            done = running.next() => match done {
                Some(Ok(stream)) => {
                    // Nagle's delay only hurts request/response traffic.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Some(Err(e)) => {
                    last_error = Some(e);
                    if let Some(addr) = next.next() {
                        running.push(attempt(addr));
                    }
                }
                None => {}
            },
            () = stagger => {
                if let Some(addr) = next.next() {
                    running.push(attempt(addr));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::interleave;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_starting_with_the_first() {
        let got = interleave(&[a("[::1]:1"), a("[::2]:1"), a("1.1.1.1:1"), a("[::3]:1")]);
        assert_eq!(got, vec![a("[::1]:1"), a("1.1.1.1:1"), a("[::2]:1"), a("[::3]:1")]);
        let got = interleave(&[a("1.1.1.1:1"), a("2.2.2.2:1"), a("[::1]:1")]);
        assert_eq!(got, vec![a("1.1.1.1:1"), a("[::1]:1"), a("2.2.2.2:1")]);
        assert!(interleave(&[]).is_empty());
    }
}
