//! Several published versions of a blueprint in one templates folder.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_blueprint::{Templates, TemplatesError};
use common::templates_root;

/// A fresh templates folder: the shipped values templates and `insight.yaml` (1.0.0), plus the
/// given extra blueprint files. Removed on drop.
struct TempTemplates(PathBuf);

impl TempTemplates {
    fn new(extra: &[(&str, String)]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "berth-blueprint-versions-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("blueprints")).unwrap();
        std::fs::create_dir_all(root.join("values")).unwrap();
        let shipped = templates_root();
        for entry in std::fs::read_dir(shipped.join("values")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, root.join("values").join(path.file_name().unwrap())).unwrap();
        }
        std::fs::write(root.join("blueprints/insight.yaml"), insight_1_0_0()).unwrap();
        for (name, text) in extra {
            std::fs::write(root.join("blueprints").join(name), text).unwrap();
        }
        Self(root)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempTemplates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn insight_1_0_0() -> String {
    std::fs::read_to_string(templates_root().join("blueprints/insight.yaml")).unwrap()
}

/// `insight` at `version`, optionally with other chart versions for dsm and influxdb.
fn insight_at(version: &str, dsm: &str, influxdb: &str) -> String {
    let text = insight_1_0_0();
    assert!(text.contains("\nversion: 1.0.0\n"));
    assert!(text.contains("chart: dsm\n      version: 2.7.0\n"));
    assert!(text.contains("chart: influxdb\n      version: 4.3.2\n"));
    text.replacen("\nversion: 1.0.0\n", &format!("\nversion: {version}\n"), 1)
        .replace(
            "chart: dsm\n      version: 2.7.0\n",
            &format!("chart: dsm\n      version: {dsm}\n"),
        )
        .replace(
            "chart: influxdb\n      version: 4.3.2\n",
            &format!("chart: influxdb\n      version: {influxdb}\n"),
        )
}

fn chart_versions(t: &Templates, version: &str) -> (String, String) {
    let bp = t.blueprint_at("insight", version).expect(version);
    (
        bp.app("dsm").unwrap().chart.version.clone(),
        bp.app("influxdb").unwrap().chart.version.clone(),
    )
}

#[test]
fn the_shipped_folder_has_insight_1_0_0_only() {
    let t = Templates::open(&templates_root()).unwrap();
    assert_eq!(t.versions("insight"), ["1.0.0"]);
    assert_eq!(t.blueprint("insight").unwrap().version(), "1.0.0");
    assert!(t.blueprint_at("insight", "1.0.0").is_some());
    assert!(t.blueprint_at("insight", "1.1.0").is_none());
    assert!(t.versions("nope").is_empty());
    assert_eq!(t.blueprints().count(), 1);
}

#[test]
fn the_newest_version_is_the_default_and_older_ones_stay_reachable() {
    let dir = TempTemplates::new(&[("insight-1.1.0.yaml", insight_at("1.1.0", "2.8.0", "4.4.0"))]);
    let t = Templates::open(dir.path()).unwrap();
    assert_eq!(t.versions("insight"), ["1.1.0", "1.0.0"]);
    let newest = t.blueprint("insight").unwrap();
    assert_eq!(newest.version(), "1.1.0");
    assert_eq!(
        newest.source(),
        dir.path().join("blueprints/insight-1.1.0.yaml")
    );
    assert_eq!(
        chart_versions(&t, "1.1.0"),
        ("2.8.0".into(), "4.4.0".into())
    );
    assert_eq!(
        chart_versions(&t, "1.0.0"),
        ("2.7.0".into(), "4.3.2".into())
    );
    assert!(t.blueprint_at("insight", "1.2.0").is_none());
    assert!(t.blueprint_at("other", "1.0.0").is_none());
    // One entry per blueprint, the newest.
    let all: Vec<(&str, &str)> = t.blueprints().map(|b| (b.name(), b.version())).collect();
    assert_eq!(all, [("insight", "1.1.0")]);
}

#[test]
fn versions_are_ordered_as_semantic_versions_not_as_text() {
    let dir = TempTemplates::new(&[
        ("insight-1.1.0.yaml", insight_at("1.1.0", "2.8.0", "4.4.0")),
        (
            "insight-1.10.0.yaml",
            insight_at("1.10.0", "2.8.0", "4.4.0"),
        ),
        ("insight-1.9.0.yaml", insight_at("1.9.0", "2.8.0", "4.4.0")),
        (
            "insight-2.0.0-rc.1.yaml",
            insight_at("2.0.0-rc.1", "2.8.0", "4.4.0"),
        ),
        ("insight-0.9.0.yaml", insight_at("0.9.0", "2.7.0", "4.3.2")),
    ]);
    let t = Templates::open(dir.path()).unwrap();
    assert_eq!(
        t.versions("insight"),
        ["2.0.0-rc.1", "1.10.0", "1.9.0", "1.1.0", "1.0.0", "0.9.0"]
    );
    assert_eq!(t.blueprint("insight").unwrap().version(), "2.0.0-rc.1");
}

#[test]
fn a_duplicate_version_names_both_files() {
    let dir = TempTemplates::new(&[("insight-copy.yaml", insight_1_0_0())]);
    let err = Templates::open(dir.path()).unwrap_err();
    match &err {
        TemplatesError::DuplicateBlueprint {
            name,
            version,
            file,
            other,
        } => {
            assert_eq!((name.as_str(), version.as_str()), ("insight", "1.0.0"));
            // Files load in name order: insight-copy.yaml, then insight.yaml.
            assert_eq!(file, &dir.path().join("blueprints/insight.yaml"));
            assert_eq!(other, &dir.path().join("blueprints/insight-copy.yaml"));
        }
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("insight.yaml"), "{msg}");
    assert!(msg.contains("insight-copy.yaml"), "{msg}");
    assert!(msg.contains("version 1.0.0"), "{msg}");
}

#[test]
fn build_metadata_does_not_make_another_version() {
    let dir = TempTemplates::new(&[(
        "insight-1.0.0-build.yaml",
        insight_at("1.0.0+build.7", "2.7.0", "4.3.2"),
    )]);
    let err = Templates::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, TemplatesError::DuplicateBlueprint { .. }),
        "{err}"
    );
}

#[test]
fn a_version_must_be_semantic() {
    let dir = TempTemplates::new(&[("insight-next.yaml", insight_at("next", "2.8.0", "4.4.0"))]);
    let err = Templates::open(dir.path()).unwrap_err();
    let msg = err.to_string();
    let line = 1 + insight_1_0_0()
        .lines()
        .position(|l| l.starts_with("version:"))
        .unwrap();
    assert!(msg.contains(&format!("insight-next.yaml:{line}:")), "{msg}");
    assert!(msg.contains("semantic version"), "{msg}");
}
