//! Live progress: a PostgreSQL `LISTEN` on `berth_progress` (notified by a trigger on every
//! event, at commit) fanned out to the live-progress streams of this server.
//!
//! One change costs one snapshot per environment, however many streams watch it: the first
//! stream on an environment starts a feed that re-reads the snapshot when the environment
//! changes and shares it (as JSON, once for readers and once for those who may operate runs);
//! the feed ends with its last stream. Streams are counted per session (or API token) and in
//! all, and over either cap a new one is refused with 429.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use app::{api::guard::Services, error::AppError};
use sqlx::postgres::PgListener;
use tokio::sync::{
    broadcast::{self, error::RecvError, Receiver},
    watch,
};
use uuid::Uuid;

use crate::config::Limits;

/// Changes closer together than this are read as one snapshot.
const COALESCE: Duration = Duration::from_millis(150);

/// Environments whose provisioning changed. `Uuid::nil()` means "anything may have changed"
/// (sent after the listener reconnected, when notifications may have been missed).
#[derive(Clone)]
pub struct ProgressHub {
    tx: broadcast::Sender<Uuid>,
    /// Set at shutdown: open streams end so graceful shutdown does not wait on them forever.
    closing: watch::Sender<bool>,
    shared: Arc<Shared>,
}

struct Shared {
    services: Services,
    limits: Limits,
    /// The feed of each environment some stream watches.
    feeds: Mutex<HashMap<Uuid, Arc<watch::Sender<Frame>>>>,
    /// Open streams per session or token, and their sum.
    open: Mutex<(HashMap<String, usize>, usize)>,
    snapshots_read: AtomicU64,
}

/// An environment's snapshot as its streams send it.
#[derive(Clone)]
pub enum Frame {
    /// Not read yet.
    Pending,
    /// The snapshot's JSON as readers see it, and as those who may operate runs see it.
    /// `stale` while a change is being read: a stream opening then waits for the new one
    /// rather than sending this one and, a moment later, the next (each message makes a page
    /// reload its parts).
    Ready {
        reader: Arc<str>,
        operator: Arc<str>,
        stale: bool,
    },
    /// It could not be read (the environment is gone, or the database failed): streams end.
    Failed,
}

pub const CHANNEL: &str = "berth_progress";

