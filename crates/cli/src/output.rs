//! Human output: tables of the API's JSON, a plan's summary, a run's steps. (`--output json`
//! prints the API's JSON as it came instead.)

use comfy_table::{presets, Table};
use serde_json::Value;

/// A value as a cell: strings bare, `null` as `-`, anything else as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` (UTC as Berth sends it); `-` when absent.
pub fn time(v: &Value) -> String {
    match v.as_str() {
        Some(s) if s.len() >= 19 && s.is_char_boundary(19) => {
            format!("{} {}", &s[..10], &s[11..19])
        }
        Some(s) => s.to_owned(),
        None => "-".to_owned(),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if !header.is_empty() {
        t.set_header(header.iter().copied());
    }
    t
}

/// Renders a table whose columns are separated by two spaces, without trailing blanks.
fn render(mut t: Table) -> String {
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows of (label, value) as two aligned columns.
pub fn fields(rows: &[(&str, String)]) -> String {
    let mut t = table(&[]);
    for (k, v) in rows {
        t.add_row(vec![format!("{k}:"), v.clone()]);
    }
    render(t)
}

/// `GET /environments`' items.
pub fn environments(items: &[Value]) -> String {
    let mut t = table(&[
        "ID",
        "NAME",
        "SLUG",
        "STATUS",
        "SIZE",
        "BLUEPRINT",
        "CREATED BY",
        "UPDATED",
    ]);
    for e in items {
        t.add_row(vec![
            cell(&e["id"]),
            cell(&e["name"]),
            cell(&e["slug"]),
            cell(&e["status"]),
            cell(&e["size"]),
            cell(&e["blueprint"]),
            cell(&e["created_by"]),
            time(&e["updated_at"]),
        ]);
    }
    render(t)
}

/// One environment (`GET /environments/{id}`).
pub fn environment(e: &Value) -> String {
    let overrides = e["overrides"]
        .as_object()
        .map(|apps| {
            apps.iter()
                .flat_map(|(app, values)| {
                    values
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(move |(k, v)| format!("{app}.{k}={}", cell(v)))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into());
    fields(&[
        ("ID", cell(&e["id"])),
        ("Name", cell(&e["name"])),
        ("Slug", cell(&e["slug"])),
        ("Status", cell(&e["status"])),
        ("Description", cell(&e["description"])),
        ("Owner", cell(&e["owner_contact"])),
        ("Blueprint", cell(&e["blueprint"])),
        ("Blueprint version", cell(&e["blueprint_version"])),
        ("Size", cell(&e["size"])),
        ("Overrides", overrides),
        ("Created by", cell(&e["created_by"])),
        ("Created at", time(&e["created_at"])),
    ])
}

/// One request (`GET /requests/{id}` and what creating or deciding answers).
pub fn request(r: &Value) -> String {
    fields(&[
        ("ID", cell(&r["id"])),
        ("Kind", cell(&r["kind"])),
        ("Status", cell(&r["status"])),
        (
            "Environment",
            format!(
                "{} ({})",
                cell(&r["environment_name"]),
                cell(&r["environment_id"])
            ),
        ),
        ("Name", cell(&r["name"])),
        ("Slug", cell(&r["slug"])),
        ("Size", cell(&r["size"])),
        ("Blueprint", cell(&r["blueprint"])),
        ("Owner", cell(&r["owner_contact"])),
        ("Description", cell(&r["description"])),
        ("Requested by", cell(&r["requested_by"])),
        ("Requested at", time(&r["requested_at"])),
        ("Decided by", cell(&r["decided_by"])),
        ("Decided at", time(&r["decided_at"])),
        ("Note", cell(&r["decision_note"])),
    ])
}

/// A run and its steps (`GET /runs/{id}`).
pub fn run(r: &Value) -> String {
    let head = fields(&[
        ("Run", cell(&r["id"])),
        ("Status", cell(&r["status"])),
        (
            "Environment",
            format!(
                "{} ({})",
                cell(&r["environment_id"]),
                cell(&r["environment_status"])
            ),
        ),
        ("Request", cell(&r["request_id"])),
        (
            "Blueprint",
            format!(
                "{} {}",
                cell(&r["blueprint"]),
                cell(&r["blueprint_version"])
            ),
        ),
        ("Started", time(&r["started_at"])),
        ("Finished", time(&r["finished_at"])),
        ("Error", cell(&r["error"])),
    ]);
    let mut t = table(&["STEP", "KIND", "STATUS", "ATTEMPTS", "FINISHED", "NOTE"]);
    for s in r["steps"].as_array().into_iter().flatten() {
        let note = if !s["error"].is_null() {
            cell(&s["error"])
        } else {
            cell(&s["blocked_reason"])
        };
        t.add_row(vec![
            cell(&s["name"]),
            cell(&s["kind"]),
            cell(&s["status"]),
            format!("{}/{}", cell(&s["attempts"]), cell(&s["max_attempts"])),
            time(&s["finished_at"]),
            note,
        ]);
    }
    format!("{head}\n\n{}", render(t))
}

/// A page of the timeline (`GET /environments/{id}/history`).
pub fn events(events: &[Value]) -> String {
    let mut t = table(&["ID", "AT", "KIND", "ACTOR", "TOKEN", "DETAILS"]);
    for e in events {
        let mut details = cell(&e["details"]);
        if details == "{}" {
            details = "-".into();
        }
        if details.chars().count() > 80 {
            details = details.chars().take(79).chain(['…']).collect();
        }
        t.add_row(vec![
            cell(&e["id"]),
            time(&e["at"]),
            cell(&e["kind"]),
            cell(&e["actor"]),
            cell(&e["token"]),
            details,
        ]);
    }
    render(t)
}

/// `GET /whoami`.
pub fn whoami(w: &Value) -> String {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into())
    };
    fields(&[
        ("Name", cell(&w["name"])),
        ("User", cell(&w["user_id"])),
        ("Roles", list(&w["roles"])),
        ("Token", cell(&w["token"]["name"])),
        ("Scopes", list(&w["token"]["scopes"])),
        ("Expires", time(&w["token"]["expires_at"])),
    ])
}

/// CPU in millicores as Kubernetes writes it ("4", "500m").
fn cpu(millis: &Value) -> String {
    match millis.as_u64() {
        Some(m) if m.is_multiple_of(1000) => (m / 1000).to_string(),
        Some(m) => format!("{m}m"),
        None => "?".into(),
    }
}

/// Memory in MiB as Kubernetes writes it ("8Gi", "512Mi").
fn memory(mib: &Value) -> String {
    match mib.as_u64() {
        Some(m) if m.is_multiple_of(1024) => format!("{}Gi", m / 1024),
        Some(m) => format!("{m}Mi"),
        None => "?".into(),
    }
}

fn quota(q: &Value) -> String {
    format!(
        "{} CPU, {} memory, {} pods",
        cpu(&q["cpu_millis"]),
        memory(&q["memory_mib"]),
        cell(&q["pods"])
    )
}

/// A request's plan (`GET /requests/{id}/plan`): its status and hash, then what it would do,
/// section by section, from the plan document.
pub fn plan(p: &Value) -> String {
    let mut out = vec![fields(&[
        ("Plan", cell(&p["id"])),
        ("Request", cell(&p["request_id"])),
        ("Status", cell(&p["status"])),
        ("Hash", cell(&p["hash"])),
        ("Error", cell(&p["error"])),
        ("Computed", time(&p["finished_at"])),
    ])];
    let d = &p["document"];
    if d.is_object() {
        out.push(String::new());
        out.extend(plan_summary(d));
    }
    out.join("\n")
}

/// The plan document in a few lines per section.
pub fn plan_summary(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let aws = &d["aws"];
    let changes = aws["changes"].as_array().map_or(&[][..], Vec::as_slice);
    out.push(format!(
        "AWS: stack {} ({}), {} resource change(s)",
        cell(&aws["stack_name"]),
        cell(&aws["kind"]),
        changes.len()
    ));
    for c in changes {
        out.push(format!(
            "  {} {} ({})",
            cell(&c["action"]),
            cell(&c["logical_id"]),
            cell(&c["resource_type"])
        ));
    }
    let k = &d["kubernetes"];
    out.push(format!(
        "Kubernetes: cluster {}, project {}, namespace {}{}",
        cell(&k["cluster"]),
        cell(&k["project"]),
        cell(&k["namespace"]),
        if k["namespace_exists"] == Value::Bool(true) {
            " (exists)"
        } else {
            " (new)"
        }
    ));
    if k["quota"].is_object() {
        out.push(format!("  quota: {}", quota(&k["quota"])));
    }
    let charts = d["charts"].as_array().map_or(&[][..], Vec::as_slice);
    out.push(format!("Charts ({}, in install order):", charts.len()));
    for c in charts {
        out.push(format!(
            "  {}: {}/{} {}",
            cell(&c["app"]),
            cell(&c["repo"]),
            cell(&c["chart"]),
            cell(&c["version"])
        ));
    }
    let cap = &d["capacity"];
    if cap.is_object() {
        let total = |f: &str| {
            Value::from(
                cap["committed"][f].as_u64().unwrap_or(0)
                    + cap["requested"][f].as_u64().unwrap_or(0),
            )
        };
        let fits = cap["requested"]["cpu_millis"].as_u64() == Some(0)
            || (total("cpu_millis").as_u64() <= cap["allocatable_cpu_millis"].as_u64()
                && total("memory_mib").as_u64() <= cap["allocatable_memory_mib"].as_u64());
        out.push(format!(
            "Capacity: {} of {} CPU and {} of {} memory with this request{}",
            cpu(&total("cpu_millis")),
            cpu(&cap["allocatable_cpu_millis"]),
            memory(&total("memory_mib")),
            memory(&cap["allocatable_memory_mib"]),
            if fits {
                ""
            } else {
                " (over capacity: approving needs --override-capacity)"
            }
        ));
    }
    if let Some(change) = d["change"].as_object() {
        out.push("Change:".into());
        for f in change["fields"].as_array().into_iter().flatten() {
            out.push(format!(
                "  {}: {} -> {}",
                cell(&f["field"]),
                cell(&f["before"]),
                cell(&f["after"])
            ));
        }
        for a in change["apps"].as_array().into_iter().flatten() {
            if a["action"] == "unchanged" {
                continue;
            }
            out.push(format!(
                "  {} {}: {} -> {}",
                cell(&a["action"]),
                cell(&a["app"]),
                cell(&a["chart_before"]),
                cell(&a["chart_after"])
            ));
        }
    }
    if let Some(removal) = d["removal"].as_object() {
        let apps = removal["apps"]
            .as_array()
            .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        out.push(format!(
            "Removes: apps {apps}; namespace {}; project {}; stack {}",
            cell(&removal["namespace"]),
            cell(&removal["project"]),
            cell(&removal["stack_name"])
        ));
        for r in removal["retained"].as_array().into_iter().flatten() {
            out.push(format!(
                "  keeps {} ({}): {}",
                cell(&r["name"]),
                cell(&r["resource_type"]),
                cell(&r["why"])
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn environments_line_up_in_columns() {
        let items = vec![
            json!({"id": "0b0c6c3e-0000-4000-8000-000000000001", "name": "Trucking",
                   "slug": "trucking", "status": "ready", "blueprint": "insight", "size": "small",
                   "created_by": "CI", "updated_at": "2026-12-03T07:37:01.123456Z"}),
            json!({"id": "0b0c6c3e-0000-4000-8000-000000000002", "name": "California charging stations",
                   "slug": "ca-charging", "status": "submitted", "blueprint": "insight",
                   "size": "large", "created_by": "Maria Manager",
                   "updated_at": "2026-12-02T23:00:00Z"}),
        ];
        let text = environments(&items);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID"), "{text}");
        assert!(lines[1].contains("Trucking"));
        assert!(lines[1].contains("2026-12-03 07:37:01"));
        assert!(lines[2].contains("California charging stations"));
        // Columns line up: STATUS starts at the same place on every line.
        let at = lines[0].find("STATUS").unwrap();
        assert_eq!(&lines[1][at..at + 5], "ready");
        assert_eq!(&lines[2][at..at + 9], "submitted");
        assert!(lines.iter().all(|l| l == &l.trim_end()));
    }

    #[test]
    fn absent_values_are_dashes() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&json!("")), "-");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(time(&Value::Null), "-");
        let text = request(&json!({"id": "R", "status": "submitted", "decided_by": null}));
        assert!(text.contains("Decided by:"), "{text}");
        assert!(text
            .lines()
            .any(|l| l.starts_with("Decided by:") && l.ends_with('-')));
    }

    #[test]
    fn a_plan_is_summarised_by_section() {
        let answer = json!({
            "id": "P", "request_id": "R", "status": "ready", "hash": "ab12", "error": null,
            "created_at": "2026-12-03T07:00:00Z", "finished_at": "2026-12-03T07:00:02Z",
            "document": {
                "aws": {"stack_name": "berth-seaview-trucking", "kind": "create",
                        "changes": [{"action": "add", "logical_id": "RegistrySecret",
                                     "resource_type": "AWS::SecretsManager::Secret"}]},
                "kubernetes": {"cluster": "berth", "project": "seaview-trucking",
                               "namespace": "seaview-trucking", "namespace_exists": false,
                               "quota": {"cpu_millis": 4000, "memory_mib": 8192, "pods": 40}},
                "charts": [{"app": "dsm", "repo": "stable", "chart": "dsm", "version": "2.7.0"}],
                "capacity": {"allocatable_cpu_millis": 8000, "allocatable_memory_mib": 16384,
                             "committed": {"cpu_millis": 6000, "memory_mib": 4096, "pods": 0},
                             "requested": {"cpu_millis": 4000, "memory_mib": 8192, "pods": 40}}
            }
        });
        let text = plan(&answer);
        assert!(text.contains("Hash:"), "{text}");
        assert!(text.contains("ab12"));
        assert!(text.contains("AWS: stack berth-seaview-trucking (create), 1 resource change(s)"));
        assert!(text.contains("  add RegistrySecret (AWS::SecretsManager::Secret)"));
        assert!(text.contains("namespace seaview-trucking (new)"));
        assert!(text.contains("quota: 4 CPU, 8Gi memory, 40 pods"));
        assert!(text.contains("  dsm: stable/dsm 2.7.0"));
        assert!(
            text.contains(
                "Capacity: 10 of 8 CPU and 12Gi of 16Gi memory with this request (over capacity"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_change_and_a_removal_say_what_differs() {
        let lines = plan_summary(&json!({
            "aws": {}, "kubernetes": {}, "charts": [],
            "change": {"fields": [{"field": "size", "before": "small", "after": "large"}],
                       "apps": [{"app": "dsm", "action": "upgrade", "chart_before": "2.6.0", "chart_after": "2.7.0"},
                                {"app": "certs", "action": "unchanged"}]},
            "removal": {"apps": ["dsm", "certs"], "namespace": "n", "project": "p", "stack_name": "s",
                        "retained": [{"name": "Logs", "resource_type": "AWS::S3::Bucket", "why": "kept 90 days"}]}
        }));
        assert!(
            lines.contains(&"  size: small -> large".to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(&"  upgrade dsm: 2.6.0 -> 2.7.0".to_owned()));
        assert!(!lines.iter().any(|l| l.contains("certs:")));
        assert!(
            lines.contains(&"Removes: apps dsm, certs; namespace n; project p; stack s".to_owned())
        );
        assert!(lines.contains(&"  keeps Logs (AWS::S3::Bucket): kept 90 days".to_owned()));
    }

    #[test]
    fn steps_show_their_error() {
        let text = run(&json!({
            "id": "RUN", "status": "failed", "environment_id": "E", "environment_status": "failed",
            "request_id": "R", "blueprint": "insight", "blueprint_version": "1.0.0",
            "error": "chart:influxdb failed",
            "steps": [
                {"name": "stack", "kind": "ensure_stack", "status": "succeeded", "attempts": 1, "max_attempts": 5},
                {"name": "chart:influxdb", "kind": "deploy_chart", "status": "failed", "attempts": 1,
                 "max_attempts": 5, "error": "INSTALLATION FAILED"}
            ]
        }));
        let line = text
            .lines()
            .find(|l| l.starts_with("chart:influxdb"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("failed"));
        assert!(line.contains("1/5"));
        assert!(line.ends_with("INSTALLATION FAILED"));
    }
}
