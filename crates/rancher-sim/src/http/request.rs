//! The request as the resource handlers see it.

use axum::body::Bytes;
use axum::http::Method;
use percent_encoding::percent_decode_str;
use serde_json::Value;

/// A parsed Rancher API request, as the resource handlers see it.
pub struct Req {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// `http://host:port`, for links.
    pub base: String,
}

impl Req {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("failed to decode request body: {e}"))
    }
}

/// The path's non-empty segments, percent-decoded.
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}
