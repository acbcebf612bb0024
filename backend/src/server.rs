//! The HTTP accept loop: hyper-util's auto (HTTP/1.1 + h2c) connection builder with the
//! admission rules plain `axum::serve` lacks, so that no single client can exhaust the
//! process's file descriptors (slowloris):
//!
//! - a cap on open connections in total and per client IP; a connection over a cap is
//!   accepted and closed at once, so the kernel backlog never fills;
//! - a header-read timeout (HTTP/1: the request head, also while a kept-alive
//!   connection waits for its next request);
//! - an idle timeout (no byte read or written) and a deadline for the first byte of the
//!   first answer, which also bounds clients that trickle the HTTP/2 preface.
//!
//! The connection's slot is held by its I/O object, so an upgraded connection
//! (Socket.IO's WebSocket) keeps counting until the socket really closes.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

pub use crate::config::ServerConfig;

/// File descriptors kept free for the database pool, Redis, uploads and logs.
const FD_RESERVE: u64 = 256;

/// Raises the soft file-descriptor limit to the hard limit (where the system allows)
/// and returns the connection cap that fits in it.
pub fn fit_connection_cap(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the file-descriptor limit");
            return wanted;
        }
    };
    let room = usize::try_from(limit.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX);
    if wanted > room {
        tracing::warn!(
            fd_limit = limit,
            wanted,
            used = room,
            "HTTP_MAX_CONNECTIONS lowered to fit the file-descriptor limit"
        );
    }
    tracing::info!(
        fd_limit = limit,
        max_connections = wanted.min(room),
        "connection cap"
    );
    wanted.min(room)
}

/// Serves `app` on `listener` until `shutdown` is cancelled; then stops accepting,
/// asks every connection to finish its in-flight requests and waits for them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: ServerConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let admission = Admission::new(&cfg);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout);
    // HTTP/2 WebSockets (extended CONNECT), as axum::serve enables it. No keep-alive
    // pings: they would keep an unused connection busy past the idle timeout.
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let Some(slot) = admission.admit(peer.ip()) else {
            // Dropping the stream closes it: refused without holding a descriptor.
            tracing::debug!(%peer, "connection refused: over the connection cap");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: Arc::clone(&activity),
            watched: true,
            _slot: slot,
        });
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let builder = Arc::clone(&builder);
        let shutdown = shutdown.clone();
        let limits = cfg.clone();
        tracker.spawn(async move {
            let conn = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(conn);
            let watchdog = activity.watchdog(&limits);
            tokio::pin!(watchdog);
            let mut draining = false;
            loop {
                tokio::select! {
                    res = conn.as_mut() => {
                        if let Err(e) = res {
                            tracing::trace!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = shutdown.cancelled(), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    reason = &mut watchdog => {
                        tracing::debug!(%peer, reason, "connection closed");
                        break;
                    }
                }
            }
            // An upgraded connection lives on without this task: its stream stops
            // recording activity no one reads.
            activity.watched.store(false, Ordering::Relaxed);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Like axum's: a per-connection error (the peer reset) is not worth a pause; anything
/// else (EMFILE) is, or the loop would spin on it.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Counts open connections, in total and per IP.
struct Admission {
    total: Arc<Semaphore>,
    per_ip: Option<Arc<PerIp>>,
}

struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place; freed when the connection's I/O is dropped.
struct Slot {
    _total: OwnedSemaphorePermit,
    ip: Option<(Arc<PerIp>, IpAddr)>,
}

impl Admission {
    fn new(cfg: &ServerConfig) -> Self {
        Admission {
            total: Arc::new(Semaphore::new(cfg.max_connections.max(1))),
            per_ip: (cfg.max_connections_per_ip > 0).then(|| {
                Arc::new(PerIp {
                    max: cfg.max_connections_per_ip,
                    open: Mutex::new(HashMap::new()),
                })
            }),
        }
    }

    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let total = Arc::clone(&self.total).try_acquire_owned().ok()?;
        let ip = match &self.per_ip {
            None => None,
            Some(per_ip) => {
                let mut open = per_ip.open.lock().unwrap_or_else(|p| p.into_inner());
                let n = open.entry(ip).or_insert(0);
                if *n >= per_ip.max {
                    return None;
                }
                *n += 1;
                Some((Arc::clone(per_ip), ip))
            }
        };
        Some(Slot { _total: total, ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((per_ip, ip)) = &self.ip {
            let mut open = per_ip.open.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = open.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(ip);
                }
            }
        }
    }
}

/// How many times per idle timeout the watchdog looks whether bytes moved: a connection
/// is closed between 1 and 1 + 1/IDLE_CHECKS idle timeouts after its last byte.
const IDLE_CHECKS: u32 = 4;

/// Whether bytes moved on a connection since the watchdog last looked, and whether it has
/// answered yet. A read or a write only sets a flag — no clock is read per I/O (a chat
/// socket writes one frame per relayed item), and a flag already set is not written
/// again, so its cache line stays shared until the watchdog clears it.
struct Activity {
    started: Instant,
    moved: AtomicBool,
    answered: AtomicBool,
    /// Cleared when the connection's task (and its watchdog) ends.
    watched: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            moved: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            watched: AtomicBool::new(true),
        }
    }

    /// Resolves when no byte has moved for an idle timeout (give or take one check), or
    /// the connection has not begun to answer within the header timeout plus the idle
    /// timeout; never otherwise.
    async fn watchdog(&self, cfg: &ServerConfig) -> &'static str {
        let first_answer_by = self.started + cfg.header_read_timeout + cfg.idle_timeout;
        let check = cfg.idle_timeout / IDLE_CHECKS;
        let mut quiet = QuietChecks::default();
        loop {
            let mut wake = Instant::now() + check;
            if !self.answered.load(Ordering::Relaxed) {
                wake = wake.min(first_answer_by);
            }
            tokio::time::sleep_until(wake).await;
            if !self.answered.load(Ordering::Relaxed) && Instant::now() >= first_answer_by {
                return "no answer started";
            }
            if quiet.idle_after(self.moved.swap(false, Ordering::Relaxed)) {
                return "idle";
            }
        }
    }
}

