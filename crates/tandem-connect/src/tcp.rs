//! TCP connects with Happy Eyeballs (RFC 8305), as aiohttp's `happy_eyeballs_delay` (250 ms)
//! and `interleave` (1).
//!
//! The resolver's addresses are reordered to alternate families, starting with the family of
//! the first one. The first attempt starts at once; each next one starts when the previous
//! has been running for the delay, or as soon as one fails, so a black-holed address costs one
//! delay rather than a whole connect timeout. The first attempt to connect wins and the others
//! are dropped (closed). Each attempt is bounded by `sock_connect`.
//!
//! Each socket is the user's [`SocketFactory`]'s when there is one (aiohttp's
//! `socket_factory=`), else a plain one; the winner gets `TCP_NODELAY` (on by default, as
//! aiohttp), TCP keep-alive probes when asked (through socket2, which tokio's sockets do
//! not expose), and on loopback, when asked, a fixed receive buffer.
//!
//! Why a loopback connection may want a fixed receive buffer: Linux sizes a socket's receive
//! buffer from the bytes the reader takes per round trip. On a quiet machine (or with both
//! ends at real-time priority) a loopback round trip lasts microseconds and the buffer mostly
//! stays near 1 MiB; the reader then drains it and sleeps every couple of 64 KiB segments,
//! and on loopback the sender's core runs the receiving half of the stack, waking included.
//! A larger buffer lets data pile up between reads. At normal priority, on a machine doing other work, the tuning
//! grows the buffer towards `net.ipv4.tcp_rmem`'s maximum (6 MiB by default; 32 MiB on the
//! machine measured, within a fraction of a second), and a fixed buffer may then be the
//! smaller one: which is why it is off by default. A fixed buffer also turns the kernel's
//! tuning off for good, which on a long path would cap the window, so only loopback connections get one, and only when the
//! kernel grants it whole (`net.core.rmem_max`, 208 KiB by default on Linux). The price: a
//! pooled loopback connection whose body is not read can hold up to twice the size in kernel
//! memory (Linux doubles `SO_RCVBUF`).

use std::{
    io,
    net::{IpAddr, SocketAddr},
    pin::pin,
    sync::Arc,
    time::Duration,
};

use futures_util::{
    StreamExt,
    future::{self, Either},
    stream::FuturesUnordered,
};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::{Error, Kind};

/// aiohttp's `happy_eyeballs_delay`: 250 ms.
pub const DEFAULT_HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

/// The receive buffer measured for loopback connections (`SO_RCVBUF`, which Linux doubles
/// for its bookkeeping): 4 MiB. Set only when `ConnectorBuilder::loopback_recv_buffer` asks
/// for it, `net.core.rmem_max` allows all of it and no [`SocketFactory`] made the socket;
/// see the module's documentation for why.
pub const LOOPBACK_RECV_BUFFER: usize = 4 << 20;

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

/// Makes the socket for each TCP connect attempt (aiohttp's `socket_factory=`): to set
/// options before connecting (`SO_BINDTODEVICE`, buffer sizes, a mark), through
/// [`TcpSocket`]'s setters or `socket2::SockRef`. The connector still binds
/// `local_address`, connects, and sets `TCP_NODELAY` and keep-alive as configured.
///
/// ```
/// use tandem_connect::{Connector, SocketFactory};
/// use tokio::net::TcpSocket;
///
/// let factory = SocketFactory::new(|addr| {
///     let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
///     socket.set_recv_buffer_size(1 << 20)?;
///     Ok(socket)
/// });
/// let connector = Connector::builder().socket_factory(factory).build();
/// ```
#[derive(Clone)]
pub struct SocketFactory(Arc<dyn Fn(SocketAddr) -> io::Result<TcpSocket> + Send + Sync>);

impl SocketFactory {
    /// A factory calling `make` with the address each socket will connect to.
    pub fn new(make: impl Fn(SocketAddr) -> io::Result<TcpSocket> + Send + Sync + 'static) -> Self {
        SocketFactory(Arc::new(make))
    }
}

impl std::fmt::Debug for SocketFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SocketFactory")
    }
}

/// The connector's TCP settings.
#[derive(Clone, Debug)]
pub(crate) struct TcpOptions {
    pub(crate) happy_eyeballs_delay: Option<Duration>,
    pub(crate) family: Option<AddressFamily>,
    pub(crate) local_address: Option<IpAddr>,
    pub(crate) nodelay: bool,
    /// Idle time before keep-alive probes; `None` leaves keep-alive off.
    pub(crate) keepalive: Option<Duration>,
    pub(crate) socket_factory: Option<SocketFactory>,
    /// `SO_RCVBUF` for loopback peers; `None` leaves the kernel's tuning on.
    pub(crate) loopback_recv_buffer: Option<usize>,
}

