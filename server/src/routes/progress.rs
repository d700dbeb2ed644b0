//! `GET /environments/{id}/progress`: server-sent events carrying the environment's
//! provisioning snapshot, first on connect (so a reconnecting browser catches up) and again
//! whenever it changes. Readable by every role, as the environment page is.
//!
//! `GET /environments/all/progress` (no environment id is ever `all`): the company-wide stream
//! the environment list follows. It carries no data, only when to reload: `hello` on connect
//! (a reconnecting browser reloads, having perhaps missed changes) and `changed` whenever any
//! environment changed, bursts coalesced.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use app::api::guard;
use axum::{
    extract::{ConnectInfo, Path, State},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::{future::BoxFuture, stream};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;
use uuid::Uuid;

use crate::{
    progress::{Frame, StreamSlot},
    state::AppState,
};

/// Changes closer together than this make every open list reload once.
const LIST_COALESCE: Duration = Duration::from_millis(500);

/// Whether an open stream's reader may still read: run every few minutes (the hub's setting),
/// the stream ends at the first `false` (signed out, role removed, token revoked).
pub type Recheck = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

pub async fn stream(
    State(state): State<AppState>,
    session: Session,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let services = state.services.clone();
    let user = match guard::user_in_session(&services, &session).await {
        Ok(u) => u,
        Err(e) => return super::refuse(e),
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
        Err(e) => return super::refuse(e),
    };
    let owner = match session.id() {
        Some(sid) => format!("session:{sid}"),
        None => format!("user:{}", actor.user_id),
    };
    let slot = match state.progress.open_stream(owner) {
        Ok(s) => s,
        Err(e) => return super::refuse(e),
    };
    let recheck = session_recheck(&state, &session);
    if id == "all" {
        return company_stream(&state, slot, recheck);
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return super::refuse(app::error::AppError::NotFound);
    };
    match berth_db::requests::get_environment(&services.pool, id).await {
        Ok(Some(_)) => {}
        Ok(_) => return super::refuse(app::error::AppError::NotFound),
        Err(e) => return super::refuse(e.into()),
    }
    environment_stream(&state, &actor, id, slot, recheck)
}

/// Re-reads the session from the store (not the copy this request loaded) and asks the policy
/// again, so a sign-out elsewhere, an expired session or a removed role ends the stream.
fn session_recheck(state: &AppState, session: &Session) -> Recheck {
    let (services, store, sid) = (
        state.services.clone(),
        state.session_store.clone(),
        session.id(),
    );
    Arc::new(move || {
        let (services, store) = (services.clone(), store.clone());
        Box::pin(async move {
            let fresh = Session::new(sid, store, None);
            match guard::user_in_session(&services, &fresh).await {
                Ok(Some(user)) => berth_domain::policy::authorize(
                    Some(&user.actor()),
                    berth_domain::Action::ReadEnvironments,
                )
                .is_ok(),
                _ => false,
            }
        })
    })
}

/// The stream of one environment's provisioning snapshots for an `actor` already allowed to
/// read it (the pages' session and the API's bearer both end here). It holds `slot` while
/// open and ends when `recheck` says no.
pub fn environment_stream(
    state: &AppState,
    actor: &berth_domain::Actor,
    id: Uuid,
    slot: StreamSlot,
    recheck: Recheck,
) -> Response {
    let operator = app::api::provisioning::may_operate(actor);
    struct Cursor {
        rx: tokio::sync::watch::Receiver<Frame>,
        wait: bool,
        last: Option<Arc<str>>,
        recheck: tokio::time::Interval,
        _slot: StreamSlot,
    }
    let cursor = Cursor {
        rx: state.progress.watch(id),
        wait: false,
        last: None,
        recheck: recheck_timer(state),
        _slot: slot,
    };
    let events = stream::unfold(cursor, move |mut c| {
        let recheck = recheck.clone();
        async move {
            loop {
                if c.wait {
                    tokio::select! {
                        changed = c.rx.changed() => if changed.is_err() { return None },
                        _ = c.recheck.tick() => {
                            if !recheck().await { return None }
                            continue;
                        }
                    }
                }
                c.wait = true;
                let json = match &*c.rx.borrow_and_update() {
                    Frame::Pending | Frame::Ready { stale: true, .. } => continue,
                    Frame::Failed => return None,
                    Frame::Ready {
                        reader,
                        operator: op,
                        ..
                    } => {
                        if operator {
                            op.clone()
                        } else {
                            reader.clone()
                        }
                    }
                };
                if c.last.as_deref() == Some(&*json) {
                    continue;
                }
                c.last = Some(json.clone());
                let event = Event::default().event("progress").data(&*json);
                return Some((Ok::<_, Infallible>(event), c));
            }
        }
    });
    sse(state, events)
}

/// The company-wide stream: `hello`, then `changed` after every (coalesced) change.
fn company_stream(state: &AppState, slot: StreamSlot, recheck: Recheck) -> Response {
    let event = |name: &str| Ok::<_, Infallible>(Event::default().event(name).data(name));
    let hello = stream::once(async move { event("hello") });
    let cursor = (state.progress.subscribe(), recheck_timer(state), slot);
    let changes = stream::unfold(cursor, move |(mut rx, mut timer, slot)| {
        let recheck = recheck.clone();
        async move {
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(_) | Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = timer.tick() => if !recheck().await { return None },
                }
            }
            tokio::time::sleep(LIST_COALESCE).await;
            while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                rx.try_recv()
            {}
            Some((event("changed"), (rx, timer, slot)))
        }
    });
    sse(state, futures_util::StreamExt::chain(hello, changes))
}

/// The first re-check one period after the stream opened, then every period.
fn recheck_timer(state: &AppState) -> tokio::time::Interval {
    let every = state.progress.recheck_every();
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// `events` as server-sent events, ended at shutdown so graceful shutdown does not wait for
/// browsers to leave.
fn sse(
    state: &AppState,
    events: impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let events = futures_util::StreamExt::take_until(events, state.progress.closed());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
