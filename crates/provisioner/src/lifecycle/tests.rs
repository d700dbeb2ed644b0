use super::*;

#[test]
fn diffs_say_only_what_differs() {
    assert!(values_diff("a: 1\n", "a: 1\n").is_empty());
    let d = values_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n");
    assert!(d.contains(&"-b: 2".to_owned()), "{d:?}");
    assert!(d.contains(&"+b: 3".to_owned()), "{d:?}");

    let cur = RequestSpec::parse("Trucking", "", "x", "a@b.example", "insight", "medium").unwrap();
    let mut next = cur.clone();
    next.size = berth_domain::Size::Large;
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
                berth_domain::Size::Medium.label().into(),
                berth_domain::Size::Large.label().into()
            ),
            (
                "overrides.influxdb.retention".into(),
                "(default)".into(),
                "\"30d\"".into()
            ),
        ]
    );
}
