//! Rendering Helm values overrides from minijinja templates.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, Error as JinjaError, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value as Json;

use crate::model::{App, Blueprint};
use crate::overrides::{OverrideError, Overrides};
use crate::yaml;

/// What every secret is replaced with in a preview.
pub const REDACTED: &str = "[redacted]";

/// A secret value (a password, a key). `Debug` and `Display` never show it; its memory is
/// zeroed on drop ([`secrecy::SecretString`]).
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(secrecy::SecretString::from(value.into()))
    }

    /// The secret itself; call only where it is handed to its consumer.
    pub fn expose_secret(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The secrets of a unit by name (as read back from the AWS stage). `Debug` lists names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(BTreeMap<String, Secret>);

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Secret>) {
        self.0.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of a secret value in `text` with [`REDACTED`] (for error
    /// messages that might quote rendered output).
    pub fn redact_text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        // Longest first, so a secret containing another is redacted whole.
        let mut values: Vec<&str> = self
            .0
            .values()
            .map(Secret::expose_secret)
            .filter(|s| !s.is_empty())
            .collect();
        values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for v in values {
            out = out.replace(v, REDACTED);
        }
        out
    }
}

impl<K: Into<String>, V: Into<Secret>> FromIterator<(K, V)> for Secrets {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, REDACTED)))
            .finish()
    }
}

/// What the division manager asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitInputs {
    /// Company display name, e.g. `SeaView`.
    pub company: String,
    /// Business unit display name, e.g. `California charging stations`.
    pub name: String,
    /// DNS-safe slug of the unit, e.g. `california-charging`.
    pub slug: String,
    /// Size class (`small`, `medium`, `large`).
    pub size: String,
    /// The namespace's quota and container defaults for that size (`unit.quota.*`), from the
    /// domain's one table, so what the plan shows is what the charts get.
    pub quota: NamespaceQuota,
}

impl UnitInputs {
    pub fn new(
        company: impl Into<String>,
        name: impl Into<String>,
        slug: impl Into<String>,
        size: berth_domain::Size,
    ) -> Self {
        Self {
            company: company.into(),
            name: name.into(),
            slug: slug.into(),
            size: size.as_str().to_owned(),
            quota: NamespaceQuota::of(size),
        }
    }
}

/// `unit.quota` in values templates: Kubernetes quantities of [`berth_domain::Size::quota`]
/// and [`berth_domain::Size::limit_range`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceQuota {
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub default_request_cpu: String,
    pub default_request_memory: String,
    pub default_limit_cpu: String,
    pub default_limit_memory: String,
}

impl NamespaceQuota {
    pub fn of(size: berth_domain::Size) -> Self {
        let q = size.quota();
        let lr = size.limit_range();
        Self {
            cpu: q.cpu_quantity(),
            memory: q.memory_quantity(),
            pods: q.pods,
            default_request_cpu: lr.default_request.cpu_quantity(),
            default_request_memory: lr.default_request.memory_quantity(),
            default_limit_cpu: lr.default_limit.cpu_quantity(),
            default_limit_memory: lr.default_limit.memory_quantity(),
        }
    }
}

/// Where the environment is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterFacts {
    pub cluster_id: String,
    pub namespace: String,
    /// Base DNS domain of the cluster's ingress, e.g. `apps.seaview.example`.
    pub domain: String,
}

/// Everything a values template can see: `unit.*`, `secrets.*`, `cluster.*` (and, when rendering a
/// blueprint, `app.*`, `blueprint.*` and `values.<app>.<key>`, the changeable values with
/// overrides applied: see [`ValuesRenderer::render_blueprint_with_overrides`]).
#[derive(Debug, Clone)]
pub struct RenderContext {
    pub unit: UnitInputs,
    pub secrets: Secrets,
    pub cluster: ClusterFacts,
}

/// Real values (for Rancher) or a preview for people, with every secret redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderMode {
    Real,
    Preview,
}

/// One rendered values file. In [`RenderMode::Real`] it holds secrets, so `Debug` hides the
/// content.
#[derive(Clone, PartialEq)]
pub struct RenderedValues {
    pub template: String,
    pub mode: RenderMode,
    /// The YAML text as rendered.
    pub yaml: String,
    /// The same, parsed: always a mapping. This is what is sent to Helm as `values`.
    pub values: Json,
}

impl fmt::Debug for RenderedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RenderedValues");
        d.field("template", &self.template)
            .field("mode", &self.mode);
        match self.mode {
            RenderMode::Preview => d.field("yaml", &self.yaml).finish(),
            RenderMode::Real => d.finish_non_exhaustive(),
        }
    }
}

