//! Berth's Rancher client and the "deploy blueprint" stage.
//!
//! Follows `../shared/docs/rancher-contract.md`: a Bearer API token (never logged, never in
//! `Debug`), a User-Agent that is never a browser's, v3 for projects and namespaces and Apps &
//! Marketplace (`/k8s/clusters/<id>/v1`) for Helm charts. Every request has a timeout; 429, 5xx
//! and timeouts are retried with exponential backoff and jitter (honouring `Retry-After`), 4xx
//! never. Helm actions are never blindly repeated: after an uncertain outcome the client looks at
//! the release and its operations again.

mod apps;
mod client;
mod deploy;
mod error;
mod http;
mod legacy;
mod modes;
mod operations;
mod projects;
mod quantity;
mod repos;
mod secrets;
mod wire;

pub use apps::{
    rollback_description, AppStatus, ChartAction, ChartOutcome, ChartSpec, HelmStatus,
    ReleaseRevision, Target, UninstallOutcome,
};
pub use client::{
    Cluster, ClusterCapacity, RancherClient, RancherConfig, User, DEFAULT_USER_AGENT,
};
pub use deploy::{
    deploy_blueprint, deploy_blueprint_legacy, prepare_target, verify_charts, AppOutcome,
    AppReport, DeployEvent, DeployPlan, DeployReport, MissingChart, PlanError, PlannedApp,
    PreparedTarget, TargetSpec,
};
pub use error::{ApiFamily, RancherError};
pub use http::{ApiToken, HttpRetries};
pub use legacy::{CatalogScope, LegacyAppStatus, LegacyCatalog};
pub use modes::{AppsMode, ReleaseState, UnitRemains};
pub use operations::OperationState;
pub use projects::{Namespace, Project};
pub use quantity::{format_cpu, format_memory, parse_cpu, parse_memory, QuantityError};
pub use secrets::{KubeSecret, SecretOutcome, SecretType};
