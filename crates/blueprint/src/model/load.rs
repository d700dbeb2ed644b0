//! Reading a blueprint file: parsing, then every check that makes it a [`Blueprint`] (labels,
//! unique apps, known dependencies, no cycles, templates that exist, sane readiness timeouts),
//! with the line each error concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{
    App, Blueprint, BlueprintError, BlueprintErrorKind, ChartSource, Readiness, ReadinessCondition,
};
use crate::duration::parse_duration;
use crate::overrides::AppSchema;

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
