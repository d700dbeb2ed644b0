//! The signature check docs/api.md gives receivers, run as written (python3) against messages
//! signed by Berth's own signing code: it accepts the real one and refuses a tampered body, a
//! wrong secret and an old timestamp.

use std::process::Command;

use berth_notify::signing;

/// The first ```python block after "## Webhooks" in docs/api.md.
fn documented_check() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let webhooks = &doc[doc.find("## Webhooks").expect("a webhooks section")..];
    let start = webhooks.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + webhooks[start..].find("```").unwrap();
    webhooks[start..end].to_owned()
}

/// Runs the documented `verify` on one message; its printed answer.
fn python_verify(secret: &str, id: &str, timestamp: i64, signature: &str, body: &str) -> bool {
    let driver = format!(
        "{}\nimport sys\nprint(verify(sys.argv[1], {{'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]}}, sys.argv[5].encode()))\n",
        documented_check()
    );
    let out = Command::new("python3")
        .args([
            "-c",
            &driver,
            secret,
            id,
            &timestamp.to_string(),
            signature,
            body,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match String::from_utf8_lossy(&out.stdout).trim() {
        "True" => true,
        "False" => false,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn the_documented_signature_check_accepts_berths_signatures_only() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let key = signing::key_from_secret(secret).unwrap();
    let body = r#"{"type":"run.failed","data":{"event_id":7}}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sig = signing::sign(&key, "evt_7", now, body.as_bytes());
    assert!(python_verify(secret, "evt_7", now, &sig, body));
    assert!(python_verify(
        secret,
        "evt_7",
        now,
        &format!("v1,AAAA {sig}"),
        body
    ));
    assert!(!python_verify(
        secret,
        "evt_7",
        now,
        &sig,
        &body.replace('7', "8")
    ));
    assert!(!python_verify(
        "whsec_c2VjcmV0c2VjcmV0c2VjcmV0",
        "evt_7",
        now,
        &sig,
        body
    ));
    let old = now - 3600;
    let old_sig = signing::sign(&key, "evt_7", old, body.as_bytes());
    assert!(!python_verify(secret, "evt_7", old, &old_sig, body));
}
