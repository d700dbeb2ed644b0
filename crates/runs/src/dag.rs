//! The DAG of a run, derived from a blueprint. Pure code, unit-tested here.

use berth_blueprint::Blueprint;

use crate::step_retries::StepRetries;

/// Names of the fixed steps (chart steps are `chart:<app>`).
pub const ENSURE_STACK: &str = "ensure_stack";
pub const READ_SECRETS: &str = "read_secrets";
pub const ENSURE_NAMESPACE: &str = "ensure_namespace";
/// Added to a change run when a step failed after apps were touched: puts them back.
pub const ROLLBACK: &str = "rollback";
pub const REMOVE_NAMESPACE: &str = "remove_namespace";
pub const DELETE_STACK: &str = "delete_stack";
pub const PROVE_REMOVED: &str = "prove_removed";
pub(crate) const CHART_PREFIX: &str = "chart:";
pub(crate) const UNINSTALL_PREFIX: &str = "uninstall:";

/// What a step does. Stored in `steps.kind` by its snake_case name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::IntoStaticStr, sqlx::Type,
)]
#[strum(serialize_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum StepKind {
    /// The unit's CloudFormation stack (berth-aws `ensure_unit_stack`).
    EnsureStack,
    /// The unit's secrets, read back into memory only (berth-aws `read_unit_secrets`).
    ReadSecrets,
    /// The unit's Rancher project and namespace (berth-rancher `prepare_target`).
    EnsureNamespace,
    /// One Helm release of the blueprint (berth-rancher `deploy_chart`): installed, upgraded
    /// when its chart version or values differ, or left as it is.
    DeployChart,
    /// A failed change's rollback: every app the run changed back to its revision before the
    /// run, in reverse order.
    Rollback,
    /// One Helm release removed (decommission).
    UninstallChart,
    /// The unit's namespace and Rancher project removed (decommission).
    RemoveNamespace,
    /// The unit's secrets scheduled for deletion and its stack deleted (decommission).
    DeleteStack,
    /// The checks that nothing of the unit remains (decommission).
    ProveRemoved,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One step of a run as planned at enqueue time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// Unique within the run: `ensure_stack`, `read_secrets`, `ensure_namespace`, `chart:<app>`.
    pub name: String,
    pub kind: StepKind,
    /// The blueprint app of a `chart:` step.
    pub app: Option<String>,
    /// Names of the steps this one waits for.
    pub depends_on: Vec<String>,
    pub max_attempts: u32,
}

/// The steps of a run for `blueprint`, in a topological order (dependency levels of the
/// blueprint, then declaration order).
///
/// `ensure_namespace` does not wait for the AWS steps: it needs nothing from them, and taking
/// it off the critical path saves its time on every run. A chart waits for the secrets and
/// the namespace, plus the charts its app depends on (`depends_on` in the blueprint).
pub fn plan_steps(blueprint: &Blueprint, retry: &StepRetries) -> Vec<PlannedStep> {
    let mut steps = vec![
        PlannedStep {
            name: ENSURE_STACK.into(),
            kind: StepKind::EnsureStack,
            app: None,
            depends_on: vec![],
            max_attempts: retry.max_attempts,
        },
        PlannedStep {
            name: ENSURE_NAMESPACE.into(),
            kind: StepKind::EnsureNamespace,
            app: None,
            depends_on: vec![],
            max_attempts: retry.max_attempts,
        },
        PlannedStep {
            name: READ_SECRETS.into(),
            kind: StepKind::ReadSecrets,
            app: None,
            depends_on: vec![ENSURE_STACK.into()],
            max_attempts: retry.max_attempts,
        },
    ];
    for level in blueprint.levels() {
        for app in level {
            let depends_on = if app.depends_on.is_empty() {
                vec![READ_SECRETS.into(), ENSURE_NAMESPACE.into()]
            } else {
                app.depends_on.iter().map(|d| chart_step(d)).collect()
            };
            steps.push(PlannedStep {
                name: chart_step(&app.name),
                kind: StepKind::DeployChart,
                app: Some(app.name.clone()),
                depends_on,
                max_attempts: retry.chart_max_attempts,
            });
        }
    }
    steps
}

