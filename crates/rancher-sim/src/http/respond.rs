//! Rancher's response shapes (contract §2): the four error bodies, collections, timestamps.

use std::time::SystemTime;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Steve type names of the Apps & Marketplace resources.
pub const REPO_T: &str = "catalog.cattle.io.clusterrepo";
pub const APP_T: &str = "catalog.cattle.io.app";
pub const OP_T: &str = "catalog.cattle.io.operation";

pub fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The auth filter's 401: `status` is a string.
pub fn auth_401() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"}),
    )
}

/// The cluster proxy's 401 when the key has no access to the cluster: an empty body.
pub fn proxy_401() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}

/// The cluster proxy's 500 when the agent tunnel is down: plain text.
pub fn tunnel_down(cluster: &str) -> Response {
    let mut resp = (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("dial tcp 10.43.0.1:443: connect: connection refused (cluster {cluster} agent disconnected)"),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub fn norman_error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    field: Option<&str>,
) -> Response {
    let mut body = json!({
        "baseType": "error", "type": "error", "status": status.as_u16(), "code": code, "message": message.into(),
    });
    if let Some(f) = field {
        body["fieldName"] = json!(f);
    }
    json_response(status, body)
}

/// Norman's 405 for a method a resource does not take.
pub fn norman_method_not_allowed() -> Response {
    norman_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "method not allowed",
        None,
    )
}

/// A Norman request's JSON body, or the 422 Rancher answers when it is not JSON.
pub fn norman_body(req: &super::request::Req) -> Result<Value, Box<Response>> {
    req.body_json().map_err(|e| {
        Box::new(norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidBodyContent",
            e,
            None,
        ))
    })
}

pub fn steve_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        json!({"type": "error", "links": {}, "status": status.as_u16(), "code": code, "message": message.into()}),
    )
}

pub fn collection(resource_type: &str, self_link: String, data: Vec<Value>) -> Value {
    json!({
        "type": "collection", "resourceType": resource_type, "links": {"self": self_link},
        "actions": {}, "pagination": {"limit": 1000, "total": data.len()}, "data": data,
    })
}

/// Lower-case, singular form of a type name (`Projects` → `project`).
pub fn norm_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    t.strip_suffix('s').map(str::to_owned).unwrap_or(t)
}

/// RFC 3339 timestamp (UTC, whole seconds) for `created` and `metadata.creationTimestamp`.
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_formats_epoch_and_leap_day() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
        let with_nanos = SystemTime::UNIX_EPOCH + Duration::new(1, 999_999_999);
        assert_eq!(rfc3339(with_nanos), "1970-01-01T00:00:01Z", "whole seconds");
    }
}
