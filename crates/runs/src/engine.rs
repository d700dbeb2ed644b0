//! The worker: claims ready steps, runs them through the executor under a heartbeat-renewed
//! lease, records the outcome. Any number of engines (tasks or processes) may share a database.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_backoff::Backoff;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::EngineError;
use crate::executor::{StepError, StepExecutor};
use crate::step_retries::StepRetries;
use crate::store::{self, Claimed, Finished};
use crate::RunId;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Identifies this worker in leases and attempts; unique per engine instance.
    pub worker_id: Uuid,
    /// How long a claim is valid without a heartbeat. A crashed worker's steps become
    /// claimable again after this.
    pub lease: Duration,
    /// How often a running step's lease is renewed (well below `lease`).
    pub heartbeat: Duration,
    /// Steps run at once by this worker.
    pub concurrency: usize,
    /// How often an idle worker looks for work.
    pub poll_interval: Duration,
    /// On shutdown, how long running steps may finish before they are interrupted and handed
    /// back (their attempt is not counted).
    pub shutdown_grace: Duration,
    pub retry: StepRetries,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker_id: Uuid::new_v4(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            concurrency: 8,
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
            retry: StepRetries::default(),
        }
    }
}

impl EngineConfig {
    /// Every problem at once, for the server's start-up check.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.lease < Duration::from_secs(1) {
            problems.push("engine.lease must be at least 1 s".to_owned());
        }
        if self.heartbeat.is_zero() || self.heartbeat * 2 > self.lease {
            problems.push(
                "engine.heartbeat must be positive and at most half of engine.lease".to_owned(),
            );
        }
        if self.concurrency == 0 {
            problems.push("engine.concurrency must be at least 1".to_owned());
        }
        if self.poll_interval.is_zero() {
            problems.push("engine.poll_interval must be positive".to_owned());
        }
        if self.retry.max_attempts == 0 || self.retry.chart_max_attempts == 0 {
            problems.push("engine.retry attempts must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.retry.backoff.jitter) {
            problems.push("engine.retry.jitter must be between 0 and 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// What a [`Engine::tick`] or [`Engine::drain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Steps claimed (and executed, unless their lease was gone before the call).
    pub claimed: usize,
    pub succeeded: usize,
    /// Transient failures scheduled for another attempt.
    pub retrying: usize,
    /// Steps that failed for good.
    pub failed: usize,
    /// Results discarded because the lease was lost (taken over, or the run was cancelled).
    pub lease_lost: usize,
    /// Steps whose outcome could not be recorded (database trouble): their lease will expire
    /// and another attempt will follow.
    pub errors: usize,
}

impl TickReport {
    fn add(&mut self, other: TickReport) {
        self.claimed += other.claimed;
        self.succeeded += other.succeeded;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.lease_lost += other.lease_lost;
        self.errors += other.errors;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded { run_done: bool },
    Retrying,
    Failed { run_done: bool },
    LeaseLost,
    Error,
}

struct Inner<E> {
    pool: PgPool,
    executor: E,
    config: EngineConfig,
}

/// A provisioning worker. Cheap to clone (shared state).
pub struct Engine<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for Engine<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: StepExecutor> Engine<E> {
    pub fn new(pool: PgPool, executor: E) -> Self {
        Self::with_config(pool, executor, EngineConfig::default())
    }

    pub fn with_config(pool: PgPool, executor: E, config: EngineConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                executor,
                config,
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn executor(&self) -> &E {
        &self.inner.executor
    }

    pub fn worker_id(&self) -> Uuid {
        self.inner.config.worker_id
    }

    /// One round: fails steps whose lease ran out on their last attempt, claims up to
    /// `concurrency` ready steps, runs them in parallel and records their outcomes.
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        self.reap().await?;
        let claimed = store::claim(
            &self.inner.pool,
            self.worker_id(),
            self.inner.config.lease,
            self.inner.config.concurrency.max(1) as i64,
        )
        .await?;
        let mut report = TickReport {
            claimed: claimed.len(),
            ..TickReport::default()
        };
        let mut tasks = JoinSet::new();
        for c in claimed {
            let inner = self.inner.clone();
            tasks.spawn(async move { run_one(&inner, c).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((claimed, outcome)) => self.count(&mut report, &claimed, outcome),
                Err(e) => {
                    tracing::error!(error = %e, "step task panicked");
                    report.errors += 1;
                }
            }
        }
        Ok(report)
    }

    /// Ticks until nothing is claimable right now (steps waiting out a retry backoff are left).
    /// For tests and one-shot tools.
    pub async fn drain(&self) -> Result<TickReport, EngineError> {
        let mut total = TickReport::default();
        loop {
            let report = self.tick().await?;
            total.add(report);
            if report.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Works until `shutdown` resolves: keeps up to `concurrency` steps running, claims more as
    /// soon as one finishes, polls every `poll_interval` when idle. On shutdown it stops
    /// claiming, gives running steps `shutdown_grace` to finish, then interrupts the rest and
    /// hands them back for another worker.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) -> Result<(), EngineError> {
        let cfg = &self.inner.config;
        tracing::info!(worker_id = %cfg.worker_id, concurrency = cfg.concurrency, "engine started");
        let mut shutdown = std::pin::pin!(shutdown);
        let mut tasks: JoinSet<(Claimed, Outcome)> = JoinSet::new();
        let mut in_flight: HashMap<Uuid, Claimed> = HashMap::new();
        let mut report = TickReport::default();
        let mut last_reap: Option<tokio::time::Instant> = None;
        loop {
            // Exhausted expired leases are rare: look for them about once per poll interval,
            // not on every completion.
            if last_reap.is_none_or(|t| t.elapsed() >= cfg.poll_interval) {
                last_reap = Some(tokio::time::Instant::now());
                if let Err(e) = self.reap().await {
                    tracing::warn!(error = %e, "cannot reap expired leases");
                }
            }
            let free = cfg.concurrency.max(1).saturating_sub(tasks.len());
            if free > 0 {
                match store::claim(&self.inner.pool, cfg.worker_id, cfg.lease, free as i64).await {
                    Ok(claimed) => {
                        for c in claimed {
                            in_flight.insert(c.step_id, c.clone());
                            let inner = self.inner.clone();
                            tasks.spawn(async move { run_one(&inner, c).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim steps"),
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    self.joined(joined, &mut in_flight, &mut report);
                }
                _ = tokio::time::sleep(cfg.poll_interval) => {}
            }
        }

        tracing::info!(running = tasks.len(), "engine stopping");
        let grace = tokio::time::sleep(cfg.shutdown_grace);
        tokio::pin!(grace);
        while !tasks.is_empty() {
            tokio::select! {
                Some(joined) = tasks.join_next() => self.joined(joined, &mut in_flight, &mut report),
                _ = &mut grace => break,
            }
        }
        tasks.shutdown().await;
        for c in in_flight.values() {
            if let Err(e) = store::release(&self.inner.pool, c, cfg.worker_id).await {
                tracing::warn!(error = %e, step = %c.name, "cannot hand back a step; its lease will expire");
            }
        }
        tracing::info!(?report, "engine stopped");
        Ok(())
    }

    fn joined(
        &self,
        joined: Result<(Claimed, Outcome), tokio::task::JoinError>,
        in_flight: &mut HashMap<Uuid, Claimed>,
        report: &mut TickReport,
    ) {
        match joined {
            Ok((claimed, outcome)) => {
                in_flight.remove(&claimed.step_id);
                self.count(report, &claimed, outcome);
            }
            Err(e) => {
                // The step's lease will expire and another attempt will follow.
                tracing::error!(error = %e, "step task panicked");
                report.errors += 1;
            }
        }
    }

    fn count(&self, report: &mut TickReport, claimed: &Claimed, outcome: Outcome) {
        match outcome {
            Outcome::Succeeded { run_done } => {
                report.succeeded += 1;
                if run_done {
                    self.inner.executor.run_finished(RunId(claimed.run_id));
                }
            }
            Outcome::Retrying => report.retrying += 1,
            Outcome::Failed { run_done } => {
                report.failed += 1;
                if run_done {
                    self.inner.executor.run_finished(RunId(claimed.run_id));
                }
            }
            Outcome::LeaseLost => report.lease_lost += 1,
            Outcome::Error => report.errors += 1,
        }
    }

    async fn reap(&self) -> Result<(), EngineError> {
        for run in store::reap_exhausted(&self.inner.pool).await? {
            self.inner.executor.run_finished(RunId(run));
        }
        Ok(())
    }
}

/// Executes one claimed step under its lease and records the outcome.
async fn run_one<E: StepExecutor>(inner: &Inner<E>, claimed: Claimed) -> (Claimed, Outcome) {
    let span = tracing::info_span!("step", run_id = %claimed.run_id, step = %claimed.name, attempt = claimed.attempt);
    let outcome = execute(inner, &claimed).instrument(span).await;
    (claimed, outcome)
}

async fn execute<E: StepExecutor>(inner: &Inner<E>, claimed: &Claimed) -> Outcome {
    let cfg = &inner.config;
    let worker = cfg.worker_id;
    // The idempotency check before calling out: this attempt must still be the live one.
    match store::attempt_is_live(&inner.pool, claimed, worker).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("attempt superseded before it started; not executing");
            return Outcome::LeaseLost;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the attempt; leaving it to the lease");
            return Outcome::Error;
        }
    }
    let ctx = match store::load_context(&inner.pool, claimed).await {
        Ok(ctx) => ctx,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the step's context; leaving it to the lease");
            return Outcome::Error;
        }
    };

    let heartbeat = async {
        loop {
            tokio::time::sleep(cfg.heartbeat).await;
            match store::heartbeat(&inner.pool, claimed, worker, cfg.lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
            }
        }
    };
    // Boxed: the real executor's future (AWS SDK, Rancher client) is deep enough to hit the
    // compiler's recursion limit when a binary spawns `run_until`.
    let work = Box::pin(inner.executor.execute(&ctx));
    let result = tokio::select! {
        result = work => result,
        () = heartbeat => {
            tracing::info!("lease lost (taken over or cancelled); step interrupted");
            return Outcome::LeaseLost;
        }
    };

    // Recording is retried a few times (100, 200, 400 ms apart): losing it would repeat the
    // step after the lease.
    let backoff = Backoff::doubling(Duration::from_millis(100), Duration::from_secs(1));
    for attempt in 1..=4 {
        let recorded = match &result {
            Ok(out) => {
                store::finish_success(&inner.pool, claimed, worker, out.output.clone(), &out.log)
                    .await
                    .map(|f| match f {
                        Finished::Recorded { run_done } => Outcome::Succeeded { run_done },
                        Finished::LeaseLost => Outcome::LeaseLost,
                    })
            }
            Err(err) => {
                let transient = err.is_transient();
                let failure = match err {
                    StepError::Transient(_) => store::Failure::Transient,
                    StepError::Permanent(_) => store::Failure::Permanent,
                    StepError::NeedsReapproval(_) => store::Failure::NeedsReapproval,
                    StepError::RolledBack(_) => store::Failure::RolledBack,
                };
                store::finish_failure(
                    &inner.pool,
                    claimed,
                    worker,
                    &err.to_string(),
                    failure,
                    &cfg.retry,
                )
                .await
                .map(|f| match f {
                    Finished::Recorded { run_done: false } if transient => Outcome::Retrying,
                    Finished::Recorded { run_done } => Outcome::Failed { run_done },
                    Finished::LeaseLost => Outcome::LeaseLost,
                })
            }
        };
        match recorded {
            Ok(outcome) => {
                match (&result, outcome) {
                    (_, Outcome::LeaseLost) => {
                        tracing::info!("lease lost while running; result discarded")
                    }
                    (Ok(_), _) => tracing::info!("step succeeded"),
                    (Err(StepError::Transient(_)), Outcome::Retrying) => {
                        tracing::info!("step failed transiently; retry scheduled")
                    }
                    (Err(_), _) => tracing::warn!("step failed"),
                }
                return outcome;
            }
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, "cannot record the step's outcome; retrying");
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record the step's outcome; leaving it to the lease");
            }
        }
    }
    Outcome::Error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_lists_every_problem() {
        assert!(EngineConfig::default().validate().is_ok());
        let bad = EngineConfig {
            lease: Duration::from_secs(10),
            heartbeat: Duration::from_secs(8),
            concurrency: 0,
            poll_interval: Duration::ZERO,
            ..EngineConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().len(), 3);
    }
}
