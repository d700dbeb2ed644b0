//! The blueprint file format, its validation and the dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::duration::parse_duration;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlueprint {
    name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    apps: Vec<RawApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
    chart: ChartSource,
    values: String,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    readiness: Option<RawReadiness>,
    /// JSON Schema (draft 2020-12) of the values a manager may change; kept as YAML first so
    /// the properties keep their file order.
    #[serde(default)]
    overrides: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReadiness {
    #[serde(default = "default_condition")]
    condition: ReadinessCondition,
    timeout: String,
}

fn default_condition() -> ReadinessCondition {
    ReadinessCondition::Deployed
}

/// Longest readiness timeout a blueprint may ask for; Rancher's operation pods are
/// garbage-collected after about an hour, so longer waits cannot be observed reliably.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl Blueprint {
    /// Reads and validates a blueprint file; values templates are looked up in `values_dir`.
    pub fn load(path: &Path, values_dir: &Path) -> Result<Self, BlueprintError> {
        let src = std::fs::read_to_string(path).map_err(|e| BlueprintError {
            file: path.to_owned(),
            line: None,
            kind: BlueprintErrorKind::Io(e),
        })?;
        Self::parse(&src, path, values_dir)
    }

    /// Parses and validates blueprint text; `file` is only used in error messages.
    pub fn parse(src: &str, file: &Path, values_dir: &Path) -> Result<Self, BlueprintError> {
        let err = |line: Option<usize>, kind| BlueprintError {
            file: file.to_owned(),
            line,
            kind,
        };
        let raw: RawBlueprint = serde_norway::from_str(src).map_err(|e| {
            let line = e.location().map(|l| l.line());
            err(line, BlueprintErrorKind::Syntax(e.to_string()))
        })?;

        let top_line = |key: &str| top_level_key_line(src, key);
        check_label(&raw.name, "blueprint name")
            .map_err(|m| err(top_line("name"), BlueprintErrorKind::Invalid(m)))?;
        if raw.version.trim().is_empty() {
            return Err(err(
                top_line("version"),
                BlueprintErrorKind::Invalid("version must not be empty".into()),
            ));
        }
        let semver = semver::Version::parse(&raw.version).map_err(|e| {
            err(
                top_line("version"),
                BlueprintErrorKind::Invalid(format!(
                    "version {:?} must be a semantic version such as 1.0.0 ({e})",
                    raw.version
                )),
            )
        })?;
        if raw.apps.is_empty() {
            return Err(err(
                top_line("apps"),
                BlueprintErrorKind::Invalid("a blueprint needs at least one app".into()),
            ));
        }

        let mut seen = BTreeSet::new();
        let mut apps = Vec::with_capacity(raw.apps.len());
        let mut changeable = BTreeMap::new();
        for raw_app in raw.apps {
            let occurrence = seen_count(&apps, &raw_app.name);
            let line = app_line(src, &raw_app.name, occurrence);
            let fail = |kind| err(line, kind);
            if !seen.insert(raw_app.name.clone()) {
                return Err(fail(BlueprintErrorKind::DuplicateApp(raw_app.name)));
            }
            check_label(&raw_app.name, "app name")
                .map_err(|m| fail(BlueprintErrorKind::Invalid(m)))?;
            for (what, v) in [
                ("chart.repo", &raw_app.chart.repo),
                ("chart.chart", &raw_app.chart.chart),
                ("chart.version", &raw_app.chart.version),
            ] {
                if v.trim().is_empty() {
                    return Err(fail(BlueprintErrorKind::Invalid(format!(
                        "app {:?}: {what} must not be empty",
                        raw_app.name
                    ))));
                }
            }
            let template_path = safe_join(values_dir, &raw_app.values).ok_or_else(|| {
                fail(BlueprintErrorKind::Invalid(format!(
                    "app {:?}: values template {:?} must be a relative path inside the values directory",
                    raw_app.name, raw_app.values
                )))
            })?;
            if !template_path.is_file() {
                return Err(fail(BlueprintErrorKind::MissingTemplate {
                    app: raw_app.name,
                    template: raw_app.values,
                    path: template_path,
                }));
            }
            let readiness = match raw_app.readiness {
                None => Readiness::default(),
                Some(r) => {
                    let timeout = parse_duration(&r.timeout).map_err(|e| {
                        fail(BlueprintErrorKind::Invalid(format!(
                            "app {:?}: {e}",
                            raw_app.name
                        )))
                    })?;
                    if timeout.is_zero() || timeout > MAX_TIMEOUT {
                        return Err(fail(BlueprintErrorKind::Invalid(format!(
                            "app {:?}: readiness timeout must be between 1s and 1h",
                            raw_app.name
                        ))));
                    }
                    Readiness {
                        condition: r.condition,
                        timeout,
                    }
                }
            };
            if let Some(yaml) = raw_app.overrides {
                let order = property_order(&yaml);
                let schema: Value = serde_json::to_value(&yaml).map_err(|e| {
                    fail(BlueprintErrorKind::Invalid(format!(
                        "app {:?}: overrides: {e}",
                        raw_app.name
                    )))
                })?;
                let parsed = AppSchema::parse(&raw_app.name, schema, &order).map_err(|m| {
                    fail(BlueprintErrorKind::Invalid(format!(
                        "app {:?}: {m}",
                        raw_app.name
                    )))
                })?;
                changeable.insert(raw_app.name.clone(), parsed);
            }
            apps.push(App {
                name: raw_app.name,
                chart: raw_app.chart,
                values_template: raw_app.values,
                depends_on: raw_app.depends_on,
                readiness,
            });
        }

        for app in &apps {
            let mut deps = BTreeSet::new();
            for dep in &app.depends_on {
                if !seen.contains(dep) {
                    return Err(err(
                        app_line(src, &app.name, 0),
                        BlueprintErrorKind::UnknownDependency {
                            app: app.name.clone(),
                            dependency: dep.clone(),
                        },
                    ));
                }
                if !deps.insert(dep) {
                    return Err(err(
                        app_line(src, &app.name, 0),
                        BlueprintErrorKind::Invalid(format!(
                            "app {:?} lists {dep:?} twice in depends_on",
                            app.name
                        )),
                    ));
                }
            }
        }

        if let Some(cycle) = find_cycle(&apps) {
            return Err(err(
                app_line(src, &cycle[0], 0),
                BlueprintErrorKind::Cycle(cycle),
            ));
        }

        Ok(Blueprint {
            name: raw.name,
            version: raw.version,
            description: raw.description,
            apps,
            changeable,
            semver,
            source: file.to_owned(),
            text: src.to_owned(),
        })
    }

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