pub(crate) fn chart_step(app: &str) -> String {
    format!("{CHART_PREFIX}{app}")
}

fn uninstall_step(app: &str) -> String {
    format!("{UNINSTALL_PREFIX}{app}")
}

/// The steps of a decommission: each app uninstalled after the apps that depend on it (the
/// install order reversed), then the namespace and project, then the stack (after its secrets
/// are scheduled for deletion), then the proof that nothing remains.
pub fn decommission_steps(blueprint: &Blueprint, retry: &StepRetries) -> Vec<PlannedStep> {
    let mut steps = Vec::new();
    let mut levels = blueprint.levels();
    levels.reverse();
    for level in levels {
        for app in level {
            let depends_on = blueprint
                .apps()
                .iter()
                .filter(|other| other.depends_on.contains(&app.name))
                .map(|other| uninstall_step(&other.name))
                .collect();
            steps.push(PlannedStep {
                name: uninstall_step(&app.name),
                kind: StepKind::UninstallChart,
                app: Some(app.name.clone()),
                depends_on,
                max_attempts: retry.chart_max_attempts,
            });
        }
    }
    let uninstalls: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
    for (name, kind, depends_on) in [
        (REMOVE_NAMESPACE, StepKind::RemoveNamespace, uninstalls),
        (
            DELETE_STACK,
            StepKind::DeleteStack,
            vec![REMOVE_NAMESPACE.into()],
        ),
        (
            PROVE_REMOVED,
            StepKind::ProveRemoved,
            vec![DELETE_STACK.into()],
        ),
    ] {
        steps.push(PlannedStep {
            name: name.into(),
            kind,
            app: None,
            depends_on,
            max_attempts: retry.max_attempts,
        });
    }
    steps
}

/// The rollback step added to a failed change run (no dependencies: it runs at once).
pub fn rollback_step(retry: &StepRetries) -> PlannedStep {
    PlannedStep {
        name: ROLLBACK.into(),
        kind: StepKind::Rollback,
        app: None,
        depends_on: vec![],
        max_attempts: retry.chart_max_attempts,
    }
}

/// How a step is named to people in a blocked reason.
pub(crate) fn label(step: &str) -> String {
    match step {
        ENSURE_STACK => "the AWS stack".into(),
        READ_SECRETS => "the unit's secrets".into(),
        ENSURE_NAMESPACE => "the namespace".into(),
        ROLLBACK => "the rollback".into(),
        REMOVE_NAMESPACE => "the namespace's removal".into(),
        DELETE_STACK => "the stack's deletion".into(),
        PROVE_REMOVED => "the proof of removal".into(),
        other => match other.strip_prefix(UNINSTALL_PREFIX) {
            Some(app) => format!("{app}'s removal"),
            None => other.strip_prefix(CHART_PREFIX).unwrap_or(other).to_owned(),
        },
    }
}

/// "waiting for certs to be ready", "waiting for the unit's secrets and the namespace to be ready".
pub(crate) fn blocked_reason(waiting_for: &[&str]) -> String {
    let labels: Vec<String> = waiting_for.iter().map(|s| label(s)).collect();
    let list = match labels.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let removals = waiting_for
        .iter()
        .all(|s| s.starts_with(UNINSTALL_PREFIX) || [REMOVE_NAMESPACE, DELETE_STACK].contains(s));
    if removals {
        format!("waiting for {list} to finish")
    } else {
        format!("waiting for {list} to be ready")
    }
}

/// What a not-yet-finished step should be given the statuses of its dependencies: `None` when
/// ready to run, or the reason it is blocked.
pub(crate) fn readiness<'a>(
    depends_on: &'a [String],
    succeeded: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let waiting: Vec<&'a str> = depends_on
        .iter()
        .map(String::as_str)
        .filter(|d| !succeeded(d))
        .collect();
    if waiting.is_empty() {
        None
    } else {
        Some(blocked_reason(&waiting))
    }
}

