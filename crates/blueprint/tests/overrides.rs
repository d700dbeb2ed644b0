//! Changeable values: the `overrides:` schemas the insight blueprint ships, the messages people
//! see for refused values, and how overrides reach the rendered values.

mod common;

use std::path::Path;

use berth_blueprint::{
    Blueprint, FieldDefault, FieldKind, OverrideError, Overrides, RenderError, RenderMode,
    Templates,
};
use common::{sample_context, templates_root};
use serde_json::{json, Value};

fn templates() -> Templates {
    Templates::open(&templates_root()).expect("templates load")
}

fn insight(t: &Templates) -> &Blueprint {
    t.blueprint("insight").expect("insight")
}

/// The errors for `overrides`, as (field, message) pairs.
fn refused(overrides: Value) -> Vec<(String, String)> {
    let t = templates();
    let errors: Vec<OverrideError> = insight(&t)
        .validate_overrides(&overrides)
        .expect_err("should be refused");
    errors.into_iter().map(|e| (e.field, e.message)).collect()
}

fn one_error(overrides: Value) -> (String, String) {
    let mut errors = refused(overrides.clone());
    assert_eq!(errors.len(), 1, "{overrides}: {errors:?}");
    errors.remove(0)
}

const DURATION: &str = "Use a duration such as 30d or 720h.";
const SIZE: &str = "Use a size from 1Gi to 2000Gi, such as 50Gi.";
const REPLICAS: &str = "Use a whole number from 1 to 10.";

#[test]
fn insight_declares_its_changeable_values_for_a_form() {
    let t = templates();
    let fields = insight(&t).changeable();
    let names: Vec<(&str, &str, &str)> = fields
        .iter()
        .map(|f| (f.app.as_str(), f.key.as_str(), f.field.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("influxdb", "retention", "overrides.influxdb.retention"),
            (
                "influxdb",
                "storage_size",
                "overrides.influxdb.storage_size"
            ),
            ("dsm", "replicas", "overrides.dsm.replicas"),
        ]
    );
    let [retention, storage, replicas] = &fields[..] else {
        unreachable!()
    };
    assert_eq!(retention.kind, FieldKind::String);
    assert_eq!(retention.title, "Data retention");
    assert!(!retention.description.is_empty());
    assert_eq!(retention.default, FieldDefault::Chart);
    assert_eq!(retention.hint, DURATION);
    assert!(retention.pattern.is_some());

    assert_eq!(storage.kind, FieldKind::String);
    assert_eq!(storage.hint, SIZE);
    assert_eq!(storage.default.for_size("small"), Some(&json!("20Gi")));
    assert_eq!(storage.default.for_size("medium"), Some(&json!("100Gi")));
    assert_eq!(storage.default.for_size("large"), Some(&json!("500Gi")));

    assert_eq!(replicas.kind, FieldKind::Integer);
    assert_eq!((replicas.minimum, replicas.maximum), (Some(1), Some(10)));
    assert_eq!(replicas.pattern, None);
    assert_eq!(replicas.hint, REPLICAS);
    assert_eq!(replicas.default.for_size("small"), Some(&json!(1)));
    assert_eq!(replicas.default.for_size("medium"), Some(&json!(2)));
    assert_eq!(replicas.default.for_size("large"), Some(&json!(4)));

    // What a page receives, as JSON.
    let as_json = serde_json::to_value(replicas).unwrap();
    assert_eq!(as_json["kind"], "integer");
    assert_eq!(
        as_json["default"],
        json!({"by_size": {"small": 1, "medium": 2, "large": 4}})
    );
}

#[test]
fn valid_overrides_are_returned_as_a_plain_object() {
    let t = templates();
    let given = json!({
        "influxdb": {"retention": "30d", "storage_size": "50Gi"},
        "dsm": {"replicas": 3},
    });
    let overrides = insight(&t).validate_overrides(&given).unwrap();
    assert_eq!(overrides.get("influxdb", "retention"), Some(&json!("30d")));
    assert_eq!(overrides.get("dsm", "replicas"), Some(&json!(3)));
    assert_eq!(serde_json::to_value(&overrides).unwrap(), given);
    let back: Overrides = serde_json::from_value(given).unwrap();
    assert_eq!(back, overrides);

    for ok in ["1h", "720h", "30d", "52w", "99999d"] {
        assert!(
            insight(&t)
                .validate_overrides(&json!({"influxdb": {"retention": ok}}))
                .is_ok(),
            "{ok}"
        );
    }
    for ok in ["1Gi", "50Gi", "999Gi", "1999Gi", "2000Gi"] {
        assert!(
            insight(&t)
                .validate_overrides(&json!({"influxdb": {"storage_size": ok}}))
                .is_ok(),
            "{ok}"
        );
    }
    for ok in [1, 10] {
        assert!(insight(&t)
            .validate_overrides(&json!({"dsm": {"replicas": ok}}))
            .is_ok());
    }
}

