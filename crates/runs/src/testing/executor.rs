//! The scripted step executor: set answers per step name, every call recorded, chosen steps
//! held at a barrier or until a signal.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Barrier, Semaphore};
use uuid::Uuid;

use crate::{RunId, StepContext, StepError, StepExecutor, StepOutput};

/// Scripted answers per step name, oldest first.
type Script = HashMap<String, VecDeque<Result<StepOutput, StepError>>>;

/// One recorded call of the test executor.
#[derive(Debug, Clone)]
pub struct Call {
    pub run: RunId,
    pub step_id: Uuid,
    pub name: String,
    pub attempt: u32,
    pub idempotency_key: String,
    /// Names of the outputs the step could see.
    pub saw_outputs: Vec<String>,
}

/// A scripted executor: answers per step name from a queue (success when empty), records
/// every call, and can make chosen steps wait at a barrier or for a signal.
#[derive(Clone, Default)]
pub struct TestExecutor {
    pub calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Mutex<Script>>,
    barrier: Option<(Vec<String>, Arc<Barrier>)>,
    hold: Option<(Vec<String>, Arc<Semaphore>)>,
    hang: bool,
    pause: Duration,
}

impl TestExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Shares the call log (and script) with `other`: two engines, one count.
    pub fn sharing(other: &TestExecutor) -> Self {
        Self {
            calls: other.calls.clone(),
            script: other.script.clone(),
            ..Self::default()
        }
    }

    pub fn script(self, step: &str, results: Vec<Result<StepOutput, StepError>>) -> Self {
        self.script
            .lock()
            .unwrap()
            .entry(step.to_owned())
            .or_default()
            .extend(results);
        self
    }

    /// `steps` wait for each other: they only pass when all are running at once.
    pub fn barrier(mut self, steps: &[&str]) -> Self {
        let b = Arc::new(Barrier::new(steps.len()));
        self.barrier = Some((steps.iter().map(|s| s.to_string()).collect(), b));
        self
    }

    /// `steps` wait until the returned gate gets permits (`add_permits`).
    pub fn hold(mut self, steps: &[&str]) -> (Self, Arc<Semaphore>) {
        let n = Arc::new(Semaphore::new(0));
        self.hold = Some((steps.iter().map(|s| s.to_string()).collect(), n.clone()));
        (self, n)
    }

    /// Every call hangs forever (a worker that will crash).
    pub fn hanging(mut self) -> Self {
        self.hang = true;
        self
    }

    /// Every call takes a little while (lets two engines interleave).
    pub fn pausing(mut self, d: Duration) -> Self {
        self.pause = d;
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn count(&self, step: &str) -> usize {
        self.calls().iter().filter(|c| c.name == step).count()
    }
}

impl StepExecutor for TestExecutor {
    async fn execute(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        self.calls.lock().unwrap().push(Call {
            run: step.run_id,
            step_id: step.step_id.0,
            name: step.name.clone(),
            attempt: step.attempt,
            idempotency_key: step.idempotency_key.clone(),
            saw_outputs: step.outputs.keys().cloned().collect(),
        });
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some((steps, barrier)) = &self.barrier {
            if steps.contains(&step.name) {
                barrier.wait().await;
            }
        }
        if let Some((steps, gate)) = &self.hold {
            if steps.contains(&step.name) {
                let _permit = gate.acquire().await.expect("gate open");
            }
        }
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        let scripted = self
            .script
            .lock()
            .unwrap()
            .get_mut(&step.name)
            .and_then(VecDeque::pop_front);
        scripted.unwrap_or_else(|| {
            // What the real executor reports where the engine reads it: a chart step's
            // release, a rollback's apps, a proof's checks.
            let output = match (step.kind, &step.app) {
                (crate::StepKind::DeployChart, Some(app)) => json!({
                    "by": step.name, "attempt": step.attempt, "app": app, "release": app,
                    "action": "installed", "chart_version": "1.0.0",
                    "revision": step.releases_before.get(app).map_or(1, |r| r.revision + 1),
                }),
                (crate::StepKind::Rollback, _) => json!({
                    "apps": step.releases_before.iter().map(|(app, r)| json!({
                        "app": app, "release": app, "chart_version": r.chart_version,
                        "revision": r.revision + 2, "rolled_back_to": r.revision,
                    })).collect::<Vec<_>>(),
                }),
                (crate::StepKind::ProveRemoved, _) => json!({
                    "checks": [{"system": "test", "name": "nothing left", "passed": true, "detail": "scripted"}],
                    "retained": [],
                }),
                _ => json!({ "by": step.name, "attempt": step.attempt }),
            };
            Ok(StepOutput {
                output: Some(output),
                log: vec![format!("{} done", step.name)],
            })
        })
    }
}