impl ProgressHub {
    /// Starts listening in the background for as long as the process runs.
    pub fn start(services: Services, limits: Limits) -> Self {
        let (tx, _) = broadcast::channel(1024);
        tokio::spawn(listen(services.pool.clone(), tx.clone()));
        let (closing, _) = watch::channel(false);
        Self {
            tx,
            closing,
            shared: Arc::new(Shared {
                services,
                limits,
                feeds: Mutex::default(),
                open: Mutex::default(),
                snapshots_read: AtomicU64::new(0),
            }),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }

    /// Completes once the server is shutting down.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Ends every open stream (at shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// How often an open stream re-checks its reader.
    pub fn recheck_every(&self) -> Duration {
        self.shared.limits.stream_recheck
    }

    /// Snapshots read since start (what one change costs; tests and benchmarks read it).
    pub fn snapshots_read(&self) -> u64 {
        self.shared.snapshots_read.load(Ordering::Relaxed)
    }

    /// The shared snapshots of environment `id`, starting its feed if no stream watches it yet.
    pub fn watch(&self, id: Uuid) -> watch::Receiver<Frame> {
        let mut feeds = lock(&self.shared.feeds);
        if let Some(feed) = feeds.get(&id) {
            return feed.subscribe();
        }
        let (feed, rx) = watch::channel(Frame::Pending);
        let feed = Arc::new(feed);
        feeds.insert(id, feed.clone());
        tokio::spawn(run_feed(self.clone(), id, feed));
        rx
    }

    /// A place for one more stream of `owner` (a session or a token), or 429 when it has
    /// its share open or the server has its total.
    pub fn open_stream(&self, owner: String) -> Result<StreamSlot, AppError> {
        let limits = &self.shared.limits;
        let mut open = lock(&self.shared.open);
        if open.1 >= limits.streams_total {
            tracing::warn!(
                total = open.1,
                "live progress: stream refused, the server has its total open"
            );
            return Err(AppError::TooMany(
                "Too many live views are open on this server; try again shortly.".into(),
            ));
        }
        let mine = open.0.entry(owner.clone()).or_default();
        if *mine >= limits.streams_per_session {
            return Err(AppError::TooMany(format!(
                "You have {} live views open; close one first.",
                limits.streams_per_session
            )));
        }
        *mine += 1;
        open.1 += 1;
        Ok(StreamSlot {
            shared: self.shared.clone(),
            owner,
        })
    }
}

/// One open stream, counted until dropped.
pub struct StreamSlot {
    shared: Arc<Shared>,
    owner: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.shared.open);
        if let Some(n) = open.0.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                open.0.remove(&self.owner);
            }
        }
        open.1 = open.1.saturating_sub(1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads environment `id`'s snapshot now and after each change for as long as a stream
/// watches it.
async fn run_feed(hub: ProgressHub, id: Uuid, feed: Arc<watch::Sender<Frame>>) {
    // Subscribed before the first read, so a change during it is not missed.
    let mut changes = hub.subscribe();
    loop {
        hub.shared.snapshots_read.fetch_add(1, Ordering::Relaxed);
        let frame = match app::api::provisioning::shared_snapshot(&hub.shared.services, id).await {
            Ok(snapshot) => {
                let operator = app::api::provisioning::Provisioning {
                    can_operate: true,
                    ..snapshot.clone()
                };
                let json = |p: &app::api::provisioning::Provisioning| -> Arc<str> {
                    serde_json::to_string(p).unwrap_or_default().into()
                };
                Frame::Ready {
                    reader: json(&snapshot),
                    operator: json(&operator),
                    stale: false,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, environment_id = %id, "live progress: snapshot failed");
                Frame::Failed
            }
        };
        let failed = matches!(frame, Frame::Failed);
        feed.send_replace(frame);
        if !failed {
            tokio::select! {
                changed = wait_for_change(&mut changes, id, &feed) => if !changed { return },
                () = feed.closed() => {}
            }
        }
        // Nobody watching any more (or the feed failed): leave, under the lock, so a new
        // stream either joined this feed before or starts a new one after.
        let mut feeds = lock(&hub.shared.feeds);
        if failed || feed.receiver_count() == 0 {
            if feeds.get(&id).is_some_and(|f| Arc::ptr_eq(f, &feed)) {
                feeds.remove(&id);
            }
            return;
        }
    }
}

/// Waits until `id` (or possibly everything) changed, then marks `feed`'s frame stale (without
/// waking its streams); `false` when the hub is gone.
async fn wait_for_change(rx: &mut Receiver<Uuid>, id: Uuid, feed: &watch::Sender<Frame>) -> bool {
    loop {
        match rx.recv().await {
            Ok(changed) if changed == id || changed.is_nil() => break,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => break,
            Err(RecvError::Closed) => return false,
        }
    }
    feed.send_if_modified(|frame| {
        if let Frame::Ready { stale, .. } = frame {
            *stale = true;
        }
        false
    });
    // Let a burst of changes (a step finishing and the next starting) settle into one read.
    tokio::time::sleep(COALESCE).await;
    while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
    true
}

async fn listen(pool: sqlx::PgPool, tx: broadcast::Sender<Uuid>) {
    let mut first = true;
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "live progress: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "live progress: cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        if !first {
            let _ = tx.send(Uuid::nil());
        }
        first = false;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(id) = n.payload().parse::<Uuid>() {
                        let _ = tx.send(id);
                    }
                }
                // The connection dropped; notifications may have been lost meanwhile.
                Ok(None) => {
                    let _ = tx.send(Uuid::nil());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live progress: listener failed; reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
