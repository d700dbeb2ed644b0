//! The inputs the suite sends: hostile text, and the bodies, query strings and ids built from it.

use uuid::Uuid;

/// Text as hand-edited URLs, forms and scripts may carry it.
pub(super) fn nasty_text() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "new",
        "0",
        "-1",
        "99999999999999999999999",
        "-9223372036854775809",
        "1e999",
        "NaN",
        "true",
        "null",
        "[]",
        "{}",
        "9999-12-31",
        "9999-12-31T23:59:59-23:59",
        "-9999-01-01T00:00:00+00:01",
        "+10000-01-01",
        "2026-02-30",
        "0000-00-00",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffffff",
        "1.00000000-0000-0000-0000-000000000000",
        "99999999999999999999.x",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "%00",
        "\u{0}\u{1}\u{7f}",
        "\r\nSet-Cookie: x=y",
        "\u{202e}evil\u{200b}",
        "💥🚢",
        "javascript:alert(1)",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:22/",
        "berth_pat_",
        "berth_pat_zz",
        "latest",
        "requests.",
        "step.*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(10_000));
    v.push("é".repeat(5_000));
    v.push(format!("berth_pat_{}", "f".repeat(64)));
    // A few deterministic pseudo-random strings of any characters.
    let mut seed: u64 = 0x5eed_ba11;
    for len in [3, 17, 64, 300] {
        let s: String = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from_u32((seed % 0x11_0000) as u32).unwrap_or('\u{fffd}')
            })
            .collect();
        v.push(s);
    }
    v
}

/// Every field name a server function takes (extra fields are ignored by those that do not).
pub(super) const FORM_FIELDS: &[&str] = &[
    "id",
    "account",
    "token",
    "environment_id",
    "request_id",
    "run_id",
    "delivery_id",
    "disabled",
    "action",
    "reason",
    "confirm",
    "name",
    "slug",
    "description",
    "owner_contact",
    "blueprint",
    "size",
    "decision",
    "note",
    "plan_hash",
    "override_capacity",
    "url",
    "events",
    "days",
    "scopes",
    "roles",
    "max_token_days",
    "q",
    "status",
    "query[page]",
    "query[from]",
    "query[to]",
    "query[kind]",
    "query[after]",
    "query[before]",
];

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(super) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Raw bodies (form-encoded unless said) every server function is sent.
pub(super) fn server_fn_bodies() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let form = "application/x-www-form-urlencoded";
    let all = |value: &str| -> Vec<u8> {
        let value = encode(value);
        let pairs: Vec<String> = FORM_FIELDS
            .iter()
            .map(|f| format!("{}={value}", encode(f)))
            .collect();
        pairs.join("&").into_bytes()
    };
    let big = "x".repeat(25_000);
    vec![
        ("no arguments", form, Vec::new()),
        ("ids that are not ids", form, all("new")),
        (
            "numbers past any integer",
            form,
            all("99999999999999999999999"),
        ),
        (
            "ids of nothing",
            form,
            all("00000000-0000-0000-0000-000000000000"),
        ),
        ("dates past the calendar", form, all("9999-12-31")),
        ("control characters", form, all("\u{0}\r\n\u{202e}")),
        // ~900 KB: under the body limit, every field far over its own.
        ("every field 25,000 characters", form, all(&big)),
        (
            "bytes that are not UTF-8",
            form,
            b"id=%FF%FE&environment_id=%C0%80&name=%ED%A0%80&query%5Bpage%5D=%FF".to_vec(),
        ),
        (
            "repeated and nested keys",
            form,
            b"id=1&id=2&query[page][x]=1&query=&disabled[]=true&environment_id[]=x".to_vec(),
        ),
        ("not a form at all", form, b"\x00\x01\x02%%%&&&==".to_vec()),
        (
            "JSON instead of a form",
            "application/json",
            br#"{"id": {"$ne": 1}, "query": [1, 2]}"#.to_vec(),
        ),
        // Over BERTH_MAX_BODY_KB (1 MiB): 413 before anything reads it.
        ("a body over the limit", form, vec![b'a'; 1_200_000]),
    ]
}

