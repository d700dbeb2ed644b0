//! Typed errors for every error shape of the Rancher contract (§2) and for Helm outcomes.

use std::time::Duration;

use serde_json::Value;

/// Which Rancher API produced a JSON error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    /// `/v3` (has `baseType`).
    Norman,
    /// `/v1` and `/k8s/clusters/<id>/v1`.
    Steve,
    /// The Kubernetes API behind Rancher's proxy (`/k8s/clusters/<id>/api/v1`): a `Status`
    /// object whose `reason` is the code.
    Kubernetes,
}

impl std::fmt::Display for ApiFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApiFamily::Norman => "v3",
            ApiFamily::Steve => "v1",
            ApiFamily::Kubernetes => "Kubernetes",
        })
    }
}

/// Everything that can go wrong talking to Rancher. Messages never contain the API token.
#[derive(Debug, thiserror::Error)]
pub enum RancherError {
    /// The auth filter refused the token (missing, wrong or expired): 401 with a string `status`.
    #[error("Rancher refused the API token (401): {message}")]
    Unauthorized { message: String },
    /// The cluster proxy answered 401 with an empty body: the key has no access to this cluster
    /// (e.g. a key scoped to another cluster).
    #[error(
        "the API token has no access to the cluster behind {path} (401 from the cluster proxy)"
    )]
    ClusterAccessDenied { path: String },
    /// A Norman or Steve error body.
    #[error("Rancher {family} API error on {path}: {status} {code}: {message}")]
    Api {
        family: ApiFamily,
        path: String,
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// A plain-text 5xx from the cluster proxy: the agent tunnel to the cluster is down.
    #[error("cluster agent unreachable ({status} on {path}): {message}")]
    ClusterUnreachable {
        path: String,
        status: u16,
        message: String,
    },
    /// 429 on every attempt.
    #[error("Rancher kept rate-limiting {path} (429) after {attempts} attempts")]
    RateLimited { path: String, attempts: u32 },
    /// No answer within the per-request timeout, on every attempt (or once, for a request that
    /// must not be blindly repeated).
    #[error("request to {path} timed out after {attempts} attempt(s)")]
    Timeout { path: String, attempts: u32 },
    /// Connection-level failure (refused, reset, TLS).
    #[error("cannot reach Rancher at {path}: {source}")]
    Transport {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// Any other non-success answer.
    #[error("unexpected HTTP {status} from Rancher on {path}: {body}")]
    Unexpected {
        path: String,
        status: u16,
        body: String,
    },
    #[error("cannot decode Rancher's answer to {path}: {message}")]
    Decode { path: String, message: String },
    #[error("invalid Rancher client configuration: {0}")]
    Config(String),
    #[error("cluster {0:?} not found in Rancher")]
    ClusterNotFound(String),
    /// The cluster object has no usable `allocatable` value: missing (a cluster still
    /// registering reports none) or not a Kubernetes quantity.
    #[error("cluster {cluster} reports no usable {field}: {reason}")]
    CapacityUnavailable {
        /// `name (id)`.
        cluster: String,
        /// e.g. `allocatable.memory`.
        field: String,
        reason: String,
    },
    /// The cluster repo reports `Downloaded=False` (or never finishes downloading).
    #[error("cluster repo {repo} is not ready: {message}")]
    RepoNotReady { repo: String, message: String },
    /// The Helm operation failed (`Stalled=True`); `message` is Helm's own error text.
    #[error("helm {action} of {release} failed (operation {operation}): {message}")]
    OperationFailed {
        release: String,
        action: String,
        operation: String,
        message: String,
    },
    /// The release reads `failed` after the operation.
    #[error("release {release} is {status}: {description}")]
    ReleaseFailed {
        release: String,
        status: String,
        description: String,
    },
    /// The release is stuck `pending-*` with no operation running: Helm will refuse every further
    /// action ("another operation is in progress") until someone rolls it back or uninstalls it.
    #[error(
        "release {release} is stuck in {status} with no operation running; it needs a manual \
         `helm rollback` or uninstall before Berth can change it"
    )]
    ReleaseStuck { release: String, status: String },
    /// A rollback named a revision the release's history does not have.
    #[error(
        "release {release} has no revision {revision} to roll back to (it has: {available:?})"
    )]
    RevisionNotFound {
        release: String,
        revision: String,
        available: Vec<String>,
    },
    /// A wait of our own ran out (operation pod stuck `Pending`, app never ready, …).
    #[error("gave up after {waited:?} waiting for {what}")]
    Deadline { what: String, waited: Duration },
}

