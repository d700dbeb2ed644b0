//! The blueprint file format and the dependency order; reading and validating a file is in
//! `load.rs`.

mod load;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::overrides::{AppSchema, ChangeableField, OverrideError, Overrides};

/// A validated blueprint: apps with unique names, known dependencies, no cycles, and a values
/// template that exists for every app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blueprint {
    name: String,
    version: String,
    description: Option<String>,
    apps: Vec<App>,
    /// The `overrides:` schema of each app that declares changeable values.
    changeable: BTreeMap<String, AppSchema>,
    /// `version`, parsed: blueprints are ordered by semantic version.
    semver: semver::Version,
    source: PathBuf,
    /// The file's text, so a plan can fingerprint exactly what it was made from.
    text: String,
}

/// One Helm release of a blueprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Helm release name (a DNS-1123 label), unique within the blueprint.
    pub name: String,
    pub chart: ChartSource,
    /// File name of the values template, relative to the values directory.
    pub values_template: String,
    /// Apps that must be ready before this one is installed.
    pub depends_on: Vec<String>,
    pub readiness: Readiness,
}

/// Where a chart comes from: a Rancher cluster repo, a chart in it and an exact version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSource {
    pub repo: String,
    pub chart: String,
    pub version: String,
}

/// When an app counts as ready, and how long to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub condition: ReadinessCondition,
    pub timeout: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            condition: ReadinessCondition::Deployed,
            timeout: Duration::from_secs(600),
        }
    }
}

/// Readiness conditions, mapped onto Helm's `--wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessCondition {
    /// Helm ran with `--wait`: the release is `deployed` at the expected chart version only once
    /// its workloads are ready. The default, and what "B waits for A" needs.
    Deployed,
    /// Manifests applied (`deployed` without `--wait`); for apps nothing depends on being up.
    Applied,
}

impl ReadinessCondition {
    /// Whether Helm must be asked to wait for the workloads.
    pub fn wait(self) -> bool {
        matches!(self, ReadinessCondition::Deployed)
    }
}

/// A blueprint that could not be loaded, with the file and (when known) line it concerns.
#[derive(Debug, thiserror::Error)]
pub struct BlueprintError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub kind: BlueprintErrorKind,
}

impl fmt::Display for BlueprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.kind),
            None => write!(f, "{}: {}", self.file.display(), self.kind),
        }
    }
}

/// What is wrong with a blueprint.
#[derive(Debug, thiserror::Error)]
pub enum BlueprintErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[source] std::io::Error),
    /// Invalid YAML, an unknown key, a missing field or a value of the wrong type.
    #[error("{0}")]
    Syntax(String),
    #[error("app {0:?} is declared more than once")]
    DuplicateApp(String),
    #[error("app {app:?} depends on {dependency:?}, which is not an app of this blueprint")]
    UnknownDependency { app: String, dependency: String },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("app {app:?}: values template {template:?} not found at {}", path.display())]
    MissingTemplate {
        app: String,
        template: String,
        path: PathBuf,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Blueprint {
    /// The blueprint file's text as loaded.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file the blueprint was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Apps in file order.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// Dependency levels: every app's dependencies are in earlier levels, so the apps of one
    /// level may be installed concurrently. Within a level, apps keep their file order.
    pub fn levels(&self) -> Vec<Vec<&App>> {
        let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
        let mut levels: Vec<Vec<&App>> = Vec::new();
        while placed.len() < self.apps.len() {
            let level_no = levels.len();
            let level: Vec<&App> = self
                .apps
                .iter()
                .filter(|a| !placed.contains_key(a.name.as_str()))
                .filter(|a| {
                    a.depends_on
                        .iter()
                        .all(|d| placed.get(d.as_str()).is_some_and(|&l| l < level_no))
                })
                .collect();
            // Validation guarantees the graph is acyclic, so every round places an app.
            assert!(!level.is_empty(), "blueprint dependency graph has a cycle");
            for a in &level {
                placed.insert(&a.name, level_no);
            }
            levels.push(level);
        }
        levels
    }

    /// A topological install order (levels flattened).
    pub fn install_order(&self) -> Vec<&App> {
        self.levels().into_iter().flatten().collect()
    }

    /// `version` as a semantic version (what [`crate::Templates`] orders versions by).
    pub(crate) fn semver(&self) -> &semver::Version {
        &self.semver
    }

    /// Every value a manager may change, app by app in file order, each app's values in the
    /// order its `overrides:` schema lists them.
    pub fn changeable(&self) -> Vec<ChangeableField> {
        self.apps
            .iter()
            .filter_map(|a| self.changeable.get(&a.name))
            .flat_map(|s| s.fields.iter().cloned())
            .collect()
    }

    /// Checks a manager's overrides (`{"<app>": {"<key>": value}}`, or `null` for none) against
    /// the apps' schemas. On success, the overrides without empty apps; otherwise every problem,
    /// each naming its form field (`overrides.influxdb.retention`) with a sentence for people.
    pub fn validate_overrides(&self, overrides: &Value) -> Result<Overrides, Vec<OverrideError>> {
        let given = match overrides {
            Value::Null => return Ok(Overrides::default()),
            Value::Object(m) => m,
            _ => {
                return Err(vec![OverrideError {
                    field: "overrides".into(),
                    message: "Give the changes per app, e.g. {\"dsm\": {\"replicas\": 2}}.".into(),
                }])
            }
        };
        let mut out = Overrides::default();
        let mut errors = Vec::new();
        for (app, value) in given {
            let field = format!("overrides.{app}");
            if self.app(app).is_none() {
                errors.push(OverrideError {
                    field,
                    message: format!("{} has no app '{app}'.", self.name),
                });
                continue;
            }
            let Some(schema) = self.changeable.get(app) else {
                errors.push(OverrideError {
                    field,
                    message: format!("{app} has no changeable values."),
                });
                continue;
            };
            match schema.validate(app, value) {
                Ok(values) if values.is_empty() => {}
                Ok(values) => {
                    out.0.insert(app.clone(), values);
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// What the values templates see as `values`: for every app, each changeable value the
    /// manager overrode, or else its default for a unit of `size` (values whose default is the
    /// chart's own are left out unless overridden). Apps without changeable values map to `{}`.
    /// `overrides` is taken as given: check it with [`Blueprint::validate_overrides`] first.
    pub fn effective_values(
        &self,
        overrides: &Overrides,
        size: &str,
    ) -> BTreeMap<String, Map<String, Value>> {
        self.apps
            .iter()
            .map(|app| {
                let mut values = Map::new();
                for f in self
                    .changeable
                    .get(&app.name)
                    .map(|s| s.fields.as_slice())
                    .unwrap_or_default()
                {
                    let chosen = overrides
                        .get(&app.name, &f.key)
                        .or_else(|| f.default.for_size(size));
                    if let Some(v) = chosen {
                        values.insert(f.key.clone(), v.clone());
                    }
                }
                (app.name.clone(), values)
            })
            .collect()
    }
}
