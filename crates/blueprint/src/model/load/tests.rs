use super::*;

#[test]
fn app_line_finds_quoted_and_commented_names() {
    let src = "name: x\napps:\n  - name: a\n    chart: {}\n  - name: \"b\" # second\n  - name: a\n";
    assert_eq!(app_line(src, "a", 0), Some(3));
    assert_eq!(app_line(src, "b", 0), Some(5));
    assert_eq!(app_line(src, "a", 1), Some(6));
    assert_eq!(app_line(src, "x", 0), None);
}

#[test]
fn labels() {
    assert!(check_label("influxdb", "app").is_ok());
    assert!(check_label("dsm-2", "app").is_ok());
    for bad in ["", "-a", "a-", "Influx", "a_b", &"a".repeat(54)] {
        assert!(check_label(bad, "app").is_err(), "{bad:?}");
    }
}

#[test]
fn safe_join_refuses_escapes() {
    let d = Path::new("/t");
    assert!(safe_join(d, "a.yaml.j2").is_some());
    assert!(safe_join(d, "../a").is_none());
    assert!(safe_join(d, "/etc/passwd").is_none());
    assert!(safe_join(d, "").is_none());
}
