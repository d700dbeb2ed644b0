//! The environment page's provisioning section: the run's steps as they progress, the unit's
//! CloudFormation stack, and the admins' retry/cancel controls. Rendered complete on the
//! server (readable without JavaScript); in the browser a server-sent-event stream replaces the
//! snapshot whenever it changes, and reconnects by itself after a dropped connection.

use berth_domain::{RunStatus, StepStatus};
use leptos::prelude::*;
use uuid::Uuid;

use super::for_id;
use crate::{
    api::provisioning::{get_provisioning, OperateRun, Provisioning, RunInfo, StackInfo, StepInfo},
    components::status::{ErrorNote, When},
    error::AppError,
};

/// Whether the live stream is connected, for people ("live") and tests (`data-live`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Live {
    /// Server-rendered, or JavaScript off.
    Static,
    Connecting,
    Connected,
}

impl Live {
    fn as_str(self) -> &'static str {
        match self {
            Live::Static => "static",
            Live::Connecting => "connecting",
            Live::Connected => "connected",
        }
    }
}

/// The provisioning section's snapshot and its retry/cancel action, made by the environment
/// page itself (see `environment.rs` for why); read again after each retry or cancel.
#[derive(Clone, Copy)]
pub struct ProvisioningData {
    operate: ServerAction<OperateRun>,
    initial: Resource<Result<Provisioning, AppError>>,
}

impl ProvisioningData {
    pub fn load(id: Memo<Option<Uuid>>) -> Self {
        let operate = ServerAction::<OperateRun>::new();
        let initial = Resource::new(
            move || (id.get(), operate.version().get()),
            |(id, _)| for_id(id, get_provisioning),
        );
        Self { operate, initial }
    }
}

/// `pushed` receives every snapshot from the live stream (the page's header follows it too).
#[component]
pub fn ProvisioningPanel(
    environment_id: Uuid,
    pushed: RwSignal<Option<Provisioning>>,
    data: ProvisioningData,
) -> impl IntoView {
    let ProvisioningData { operate, initial } = data;
    // The stream is opened in the browser only.
    #[cfg(not(feature = "hydrate"))]
    let _ = environment_id;
    let live = RwSignal::new(Live::Static);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| follow(environment_id, pushed, live));

    view! {
        <section class="panel" aria-labelledby="provisioning-title" data-testid="provisioning"
            data-live=move || live.get().as_str()>
            <div class="panel-head">
                <h2 id="provisioning-title">"Provisioning"</h2>
                <span class=move || format!("live live-{}", live.get().as_str())>
                    {move || match live.get() {
                        Live::Connected => "● live",
                        Live::Connecting => "○ reconnecting…",
                        Live::Static => "",
                    }}
                </span>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let current = pushed.get().map(Ok).or_else(|| initial.get());
                    current.map(|r| match r {
                        Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                        Ok(p) => view! { <ProvisioningView p operate /> }.into_any(),
                    })
                }}
            </Transition>
        </section>
    }
}

/// Opens the live stream and keeps `pushed` current; closed when the page goes away.
#[cfg(feature = "hydrate")]
fn follow(environment_id: Uuid, pushed: RwSignal<Option<Provisioning>>, live: RwSignal<Live>) {
    use wasm_bindgen::{closure::Closure, JsCast};
    let Ok(source) = web_sys::EventSource::new(&format!("/environments/{environment_id}/progress"))
    else {
        return;
    };
    live.set(Live::Connecting);
    let on_progress =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                if let Ok(p) = serde_json::from_str::<Provisioning>(&text) {
                    pushed.set(Some(p));
                }
            }
            live.set(Live::Connected);
        });
    let _ =
        source.add_event_listener_with_callback("progress", on_progress.as_ref().unchecked_ref());
    on_progress.forget();
    // The browser reconnects by itself; the first message after that brings us up to date.
    let on_error = Closure::<dyn FnMut()>::new(move || live.set(Live::Connecting));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    let source = StoredValue::new_local(source);
    on_cleanup(move || source.with_value(|s| s.close()));
}

#[component]
fn ProvisioningView(p: Provisioning, operate: ServerAction<OperateRun>) -> impl IntoView {
    let Some(run) = p.run else {
        use berth_domain::EnvironmentStatus;
        let why = match p.environment_status {
            Some(EnvironmentStatus::Rejected) => "Nothing provisioned: the request was rejected.",
            Some(EnvironmentStatus::Withdrawn) => "Nothing provisioned: the request was withdrawn.",
            _ => "Nothing provisioned yet: provisioning starts when an admin approves the request.",
        };
        return view! { <p class="muted" data-testid="no-run">{why}</p> }.into_any();
    };
    let controls = p
        .can_operate
        .then(|| view! { <RunControls run=run.clone() operate /> });
    view! {
        <RunSummary run=run.clone() />
        {controls}
        <table class="steps" data-testid="steps">
            <thead>
                <tr>
                    <th scope="col">"Step"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Chart"</th>
                    <th scope="col">"Attempts"</th>
                    <th scope="col">"Time"</th>
                </tr>
            </thead>
            <tbody>
                {p.steps.into_iter().map(|step| view! { <StepRow step /> }).collect_view()}
            </tbody>
        </table>
        {p.stack.map(|stack| view! { <StackView stack /> })}
    }
    .into_any()
}

