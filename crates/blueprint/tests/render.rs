//! Values rendering: strict undefined, YAML safety (property tests), preview redaction.

mod common;

use berth_blueprint::{RenderError, RenderMode, Secret, Secrets, ValuesRenderer, REDACTED};
use common::sample_context;
use proptest::prelude::*;
use serde_json::{json, Value};

fn renderer(src: &str) -> ValuesRenderer {
    ValuesRenderer::from_sources([("t.yaml.j2", src)]).unwrap()
}

#[test]
fn missing_variable_names_template_and_line() {
    let r = renderer("a: {{ unit.name }}\nb: {{ secrets.nope }}\n");
    let err = r
        .render("t.yaml.j2", &sample_context(), RenderMode::Real)
        .unwrap_err();
    match &err {
        RenderError::Template { template, line, .. } => {
            assert_eq!(template, "t.yaml.j2");
            assert_eq!(*line, Some(2));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("values template t.yaml.j2:2: undefined value"),
        "{err}"
    );
}

#[test]
fn undefined_top_level_variable_is_an_error_even_through_the_filter() {
    let r = renderer("a: {{ nothing | toyaml }}\n");
    assert!(r
        .render("t.yaml.j2", &sample_context(), RenderMode::Preview)
        .is_err());
}

#[test]
fn syntax_error_is_reported_at_load_with_line() {
    let err =
        ValuesRenderer::from_sources([("bad.yaml.j2", "a: 1\nb: {{ unit.name \n")]).unwrap_err();
    match err {
        RenderError::Template { template, line, .. } => {
            assert_eq!(template, "bad.yaml.j2");
            assert_eq!(line, Some(2));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn preview_redacts_every_secret() {
    let r = renderer("user: {{ secrets.db_username }}\npass: {{ secrets.db_password | toyaml }}\nunit: {{ unit.name }}\n");
    let ctx = sample_context();
    let preview = r.render("t.yaml.j2", &ctx, RenderMode::Preview).unwrap();
    assert_eq!(
        preview.values,
        json!({"user": REDACTED, "pass": REDACTED, "unit": "Trucking: North #1"})
    );
    let real = r.render("t.yaml.j2", &ctx, RenderMode::Real).unwrap();
    assert_eq!(real.values["user"], "trucking_admin");
    assert!(!format!("{real:?}").contains("trucking_admin"));
}

#[test]
fn errors_in_real_mode_do_not_leak_secrets() {
    // The secret is printed unquoted through `safe`, producing invalid YAML.
    let r = renderer("pass: {{ secrets.db_password | safe }}\n");
    let err = r
        .render("t.yaml.j2", &sample_context(), RenderMode::Real)
        .unwrap_err();
    assert!(matches!(err, RenderError::InvalidYaml { .. }), "{err:?}");
    assert!(!err.to_string().contains("w0rd"), "{err}");
}

#[test]
fn non_mapping_output_is_rejected() {
    let r = renderer("- a\n- b\n");
    let err = r
        .render("t.yaml.j2", &sample_context(), RenderMode::Preview)
        .unwrap_err();
    assert!(matches!(err, RenderError::NotAMapping { .. }), "{err:?}");
}

#[test]
fn unknown_template_is_an_error() {
    let r = renderer("a: 1\n");
    assert!(matches!(
        r.render("other.yaml.j2", &sample_context(), RenderMode::Preview),
        Err(RenderError::UnknownTemplate(_))
    ));
}

#[test]
fn secret_debug_and_display_redact() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?} {s}"), format!("{REDACTED} {REDACTED}"));
    let mut all = Secrets::new();
    all.insert("db_password", "hunter2");
    assert!(!format!("{all:?}").contains("hunter2"));
    assert!(format!("{all:?}").contains("db_password"));
    assert_eq!(all.redact_text("pw=hunter2!"), format!("pw={REDACTED}!"));
}

fn render_value(template: &str, ctx: &berth_blueprint::RenderContext) -> Value {
    renderer(template)
        .render("t.yaml.j2", ctx, RenderMode::Real)
        .unwrap()
        .values
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any unit name, printed directly or through the filter, at any nesting, parses back intact.
    #[test]
    fn unit_name_roundtrips(name in any::<String>()) {
        let mut ctx = sample_context();
        ctx.unit.name = name.clone();
        let v = render_value(
            "plain: {{ unit.name }}\nfiltered: {{ unit.name | toyaml }}\nnested:\n  deeper:\n    - {{ unit.name }}\n    - key: {{ unit.name | yaml }}\n",
            &ctx,
        );
        prop_assert_eq!(&v["plain"], &json!(name));
        prop_assert_eq!(&v["filtered"], &json!(name));
        prop_assert_eq!(&v["nested"]["deeper"][0], &json!(name));
        prop_assert_eq!(&v["nested"]["deeper"][1]["key"], &json!(name));
    }

    /// Secrets made of YAML's special characters survive.
    #[test]
    fn tricky_secret_roundtrips(secret in "[:#'\"\\n\\r\\t \\\\a-z0-9{}\\[\\],&*!|>%@`-]{0,40}") {
        let mut ctx = sample_context();
        ctx.secrets.insert("db_password", secret.clone());
        let v = render_value("password: {{ secrets.db_password }}\nconcat: {{ secrets.db_password ~ '#' ~ unit.slug }}\n", &ctx);
        prop_assert_eq!(&v["password"], &json!(secret));
        prop_assert_eq!(&v["concat"], &json!(format!("{secret}#trucking")));
    }

    /// Structured values (lists and maps of strings and numbers) are emitted as flow YAML.
    #[test]
    fn structured_values_roundtrip(map in proptest::collection::btree_map(any::<String>(), (any::<String>(), any::<i64>(), any::<bool>()), 0..5)) {
        let json: Value = map
            .iter()
            .map(|(k, (s, n, b))| (k.clone(), json!([s, n, b, null])))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let text = berth_blueprint::yaml::to_flow_yaml(&json);
        let parsed: Value = serde_norway::from_str(&format!("root:\n  child: {text}\n")).unwrap();
        prop_assert_eq!(&parsed["root"]["child"], &json);
    }
}
