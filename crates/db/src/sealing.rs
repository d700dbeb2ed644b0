//! Sealing the secrets Berth must read back (webhook signing secrets) before they are stored:
//! AES-256-GCM with a random nonce per value and the row's id as associated data, so a sealed
//! value copied into another row does not open. A sealed value starts with a format byte and
//! the id of the key that sealed it, so a previous key can still open it while start-up seals
//! everything again with the current one (key rotation).

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};

const FORMAT: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// Why a key could not be read or a value not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a sealing key is 32 random bytes in base64 (`openssl rand -base64 32`); {0}")]
    BadKey(String),
    #[error(
        "sealed with key {found}, which is not configured (configured: {configured}); set the \
         key that sealed it as BERTH_SEALING_KEY_PREVIOUS (key lost: docs/security.md, Secrets \
         at rest)"
    )]
    UnknownKey { found: String, configured: String },
    #[error("the sealed value is damaged or belongs to another row")]
    Damaged,
    #[error(
        "{sealed} webhook signing secret(s) are sealed and BERTH_SEALING_KEY is not set: set the \
         key that sealed them (key lost: docs/security.md, Secrets at rest)"
    )]
    NoKey { sealed: usize },
}

/// One AES-256 key. Its id (the first 8 bytes of the key's SHA-256, in hex) is stored with
/// each value it seals and is safe to show; the key never is.
#[derive(Clone)]
pub struct SealingKey {
    cipher: Aes256Gcm,
    id: [u8; KEY_ID_LEN],
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingKey({})", self.id())
    }
}

impl SealingKey {
    /// Reads a key written as base64 (standard alphabet, padded) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey("this is not base64".into()))?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey(format!(
                "this one is {} bytes",
                bytes.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| SealError::BadKey("the cipher refused it".into()))?;
        let digest = Sha256::digest(&bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(Self { cipher, id })
    }

    /// The key's id as stored with what it sealed.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }
}

/// The keys a process holds: the current one seals; it and the previous one open.
#[derive(Clone, Debug)]
pub struct Sealer {
    current: SealingKey,
    previous: Option<SealingKey>,
}

impl Sealer {
    pub fn new(current: SealingKey, previous: Option<SealingKey>) -> Self {
        Self { current, previous }
    }

    /// The current key's id.
    pub fn key_id(&self) -> String {
        self.current.id()
    }

    /// Seals `plain` for the row `row` (its id's bytes) with the current key.
    pub fn seal(&self, plain: &[u8], row: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| SealError::BadKey(format!("no randomness: {e}")))?;
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: row,
                },
            )
            .map_err(|_| SealError::Damaged)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value [`seal`](Self::seal) made for the same row, with whichever held key made it.
    pub fn open(&self, sealed: &[u8], row: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() <= HEADER_LEN || sealed[0] != FORMAT {
            return Err(SealError::Damaged);
        }
        let (id, rest) = sealed[1..].split_at(KEY_ID_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey {
                found: hex::encode(id),
                configured: std::iter::once(&self.current)
                    .chain(&self.previous)
                    .map(SealingKey::id)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: row,
                },
            )
            .map_err(|_| SealError::Damaged)
    }

    /// Whether `sealed` was sealed with the current key (else start-up seals it again).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + KEY_ID_LEN) == Some(&self.current.id[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    fn key(text: &str) -> SealingKey {
        SealingKey::from_base64(text).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_for_its_row_only() {
        let sealer = Sealer::new(key(A), None);
        let sealed = sealer.seal(b"signing key", b"row-1").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"signing key"));
        assert_eq!(sealer.open(&sealed, b"row-1").unwrap(), b"signing key");
        assert_eq!(sealer.open(&sealed, b"row-2"), Err(SealError::Damaged));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open(&flipped, b"row-1"), Err(SealError::Damaged));
        assert_eq!(
            sealer.open(&sealed[..HEADER_LEN], b"row-1"),
            Err(SealError::Damaged)
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let sealer = Sealer::new(key(A), None);
        assert_ne!(
            sealer.seal(b"same", b"row").unwrap(),
            sealer.seal(b"same", b"row").unwrap()
        );
    }

    #[test]
    fn a_previous_key_opens_until_the_value_is_sealed_again() {
        let old = Sealer::new(key(A), None);
        let sealed = old.seal(b"secret", b"row").unwrap();
        let rotated = Sealer::new(key(B), Some(key(A)));
        assert!(!rotated.is_current(&sealed));
        assert_eq!(rotated.open(&sealed, b"row").unwrap(), b"secret");
        let again = rotated.seal(b"secret", b"row").unwrap();
        assert!(rotated.is_current(&again));

        let without = Sealer::new(key(B), None);
        let err = without.open(&sealed, b"row").unwrap_err();
        assert_eq!(
            err,
            SealError::UnknownKey {
                found: key(A).id(),
                configured: key(B).id()
            }
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(matches!(
            SealingKey::from_base64("not base64!"),
            Err(SealError::BadKey(_))
        ));
        assert!(matches!(
            SealingKey::from_base64("c2hvcnQ="),
            Err(SealError::BadKey(m)) if m.contains("5 bytes")
        ));
        assert_eq!(key(A).id().len(), 16);
        assert!(!format!("{:?}", key(A)).contains(A));
    }
}