#[test]
fn no_overrides_is_an_empty_map() {
    let t = templates();
    for none in [json!(null), json!({}), json!({"dsm": {}})] {
        let o = insight(&t).validate_overrides(&none).unwrap();
        assert!(o.is_empty(), "{none}");
        assert_eq!(serde_json::to_value(&o).unwrap(), json!({}), "{none}");
    }
    assert_eq!(serde_json::to_string(&Overrides::default()).unwrap(), "{}");
}

#[test]
fn a_bad_retention_says_what_a_duration_looks_like() {
    for bad in [
        json!("30 days"),
        json!("30"),
        json!("0d"),
        json!("1.5d"),
        json!("30m"),
        json!("30dd"),
        json!(""),
        json!(30),
        json!(null),
    ] {
        assert_eq!(
            one_error(json!({"influxdb": {"retention": bad}})),
            ("overrides.influxdb.retention".into(), DURATION.into()),
            "{bad}"
        );
    }
}

#[test]
fn a_bad_storage_size_says_what_a_size_looks_like() {
    for bad in [
        json!("50G"),
        json!("50gi"),
        json!("0Gi"),
        json!("2001Gi"),
        json!("3000Gi"),
        json!("10Ti"),
        json!("050Gi"),
        json!(" 50Gi"),
        json!(50),
    ] {
        assert_eq!(
            one_error(json!({"influxdb": {"storage_size": bad}})),
            ("overrides.influxdb.storage_size".into(), SIZE.into()),
            "{bad}"
        );
    }
}

#[test]
fn bad_replicas_ask_for_a_whole_number_in_range() {
    for bad in [
        json!(0),
        json!(11),
        json!(-1),
        json!(2.5),
        json!("3"),
        json!(true),
    ] {
        assert_eq!(
            one_error(json!({"dsm": {"replicas": bad}})),
            ("overrides.dsm.replicas".into(), REPLICAS.into()),
            "{bad}"
        );
    }
}

#[test]
fn unknown_keys_and_apps_are_named() {
    assert_eq!(
        one_error(json!({"dsm": {"foo": 1}})),
        (
            "overrides.dsm.foo".into(),
            "dsm has no changeable value 'foo'.".into()
        )
    );
    assert_eq!(
        one_error(json!({"mongodb": {"replicas": 1}})),
        (
            "overrides.mongodb".into(),
            "insight has no app 'mongodb'.".into()
        )
    );
    assert_eq!(
        one_error(json!({"certs": {"email": "x"}})),
        (
            "overrides.certs".into(),
            "certs has no changeable values.".into()
        )
    );
    assert_eq!(one_error(json!({"dsm": 3})).0, "overrides.dsm");
    assert_eq!(one_error(json!(["dsm"])).0, "overrides");
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = refused(json!({
        "influxdb": {"retention": "forever", "storage_size": "1Pi", "colour": "blue"},
        "dsm": {"replicas": 0},
        "nope": {},
    }));
    assert_eq!(
        errors,
        [
            ("overrides.dsm.replicas".to_owned(), REPLICAS.to_owned()),
            (
                "overrides.influxdb.colour".to_owned(),
                "influxdb has no changeable value 'colour'.".to_owned()
            ),
            (
                "overrides.influxdb.retention".to_owned(),
                DURATION.to_owned()
            ),
            (
                "overrides.influxdb.storage_size".to_owned(),
                SIZE.to_owned()
            ),
            (
                "overrides.nope".to_owned(),
                "insight has no app 'nope'.".to_owned()
            ),
        ]
    );
    let err = OverrideError {
        field: "overrides.dsm.replicas".into(),
        message: REPLICAS.into(),
    };
    assert_eq!(
        err.to_string(),
        "overrides.dsm.replicas: Use a whole number from 1 to 10."
    );
}

fn render(overrides: &Overrides, size: berth_domain::Size) -> Vec<(String, Value)> {
    let t = templates();
    let mut ctx = sample_context();
    ctx.unit =
        berth_blueprint::UnitInputs::new(&ctx.unit.company, &ctx.unit.name, &ctx.unit.slug, size);
    t.renderer()
        .render_blueprint_with_overrides(insight(&t), &ctx, overrides, RenderMode::Preview)
        .expect("render")
        .into_iter()
        .map(|r| (r.app.name, r.values.values))
        .collect()
}

fn app<'a>(rendered: &'a [(String, Value)], name: &str) -> &'a Value {
    &rendered.iter().find(|(n, _)| n == name).unwrap().1
}

/// Without overrides, each size renders what the templates' size tables rendered before the
/// values became changeable (20Gi/1, 100Gi/2, 500Gi/4), and no retention at all.
#[test]
fn defaults_render_as_before_for_every_size() {
    use berth_domain::Size;
    for (size, storage, replicas) in [
        (Size::Small, "20Gi", 1),
        (Size::Medium, "100Gi", 2),
        (Size::Large, "500Gi", 4),
    ] {
        let r = render(&Overrides::default(), size);
        let influx = app(&r, "influxdb");
        assert_eq!(influx["persistence"]["size"], storage, "{size:?}");
        assert!(influx.get("retentionPolicy").is_none(), "{size:?}");
        assert_eq!(app(&r, "dsm")["replicaCount"], json!(replicas), "{size:?}");
    }
    // `render_blueprint` is the same as no overrides.
    let t = templates();
    let ctx = sample_context();
    let plain = t
        .renderer()
        .render_blueprint(insight(&t), &ctx, RenderMode::Preview)
        .unwrap();
    let with = t
        .renderer()
        .render_blueprint_with_overrides(
            insight(&t),
            &ctx,
            &Overrides::default(),
            RenderMode::Preview,
        )
        .unwrap();
    assert_eq!(plain, with);
}

