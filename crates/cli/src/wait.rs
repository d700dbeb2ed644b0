//! `--wait`: follows a request until it ends, by polling `GET /requests/{id}` and, once it is
//! approved, its environment's latest run (`GET /environments/{id}/run`), printing each change
//! of the request, the run and its steps to standard error.

use std::{collections::HashMap, time::Duration};

use serde_json::Value;

use crate::{api::Api, cli::Wait, output::cell};

/// How a followed request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    /// Its run failed or was cancelled.
    Failed,
    Rejected,
    Withdrawn,
    TimedOut,
}

impl Outcome {
    /// The exit code: 0 ready, 3 failed/rejected/withdrawn, 4 timed out (2 is a usage error).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Ready => 0,
            Outcome::Failed | Outcome::Rejected | Outcome::Withdrawn => 3,
            Outcome::TimedOut => 4,
        }
    }
}

/// What has been said so far, so each change is printed once.
#[derive(Debug, Default)]
pub struct Tracker {
    request_status: Option<String>,
    run: Option<String>,
    run_status: Option<String>,
    steps: HashMap<String, (String, i64)>,
}

impl Tracker {
    /// Reads one look at the request (and its environment's latest run, when there is one);
    /// returns the lines to print and, when the request has ended, how.
    pub fn observe(
        &mut self,
        request: &Value,
        run: Option<&Value>,
    ) -> (Vec<String>, Option<Outcome>) {
        let mut lines = Vec::new();
        let id = cell(&request["id"]);
        let status = cell(&request["status"]);
        if self.request_status.as_deref() != Some(status.as_str()) {
            lines.push(match status.as_str() {
                "submitted" => format!(
                    "Request {id} is submitted: an admin must approve its plan \
                     (berth request approve {id}); waiting."
                ),
                "rejected" => format!(
                    "Request {id} was rejected by {}: {}",
                    cell(&request["decided_by"]),
                    cell(&request["decision_note"])
                ),
                "approved" => format!(
                    "Request {id} was approved by {}; waiting for a worker.",
                    cell(&request["decided_by"])
                ),
                s => format!("Request {id} is {s}."),
            });
            self.request_status = Some(status.clone());
        }
        // Only this request's run (an environment's latest run may be an earlier request's).
        let run = run.filter(|r| r["request_id"] == request["id"]);
        let mut run_ended = None;
        let mut run_going = false;
        if let Some(run) = run {
            let run_id = cell(&run["id"]);
            if self.run.as_deref() != Some(run_id.as_str()) {
                self.run = Some(run_id.clone());
                self.run_status = None;
                self.steps.clear();
            }
            let steps = run["steps"].as_array().map_or(&[][..], Vec::as_slice);
            let total = steps.len();
            for s in steps {
                let name = cell(&s["name"]);
                let st = cell(&s["status"]);
                let attempts = s["attempts"].as_i64().unwrap_or(0);
                let key = (st.clone(), attempts);
                if self.steps.get(&name) == Some(&key) || (st == "pending" && attempts == 0) {
                    self.steps.insert(name, key);
                    continue;
                }
                let done = steps
                    .iter()
                    .filter(|s| matches!(s["status"].as_str(), Some("succeeded" | "skipped")))
                    .count();
                let detail = match st.as_str() {
                    "running" => format!(" (attempt {attempts} of {})", cell(&s["max_attempts"])),
                    "failed" | "pending" if !s["error"].is_null() => {
                        format!(": {}", cell(&s["error"]))
                    }
                    "blocked" => format!(": {}", cell(&s["blocked_reason"])),
                    _ => String::new(),
                };
                let retry = if st == "pending" { " (will retry)" } else { "" };
                lines.push(format!("  [{done}/{total}] {name} {st}{retry}{detail}"));
                self.steps.insert(name, key);
            }
            let rs = cell(&run["status"]);
            if self.run_status.as_deref() != Some(rs.as_str()) {
                lines.push(match rs.as_str() {
                    "failed" | "cancelled" => format!(
                        "Run {run_id} {rs}: {} (berth run show {run_id}; an operator may \
                         `berth run retry {run_id}`)",
                        cell(&run["error"])
                    ),
                    s => format!("Run {run_id} is {s}."),
                });
                self.run_status = Some(rs.clone());
            }
            match rs.as_str() {
                "failed" | "cancelled" => run_ended = Some(Outcome::Failed),
                "pending" | "running" => run_going = true,
                _ => {}
            }
        }
        let outcome = match status.as_str() {
            "ready" => Some(Outcome::Ready),
            // A failed request whose run an operator retried goes on.
            "failed" if run_going => None,
            "failed" => Some(Outcome::Failed),
            "rejected" => Some(Outcome::Rejected),
            "withdrawn" => Some(Outcome::Withdrawn),
            _ => run_ended,
        };
        (lines, outcome)
    }
}

/// Whether the request may have a run to read.
fn has_run(status: &str) -> bool {
    matches!(status, "approved" | "provisioning" | "ready" | "failed")
}