#[component]
fn RunSummary(run: RunInfo) -> impl IntoView {
    view! {
        <p class="run-summary" data-testid="run" data-status=run.status.as_str()>
            "Run of blueprint " <strong>{format!("{} {}", run.blueprint, run.blueprint_version)}</strong>
            ", started " <When stamp=run.created_at />
            {run.duration_secs.map(|s| format!(", {}", duration(s)))}
            " · " <span class=format!("badge badge-{}", run.status)>{run.status.as_str()}</span>
        </p>
        {run.error.map(|e| view! { <p class="alert alert-error prewrap" data-testid="run-error">{e}</p> })}
    }
}

#[component]
fn RunControls(run: RunInfo, operate: ServerAction<OperateRun>) -> impl IntoView {
    let (action, label) = if run.status.is_live() {
        ("cancel", "Cancel run")
    } else if run.status == RunStatus::Failed {
        ("retry", "Retry from the failed step")
    } else {
        return ().into_any();
    };
    let result = operate.value();
    view! {
        <ActionForm action=operate attr:class="run-controls">
            <input type="hidden" name="run_id" value=run.id.to_string() />
            <input type="hidden" name="action" value=action />
            <label>
                "Reason "
                <input type="text" name="reason" required maxlength="1000"
                    placeholder="Why? (recorded on the timeline)" />
            </label>
            <button type="submit" class=if action == "cancel" { "danger" } else { "primary" }>{label}</button>
        </ActionForm>
        {move || {
            result.get().and_then(Result::err).map(|e| view! { <ErrorNote error=e /> })
        }}
    }
    .into_any()
}

#[component]
fn StepRow(step: StepInfo) -> impl IntoView {
    let note = step.error.clone().or_else(|| {
        (step.status == StepStatus::Blocked)
            .then(|| step.blocked_reason.clone())
            .flatten()
    });
    let has_log = !step.log.trim().is_empty();
    view! {
        <tr data-step=step.name.clone() data-status=step.status.as_str()>
            <th scope="row">
                {step.label.clone()}
                {note.map(|n| view! { <div class="step-note prewrap">{n}</div> })}
                {has_log.then(|| view! {
                    <details class="step-log"><summary>"Log"</summary><pre>{step.log.clone()}</pre></details>
                })}
            </th>
            <td><span class=format!("badge badge-{}", step.status)>{step.status.as_str()}</span></td>
            <td>
                {step.chart.clone().unwrap_or_default()}
                {step.deployed.clone().map(|d| view! { <div class="muted">"deployed " {d}</div> })}
            </td>
            <td>{format!("{}/{}", step.attempts, step.max_attempts)}</td>
            <td>{step.duration_secs.map(duration).unwrap_or_default()}</td>
        </tr>
    }
}

#[component]
fn StackView(stack: StackInfo) -> impl IntoView {
    view! {
        <h3>"AWS stack"</h3>
        <dl class="facts" data-testid="stack">
            <dt>"Name"</dt>
            <dd><code>{stack.name}</code></dd>
            <dt>"Status"</dt>
            <dd>{stack.status}</dd>
            <dt>"Last change set"</dt>
            <dd>{stack.plan}</dd>
        </dl>
        {(!stack.changes.is_empty()).then(|| view! {
            <details class="stack-changes">
                <summary>{format!("{} planned changes", stack.changes.len())}</summary>
                <ul>
                    {stack.changes.into_iter().map(|c| view! {
                        <li><code>{c.action}</code> " " {c.logical_id} " (" {c.resource_type} ")"</li>
                    }).collect_view()}
                </ul>
            </details>
        })}
        <table class="resources" data-testid="stack-resources">
            <thead>
                <tr>
                    <th scope="col">"Logical id"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"Physical id"</th>
                    <th scope="col">"Status"</th>
                </tr>
            </thead>
            <tbody>
                {stack.resources.into_iter().map(|r| view! {
                    <tr>
                        <td>{r.logical_id}</td>
                        <td><code>{r.resource_type}</code></td>
                        <td class="physical-id">{r.physical_id.unwrap_or_default()}</td>
                        <td>{r.status}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