/// The rendered values of one app of a blueprint.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedApp {
    pub app: App,
    pub values: RenderedValues,
}

/// A values template that could not be rendered. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read values templates in {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown values template {0:?}")]
    UnknownTemplate(String),
    /// A template error (syntax, undefined variable, bad filter argument) with its location.
    #[error("values template {template}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        template: String,
        line: Option<usize>,
        message: String,
    },
    #[error("values template {template} rendered invalid YAML{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    InvalidYaml {
        template: String,
        line: Option<usize>,
        message: String,
    },
    #[error("values template {template} must render a YAML mapping, got {found}")]
    NotAMapping {
        template: String,
        found: &'static str,
    },
    /// Overrides the blueprint's schemas refuse (e.g. saved for another version of it).
    #[error("overrides refused by blueprint {blueprint} {version}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Overrides {
        blueprint: String,
        version: String,
        errors: Vec<OverrideError>,
    },
}

/// The values templates of a directory, compiled once.
pub struct ValuesRenderer {
    env: Environment<'static>,
    dir: PathBuf,
    /// Each template's text, for the fingerprints plans are bound by.
    sources: BTreeMap<String, String>,
}

impl fmt::Debug for ValuesRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValuesRenderer")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ValuesRenderer {
    /// Loads and compiles every `*.j2` file in `dir` (syntax errors are reported here).
    pub fn from_dir(dir: &Path) -> Result<Self, RenderError> {
        let io = |source| RenderError::Io {
            dir: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".j2") && entry.file_type().map_err(io)?.is_file() {
                files.push((name, std::fs::read_to_string(entry.path()).map_err(io)?));
            }
        }
        let mut renderer = Self::from_sources(files)?;
        renderer.dir = dir.to_owned();
        Ok(renderer)
    }

    /// Compiles templates given as `(name, source)` pairs.
    pub fn from_sources<I, N, S>(sources: I) -> Result<Self, RenderError>
    where
        I: IntoIterator<Item = (N, S)>,
        N: Into<String>,
        S: Into<String>,
    {
        let mut env = new_environment();
        let mut texts = BTreeMap::new();
        for (name, src) in sources {
            let name = name.into();
            let src = src.into();
            texts.insert(name.clone(), src.clone());
            env.add_template_owned(name.clone(), src)
                .map_err(|e| template_error(&name, &e))?;
        }
        Ok(Self {
            env,
            dir: PathBuf::new(),
            sources: texts,
        })
    }

    /// A loaded template's text (for fingerprints), `None` when there is no such template.
    pub fn template_source(&self, name: &str) -> Option<&str> {
        self.sources.get(name).map(String::as_str)
    }

    /// Names of the loaded templates.
    pub fn template_names(&self) -> Vec<String> {
        self.env.templates().map(|(n, _)| n.to_owned()).collect()
    }

    /// Renders one template with the unit/secrets/cluster context.
    pub fn render(
        &self,
        template: &str,
        ctx: &RenderContext,
        mode: RenderMode,
    ) -> Result<RenderedValues, RenderError> {
        self.render_with(template, ctx, mode, BTreeMap::new())
    }

    /// Renders the values of every app of `blueprint`, in install order, with no overrides:
    /// every changeable value at its default.
    pub fn render_blueprint(
        &self,
        blueprint: &Blueprint,
        ctx: &RenderContext,
        mode: RenderMode,
    ) -> Result<Vec<RenderedApp>, RenderError> {
        self.render_blueprint_with_overrides(blueprint, ctx, &Overrides::default(), mode)
    }

    /// Renders the values of every app of `blueprint`, in install order. Templates see
    /// `values.<app>.<key>`: the override when there is one, the blueprint's default for the
    /// unit's size otherwise ([`Blueprint::effective_values`]). Overrides the blueprint refuses
    /// fail with [`RenderError::Overrides`] before anything is rendered.
    pub fn render_blueprint_with_overrides(
        &self,
        blueprint: &Blueprint,
        ctx: &RenderContext,
        overrides: &Overrides,
        mode: RenderMode,
    ) -> Result<Vec<RenderedApp>, RenderError> {
        if !overrides.is_empty() {
            blueprint
                .validate_overrides(&overrides.to_json())
                .map_err(|errors| RenderError::Overrides {
                    blueprint: blueprint.name().to_owned(),
                    version: blueprint.version().to_owned(),
                    errors,
                })?;
        }
        let values = Value::from(Serde(blueprint.effective_values(overrides, &ctx.unit.size)));
        blueprint
            .install_order()
            .into_iter()
            .map(|app| {
                let mut extra = BTreeMap::new();
                extra.insert("values", values.clone());
                extra.insert(
                    "app",
                    Value::from(Serde(serde_json::json!({
                        "name": app.name,
                        "chart": app.chart.chart,
                        "version": app.chart.version,
                        "repo": app.chart.repo,
                    }))),
                );
                extra.insert(
                    "blueprint",
                    Value::from(Serde(serde_json::json!({
                        "name": blueprint.name(),
                        "version": blueprint.version(),
                    }))),
                );
                let values = self.render_with(&app.values_template, ctx, mode, extra)?;
                Ok(RenderedApp {
                    app: app.clone(),
                    values,
                })
            })
            .collect()
    }

    fn render_with(
        &self,
        template: &str,
        ctx: &RenderContext,
        mode: RenderMode,
        extra: BTreeMap<&'static str, Value>,
    ) -> Result<RenderedValues, RenderError> {
        let tmpl = self
            .env
            .get_template(template)
            .map_err(|_| RenderError::UnknownTemplate(template.to_owned()))?;
        let secrets: BTreeMap<&str, &str> = ctx
            .secrets
            .0
            .iter()
            .map(|(k, v)| {
                let shown = match mode {
                    RenderMode::Real => v.expose_secret(),
                    RenderMode::Preview => REDACTED,
                };
                (k.as_str(), shown)
            })
            .collect();
        let mut root: BTreeMap<&str, Value> = extra;
        root.insert("unit", Value::from(Serde(&ctx.unit)));
        root.insert("cluster", Value::from(Serde(&ctx.cluster)));
        root.insert("secrets", Value::from(Serde(&secrets)));

        let redact = |text: String| match mode {
            RenderMode::Real => ctx.secrets.redact_text(&text),
            RenderMode::Preview => text,
        };
        let text =
            tmpl.render(Value::from(root))
                .map_err(|e| match template_error(template, &e) {
                    RenderError::Template {
                        template,
                        line,
                        message,
                    } => RenderError::Template {
                        template,
                        line,
                        message: redact(message),
                    },
                    other => other,
                })?;
        let values: Json = if text.trim().is_empty() {
            Json::Object(Default::default())
        } else {
            serde_norway::from_str(&text).map_err(|e| RenderError::InvalidYaml {
                template: template.to_owned(),
                line: e.location().map(|l| l.line()),
                message: redact(e.to_string()),
            })?
        };
        let values = match values {
            Json::Object(_) => values,
            Json::Null => Json::Object(Default::default()),
            other => {
                return Err(RenderError::NotAMapping {
                    template: template.to_owned(),
                    found: json_kind(&other),
                })
            }
        };
        Ok(RenderedValues {
            template: template.to_owned(),
            mode,
            yaml: text,
            values,
        })
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a sequence",
        Json::Object(_) => "a mapping",
    }
}

