//! Golden files of the `insight` blueprint's rendered values, in preview mode (secrets redacted).
//! Regenerate with `BERTH_UPDATE_GOLDENS=1 cargo test -p berth-blueprint --test golden`.

mod common;

use std::path::PathBuf;

use berth_blueprint::{RenderMode, Secrets, Templates, REDACTED};
use common::{sample_context, sample_secrets, templates_root};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn insight_preview_matches_goldens() {
    let templates = Templates::open(&templates_root()).expect("templates load");
    let bp = templates.blueprint("insight").expect("insight blueprint");
    let rendered = templates
        .renderer()
        .render_blueprint(bp, &sample_context(), RenderMode::Preview)
        .expect("render");
    let names: Vec<&str> = rendered.iter().map(|r| r.app.name.as_str()).collect();
    assert_eq!(names, ["foundation", "certs", "influxdb", "dsm"]);

    let update = std::env::var_os("BERTH_UPDATE_GOLDENS").is_some();
    for r in &rendered {
        let path = golden_dir().join(format!("insight-{}.yaml", r.app.name));
        if update {
            std::fs::write(&path, &r.values.yaml).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (set BERTH_UPDATE_GOLDENS=1 to create)",
                path.display()
            )
        });
        assert_eq!(r.values.yaml, expected, "golden {} differs", path.display());
    }
}

#[test]
fn goldens_never_contain_secret_values() {
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for name in sample_secrets().names() {
            let value = sample_secrets()
                .get(name)
                .unwrap()
                .expose_secret()
                .to_owned();
            assert!(
                !text.contains(&value),
                "a golden contains the secret {name}"
            );
        }
    }
}

/// The `insight` templates print no secret: the charts read credentials from the Secrets Berth
/// writes in the namespace, so the values name those Secrets and keys only. Rendered for real
/// without any secret in the context, they still render, and the same as the preview; with
/// every secret offered, no value of one appears in the values.
#[test]
fn insight_values_hold_secret_names_never_secret_values() {
    let templates = Templates::open(&templates_root()).unwrap();
    let bp = templates.blueprint("insight").unwrap();
    let mut bare = sample_context();
    bare.secrets = Secrets::new();
    let real = templates
        .renderer()
        .render_blueprint(bp, &bare, RenderMode::Real)
        .expect("the templates need no secret");
    let preview = templates
        .renderer()
        .render_blueprint(bp, &bare, RenderMode::Preview)
        .unwrap();
    for (r, p) in real.iter().zip(&preview) {
        assert_eq!(r.values.values, p.values.values, "{}", r.app.name);
        assert!(!r.values.yaml.contains(REDACTED), "{}", r.app.name);
    }
    let offered = templates
        .renderer()
        .render_blueprint(bp, &sample_context(), RenderMode::Real)
        .unwrap();
    let text: String = offered
        .iter()
        .map(|r| r.values.values.to_string())
        .collect();
    for name in sample_secrets().names() {
        let value = sample_secrets()
            .get(name)
            .unwrap()
            .expose_secret()
            .to_owned();
        assert!(!text.contains(&value), "the values print the secret {name}");
    }
    // What the charts get instead: the Secrets' names.
    let by_app = |app: &str| {
        &real
            .iter()
            .find(|r| r.app.name == app)
            .unwrap()
            .values
            .values
    };
    assert_eq!(
        by_app("influxdb")["setDefaultUser"]["user"]["existingSecret"],
        "trucking-db"
    );
    assert_eq!(
        by_app("dsm")["dsm"]["oauth"]["existingSecret"],
        "trucking-oauth"
    );
    assert_eq!(by_app("dsm")["dsm"]["s3"]["existingSecret"], "trucking-s3");
    assert_eq!(
        by_app("foundation")["imagePullSecret"]["name"],
        "trucking-registry"
    );
    assert_eq!(by_app("foundation")["global"]["unit"], "Trucking: North #1");
}

#[test]
fn unknown_size_fails_with_template_and_line() {
    let templates = Templates::open(&templates_root()).unwrap();
    let bp = templates.blueprint("insight").unwrap();
    let mut ctx = sample_context();
    ctx.unit.size = "huge".into();
    let err = templates
        .renderer()
        .render_blueprint(bp, &ctx, RenderMode::Preview)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        // The first template in install order that looks the size up by name (the foundation
        // takes its quota from `unit.quota`).
        msg.starts_with("values template influxdb.yaml.j2:"),
        "{msg}"
    );
    assert!(msg.contains("undefined"), "{msg}");
}
