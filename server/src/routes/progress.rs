//! `GET /environments/{id}/progress`: server-sent events carrying the environment's
//! provisioning snapshot, first on connect (so a reconnecting browser catches up) and again
//! whenever it changes. Readable by every role, as the environment page is.
//!
//! `GET /environments/all/progress` (no environment id is ever `all`): the company-wide stream
//! the environment list follows. It carries no data, only when to reload: `hello` on connect
//! (a reconnecting browser reloads, having perhaps missed changes) and `changed` whenever any
//! environment changed, bursts coalesced.

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use app::api::{guard, provisioning};
use axum::{
    extract::{ConnectInfo, Path, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::stream;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tower_sessions::Session;
use uuid::Uuid;

use crate::state::AppState;

/// Changes closer together than this are sent as one snapshot.
const COALESCE: Duration = Duration::from_millis(150);
/// The same for the company-wide stream: each `changed` makes every open list reload a page.
const LIST_COALESCE: Duration = Duration::from_millis(500);

pub async fn stream(
    State(state): State<AppState>,
    session: Session,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let services = state.services.clone();
    let user = match guard::user_in_session(&services, &session).await {
        Ok(u) => u,
        Err(e) => return error(e),
    };
    let actor = match guard::check(
        &services,
        user.map(|u| u.actor()),
        berth_domain::Action::ReadEnvironments,
        Some(addr.ip().to_string()),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    if id == "all" {
        return company_stream(&state);
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return error(app::error::AppError::NotFound);
    };
    match berth_db::requests::get_environment(&services.pool, id).await {
        Ok(Some(_)) => {}
        Ok(_) => return error(app::error::AppError::NotFound),
        Err(e) => return error(e.into()),
    }
    environment_stream(&state, actor, id)
}

/// The stream of one environment's provisioning snapshots for an `actor` already allowed to
/// read it (the pages' session and the API's bearer both end here).
pub fn environment_stream(state: &AppState, actor: berth_domain::Actor, id: Uuid) -> Response {
    let services = state.services.clone();
    struct Cursor {
        rx: Receiver<Uuid>,
        first: bool,
        last: Option<String>,
    }
    let cursor = Cursor {
        rx: state.progress.subscribe(),
        first: true,
        last: None,
    };
    let events = stream::unfold(cursor, move |mut c| {
        let services = services.clone();
        let actor = actor.clone();
        async move {
            loop {
                if !c.first && !wait_for_change(&mut c.rx, id).await {
                    return None;
                }
                c.first = false;
                let snapshot = match provisioning::snapshot(&services, id, &actor).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "live progress: snapshot failed");
                        return None;
                    }
                };
                let json = serde_json::to_string(&snapshot).unwrap_or_default();
                if c.last.as_deref() == Some(json.as_str()) {
                    continue;
                }
                c.last = Some(json.clone());
                let event = Event::default().event("progress").data(json);
                return Some((Ok::<_, Infallible>(event), c));
            }
        }
    });
    // Ends at shutdown, so graceful shutdown does not wait for browsers to leave.
    let events = futures_util::StreamExt::take_until(events, state.progress.closed());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The company-wide stream: `hello`, then `changed` after every (coalesced) change.
fn company_stream(state: &AppState) -> Response {
    let event = |name: &str| Ok::<_, Infallible>(Event::default().event(name).data(name));
    let hello = stream::once(async move { event("hello") });
    let changes = stream::unfold(state.progress.subscribe(), move |mut rx| async move {
        match rx.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return None,
        }
        tokio::time::sleep(LIST_COALESCE).await;
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
            rx.try_recv()
        {}
        Some((event("changed"), rx))
    });
    let events = futures_util::StreamExt::chain(hello, changes);
    let events = futures_util::StreamExt::take_until(events, state.progress.closed());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Waits until `id` (or possibly everything) changed; `false` when the hub is gone.
async fn wait_for_change(rx: &mut Receiver<Uuid>, id: Uuid) -> bool {
    loop {
        match rx.recv().await {
            Ok(changed) if changed == id || changed.is_nil() => break,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => break,
            Err(RecvError::Closed) => return false,
        }
    }
    // Let a burst of changes (a step finishing and the next starting) settle into one send.
    tokio::time::sleep(COALESCE).await;
    while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
    true
}

fn error(e: app::error::AppError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, e.to_string()).into_response()
}
