//! The `/api/v1` client: a bearer token on every call, problem+json answers turned into clear
//! errors, one wait-and-retry for a GET refused with 429, an `Idempotency-Key` on every POST
//! that creates something.

use std::{fmt, time::Duration};

use anyhow::Context;
use reqwest::{header, Method, StatusCode};
use serde_json::Value;

/// The longest `Retry-After` the client waits for before giving up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// An answer of Berth that is not a success, as the API describes it (RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub title: String,
    pub detail: String,
    /// Refused fields: (field, message).
    pub errors: Vec<(String, String)>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Reads an error answer's body: problem+json when it is JSON, its text otherwise.
    pub fn from_body(status: StatusCode, retry_after: Option<u64>, body: &str) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let mut e = ApiError {
            status: status.as_u16(),
            title,
            detail: String::new(),
            errors: Vec::new(),
            retry_after,
        };
        match serde_json::from_str::<Value>(body) {
            Ok(v) if v.is_object() => {
                if let Some(t) = v["title"].as_str() {
                    e.title = t.to_owned();
                }
                e.detail = v["detail"].as_str().unwrap_or_default().to_owned();
                if let Some(list) = v["errors"].as_array() {
                    e.errors = list
                        .iter()
                        .map(|f| {
                            (
                                f["field"].as_str().unwrap_or_default().to_owned(),
                                f["message"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                }
            }
            _ => {
                let text: String = body.trim().chars().take(300).collect();
                e.detail = text;
            }
        }
        e
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Berth answered {} {}", self.status, self.title)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        for (field, message) in &self.errors {
            write!(f, "\n  {field}: {message}")?;
        }
        match self.status {
            401 => write!(
                f,
                "\nThe token was refused (missing, expired or revoked). Run `berth login` again, \
                 or check BERTH_TOKEN."
            ),
            403 => write!(
                f,
                "\nThe token's scopes or its holder's roles do not allow this (`berth whoami` \
                 shows both)."
            ),
            429 => match self.retry_after {
                Some(s) => write!(f, "\nRate limited: try again in {s} s."),
                None => write!(f, "\nRate limited: try again later."),
            },
            _ => Ok(()),
        }
    }
}

impl std::error::Error for ApiError {}

/// A client for one Berth with one token.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// `base` is the Berth URL without `/api/v1` (see `config::normalize_url`).
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header(header::ACCEPT, "application/json")
    }

    /// Sends a GET; on 429 waits `Retry-After` once and sends it again. Errors are `ApiError`s
    /// (or the reason Berth could not be reached).
    pub async fn get_response(
        &self,
        path: &str,
        query: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut waited = false;
        loop {
            let mut req = self.request(Method::GET, path).query(query);
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let res = req.send().await.map_err(|e| self.unreachable(e))?;
            if res.status() == StatusCode::TOO_MANY_REQUESTS && !waited {
                let seconds = retry_after(&res).unwrap_or(1);
                let wait = Duration::from_secs(seconds).min(MAX_RETRY_AFTER);
                eprintln!(
                    "Rate limited by Berth; retrying in {} s.",
                    wait.as_secs().max(1)
                );
                tokio::time::sleep(wait).await;
                waited = true;
                continue;
            }
            return check(res).await;
        }
    }

    /// GETs JSON.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let res = self
            .get_response(path, query, Some(Duration::from_secs(60)))
            .await?;
        json_of(res).await
    }

    /// GETs JSON; `None` for 404.
    pub async fn get_optional(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.get(path, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|a| a.status == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// POSTs `body` (none: an empty body). `idempotency_key`: sent as `Idempotency-Key`, so the
    /// same call sent twice creates once.
    pub async fn post(
        &self,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .request(Method::POST, path)
            .timeout(Duration::from_secs(60));
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.map_err(|e| self.unreachable(e))?;
        json_of(check(res).await?).await
    }

    /// POSTs a body that creates something, with a fresh random `Idempotency-Key`; when the
    /// connection fails before an answer, sends it once more with the same key (Berth answers
    /// the first result rather than creating twice).
    pub async fn create(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let key = uuid::Uuid::new_v4().to_string();
        match self.post(path, Some(body), Some(&key)).await {
            Err(e) if e.downcast_ref::<Unreachable>().is_some() => {
                eprintln!(
                    "No answer from Berth ({e:#}); sending again with the same Idempotency-Key."
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.post(path, Some(body), Some(&key)).await
            }
            other => other,
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow::Error::new(Unreachable {
            base: self.base.clone(),
            reason: if e.is_timeout() {
                "timed out".to_owned()
            } else {
                format!("{:#}", anyhow::Error::new(e))
            },
        })
    }
}

/// Berth could not be reached (no answer at all).
#[derive(Debug)]
pub struct Unreachable {
    base: String,
    reason: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot reach Berth at {}: {} (check the URL: BERTH_URL or `berth login`)",
            self.base, self.reason
        )
    }
}

impl std::error::Error for Unreachable {}

fn retry_after(res: &reqwest::Response) -> Option<u64> {
    res.headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The response when it is a success, its `ApiError` otherwise.
async fn check(res: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let retry = retry_after(&res);
    let body = res.text().await.unwrap_or_default();
    Err(ApiError::from_body(status, retry, &body).into())
}

/// A success's JSON body (`null` for an empty one, e.g. 202).
async fn json_of(res: reqwest::Response) -> anyhow::Result<Value> {
    let url = res.url().path().to_owned();
    let text = res
        .text()
        .await
        .with_context(|| format!("reading Berth's answer to {url}"))?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("Berth's answer to {url} is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_status_detail_and_fields() {
        let body = r#"{"type":"about:blank","title":"Unprocessable Entity","status":422,
            "detail":"Check the highlighted fields.",
            "errors":[{"field":"slug","message":"That short name is taken."},
                      {"field":"owner_contact","message":"Give an email address."}]}"#;
        let e = ApiError::from_body(StatusCode::UNPROCESSABLE_ENTITY, None, body);
        assert_eq!(
            e.to_string(),
            "Berth answered 422 Unprocessable Entity: Check the highlighted fields.\n  \
             slug: That short name is taken.\n  owner_contact: Give an email address."
        );
    }

    #[test]
    fn a_refused_token_says_to_log_in_again() {
        let body = r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Send a valid API token."}"#;
        let e = ApiError::from_body(StatusCode::UNAUTHORIZED, None, body).to_string();
        assert!(e.starts_with("Berth answered 401 Unauthorized: Send a valid API token."));
        assert!(e.contains("berth login"), "{e}");
        assert!(e.contains("BERTH_TOKEN"), "{e}");
    }

    #[test]
    fn a_body_that_is_not_json_is_shown_as_text() {
        let e = ApiError::from_body(StatusCode::BAD_GATEWAY, None, "  upstream down \n");
        assert_eq!(
            e.to_string(),
            "Berth answered 502 Bad Gateway: upstream down"
        );
        let e = ApiError::from_body(StatusCode::TOO_MANY_REQUESTS, Some(7), "");
        assert_eq!(
            e.to_string(),
            "Berth answered 429 Too Many Requests\nRate limited: try again in 7 s."
        );
    }
}
