//! The plan worker: claims queued plans under a heartbeat-renewed lease, computes them through
//! a [`Planner`] and records the result. Any number of workers may share a database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use super::store::{self, ClaimedPlan, PlanOutcome};
use super::Planner;
use crate::error::EngineError;

/// How a plan worker behaves.
#[derive(Debug, Clone)]
pub struct PlanWorkerConfig {
    pub worker_id: Uuid,
    /// How long a claim holds without renewal; a crashed worker's plans are taken over after.
    pub lease: Duration,
    /// Plans computed at once by this worker.
    pub concurrency: usize,
    /// How often an idle worker looks for plans.
    pub poll_interval: Duration,
    /// Attempts before transient failures fail the plan.
    pub max_attempts: i32,
    /// Delay before a transiently failed plan is tried again.
    pub retry_after: Duration,
}

impl Default for PlanWorkerConfig {
    fn default() -> Self {
        Self {
            worker_id: Uuid::new_v4(),
            lease: Duration::from_secs(60),
            concurrency: 8,
            poll_interval: Duration::from_millis(500),
            max_attempts: 4,
            retry_after: Duration::from_secs(5),
        }
    }
}

struct Inner<P> {
    pool: PgPool,
    planner: P,
    config: PlanWorkerConfig,
}

/// Computes plans. Cheap to clone.
pub struct PlanWorker<P> {
    inner: Arc<Inner<P>>,
}

impl<P> Clone for PlanWorker<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Planner> PlanWorker<P> {
    pub fn new(pool: PgPool, planner: P, config: PlanWorkerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                planner,
                config,
            }),
        }
    }

    pub fn planner(&self) -> &P {
        &self.inner.planner
    }

    /// Claims up to `concurrency` due plans and computes them; returns how many it claimed.
    pub async fn tick(&self) -> Result<usize, EngineError> {
        let cfg = &self.inner.config;
        let claimed = store::claim_plans(
            &self.inner.pool,
            cfg.worker_id,
            cfg.lease,
            cfg.concurrency.max(1) as i64,
        )
        .await?;
        let n = claimed.len();
        let mut tasks = JoinSet::new();
        for c in claimed {
            let inner = self.inner.clone();
            tasks.spawn(async move { compute(&inner, c).await });
        }
        while tasks.join_next().await.is_some() {}
        Ok(n)
    }

    /// Ticks until no plan is due (plans waiting out a retry delay are left). For tests.
    pub async fn drain(&self) -> Result<usize, EngineError> {
        let mut total = 0;
        loop {
            let n = self.tick().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Works until `shutdown` resolves; plans being computed then are left to their lease.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) {
        let cfg = &self.inner.config;
        tracing::info!(worker_id = %cfg.worker_id, "plan worker started");
        let mut shutdown = std::pin::pin!(shutdown);
        let mut tasks: JoinSet<()> = JoinSet::new();
        loop {
            let free = cfg.concurrency.max(1).saturating_sub(tasks.len());
            if free > 0 {
                match store::claim_plans(&self.inner.pool, cfg.worker_id, cfg.lease, free as i64)
                    .await
                {
                    Ok(claimed) => {
                        for c in claimed {
                            let inner = self.inner.clone();
                            tasks.spawn(async move { compute(&inner, c).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim plans"),
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(cfg.poll_interval) => {}
            }
        }
        tasks.shutdown().await;
        tracing::info!("plan worker stopped");
    }
}

async fn compute<P: Planner>(inner: &Inner<P>, claimed: ClaimedPlan) {
    let span = tracing::info_span!("plan", plan_id = %claimed.id, attempt = claimed.attempts);
    async {
        let cfg = &inner.config;
        let outcome = match store::obsolete(&inner.pool, &claimed).await {
            Ok(Some(why)) => PlanOutcome::Failed(why),
            Ok(None) => match store::load_plan_context(&inner.pool, &claimed).await {
                Ok(ctx) => {
                    let renew = async {
                        loop {
                            tokio::time::sleep(cfg.lease / 3).await;
                            if let Err(e) = renew_lease(inner, &claimed).await {
                                tracing::warn!(error = %e, "cannot renew the plan's lease");
                            }
                        }
                    };
                    let result = tokio::select! {
                        r = Box::pin(inner.planner.plan(&ctx)) => r,
                        () = renew => unreachable!("the renewal loop never ends"),
                    };
                    store::outcome_of(result, claimed.attempts, cfg.max_attempts, cfg.retry_after)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load the plan's context; leaving it to the lease");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the plan; leaving it to the lease");
                return;
            }
        };
        match store::finish_plan(&inner.pool, &claimed, cfg.worker_id, outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::info!("plan lease lost; result discarded"),
            Err(e) => tracing::warn!(error = %e, "cannot record the plan; leaving it to the lease"),
        }
    }
    .instrument(span)
    .await
}

async fn renew_lease<P>(inner: &Inner<P>, claimed: &ClaimedPlan) -> Result<(), EngineError> {
    sqlx::query!(
        "UPDATE plans SET lease_expires_at = now() + make_interval(secs => $3::float8)
         WHERE id = $1 AND lease_owner = $2 AND status = 'computing'",
        claimed.id,
        inner.config.worker_id,
        inner.config.lease.as_secs_f64()
    )
    .execute(&inner.pool)
    .await?;
    Ok(())
}