fn template_error(template: &str, e: &JinjaError) -> RenderError {
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    RenderError::Template {
        template: e.name().unwrap_or(template).to_owned(),
        line: e.line(),
        message,
    }
}

/// A strict environment whose every `{{ … }}` output is a YAML-safe flow node.
fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("static syntax config is valid"),
    );
    env.add_filter("toyaml", toyaml);
    env.add_filter("yaml", toyaml);
    env.set_formatter(|out, _state, value| {
        let text = if value.is_safe() {
            value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string())
        } else {
            emit(value)?
        };
        out.write_str(&text).map_err(JinjaError::from)
    });
    env
}

/// `{{ x | toyaml }}` (alias `yaml`): the value as a YAML flow node. Printing a value without the
/// filter does the same; the filter documents intent and marks the output as already safe.
fn toyaml(value: Value) -> Result<Value, JinjaError> {
    if value.is_safe() {
        return Ok(value);
    }
    Ok(Value::from_safe_string(emit(&value)?))
}

fn emit(value: &Value) -> Result<String, JinjaError> {
    if value.is_undefined() {
        return Err(JinjaError::new(
            ErrorKind::UndefinedError,
            "undefined value passed to toyaml",
        ));
    }
    let json = serde_json::to_value(value).map_err(|e| {
        JinjaError::new(
            ErrorKind::BadSerialization,
            format!("cannot emit as YAML: {e}"),
        )
    })?;
    Ok(yaml::to_flow_yaml(&json))
}