impl RancherError {
    /// HTTP status of an API error, when there is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RancherError::Api { status, .. }
            | RancherError::ClusterUnreachable { status, .. }
            | RancherError::Unexpected { status, .. } => Some(*status),
            RancherError::Unauthorized { .. } | RancherError::ClusterAccessDenied { .. } => {
                Some(401)
            }
            RancherError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// The Rancher error `code` (`NotFound`, `AlreadyExists`, …) of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            RancherError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether a later attempt of the whole step may succeed (for the engine's retry policy):
    /// transient transport and server conditions, not refusals or Helm failures.
    pub fn is_transient(&self) -> bool {
        match self {
            RancherError::Timeout { .. }
            | RancherError::Transport { .. }
            | RancherError::RateLimited { .. }
            | RancherError::ClusterUnreachable { .. } => true,
            // 502/503/504: the server was not in a state to answer; a JSON 500 is a decision.
            RancherError::Api { status, .. } => *status > 500,
            _ => false,
        }
    }
}

/// Turns a non-success answer into the matching error shape.
pub(crate) fn parse_error_body(path: &str, status: u16, body: &[u8]) -> RancherError {
    let path = path.to_owned();
    if body.iter().all(u8::is_ascii_whitespace) {
        if status == 401 {
            return RancherError::ClusterAccessDenied { path };
        }
        return RancherError::Unexpected {
            path,
            status,
            body: String::new(),
        };
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if v.get("kind").and_then(Value::as_str) == Some("Status") {
            let text = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            return RancherError::Api {
                family: ApiFamily::Kubernetes,
                path,
                status,
                code: text("reason"),
                message: truncate(&text("message"), 500),
                field: None,
            };
        }
        if v.get("type").and_then(Value::as_str) == Some("error") {
            let message = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let code = v
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            // The auth filter's body has a string status and no code.
            if status == 401
                && (v.get("status").is_some_and(Value::is_string) || code == "Unauthorized")
            {
                return RancherError::Unauthorized { message };
            }
            let family = if v.get("baseType").is_some() {
                ApiFamily::Norman
            } else {
                ApiFamily::Steve
            };
            return RancherError::Api {
                family,
                path,
                status,
                code,
                message,
                field: v
                    .get("fieldName")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
        }
    }
    let text = truncate(&String::from_utf8_lossy(body), 500);
    if status >= 500 {
        RancherError::ClusterUnreachable {
            path,
            status,
            message: text,
        }
    } else {
        RancherError::Unexpected {
            path,
            status,
            body: text,
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_shapes() {
        let auth =
            br#"{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}"#;
        assert!(
            matches!(parse_error_body("/v3/users", 401, auth), RancherError::Unauthorized { message } if message.contains("must authenticate"))
        );

        let norman = br#"{"baseType":"error","type":"error","status":422,"code":"MissingRequired","message":"Field name is required","fieldName":"name"}"#;
        match parse_error_body("/v3/projects", 422, norman) {
            RancherError::Api {
                family,
                code,
                field,
                status,
                ..
            } => {
                assert_eq!(
                    (family, code.as_str(), field.as_deref(), status),
                    (ApiFamily::Norman, "MissingRequired", Some("name"), 422)
                );
            }
            other => panic!("{other:?}"),
        }

        let steve = br#"{"type":"error","links":{},"status":404,"code":"NotFound","message":"x not found"}"#;
        let e = parse_error_body("/v1/x", 404, steve);
        assert!(matches!(
            e,
            RancherError::Api {
                family: ApiFamily::Steve,
                ..
            }
        ));
        assert!(e.is_not_found());

        assert!(matches!(
            parse_error_body("/k8s/clusters/c/v1/x", 401, b""),
            RancherError::ClusterAccessDenied { .. }
        ));
        let e = parse_error_body(
            "/k8s/clusters/c/v1/x",
            500,
            b"dial tcp 10.0.0.1:443: connect: connection refused",
        );
        assert!(
            matches!(e, RancherError::ClusterUnreachable { status: 500, ref message, .. } if message.contains("connection refused"))
        );
        assert!(e.is_transient());
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate(" ok ", 10), "ok");
    }
}