/// Follows request `id` until it ends or `opts.timeout` passes; returns how it ended and the
/// request as last read. Calls that fail for a moment (no answer, 5xx) are tried again, up to
/// five in a row.
pub async fn follow(api: &Api, id: &str, opts: &Wait) -> anyhow::Result<(Outcome, Value)> {
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut tracker = Tracker::default();
    let mut last = Value::Null;
    let mut failures = 0;
    loop {
        match look(api, id).await {
            Ok((request, run)) => {
                failures = 0;
                let (lines, outcome) = tracker.observe(&request, run.as_ref());
                for l in lines {
                    eprintln!("{l}");
                }
                last = request;
                if let Some(o) = outcome {
                    return Ok((o, last));
                }
            }
            Err(e) if passing(&e) && failures < 5 => {
                failures += 1;
                eprintln!("Cannot read the request just now ({e:#}); trying again.");
            }
            Err(e) => return Err(e),
        }
        if tokio::time::Instant::now() + opts.interval > deadline {
            eprintln!(
                "Stopped waiting after {}; the request goes on (berth request show {id} --wait).",
                human(opts.timeout)
            );
            return Ok((Outcome::TimedOut, last));
        }
        tokio::time::sleep(opts.interval).await;
    }
}

async fn look(api: &Api, id: &str) -> anyhow::Result<(Value, Option<Value>)> {
    let request = api.get(&format!("/requests/{id}"), &[]).await?;
    let run = if has_run(request["status"].as_str().unwrap_or_default()) {
        let env = cell(&request["environment_id"]);
        api.get_optional(&format!("/environments/{env}/run"))
            .await?
    } else {
        None
    };
    Ok((request, run))
}

/// A failure worth another try: no answer, or a server error.
fn passing(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::api::Unreachable>().is_some()
        || e.downcast_ref::<crate::api::ApiError>()
            .is_some_and(|a| a.status >= 500)
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(status: &str) -> Value {
        json!({"id": "R1", "environment_id": "E1", "status": status, "decided_by": "Approver",
               "decision_note": "not this quarter"})
    }

    fn run(status: &str, steps: Value) -> Value {
        json!({"id": "RUN1", "request_id": "R1", "status": status, "error": "chart:influxdb failed",
               "steps": steps})
    }

    #[test]
    fn a_request_is_followed_to_ready_saying_each_change_once() {
        let mut t = Tracker::default();
        let (lines, end) = t.observe(&request("submitted"), None);
        assert_eq!(end, None);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("an admin must approve"), "{lines:?}");
        // Nothing new, nothing said.
        assert_eq!(t.observe(&request("submitted"), None), (vec![], None));

        let steps = json!([
            {"name": "stack", "status": "running", "attempts": 1, "max_attempts": 5},
            {"name": "chart:dsm", "status": "pending", "attempts": 0, "max_attempts": 5}
        ]);
        let (lines, end) = t.observe(&request("provisioning"), Some(&run("running", steps)));
        assert_eq!(end, None);
        assert_eq!(
            lines,
            vec![
                "Request R1 is provisioning.",
                "  [0/2] stack running (attempt 1 of 5)",
                "Run RUN1 is running."
            ]
        );
        let steps = json!([
            {"name": "stack", "status": "succeeded", "attempts": 1, "max_attempts": 5},
            {"name": "chart:dsm", "status": "succeeded", "attempts": 1, "max_attempts": 5}
        ]);
        let (lines, end) = t.observe(&request("ready"), Some(&run("succeeded", steps)));
        assert_eq!(end, Some(Outcome::Ready));
        assert_eq!(
            lines,
            vec![
                "Request R1 is ready.",
                "  [2/2] stack succeeded",
                "  [2/2] chart:dsm succeeded",
                "Run RUN1 is succeeded."
            ]
        );
    }

    #[test]
    fn a_failed_run_ends_the_wait_with_its_error() {
        let mut t = Tracker::default();
        let steps = json!([
            {"name": "chart:influxdb", "status": "failed", "attempts": 1, "max_attempts": 5,
             "error": "INSTALLATION FAILED"}
        ]);
        // The run failed before the request's status caught up: the wait ends all the same.
        let (lines, end) = t.observe(&request("provisioning"), Some(&run("failed", steps)));
        assert_eq!(end, Some(Outcome::Failed));
        assert!(lines.contains(&"  [0/1] chart:influxdb failed: INSTALLATION FAILED".to_owned()));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("Run RUN1 failed: chart:influxdb failed")));
        assert_eq!(Outcome::Failed.exit_code(), 3);
    }

    #[test]
    fn a_failed_request_whose_run_is_retried_is_followed_on() {
        let mut t = Tracker::default();
        let steps = json!([
            {"name": "chart:influxdb", "status": "pending", "attempts": 1, "max_attempts": 5}
        ]);
        let (_, end) = t.observe(&request("failed"), Some(&run("pending", steps)));
        assert_eq!(end, None);
        let (_, end) = t.observe(&request("failed"), Some(&run("failed", json!([]))));
        assert_eq!(end, Some(Outcome::Failed));
        let (_, end) = Tracker::default().observe(&request("failed"), None);
        assert_eq!(end, Some(Outcome::Failed));
    }

    #[test]
    fn another_requests_run_is_not_this_ones() {
        let mut t = Tracker::default();
        let mut earlier = run("failed", json!([]));
        earlier["request_id"] = json!("R0");
        let (lines, end) = t.observe(&request("approved"), Some(&earlier));
        assert_eq!(end, None);
        assert_eq!(lines.len(), 1, "{lines:?}");
    }

    #[test]
    fn rejected_and_withdrawn_end_it_too() {
        let (lines, end) = Tracker::default().observe(&request("rejected"), None);
        assert_eq!(end, Some(Outcome::Rejected));
        assert_eq!(
            lines,
            vec!["Request R1 was rejected by Approver: not this quarter"]
        );
        let (_, end) = Tracker::default().observe(&request("withdrawn"), None);
        assert_eq!(end, Some(Outcome::Withdrawn));
        assert_eq!(Outcome::Ready.exit_code(), 0);
        assert_eq!(Outcome::TimedOut.exit_code(), 4);
    }
}