/// Counts the watchdog's checks in a row that saw no byte move.
#[derive(Default)]
struct QuietChecks(u32);

impl QuietChecks {
    /// Records one check (`moved`: bytes moved since the last one); true once
    /// [`IDLE_CHECKS`] checks in a row saw none.
    fn idle_after(&mut self, moved: bool) -> bool {
        self.0 = if moved { 0 } else { self.0 + 1 };
        self.0 >= IDLE_CHECKS
    }
}

fn set_once(flag: &AtomicBool) {
    if !flag.load(Ordering::Relaxed) {
        flag.store(true, Ordering::Relaxed);
    }
}

/// A TCP stream that records its activity and holds the connection's slot.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// Whether the watchdog still reads `activity`. It stops when the connection's task
    /// ends, which for an upgraded connection (a chat socket) is at the upgrade; from
    /// then on nothing is recorded, so a frame written touches no memory of this
    /// wrapper's beyond the stream's (the flag lives next to it).
    watched: bool,
    _slot: Slot,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved(false);
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(true);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.moved(true);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Tracked {
    fn moved(&mut self, wrote: bool) {
        if !self.watched {
            return;
        }
        set_once(&self.activity.moved);
        if wrote {
            set_once(&self.activity.answered);
        }
        self.watched = self.activity.watched.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte seen at one check: the connection is closed at the [`IDLE_CHECKS`]th quiet
    /// check after it, so between 1 and 1 + 1/IDLE_CHECKS idle timeouts after the byte.
    #[test]
    fn a_connection_is_idle_after_a_timeout_of_quiet_checks() {
        let mut quiet = QuietChecks::default();
        for _ in 0..10 {
            assert!(!quiet.idle_after(true), "closed while bytes moved");
            for _ in 1..IDLE_CHECKS {
                assert!(!quiet.idle_after(false), "closed before an idle timeout");
            }
        }
        assert!(!quiet.idle_after(true));
        for _ in 1..IDLE_CHECKS {
            assert!(!quiet.idle_after(false));
        }
        assert!(
            quiet.idle_after(false),
            "closed after IDLE_CHECKS quiet checks"
        );
    }

    /// Bytes every 20 ms keep the connection; then it is closed no sooner than an idle
    /// timeout after its last byte (real time, so only the lower bound is exact).
    #[tokio::test]
    async fn the_watchdog_closes_a_connection_an_idle_timeout_after_its_last_byte() {
        let limits = short();
        let activity = Activity::new();
        set_once(&activity.answered);
        let watchdog = activity.watchdog(&limits);
        tokio::pin!(watchdog);
        for _ in 0..20 {
            tokio::select! {
                reason = &mut watchdog => panic!("closed while bytes moved: {reason}"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => set_once(&activity.moved),
            }
        }
        let last_byte = Instant::now();
        let reason = tokio::time::timeout(Duration::from_secs(10), watchdog)
            .await
            .expect("an idle connection is closed");
        assert_eq!(reason, "idle");
        assert!(last_byte.elapsed() >= limits.idle_timeout);
    }

    /// Bytes that keep coming do not save a connection that never starts to answer.
    #[tokio::test]
    async fn the_watchdog_closes_a_connection_that_never_answers_on_time() {
        let limits = short();
        let activity = Activity::new();
        let watchdog = activity.watchdog(&limits);
        tokio::pin!(watchdog);
        let reason = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                tokio::select! {
                    reason = &mut watchdog => break reason,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => set_once(&activity.moved),
                }
            }
        })
        .await
        .expect("closed while bytes still move");
        assert_eq!(reason, "no answer started");
        assert!(activity.started.elapsed() >= limits.header_read_timeout + limits.idle_timeout);
    }

    fn short() -> ServerConfig {
        ServerConfig {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(200),
            ..cfg(0, 0)
        }
    }

    fn cfg(total: usize, per_ip: usize) -> ServerConfig {
        ServerConfig {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: total,
            max_connections_per_ip: per_ip,
        }
    }

    #[test]
    fn slots_are_capped_per_ip_and_in_total_and_freed_on_drop() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let adm = Admission::new(&cfg(3, 2));
        let a1 = adm.admit(a).unwrap();
        let _a2 = adm.admit(a).unwrap();
        assert!(adm.admit(a).is_none(), "third from one IP");
        let _b1 = adm.admit(b).unwrap();
        assert!(adm.admit(b).is_none(), "over the total");
        drop(a1);
        assert!(adm.admit(a).is_some(), "a freed slot is reusable");
        let adm = Admission::new(&cfg(2, 0));
        let _x = adm.admit(a).unwrap();
        let _y = adm.admit(a).unwrap();
        assert!(adm.admit(b).is_none());
    }
}
