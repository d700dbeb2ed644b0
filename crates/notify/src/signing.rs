//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` of
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the bytes behind `whsec_<base64>`.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `webhook-signature` value for one message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        STANDARD.encode(mac(key, id, timestamp, body).finalize().into_bytes())
    )
}

/// Whether one of the space-separated `v1,` signatures in `header` is the message's (compared in
/// constant time), as a receiver checks it.
pub fn verify(key: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header.split_whitespace().any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|tag| mac(key, id, timestamp, body).verify_slice(&tag).is_ok())
    })
}

/// The key behind a `whsec_<base64>` secret.
pub fn key_from_secret(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(berth_db::webhooks::SECRET_PREFIX)?)
        .ok()
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its reference libraries' test).
    #[test]
    fn matches_the_specification_example() {
        let key = key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bad {sig}")
        ));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            body,
            &sig
        ));
        assert!(!verify(&key, "msg_other", 1614265330, body, &sig));
        assert!(!verify(
            b"another key",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &sig
        ));
        assert_eq!(key_from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
    }
}
