//! The login in progress (state, nonce, PKCE verifier, where to return) travels in an
//! encrypted, short-lived cookie instead of a session record: an anonymous hit on
//! `/auth/login` writes nothing to the database. The key is derived from the client secret, so
//! every replica reads the cookie another one wrote, and nobody without the secret can read or
//! forge it. Starting logins is rate-limited per address.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use berth_db::PgPool;

use crate::api::limit::SharedLimit;

use axum::http::{header, HeaderMap, HeaderValue};
use berth_auth::{PendingLogin, LOGIN_TIMEOUT};
use cookie::{Cookie, CookieJar, Key, SameSite};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Logins an address may start a minute on average (a single sign-on redirect each), and at once.
pub const LOGINS_PER_MINUTE: u32 = 60;
pub const LOGIN_BURST: u32 = 30;

/// Encrypts, reads and removes the pending-login cookie.
#[derive(Clone)]
pub struct PendingLoginCookie {
    key: Key,
    name: &'static str,
    secure: bool,
}

impl PendingLoginCookie {
    /// `secure`: served over https, so the cookie is `Secure` and `__Host-` prefixed.
    pub fn new(client_secret: &SecretString, secure: bool) -> Self {
        let hk = Hkdf::<Sha256>::new(
            Some(b"berth pending-login cookie"),
            client_secret.expose_secret().as_bytes(),
        );
        let mut okm = [0u8; 64];
        // 64 bytes is far below HKDF-SHA256's limit of 255 × 32.
        hk.expand(b"aes-256-gcm key and signing key", &mut okm)
            .expect("64 bytes of HKDF output");
        PendingLoginCookie {
            key: Key::from(&okm),
            name: if secure {
                "__Host-berth.login"
            } else {
                "berth.login"
            },
            secure,
        }
    }

    fn base(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            // Lax: the provider's redirect back is a top-level navigation from its site.
            .same_site(SameSite::Lax)
            .build()
    }

    /// The `Set-Cookie` header that carries `pending` for the time a login may take.
    pub fn set(&self, pending: &PendingLogin) -> Result<HeaderValue, serde_json::Error> {
        let json = serde_json::to_string(pending)?;
        let mut jar = CookieJar::new();
        let mut cookie = self.base(json);
        cookie.set_max_age(cookie::time::Duration::try_from(LOGIN_TIMEOUT).ok());
        jar.private_mut(&self.key).add(cookie);
        let value = jar
            .delta()
            .next()
            .map(|c| c.encoded().to_string())
            .unwrap_or_default();
        Ok(HeaderValue::from_str(&value).expect("an encrypted cookie is header-safe"))
    }

    /// The pending login in the request's cookies, if one is there and decrypts.
    pub fn read(&self, headers: &HeaderMap) -> Option<PendingLogin> {
        let mut jar = CookieJar::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for c in Cookie::split_parse_encoded(text.to_owned()).flatten() {
                if c.name() == self.name {
                    jar.add_original(c.into_owned());
                }
            }
        }
        let cookie = jar.private(&self.key).get(self.name)?;
        serde_json::from_str(cookie.value()).ok()
    }

    /// The `Set-Cookie` header that removes it (a callback works at most once).
    pub fn clear(&self) -> HeaderValue {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        HeaderValue::from_str(&cookie.encoded().to_string()).expect("a removal is header-safe")
    }
}

/// The per-address limit on starting logins ([`LOGINS_PER_MINUTE`], [`LOGIN_BURST`]), shared by
/// every web replica.
#[derive(Clone)]
pub struct LoginLimiter(SharedLimit);

impl LoginLimiter {
    pub fn new(pool: PgPool) -> Self {
        let per_minute = NonZeroU32::new(LOGINS_PER_MINUTE).expect("non-zero");
        let burst = NonZeroU32::new(LOGIN_BURST).expect("non-zero");
        LoginLimiter(SharedLimit::new(pool, "login", per_minute, burst))
    }

    /// `Ok` when `addr` may start a login now, else how long until it may.
    pub async fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        self.0.check(addr).await
    }
}
