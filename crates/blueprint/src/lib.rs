//! Blueprints and values rendering for Berth's Rancher stage.
//!
//! A *blueprint* (`templates/blueprints/<name>.yaml`) is a versioned manifest of the Helm charts an
//! environment is made of, with the order they must be installed in. Each app names a values
//! template (`templates/values/<app>.yaml.j2`) rendered with minijinja from the unit's inputs, the
//! secrets read back by the AWS stage and facts about the target cluster.
//!
//! This crate is UI-free and does no I/O beyond reading the template files, so the engine can
//! validate and preview a deployment without touching Rancher.

mod duration;
mod model;
mod overrides;
mod render;
mod templates;
pub mod yaml;

pub use duration::{format_go_duration, parse_duration, DurationError};
pub use model::{
    App, Blueprint, BlueprintError, BlueprintErrorKind, ChartSource, Readiness, ReadinessCondition,
};
pub use overrides::{
    ChangeableField, FieldDefault, FieldKind, OverrideError, Overrides, DEFAULT_BY_SIZE_KEYWORD,
    ERROR_KEYWORD,
};
pub use render::{
    ClusterFacts, NamespaceQuota, RenderContext, RenderError, RenderMode, RenderedApp,
    RenderedValues, Secret, Secrets, UnitInputs, ValuesRenderer, REDACTED,
};
pub use templates::{Templates, TemplatesError};
