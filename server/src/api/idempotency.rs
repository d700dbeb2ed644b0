//! `Idempotency-Key` on the POSTs that create something: the same key with the same request
//! gets the first answer again (nothing is created twice); with a different request, 422.
//! Keys are per token and remembered for a day; a refused request forgets its key, so the
//! corrected request may use it again.

use std::future::Future;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use berth_db::idempotency::{self, Claim};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use super::{caller::Caller, problem::Problem};

/// The header's value, and what the request is (method and path; the body is added by
/// [`Idempotent::run`]).
pub struct Idempotent {
    key: Option<String>,
    target: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotent {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v.to_str().map(str::trim).unwrap_or_default();
                if key.is_empty() || key.len() > 255 {
                    return Err(Problem::bad_request(
                        "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                    ));
                }
                Some(key.to_owned())
            }
        };
        Ok(Idempotent {
            key,
            target: format!("{} {}", parts.method, parts.uri.path()),
        })
    }
}

impl Idempotent {
    /// Runs `work` unless this key answered the same request before (then replays that answer).
    pub async fn run<B, T, F, Fut>(
        self,
        caller: &Caller,
        body: &B,
        work: F,
    ) -> Result<Replayable<T>, Problem>
    where
        B: Serialize,
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Replayable<T>, Problem>>,
    {
        let Some(key) = self.key else {
            return work().await;
        };
        let pool = &caller.services.pool;
        let token = caller.token.id;
        let mut hash = Sha256::new();
        hash.update(self.target.as_bytes());
        hash.update([0]);
        hash.update(serde_json::to_vec(body).unwrap_or_default());
        let hash = hash.finalize();
        match idempotency::claim(pool, token, &key, &hash).await? {
            Claim::New => {}
            Claim::Mismatch => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "This Idempotency-Key was used with a different request.",
                ))
            }
            Claim::InProgress => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "A request with this Idempotency-Key is still being answered; try again.",
                ))
            }
            Claim::Replay {
                status,
                response,
                location,
            } => {
                let body = serde_json::from_value(response).map_err(|e| {
                    tracing::error!(error = %e, "a remembered answer no longer reads");
                    Problem::from(app::error::AppError::Internal)
                })?;
                return Ok(Replayable {
                    status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                    body,
                    location,
                });
            }
        }
        match work().await {
            Ok(answer) => {
                let json = serde_json::to_value(&answer.body).unwrap_or_default();
                idempotency::complete(
                    pool,
                    token,
                    &key,
                    answer.status.as_u16(),
                    &json,
                    answer.location.as_deref(),
                )
                .await?;
                Ok(answer)
            }
            Err(problem) => {
                idempotency::release(pool, token, &key).await?;
                Err(problem)
            }
        }
    }
}

/// A JSON answer that can be remembered and sent again: status, body and `Location`.
pub struct Replayable<T> {
    pub status: StatusCode,
    pub body: T,
    pub location: Option<String>,
}

impl<T> Replayable<T> {
    pub fn new(status: StatusCode, body: T) -> Self {
        Replayable {
            status,
            body,
            location: None,
        }
    }

    pub fn with_location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }
}

impl<T: Serialize> IntoResponse for Replayable<T> {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body)).into_response();
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        res
    }
}