#[test]
fn overrides_reach_the_rendered_values_and_nothing_else_changes() {
    use berth_domain::Size;
    let defaults = render(&Overrides::default(), Size::Medium);
    let mut o = Overrides::new();
    o.set("influxdb", "retention", json!("30d"));
    o.set("influxdb", "storage_size", json!("250Gi"));
    o.set("dsm", "replicas", json!(7));
    let changed = render(&o, Size::Medium);

    let influx = app(&changed, "influxdb");
    assert_eq!(influx["persistence"]["size"], "250Gi");
    assert_eq!(influx["retentionPolicy"], json!({"duration": "30d"}));
    assert_eq!(app(&changed, "dsm")["replicaCount"], json!(7));

    // Put the defaults back and drop the retention: the rest is untouched.
    let mut back = changed.clone();
    for (name, values) in &mut back {
        match name.as_str() {
            "influxdb" => {
                values["persistence"]["size"] = json!("100Gi");
                values.as_object_mut().unwrap().remove("retentionPolicy");
            }
            "dsm" => values["replicaCount"] = json!(2),
            _ => {}
        }
    }
    assert_eq!(back, defaults);

    // One override alone leaves the other values at their defaults.
    let mut only = Overrides::new();
    only.set("dsm", "replicas", json!(10));
    let r = render(&only, Size::Small);
    assert_eq!(app(&r, "dsm")["replicaCount"], json!(10));
    assert_eq!(app(&r, "influxdb")["persistence"]["size"], "20Gi");
}

#[test]
fn rendering_refuses_overrides_the_blueprint_refuses() {
    let t = templates();
    let mut o = Overrides::new();
    o.set("dsm", "replicas", json!(50));
    o.set("dsm", "foo", json!(1));
    let err = t
        .renderer()
        .render_blueprint_with_overrides(insight(&t), &sample_context(), &o, RenderMode::Real)
        .unwrap_err();
    match &err {
        RenderError::Overrides {
            blueprint,
            version,
            errors,
        } => {
            assert_eq!((blueprint.as_str(), version.as_str()), ("insight", "1.0.0"));
            assert_eq!(errors.len(), 2, "{errors:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "overrides refused by blueprint insight 1.0.0: overrides.dsm.foo: dsm has no changeable \
         value 'foo'.; overrides.dsm.replicas: Use a whole number from 1 to 10."
    );
}

#[test]
fn effective_values_list_every_app() {
    let t = templates();
    let mut o = Overrides::new();
    o.set("influxdb", "retention", json!("4w"));
    let values = insight(&t).effective_values(&o, "large");
    assert_eq!(
        serde_json::to_value(&values).unwrap(),
        json!({
            "foundation": {},
            "certs": {},
            "influxdb": {"retention": "4w", "storage_size": "500Gi"},
            "dsm": {"replicas": 4},
        })
    );
}

// --- the schema a blueprint ships is checked when it loads -------------------------------------

fn parse(src: &str) -> Result<Blueprint, berth_blueprint::BlueprintError> {
    Blueprint::parse(
        src,
        Path::new("test.yaml"),
        &templates_root().join("values"),
    )
}

fn with_overrides(schema: &str) -> String {
    format!(
        "name: t\nversion: 1.0.0\napps:\n  - name: a\n    chart: {{repo: stable, chart: a, version: 1.0.0}}\n    values: certs.yaml.j2\n    overrides:\n{}",
        schema
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    )
}

#[test]
fn a_blueprint_schema_that_breaks_the_rules_does_not_load() {
    let good = "type: object\nadditionalProperties: false\nproperties:\n  n:\n    title: N\n    description: d\n    type: integer\n    minimum: 1\n    maximum: 3\n    default: 2\n";
    let bp = parse(&with_overrides(good)).unwrap();
    assert_eq!(bp.changeable()[0].default, FieldDefault::Value(json!(2)));

    for (bad, expected) in [
        (
            good.replace("additionalProperties: false\n", ""),
            "additionalProperties",
        ),
        (good.replace("default: 2", "default: 5"), "not accepted"),
        (good.replace("    title: N\n", ""), "title"),
        (good.replace("type: object", "type: array"), "type: object"),
        (
            good.replace("minimum: 1", "minimum: one"),
            "not a valid JSON Schema",
        ),
        (
            format!("$schema: http://json-schema.org/draft-07/schema#\n{good}"),
            "2020-12",
        ),
    ] {
        let err = parse(&with_overrides(&bad)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("test.yaml:4: app \"a\": overrides"),
            "{msg}"
        );
        assert!(msg.contains(expected), "{expected}: {msg}");
    }
}
