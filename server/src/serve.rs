//! Serving with bounded work per connection: a cap on open connections, a header-read
//! timeout (a client trickling a header a byte at a time, or saying nothing at all, is cut
//! off), a separate keep-alive timeout for the idle time between requests, and graceful
//! shutdown. Request and body timeouts are layers of [`crate::app`].
//!
//! `axum::serve` offers none of these knobs, so the accept loop is written out here on
//! `hyper-util`'s connection builder.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed to receive a request's complete header block, counted from its first
    /// byte (from the accept for a connection's first request).
    pub header_timeout: Duration,
    /// Time a kept-alive connection may stay idle between requests.
    pub keep_alive_timeout: Duration,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Limits {
    /// The limits of a configuration.
    pub fn from_config(cfg: &crate::Config) -> Self {
        Limits {
            header_timeout: Duration::from_secs(cfg.header_timeout.max(1)),
            keep_alive_timeout: Duration::from_secs(cfg.keep_alive_timeout.max(1)),
            max_connections: cfg.max_connections.max(1),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests
/// finish. Each request carries `ConnectInfo<SocketAddr>` of its peer.
///
/// # Errors
/// Never at present (accept errors are logged and retried); the signature leaves room.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    // No `header_read_timeout` for HTTP/1: hyper arms it whenever it waits for a request
    // head, idle keep-alive time included, and not at all before the first bytes of a
    // connection (the protocol detection reads them). [`TimedIo`] keeps both clocks instead.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(limits.header_timeout)
        .max_concurrent_streams(64);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // e.g. EMFILE: back off instead of spinning
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let watch = Arc::new(Watch::default());
        let io = TimedIo::new(stream, watch.clone(), limits);
        let svc = tower::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            let busy = Busy::enter(&watch);
            async move {
                let _busy = busy;
                let res = router.oneshot(req.map(Body::new)).await;
                Ok::<_, Infallible>(match res {
                    Ok(r) => r,
                    Err(never) => match never {},
                })
            }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(svc))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// What one connection's handlers are doing, seen by its [`TimedIo`].
#[derive(Default)]
struct Watch {
    /// Requests whose handler is running.
    in_flight: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
    /// The connection's task as of its last read that found nothing: woken when the last
    /// handler ends, so that the idle clock starts (hyper reads again only when woken).
    waiting: std::sync::Mutex<Option<std::task::Waker>>,
}

/// One running handler: counted in [`Watch`] until dropped (finished or cancelled).
struct Busy(Arc<Watch>);

impl Busy {
    fn enter(watch: &Arc<Watch>) -> Self {
        watch.started.fetch_add(1, Ordering::Relaxed);
        watch.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(watch.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            let waker = self.0.waiting.lock().ok().and_then(|mut w| w.take());
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// What an HTTP/1 connection waits for when no handler runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// A request head: from the accept, or from the first byte after a request.
    Head,
    /// Nothing: the time between two requests on a kept-alive connection.
    Idle,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4), matched whole: until it is, the
/// connection is timed as HTTP/1 (a trickled preface gets the header timeout).
const H2_START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's socket with the two read deadlines of HTTP/1: a request head must arrive
/// within the header timeout of its first byte (of the accept, for the first request), and
/// a connection idle between requests is closed after the keep-alive timeout. While a
/// handler runs there is no read deadline (the body and request timeouts are layers).
/// An HTTP/2 connection (known by its preface) has no request heads to time: it is closed
/// after the keep-alive timeout with no request running (its pings and settings frames do not
/// count: clients answer pings by themselves).
///
/// The timer is lazy: it is moved only when a deadline comes earlier than the one it is
/// set for, so a busy kept-alive connection does no timer work per request.
struct TimedIo {
    io: TcpStream,
    watch: Arc<Watch>,
    limits: Limits,
    phase: Phase,
    deadline: Instant,
    /// `watch.started` when the phase was last set.
    seen: u64,
    sleep: Pin<Box<Sleep>>,
    armed: Instant,
    /// How many of the connection's first bytes matched [`H2_START`]; `usize::MAX` once
    /// one did not.
    sniffed: usize,
}

impl TimedIo {
    fn new(io: TcpStream, watch: Arc<Watch>, limits: Limits) -> Self {
        let deadline = Instant::now() + limits.header_timeout;
        TimedIo {
            io,
            watch,
            limits,
            phase: Phase::Head,
            deadline,
            seen: 0,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            armed: deadline,
            sniffed: 0,
        }
    }

    fn is_h2(&self) -> bool {
        self.sniffed == H2_START.len()
    }

    /// Bytes arrived: sniff the protocol, and when no handler runs they begin (or
    /// continue) a request head.
    fn on_bytes(&mut self, got: &[u8]) {
        if self.sniffed < H2_START.len() {
            for b in got {
                if self.sniffed >= H2_START.len() {
                    break;
                }
                self.sniffed = if *b == H2_START[self.sniffed] {
                    self.sniffed + 1
                } else {
                    usize::MAX
                };
            }
            if self.is_h2() {
                // HTTP/2 frames (settings, pings, window updates) are no request heads: from
                // the preface on, the connection is idle whenever no request runs
                self.phase = Phase::Idle;
                self.deadline = Instant::now() + self.limits.keep_alive_timeout;
            }
        }
        if self.is_h2() || self.watch.in_flight.load(Ordering::Relaxed) > 0 {
            return;
        }
        let started = self.watch.started.load(Ordering::Relaxed);
        if started != self.seen || self.phase == Phase::Idle {
            self.seen = started;
            self.phase = Phase::Head;
            self.deadline = Instant::now() + self.limits.header_timeout;
        }
    }

    /// Nothing to read: end the connection if its deadline passed, else make sure the
    /// timer wakes the connection by then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // hyper may have read (and found nothing) before it started the handler, and reads
        // again only when woken: the handler's end wakes this task
        if let Ok(mut w) = self.watch.waiting.lock() {
            match &*w {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        if self.watch.in_flight.load(Ordering::Relaxed) > 0 {
            return Poll::Pending;
        }
        let started = self.watch.started.load(Ordering::Relaxed);
        if started != self.seen {
            // a request came and went: idle until the next one begins
            self.seen = started;
            self.phase = Phase::Idle;
            self.deadline = Instant::now() + self.limits.keep_alive_timeout;
        }
        if self.armed > self.deadline {
            self.sleep.as_mut().reset(self.deadline);
            self.armed = self.deadline;
        }
        while self.sleep.as_mut().poll(cx).is_ready() {
            if Instant::now() >= self.deadline {
                return Poll::Ready(match self.phase {
                    Phase::Head => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request header not received within the header timeout",
                    )),
                    // end of stream: hyper closes an idle connection quietly
                    Phase::Idle => Ok(()),
                });
            }
            self.sleep.as_mut().reset(self.deadline);
            self.armed = self.deadline;
        }
        Poll::Pending
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.on_bytes(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
