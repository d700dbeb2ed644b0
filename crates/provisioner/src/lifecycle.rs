//! Plans for an environment that exists: a change planned as a diff from what runs now, and a
//! decommission planned as the list of what goes and what stays.

use std::collections::BTreeMap;

use berth_domain::plan::{AppAction, AppChange, ChangeDiff, ChartPlan, FieldChange};
use berth_domain::{RequestSpec, Size};
use berth_runs::{PlanContext, UnitInfo};

use crate::provisioner::Provisioner;

/// A unified diff of two renderings, line by line (empty when equal).
pub(crate) fn values_diff(before: &str, after: &str) -> Vec<String> {
    if before == after {
        return Vec::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header("deployed", "after the change")
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn overrides_text(spec: &RequestSpec) -> BTreeMap<String, String> {
    spec.overrides
        .0
        .iter()
        .flat_map(|(app, values)| {
            values
                .iter()
                .map(move |(k, v)| (format!("{app}.{k}"), v.to_string()))
        })
        .collect()
}

/// The fields of the spec that differ, as people read them.
pub(crate) fn field_changes(current: &RequestSpec, next: &RequestSpec) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, before: String, after: String| {
        if before != after {
            out.push(FieldChange {
                field: field.to_owned(),
                before,
                after,
            });
        }
    };
    push(
        "size",
        current.size.label().to_owned(),
        next.size.label().to_owned(),
    );
    push(
        "description",
        current.description.as_str().to_owned(),
        next.description.as_str().to_owned(),
    );
    push(
        "owner_contact",
        current.owner_contact.as_str().to_owned(),
        next.owner_contact.as_str().to_owned(),
    );
    let version = |s: &RequestSpec| {
        s.blueprint_version
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    push("blueprint_version", version(current), version(next));
    let (before, after) = (overrides_text(current), overrides_text(next));
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        push(
            &format!("overrides.{k}"),
            before.get(k).cloned().unwrap_or_else(|| "(default)".into()),
            after.get(k).cloned().unwrap_or_else(|| "(default)".into()),
        );
    }
    out
}

impl Provisioner {
    /// What a change does, against what runs now: the spec's fields, the quota, and per app the
    /// chart version and rendered values before and after (secrets redacted on both sides).
    /// "Before" is the current spec rendered with the templates of its blueprint version.
    pub(crate) fn change_diff(
        &self,
        ctx: &PlanContext,
        current: &RequestSpec,
        after: &[ChartPlan],
        cluster_id: &str,
    ) -> Result<ChangeDiff, String> {
        let before_unit = UnitInfo {
            size: current.size.as_str().to_owned(),
            overrides: current.overrides.clone(),
            ..ctx.unit.clone()
        };
        let before_blueprint = current
            .blueprint_version
            .as_ref()
            .and_then(|v| self.templates.blueprint_at(&ctx.blueprint, v.as_str()))
            .or_else(|| self.templates.blueprint(&ctx.blueprint))
            .ok_or_else(|| format!("blueprint {:?} is not installed", ctx.blueprint))?;
        let before: BTreeMap<String, ChartPlan> = self
            .desired(&before_unit, before_blueprint, cluster_id)?
            .charts
            .into_iter()
            .map(|c| (c.app.clone(), c))
            .collect();
        let apps = after
            .iter()
            .map(|c| {
                let deployed = ctx.releases.get(&c.app);
                let rendered_before = before.get(&c.app);
                let chart_before = deployed
                    .map(|d| d.chart_version.clone())
                    .or_else(|| rendered_before.map(|b| b.version.clone()));
                let values_diff =
                    values_diff(rendered_before.map_or("", |b| b.values.as_str()), &c.values);
                let action = match &chart_before {
                    None => AppAction::Install,
                    Some(v) if *v != c.version || !values_diff.is_empty() => AppAction::Upgrade,
                    Some(_) => AppAction::Unchanged,
                };
                AppChange {
                    app: c.app.clone(),
                    action,
                    chart_before,
                    chart_after: Some(c.version.clone()),
                    revision_before: deployed.map(|d| d.revision),
                    values_diff,
                }
            })
            .collect();
        Ok(ChangeDiff {
            fields: field_changes(current, &ctx.spec),
            quota_before: current.size.quota(),
            quota_after: ctx.spec.size.quota(),
            apps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_say_only_what_differs() {
        assert!(values_diff("a: 1\n", "a: 1\n").is_empty());
        let d = values_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n");
        assert!(d.contains(&"-b: 2".to_owned()), "{d:?}");
        assert!(d.contains(&"+b: 3".to_owned()), "{d:?}");

        let cur = RequestSpec::parse(
            "Trucking",
            "",
            "x",
            "a@b.example",
            "insight",
            "medium",
        )
        .unwrap();
        let mut next = cur.clone();
        next.size = Size::Large;
        next.overrides.0.insert(
            "influxdb".into(),
            [("retention".to_owned(), serde_json::json!("30d"))].into(),
        );
        let fields: Vec<(String, String, String)> = field_changes(&cur, &next)
            .into_iter()
            .map(|f| (f.field, f.before, f.after))
            .collect();
        assert_eq!(
            fields,
            vec![
                (
                    "size".into(),
                    Size::Medium.label().into(),
                    Size::Large.label().into()
                ),
                (
                    "overrides.influxdb.retention".into(),
                    "(default)".into(),
                    "\"30d\"".into()
                ),
            ]
        );
    }
}
