//! Golden files of the `insight` blueprint's rendered values, in preview mode (secrets redacted).
//! Regenerate with `BERTH_UPDATE_GOLDENS=1 cargo test -p berth-blueprint --test golden`.

mod common;

use std::path::PathBuf;

use berth_blueprint::{RenderMode, Templates, REDACTED};
use common::{sample_context, sample_secrets, templates_root};
use serde_json::Value;

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

/// Real rendering differs from the preview exactly where secrets are printed.
#[test]
fn real_render_fills_secrets_where_preview_redacts() {
    let templates = Templates::open(&templates_root()).unwrap();
    let bp = templates.blueprint("insight").unwrap();
    let ctx = sample_context();
    let real = templates
        .renderer()
        .render_blueprint(bp, &ctx, RenderMode::Real)
        .unwrap();
    let preview = templates
        .renderer()
        .render_blueprint(bp, &ctx, RenderMode::Preview)
        .unwrap();
    let secret_values: Vec<String> = ctx
        .secrets
        .names()
        .map(|n| ctx.secrets.get(n).unwrap().expose_secret().to_owned())
        .collect();

    fn walk(real: &Value, preview: &Value, secrets: &[String], replaced: &mut usize) {
        match (real, preview) {
            (Value::Object(a), Value::Object(b)) => {
                assert_eq!(a.len(), b.len());
                for (k, v) in a {
                    walk(v, &b[k], secrets, replaced);
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    walk(x, y, secrets, replaced);
                }
            }
            (Value::String(r), Value::String(p)) if p == REDACTED => {
                assert!(secrets.contains(r), "redacted value {r:?} is not a secret");
                *replaced += 1;
            }
            (a, b) => assert_eq!(a, b),
        }
    }
    let mut replaced = 0;
    for (r, p) in real.iter().zip(&preview) {
        walk(
            &r.values.values,
            &p.values.values,
            &secret_values,
            &mut replaced,
        );
        assert!(
            !format!("{:?}", r.values).contains("p@ss"),
            "Debug of real values leaks secrets"
        );
    }
    assert!(
        replaced >= 7,
        "every secret should be used somewhere, got {replaced}"
    );
    // The password with `:`, `#`, quotes and a newline arrives intact.
    let influx = &real[2].values.values;
    assert_eq!(
        influx["setDefaultUser"]["user"]["password"],
        "p@ss: w0rd # \"quoted\" 'single'\nsecond line"
    );
    assert_eq!(
        real[0].values.values["global"]["unit"],
        "Trucking: North #1"
    );
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
