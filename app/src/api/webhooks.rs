//! Webhook endpoints for admins: register one (its secret is returned this once), list them,
//! read one with its delivery log, switch it off or on, remove it, and redeliver a message.

use std::collections::BTreeMap;

use berth_domain::EventType;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub disabled_at: Option<Stamp>,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at: Stamp,
    pub pending: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: Uuid,
    /// The message's `webhook-id`.
    pub message_id: String,
    pub event_type: String,
    pub environment_id: Option<Uuid>,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i32>,
    pub next_attempt_at: Option<Stamp>,
    pub created_at: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDetail {
    pub endpoint: EndpointView,
    /// The latest deliveries, newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// A registered endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEndpoint {
    pub id: Uuid,
    pub secret: String,
}

#[cfg(feature = "ssr")]
impl From<berth_db::webhooks::Endpoint> for EndpointView {
    fn from(e: berth_db::webhooks::Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            disabled_at: e.disabled_at.map(Stamp::from),
            disabled_reason: e.disabled_reason,
            created_by: e.created_by,
            created_at: e.created_at.into(),
            pending: e.pending,
        }
    }
}

/// The endpoints, and whether their signing secrets are sealed at rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookList {
    pub endpoints: Vec<EndpointView>,
    /// The server seals signing secrets (`BERTH_SEALING_KEY` is set).
    pub secrets_sealed: bool,
}

/// Every endpoint, newest first. Admins only.
#[server(endpoint = "list_webhooks", output = super::codec::JsonOut)]
pub async fn list_webhooks() -> Result<WebhookList, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::Administer).await?;
        let list = berth_db::webhooks::list(&s.pool).await?;
        Ok(WebhookList {
            endpoints: list.into_iter().map(EndpointView::from).collect(),
            secrets_sealed: s.sealer.is_some(),
        })
    })
    .await
}

/// Registers an endpoint for the chosen events (`events[<type>]` checkboxes). Its host must
/// resolve, and only to addresses deliveries may reach; the worker checks again at every
/// delivery. Admins only.
#[server(endpoint = "create_webhook", output = super::codec::JsonOut)]
pub async fn create_webhook(
    url: String,
    description: String,
    #[server(default)] events: BTreeMap<String, String>,
) -> Result<CreatedEndpoint, AppError> {
    use super::guard;
    use berth_domain::notify::{parse_event_types, parse_webhook_description, refused_target};
    use berth_domain::{FieldError, SpecErrors, WebhookUrl};
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::Administer).await?;
        let chosen: Vec<String> = events.into_keys().collect();
        let mut errors = Vec::new();
        let mut field = |field: &'static str, r: Result<(), String>| {
            if let Err(message) = r {
                errors.push(FieldError {
                    field: field.into(),
                    message,
                });
            }
        };
        let url = WebhookUrl::parse(&url);
        field("url", url.as_ref().map(drop).map_err(Clone::clone));
        let description = parse_webhook_description(&description);
        field(
            "description",
            description.as_ref().map(drop).map_err(Clone::clone),
        );
        let event_types = parse_event_types(&chosen);
        field(
            "events",
            event_types.as_ref().map(drop).map_err(Clone::clone),
        );
        if let Ok(url) = &url {
            let (host, port) = url.host_and_port();
            let refused = match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => {
                    let ips: Vec<_> = addrs.map(|a| a.ip()).collect();
                    refused_target(&host, &ips, s.webhooks_allow_private)
                }
                Err(_) => Some(format!("{host} does not resolve")),
            };
            if let Some(why) = refused {
                field(
                    "url",
                    Err(format!(
                        "Berth does not deliver there: {why}. Use a public address."
                    )),
                );
            }
        }
        let (Ok(url), Ok(description), Ok(event_types), true) =
            (url, description, event_types, errors.is_empty())
        else {
            return Err(AppError::Fields(SpecErrors(errors)));
        };
        let new = berth_db::webhooks::NewEndpoint {
            url,
            description,
            event_types,
        };
        let created =
            berth_db::webhooks::create(&s.pool, s.sealer.as_ref(), actor.user_id, &new).await?;
        use secrecy::ExposeSecret;
        Ok(CreatedEndpoint {
            id: created.endpoint.id,
            secret: created.secret.expose_secret().to_owned(),
        })
    })
    .await
}

/// One endpoint and its latest 50 deliveries. Admins only.
#[server(endpoint = "get_webhook", output = super::codec::JsonOut)]
pub async fn get_webhook(id: Uuid) -> Result<EndpointDetail, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::Administer).await?;
        let endpoint = berth_db::webhooks::get(&s.pool, id).await?.into();
        let deliveries = berth_db::webhooks::deliveries(&s.pool, id, 50)
            .await?
            .into_iter()
            .map(|d| DeliveryView {
                id: d.id,
                message_id: berth_db::webhooks::message_id(d.event_id),
                event_type: d.event_type,
                environment_id: d.environment_id,
                status: d.status,
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error,
                last_duration_ms: d.last_duration_ms,
                next_attempt_at: d.next_attempt_at.map(Stamp::from),
                created_at: d.created_at.into(),
            })
            .collect();
        Ok(EndpointDetail {
            endpoint,
            deliveries,
        })
    })
    .await
}

/// `enable`, `disable` or `delete` an endpoint. Admins only.
#[server(endpoint = "change_webhook", output = super::codec::JsonOut)]
pub async fn change_webhook(id: Uuid, action: String) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::Administer).await?;
        match action.as_str() {
            "enable" => berth_db::webhooks::set_enabled(&s.pool, id, true, "").await?,
            "disable" => {
                let reason = format!("Turned off by {}.", actor.name);
                berth_db::webhooks::set_enabled(&s.pool, id, false, &reason).await?
            }
            "delete" => berth_db::webhooks::delete(&s.pool, id).await?,
            other => return Err(AppError::Invalid(format!("unknown action '{other}'"))),
        }
        Ok(())
    })
    .await
}

/// Sends a delivery's message again (same `webhook-id`), now. Admins only.
#[server(endpoint = "redeliver_webhook", output = super::codec::JsonOut)]
pub async fn redeliver_webhook(id: Uuid, delivery_id: Uuid) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::Administer).await?;
        berth_db::webhooks::redeliver(&s.pool, id, delivery_id).await?;
        Ok(())
    })
    .await
}
