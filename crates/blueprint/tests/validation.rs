//! Blueprint validation: every problem is reported with the file and line.

mod common;

use std::path::Path;

use berth_blueprint::{Blueprint, BlueprintErrorKind, ReadinessCondition, Templates};
use common::templates_root;

fn values_dir() -> std::path::PathBuf {
    templates_root().join("values")
}

fn parse(src: &str) -> Result<Blueprint, berth_blueprint::BlueprintError> {
    Blueprint::parse(src, Path::new("test.yaml"), &values_dir())
}

const HEADER: &str = "name: t\nversion: 1.0.0\napps:\n";

fn app(name: &str, deps: &[&str]) -> String {
    format!(
        "  - name: {name}\n    chart: {{repo: stable, chart: {name}, version: 1.0.0}}\n    values: certs.yaml.j2\n    depends_on: [{}]\n",
        deps.join(", ")
    )
}

#[test]
fn insight_loads_in_seed_order() {
    let templates = Templates::open(&templates_root()).unwrap();
    let bp = templates.blueprint("insight").unwrap();
    assert_eq!(bp.name(), "insight");
    assert_eq!(bp.version(), "1.0.0");
    let order: Vec<&str> = bp.install_order().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(order, ["foundation", "certs", "influxdb", "dsm"]);
    let levels: Vec<Vec<&str>> = bp
        .levels()
        .iter()
        .map(|l| l.iter().map(|a| a.name.as_str()).collect())
        .collect();
    assert_eq!(levels, [["foundation"], ["certs"], ["influxdb"], ["dsm"]]);
    let influx = bp.app("influxdb").unwrap();
    assert_eq!(
        (
            influx.chart.repo.as_str(),
            influx.chart.chart.as_str(),
            influx.chart.version.as_str()
        ),
        ("stable", "influxdb", "4.3.2")
    );
    assert_eq!(influx.readiness.condition, ReadinessCondition::Deployed);
    assert_eq!(influx.readiness.timeout.as_secs(), 600);
}

#[test]
fn levels_group_independent_apps() {
    let src = format!(
        "{HEADER}{}{}{}{}",
        app("a", &[]),
        app("b", &[]),
        app("c", &["a", "b"]),
        app("d", &["a"])
    );
    let bp = parse(&src).unwrap();
    let levels: Vec<Vec<&str>> = bp
        .levels()
        .iter()
        .map(|l| l.iter().map(|a| a.name.as_str()).collect())
        .collect();
    assert_eq!(levels, vec![vec!["a", "b"], vec!["c", "d"]]);
}

#[test]
fn unknown_key_names_file_and_line() {
    let src = format!("{HEADER}{}    colour: blue\n", app("a", &[]));
    let err = parse(&src).unwrap_err();
    assert!(matches!(err.kind, BlueprintErrorKind::Syntax(_)), "{err}");
    assert_eq!(err.line, Some(8), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("test.yaml:8:"), "{msg}");
    assert!(msg.contains("colour"), "{msg}");
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let err = parse(&format!(
        "name: t\nversion: 1\nowner: me\napps:\n{}",
        app("a", &[])
    ))
    .unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn duplicate_app_points_at_second_declaration() {
    let src = format!("{HEADER}{}{}", app("a", &[]), app("a", &[]));
    let err = parse(&src).unwrap_err();
    assert!(
        matches!(err.kind, BlueprintErrorKind::DuplicateApp(ref n) if n == "a"),
        "{err}"
    );
    assert_eq!(err.line, Some(8));
    assert!(err
        .to_string()
        .starts_with("test.yaml:8: app \"a\" is declared more than once"));
}

#[test]
fn cycle_is_reported_with_its_path() {
    let src = format!(
        "{HEADER}{}{}{}",
        app("a", &["c"]),
        app("b", &["a"]),
        app("c", &["b"])
    );
    let err = parse(&src).unwrap_err();
    match &err.kind {
        BlueprintErrorKind::Cycle(path) => assert_eq!(path, &["a", "c", "b", "a"]),
        other => panic!("expected a cycle, got {other}"),
    }
    assert_eq!(err.line, Some(4));
    assert!(err.to_string().contains("a -> c -> b -> a"), "{err}");
}

#[test]
fn self_dependency_is_a_cycle() {
    let err = parse(&format!("{HEADER}{}", app("a", &["a"]))).unwrap_err();
    assert!(matches!(err.kind, BlueprintErrorKind::Cycle(_)), "{err}");
}

#[test]
fn missing_dependency_is_reported() {
    let src = format!("{HEADER}{}{}", app("a", &[]), app("b", &["nope"]));
    let err = parse(&src).unwrap_err();
    assert!(
        matches!(&err.kind, BlueprintErrorKind::UnknownDependency { app, dependency } if app == "b" && dependency == "nope"),
        "{err}"
    );
    assert_eq!(err.line, Some(8));
}

#[test]
fn missing_template_is_reported() {
    let src = format!(
        "{HEADER}{}",
        app("a", &[]).replace("certs.yaml.j2", "nope.yaml.j2")
    );
    let err = parse(&src).unwrap_err();
    assert!(
        matches!(err.kind, BlueprintErrorKind::MissingTemplate { .. }),
        "{err}"
    );
    assert_eq!(err.line, Some(4));
    assert!(err.to_string().contains("nope.yaml.j2"));
}

#[test]
fn template_path_may_not_escape_values_dir() {
    let src = format!(
        "{HEADER}{}",
        app("a", &[]).replace("certs.yaml.j2", "../blueprints/insight.yaml")
    );
    let err = parse(&src).unwrap_err();
    assert!(matches!(err.kind, BlueprintErrorKind::Invalid(_)), "{err}");
}

#[test]
fn bad_names_and_timeouts_are_rejected() {
    let err = parse(&format!("{HEADER}{}", app("Bad_Name", &[]))).unwrap_err();
    assert!(err.to_string().contains("Bad_Name"), "{err}");
    let src = format!(
        "{HEADER}{}    readiness: {{condition: deployed, timeout: 3days}}\n",
        app("a", &[])
    );
    let err = parse(&src).unwrap_err();
    assert!(err.to_string().contains("3days"), "{err}");
    let src = format!(
        "{HEADER}{}    readiness: {{condition: eventually, timeout: 1m}}\n",
        app("a", &[])
    );
    let err = parse(&src).unwrap_err();
    assert!(matches!(err.kind, BlueprintErrorKind::Syntax(_)), "{err}");
    assert_eq!(err.line, Some(8), "{err}");
}

#[test]
fn readiness_defaults_and_applied_mode() {
    let src = format!(
        "{HEADER}{}    readiness: {{condition: applied, timeout: 90s}}\n",
        app("a", &[])
    );
    let bp = parse(&src).unwrap();
    assert_eq!(
        bp.apps()[0].readiness.condition,
        ReadinessCondition::Applied
    );
    assert!(!bp.apps()[0].readiness.condition.wait());
    let bp = parse(&format!("{HEADER}{}", app("a", &[]))).unwrap();
    assert_eq!(bp.apps()[0].readiness.timeout.as_secs(), 600);
}

#[test]
fn load_reports_missing_file() {
    let err = Blueprint::load(Path::new("/nonexistent/bp.yaml"), &values_dir()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/bp.yaml: cannot read"),
        "{err}"
    );
}
