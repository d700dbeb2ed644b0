//! Live progress: a PostgreSQL `LISTEN` on `berth_progress` (notified by a trigger on every
//! event, at commit) fanned out to the live-progress streams of this server, which each
//! re-read their environment's snapshot when told it changed.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Environments whose provisioning changed. `Uuid::nil()` means "anything may have changed"
/// (sent after the listener reconnected, when notifications may have been missed).
#[derive(Clone)]
pub struct ProgressHub {
    tx: broadcast::Sender<Uuid>,
    /// Set at shutdown: open streams end so graceful shutdown does not wait on them forever.
    closing: tokio::sync::watch::Sender<bool>,
}

pub const CHANNEL: &str = "berth_progress";

impl ProgressHub {
    /// Starts listening in the background for as long as the process runs.
    pub fn start(pool: sqlx::PgPool) -> Self {
        let (tx, _) = broadcast::channel(1024);
        tokio::spawn(listen(pool, tx.clone()));
        let (closing, _) = tokio::sync::watch::channel(false);
        Self { tx, closing }
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