/// The keys of `properties` in the order the YAML lists them (serde_json sorts them).
fn property_order(schema: &serde_norway::Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(serde_norway::Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many apps named `name` were already accepted (0 for the first occurrence).
fn seen_count(apps: &[App], name: &str) -> usize {
    apps.iter().filter(|a| a.name == name).count()
}

fn find_cycle(apps: &[App]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let index: BTreeMap<&str, usize> = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut marks = vec![Mark::New; apps.len()];
    let mut stack: Vec<usize> = Vec::new();

    fn visit(
        i: usize,
        apps: &[App],
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        marks[i] = Mark::Active;
        stack.push(i);
        for dep in &apps[i].depends_on {
            let j = index[dep.as_str()];
            match marks[j] {
                Mark::Active => {
                    let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[start..]
                        .iter()
                        .map(|&k| apps[k].name.clone())
                        .collect();
                    cycle.push(apps[j].name.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(j, apps, index, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
        None
    }

    for i in 0..apps.len() {
        if marks[i] == Mark::New {
            if let Some(c) = visit(i, apps, &index, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// DNS-1123 label of at most 53 characters (Helm's release-name limit).
fn check_label(name: &str, what: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 53
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} must be 1-53 lowercase letters, digits or '-', not starting or ending with '-'"
        ))
    }
}

/// Joins a relative template name onto `dir`, refusing absolute paths and `..`.
fn safe_join(dir: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dir.join(rel))
}

/// 1-based line of a top-level `key:`.
fn top_level_key_line(src: &str, key: &str) -> Option<usize> {
    src.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

/// 1-based line of the `name:` entry of the `occurrence`-th app called `name` in the block-style
/// `apps:` list. serde gives no positions for valid values, so semantic errors locate the app by
/// scanning the text; `None` for layouts this does not recognise (e.g. flow style).
fn app_line(src: &str, name: &str, occurrence: usize) -> Option<usize> {
    let mut in_apps = false;
    let mut found = 0;
    for (i, line) in src.lines().enumerate() {
        let starts_top_level = !line.is_empty() && !line.starts_with([' ', '\t', '#', '-']);
        if starts_top_level {
            in_apps = line
                .strip_prefix("apps")
                .is_some_and(|r| r.trim_start().starts_with(':'));
            continue;
        }
        if !in_apps {
            continue;
        }
        let item = line.trim_start();
        let item = item.strip_prefix('-').map(str::trim_start).unwrap_or(item);
        if let Some(value) = item.strip_prefix("name:") {
            let parsed: Option<String> = serde_norway::from_str(value.trim()).ok();
            if parsed.as_deref() == Some(name) {
                if found == occurrence {
                    return Some(i + 1);
                }
                found += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
