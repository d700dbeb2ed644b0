//! A known secret value never appears in the tracing output of a full run of the stage.
//! Alone in its test binary: it installs the global subscriber, the only reliable way to
//! capture events from every thread and callsite.

mod common;

use std::sync::{Arc, Mutex};

use common::{create_trucking, emulator_available, params, stage, REGISTRY_PASSWORD};

/// A `MakeWriter` collecting everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secret_values_never_reach_the_logs() {
    if !emulator_available("secret_values_never_reach_the_logs") {
        return;
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let stage = stage().await;
    let (unit, created) = create_trucking(&stage).await;
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    // Debug output of everything a caller might log or store.
    tracing::info!(?created, ?secrets, params = ?params(), "stage results");
    let mut changed = params();
    changed.registry_server = "other.example".into();
    let preview = stage
        .preview_unit_stack(&unit, &changed, Some(&created.stack.stack_id))
        .await
        .unwrap();
    tracing::info!(?preview, "previewed");
    stage
        .ensure_unit_stack(&unit, &changed, Some(&created.stack.stack_id))
        .await
        .unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    if let Ok(path) = std::env::var("BERTH_AWS_LOG_DUMP") {
        std::fs::write(path, &logs).unwrap();
    }
    assert!(logs.contains("unit stack ensured"), "the capture works");
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "SDK-level logs were captured too"
    );
    let escaped = REGISTRY_PASSWORD.replace('"', "\\\"");
    // The tail after its quote: found however often the quote was escaped (the company's
    // registry password secret holds a JSON-escaped copy, sent inside a JSON request).
    let tail = &REGISTRY_PASSWORD[REGISTRY_PASSWORD.find('"').unwrap() + 1..];
    for value in [
        REGISTRY_PASSWORD,
        escaped.as_str(),
        tail,
        secrets.database.password.expose(),
        secrets.oauth.client_secret.expose(),
        secrets.s3.secret_access_key.expose(),
    ] {
        assert!(!logs.contains(value), "a secret value appeared in the logs");
    }
}