/// Bad JSON bodies for the API's POST endpoints.
pub(super) fn json_bodies() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let json = "application/json";
    vec![
        ("empty", json, Vec::new()),
        ("broken JSON", json, b"{\"name\": ".to_vec()),
        ("not an object", json, b"[1, 2, 3]".to_vec()),
        ("null", json, b"null".to_vec()),
        ("a string", json, b"\"approve\"".to_vec()),
        ("an empty object", json, b"{}".to_vec()),
        (
            "wrong types",
            json,
            br#"{"name": 5, "slug": [], "size": {}, "plan_hash": 1, "reason": false, "confirm": null, "overrides": "x", "override_capacity": "yes"}"#.to_vec(),
        ),
        (
            "unknown values",
            json,
            br#"{"name": "Trucking", "slug": "trucking", "owner_contact": "x@y.example", "blueprint": "nope", "size": "galactic", "plan_hash": "zz", "reason": "r", "confirm": "wrong"}"#.to_vec(),
        ),
        ("a number past any float", json, br#"{"size": 1e999}"#.to_vec()),
        (
            "duplicate keys",
            json,
            br#"{"name": "a", "name": "b", "reason": "a", "reason": "b"}"#.to_vec(),
        ),
        (
            "control characters and bad escapes",
            json,
            b"{\"name\": \"\\u0000\\ud800\", \"reason\": \"\x01\"}".to_vec(),
        ),
        ("bytes that are not UTF-8", json, b"{\"name\": \"\xff\xfe\"}".to_vec()),
        ("nested 10,000 deep", json, {
            let mut v = vec![b'['; 10_000];
            v.extend(vec![b']'; 10_000]);
            v
        }),
        ("a field of 900,000 characters", json, {
            format!(r#"{{"name": "{0}", "reason": "{0}", "confirm": "{0}"}}"#, "x".repeat(300_000)).into_bytes()
        }),
        ("a body over the limit", json, {
            format!(r#"{{"name": "{}"}}"#, "x".repeat(1_200_000)).into_bytes()
        }),
        ("not JSON's content type", "text/plain", b"{}".to_vec()),
        ("a form instead of JSON", "application/x-www-form-urlencoded", b"name=a&size=small".to_vec()),
        (
            "overrides of the wrong shape",
            json,
            br#"{"overrides": {"dsm": {"replicas": [1, {"x": null}]}, "": {"": ""}}}"#.to_vec(),
        ),
    ]
}

/// Query strings for the timeline and the export (dates, cursors, kinds).
pub(super) fn history_queries() -> Vec<String> {
    let mut v: Vec<String> = [
        "to=9999-12-31",
        "from=9999-12-31&to=9999-12-31",
        "from=garbage",
        "to=garbage",
        "from=2026-12-02&to=2026-12-01",
        "from=%2B10000-01-01",
        "to=9999-12-31T23:59:59-23:59",
        "from=-9999-01-01T00:00:00%2B00:01",
        "from=2026-02-30",
        "from=0000-00-00",
        "to=2026-12-01T25:61:00Z",
        "after=abc",
        "after=-5",
        "after=99999999999999999999999",
        "before=1e10",
        "after=1&before=2",
        "after=1&page=latest",
        "page=first",
        "page=99999999999999999999",
        "kind=%00",
        "kind=nope",
        "kind=requests.",
        "kind=step.*",
        "from=2026-01-01&from=2027-01-01",
        "from[]=x",
        "%ff=%fe",
        "&&&==&",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("kind={}", "x".repeat(20_000)));
    v.push(format!("after={}", "9".repeat(5_000)));
    v
}

/// Query strings for the lists (environments, auditors' view).
pub(super) fn list_queries() -> Vec<String> {
    let mut v: Vec<String> = [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=99999999999999999999",
        "status=bogus",
        "status=",
        "after=garbage",
        "before=garbage",
        "after=99999999999999999999999.x",
        "after=1.00000000-0000-0000-0000-000000000000",
        "after=-99999999999999999.00000000-0000-0000-0000-000000000000",
        "after=1.1&before=1.1",
        "page=99999999999999999999",
        "page=-1",
        "page=latest",
        "q=%00",
        "q=%ff",
        "q=%25%5F%5C",
        "sort=../../x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("q={}", "x".repeat(20_000)));
    v
}

/// Ids in paths that are not (or are not of anything).
pub(super) fn bad_ids() -> Vec<String> {
    let mut v: Vec<String> = [
        "new",
        "0",
        "-1",
        "%00",
        "%20",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-fffffffffffff",
        "..%2F..%2Fetc%2Fpasswd",
        "%F0%9F%92%A5",
        "%ff%fe",
        "{id}",
        "all",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(Uuid::new_v4().to_string());
    v.push("a".repeat(3_000));
    v
}