/// One attempt: the factory's socket or a plain one, from `local_address` if given
/// (aiohttp's `local_addr`, any port).
async fn dial(addr: SocketAddr, opts: &TcpOptions) -> io::Result<TcpStream> {
    if opts.socket_factory.is_none() && opts.local_address.is_none() {
        return TcpStream::connect(addr).await;
    }
    let socket = match &opts.socket_factory {
        Some(factory) => (factory.0)(addr)?,
        None if addr.is_ipv4() => TcpSocket::new_v4()?,
        None => TcpSocket::new_v6()?,
    };
    if let Some(local) = opts.local_address {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    socket.connect(addr).await
}

/// The options set on the connected socket.
fn configure(stream: &TcpStream, opts: &TcpOptions) -> io::Result<()> {
    if opts.nodelay {
        // Nagle's delay only hurts request/response traffic.
        stream.set_nodelay(true)?;
    }
    if let Some(idle) = opts.keepalive {
        let keepalive = socket2::TcpKeepalive::new().with_time(idle);
        socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    // A factory's socket keeps the buffer its maker chose. The buffer only makes a local
    // body come faster, so a failure to learn the peer or to set it never fails the connect.
    if let Some(size) = opts.loopback_recv_buffer
        && opts.socket_factory.is_none()
        && stream.peer_addr().is_ok_and(|peer| peer.ip().is_loopback())
        && max_recv_buffer().is_some_and(|max| max >= size)
    {
        let _ = socket2::SockRef::from(stream).set_recv_buffer_size(size);
    }
    Ok(())
}

/// The largest `SO_RCVBUF` an unprivileged process may set (`net.core.rmem_max`), read once;
/// `None` where it cannot be read (and off Linux, where buffers are sized otherwise).
fn max_recv_buffer() -> Option<usize> {
    static MAX: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return None;
        }
        std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok()?.trim().parse().ok()
    })
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
            Some(t) => tokio::time::timeout(t, dial(addr, opts)).await.unwrap_or_else(|_| {
                Err(io::Error::new(io::ErrorKind::TimedOut, "sock_connect timed out"))
            }),
            None => dial(addr, opts).await,
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
        match future::select(running.next(), pin!(stagger)).await {
            Either::Left((Some(Ok(stream)), _)) => {
                configure(&stream, opts).map_err(|e| Error::new(Kind::Connect, e))?;
                return Ok(stream);
            }
            Either::Left((Some(Err(e)), _)) => last_error = Some(e),
            Either::Left((None, _)) => continue,
            // The stagger timer: the next attempt starts beside those running.
            Either::Right(_) => {}
        }
        if let Some(addr) = next.next() {
            running.push(attempt(addr));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::SocketAddr,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    use super::{
        LOOPBACK_RECV_BUFFER, SocketFactory, TcpOptions, connect, interleave, max_recv_buffer,
    };

    fn options() -> TcpOptions {
        TcpOptions {
            happy_eyeballs_delay: None,
            family: None,
            local_address: None,
            nodelay: true,
            keepalive: None,
            socket_factory: None,
            loopback_recv_buffer: Some(LOOPBACK_RECV_BUFFER),
        }
    }

    #[tokio::test]
    async fn socket_options_and_the_factory_apply_to_each_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = [listener.local_addr().unwrap()];
        let stream = connect(&addrs, &options(), None).await.unwrap();
        assert!(stream.nodelay().unwrap(), "TCP_NODELAY by default, as aiohttp");
        assert!(!socket2::SockRef::from(&stream).keepalive().unwrap());

        let made = Arc::new(AtomicUsize::new(0));
        let count = made.clone();
        let factory = SocketFactory::new(move |addr| {
            count.fetch_add(1, Ordering::Relaxed);
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.set_recv_buffer_size(1 << 16)?;
            Ok(socket)
        });
        let opts = TcpOptions {
            nodelay: false,
            keepalive: Some(Duration::from_secs(30)),
            socket_factory: Some(factory),
            ..options()
        };
        let stream = connect(&addrs, &opts, None).await.unwrap();
        assert_eq!(made.load(Ordering::Relaxed), 1);
        assert!(!stream.nodelay().unwrap());
        assert!(socket2::SockRef::from(&stream).keepalive().unwrap());
        // A factory that fails fails the attempt, as a connect error.
        let failing = TcpOptions {
            socket_factory: Some(SocketFactory::new(|_| Err(std::io::Error::other("no sockets")))),
            ..options()
        };
        assert!(connect(&addrs, &failing, None).await.unwrap_err().is_connect());
    }

    /// The receive buffer the kernel reports for `stream` (twice what was asked for).
    fn recv_buffer(stream: &TcpStream) -> usize {
        socket2::SockRef::from(stream).recv_buffer_size().unwrap()
    }

    #[tokio::test]
    async fn loopback_connections_get_the_receive_buffer_only_when_granted_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = [listener.local_addr().unwrap()];
        let tuned = recv_buffer(&TcpStream::connect(addrs[0]).await.unwrap());
        let max = max_recv_buffer().expect("net.core.rmem_max is readable on Linux");
        let sized = |bytes| TcpOptions { loopback_recv_buffer: Some(bytes), ..options() };

        let granted = max.min(LOOPBACK_RECV_BUFFER);
        let stream = connect(&addrs, &sized(granted), None).await.unwrap();
        assert_eq!(recv_buffer(&stream), 2 * granted, "Linux doubles what is asked for");
        // More than the kernel grants is not asked for: capped, it would be a small fixed
        // buffer with the kernel's tuning off.
        let stream = connect(&addrs, &sized(max + 1), None).await.unwrap();
        assert_eq!(recv_buffer(&stream), tuned);
        let off = TcpOptions { loopback_recv_buffer: None, ..options() };
        assert_eq!(recv_buffer(&connect(&addrs, &off, None).await.unwrap()), tuned);
        // Asked for at its full size: granted whole where the kernel allows it.
        let stream = connect(&addrs, &options(), None).await.unwrap();
        let expected = if max >= LOOPBACK_RECV_BUFFER { 2 * LOOPBACK_RECV_BUFFER } else { tuned };
        assert_eq!(recv_buffer(&stream), expected);
        // A factory's socket keeps its maker's buffer.
        let factory = SocketFactory::new(|_| {
            let socket = TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(1 << 15)?;
            Ok(socket)
        });
        let made = TcpOptions { socket_factory: Some(factory), ..sized(granted) };
        assert_eq!(recv_buffer(&connect(&addrs, &made, None).await.unwrap()), 1 << 16);
    }

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