/// Every step downstream of `failed` (transitively), for skipping.
pub(crate) fn downstream<'a>(steps: &'a [(String, Vec<String>)], failed: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let mut frontier = vec![failed.to_owned()];
    while let Some(cur) = frontier.pop() {
        for (name, deps) in steps {
            if deps.iter().any(|d| d == &cur) && !out.contains(&name.as_str()) {
                out.push(name);
                frontier.push(name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn insight() -> Blueprint {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        Blueprint::load(&root.join("blueprints/insight.yaml"), &root.join("values"))
            .expect("insight blueprint")
    }

    #[test]
    fn insight_dag() {
        let steps = plan_steps(&insight(), &StepRetries::default());
        let view: Vec<(&str, Vec<&str>)> = steps
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("ensure_stack", vec![]),
                ("ensure_namespace", vec![]),
                ("read_secrets", vec!["ensure_stack"]),
                ("chart:foundation", vec!["read_secrets", "ensure_namespace"]),
                ("chart:certs", vec!["chart:foundation"]),
                ("chart:influxdb", vec!["chart:certs"]),
                ("chart:dsm", vec!["chart:influxdb"]),
            ]
        );
        assert_eq!(steps[4].app.as_deref(), Some("certs"));
        assert_eq!(steps[4].kind, StepKind::DeployChart);
        assert_eq!(
            steps[4].max_attempts,
            StepRetries::default().chart_max_attempts
        );
    }

    #[test]
    fn decommission_dag_reverses_the_install_order() {
        let steps = decommission_steps(&insight(), &StepRetries::default());
        let view: Vec<(&str, Vec<&str>)> = steps
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("uninstall:dsm", vec![]),
                ("uninstall:influxdb", vec!["uninstall:dsm"]),
                ("uninstall:certs", vec!["uninstall:influxdb"]),
                ("uninstall:foundation", vec!["uninstall:certs"]),
                (
                    "remove_namespace",
                    vec![
                        "uninstall:dsm",
                        "uninstall:influxdb",
                        "uninstall:certs",
                        "uninstall:foundation"
                    ]
                ),
                ("delete_stack", vec!["remove_namespace"]),
                ("prove_removed", vec!["delete_stack"]),
            ]
        );
        assert_eq!(
            blocked_reason(&["uninstall:dsm"]),
            "waiting for dsm's removal to finish"
        );
    }

    #[test]
    fn kinds_are_stored_by_their_snake_case_names() {
        let kinds = [
            StepKind::EnsureStack,
            StepKind::ReadSecrets,
            StepKind::EnsureNamespace,
            StepKind::DeployChart,
        ];
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "ensure_stack",
                "read_secrets",
                "ensure_namespace",
                "deploy_chart"
            ]
        );
        assert_eq!(StepKind::DeployChart.to_string(), "deploy_chart");
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            blocked_reason(&["chart:certs"]),
            "waiting for certs to be ready"
        );
        assert_eq!(
            blocked_reason(&["read_secrets", "ensure_namespace"]),
            "waiting for the unit's secrets and the namespace to be ready"
        );
        assert_eq!(
            blocked_reason(&["ensure_stack", "chart:a", "chart:b"]),
            "waiting for the AWS stack, a and b to be ready"
        );
    }

    #[test]
    fn readiness_and_downstream() {
        let deps = vec!["chart:a".to_string(), "chart:b".to_string()];
        assert_eq!(readiness(&deps, &|_| true), None);
        assert_eq!(
            readiness(&deps, &|d| d == "chart:a").as_deref(),
            Some("waiting for b to be ready")
        );
        let steps = vec![
            ("a".to_string(), vec![]),
            ("b".to_string(), vec!["a".to_string()]),
            ("c".to_string(), vec!["b".to_string()]),
            ("d".to_string(), vec![]),
        ];
        let mut down = downstream(&steps, "a");
        down.sort();
        assert_eq!(down, vec!["b", "c"]);
        assert!(downstream(&steps, "d").is_empty());
    }
}
