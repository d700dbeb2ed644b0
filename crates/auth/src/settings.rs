//! Single sign-on settings, read once at start-up and validated as a whole: a bad configuration
//! yields one [`ConfigError`] that lists every problem, so an operator fixes them in one go.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use berth_domain::Role;
use openidconnect::url::{Host, Url};
use secrecy::{ExposeSecret, SecretString};

/// Scopes requested when `BERTH_OIDC_SCOPES` is not set: the standard ones every provider knows.
/// Provider-specific scopes (such as `groups` for Okta or the local test IdP) are opt-in, since
/// Keycloak, Entra ID and Google refuse scopes they do not know.
pub const DEFAULT_SCOPES: &str = "openid profile email";
/// Claim read for group membership when `BERTH_OIDC_GROUPS_CLAIM` is not set.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// Names of the environment variables read by [`OidcSettings::from_env`].
pub mod env {
    pub const ISSUER: &str = "BERTH_OIDC_ISSUER";
    pub const CLIENT_ID: &str = "BERTH_OIDC_CLIENT_ID";
    pub const CLIENT_SECRET: &str = "BERTH_OIDC_CLIENT_SECRET";
    pub const REDIRECT_URL: &str = "BERTH_OIDC_REDIRECT_URL";
    pub const SCOPES: &str = "BERTH_OIDC_SCOPES";
    pub const GROUPS_CLAIM: &str = "BERTH_OIDC_GROUPS_CLAIM";
    pub const ROLE_MAP: &str = "BERTH_OIDC_ROLE_MAP";
    pub const POST_LOGOUT_REDIRECT_URL: &str = "BERTH_OIDC_POST_LOGOUT_REDIRECT_URL";
    pub const RECHECK_SECS: &str = "BERTH_OIDC_RECHECK_SECS";
}

/// How often, by default, a session's groups are confirmed at the provider.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(300);
/// The bounds of [`OidcSettings::recheck_every`]: often enough to follow a removed role within
/// the hour, rarely enough not to hammer the provider.
pub const RECHECK_RANGE: std::ops::RangeInclusive<u64> = 30..=3600;

/// Everything Berth needs to sign people in with one OpenID Connect provider.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The issuer exactly as the provider writes it in discovery (`iss`); compared byte for byte.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Berth's callback, registered at the provider.
    pub redirect_url: Url,
    /// Scopes to request; `openid` is always sent.
    pub scopes: Vec<String>,
    /// Claim holding the user's groups: a top-level name (`groups`, `roles`, a URI), or a dotted
    /// path into nested objects (`realm_access.roles`) when no top-level claim has that name.
    pub groups_claim: String,
    /// IdP group (name or id, as the provider sends it) → Berth roles. Case-sensitive.
    pub role_map: BTreeMap<String, Vec<Role>>,
    /// Where the provider sends the browser after logout (must be registered there).
    pub end_session_redirect: Url,
    /// How long a session's roles stand before the provider is asked again (refresh token,
    /// else UserInfo) whether the person is still in their groups.
    pub recheck_every: Duration,
}

/// One problem in the settings: which variable, and what is wrong with it (never its value when
/// it is a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub message: String,
}

/// Every problem found in the single sign-on settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid single sign-on settings:")?;
        for p in &self.problems {
            write!(f, "\n  - {}: {}", p.variable, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl OidcSettings {
    /// Reads and validates the `BERTH_OIDC_*` environment variables (see [`env`](mod@env)).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads and validates settings from any source of `BERTH_OIDC_*` values (a config file
    /// layer, a test map). Empty values count as missing.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let mut problem = |variable: &'static str, message: String| {
            problems.push(ConfigProblem { variable, message })
        };

        let issuer_url = match get(env::ISSUER) {
            None => {
                problem(
                    env::ISSUER,
                    "is required: the provider's issuer URL, e.g. https://login.example.com/realms/seaview"
                        .into(),
                );
                None
            }
            Some(raw) => match check_url(&raw, "issuer") {
                Ok(url) if url.query().is_some() => {
                    problem(env::ISSUER, "must not have a query string".into());
                    None
                }
                Ok(_) => Some(raw),
                Err(msg) => {
                    problem(env::ISSUER, msg);
                    None
                }
            },
        };

        let client_id = get(env::CLIENT_ID);
        if client_id.is_none() {
            problem(
                env::CLIENT_ID,
                "is required: the client id registered for Berth at the provider".into(),
            );
        }
        let client_secret = get(env::CLIENT_SECRET);
        if client_secret.is_none() {
            problem(
                env::CLIENT_SECRET,
                "is required: Berth is a confidential client (the secret issued with the client id)"
                    .into(),
            );
        }

        let redirect_url = match get(env::REDIRECT_URL) {
            None => {
                problem(
                    env::REDIRECT_URL,
                    "is required: Berth's callback URL as registered at the provider, e.g. https://berth.example.com/auth/callback"
                        .into(),
                );
                None
            }
            Some(raw) => match check_url(&raw, "redirect URL") {
                Ok(url) => Some(url),
                Err(msg) => {
                    problem(env::REDIRECT_URL, msg);
                    None
                }
            },
        };

        let scopes = parse_scopes(get(env::SCOPES).as_deref().unwrap_or(DEFAULT_SCOPES));
        if let Some(bad) = scopes.iter().find(|s| !s.chars().all(is_scope_char)) {
            problem(env::SCOPES, format!("'{bad}' is not a valid scope token"));
        }

        let groups_claim =
            get(env::GROUPS_CLAIM).unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned());

        let role_map = match get(env::ROLE_MAP) {
            None => {
                problem(
                    env::ROLE_MAP,
                    "is required: which IdP groups give which Berth roles, e.g. \
                     berth-managers=manager;berth-admins=admin;berth-auditors=auditor"
                        .into(),
                );
                None
            }
            Some(raw) => match parse_role_map(&raw) {
                Ok(map) => Some(map),
                Err(errors) => {
                    for e in errors {
                        problem(env::ROLE_MAP, e);
                    }
                    None
                }
            },
        };

        let end_session_redirect = match get(env::POST_LOGOUT_REDIRECT_URL) {
            Some(raw) => match check_url(&raw, "post-logout redirect URL") {
                Ok(url) => Some(url),
                Err(msg) => {
                    problem(env::POST_LOGOUT_REDIRECT_URL, msg);
                    None
                }
            },
            // Default: the root of the site the callback lives on.
            None => redirect_url.as_ref().map(|u| {
                let mut root = u.clone();
                root.set_path("/");
                root.set_query(None);
                root
            }),
        };

        let recheck_every = match get(env::RECHECK_SECS) {
            None => DEFAULT_RECHECK,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(secs) if RECHECK_RANGE.contains(&secs) => Duration::from_secs(secs),
                _ => {
                    problem(
                        env::RECHECK_SECS,
                        format!(
                            "must be a number of seconds from {} to {}",
                            RECHECK_RANGE.start(),
                            RECHECK_RANGE.end()
                        ),
                    );
                    DEFAULT_RECHECK
                }
            },
        };

        match (
            issuer_url,
            client_id,
            client_secret,
            redirect_url,
            role_map,
            end_session_redirect,
        ) {
            (
                Some(issuer_url),
                Some(client_id),
                Some(client_secret),
                Some(redirect_url),
                Some(role_map),
                Some(end_session_redirect),
            ) if problems.is_empty() => Ok(Self {
                issuer_url,
                client_id,
                client_secret: SecretString::from(client_secret),
                redirect_url,
                scopes,
                groups_claim,
                role_map,
                end_session_redirect,
                recheck_every,
            }),
            _ => Err(ConfigError { problems }),
        }
    }

    /// Berth roles for a user's groups: the union of every mapped group, sorted, no duplicates.
    /// No mapped group means no roles — never a default role.
    pub fn roles_for(&self, groups: &[String]) -> Vec<Role> {
        let mut roles: Vec<Role> = groups
            .iter()
            .filter_map(|g| self.role_map.get(g))
            .flatten()
            .copied()
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// The client secret, for the token request only.
    pub(crate) fn secret(&self) -> &str {
        self.client_secret.expose_secret()
    }
}

/// RFC 6749 §3.3 scope-token characters.
fn is_scope_char(c: char) -> bool {
    c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c)
}

fn parse_scopes(raw: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in raw.split(|c: char| c.is_whitespace() || c == ',') {
        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes
}

/// An absolute http(s) URL without fragment; plain http only on loopback, where nothing else can
/// see the traffic.
fn check_url(raw: &str, what: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not a valid {what} ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "must use https (plain http is accepted only for loopback addresses such as 127.0.0.1), got {raw}"
            ))
        }
        other => return Err(format!("must be an http(s) URL, got scheme '{other}'")),
    }
    if url.fragment().is_some() {
        return Err(format!("must not contain a fragment (#…), got {raw}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Parses `group=role[,role];group=role…` (`;` or newlines between entries). The split is at
/// the **last** `=`, so group names that contain `=` (LDAP DNs such as `cn=admins,ou=groups`)
/// work. Returns every problem found.
pub fn parse_role_map(raw: &str) -> Result<BTreeMap<String, Vec<Role>>, Vec<String>> {
    let mut map: BTreeMap<String, Vec<Role>> = BTreeMap::new();
    let mut errors = Vec::new();
    for entry in raw
        .split([';', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let Some((group, roles)) = entry.rsplit_once('=') else {
            errors.push(format!("entry '{entry}' is not group=role"));
            continue;
        };
        let group = group.trim();
        if group.is_empty() {
            errors.push(format!("entry '{entry}' has no group name"));
            continue;
        }
        let mut parsed = Vec::new();
        for role in roles.split(',').map(str::trim) {
            match role.parse::<Role>() {
                Ok(r) if !parsed.contains(&r) => parsed.push(r),
                Ok(_) => {}
                Err(_) => errors.push(format!(
                    "unknown role '{role}' for group '{group}' (roles are: {})",
                    Role::ALL.map(Role::as_str).join(", ")
                )),
            }
        }
        if map.contains_key(group) {
            errors.push(format!("group '{group}' is listed twice; give it one entry with a comma-separated role list"));
            continue;
        }
        parsed.sort();
        map.insert(group.to_owned(), parsed);
    }
    if map.is_empty() && errors.is_empty() {
        errors.push("maps no group to a role".into());
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const GOOD: &[(&str, &str)] = &[
        (env::ISSUER, "http://127.0.0.1:4444"),
        (env::CLIENT_ID, "berth-local"),
        (env::CLIENT_SECRET, "berth-local-secret"),
        (env::REDIRECT_URL, "http://127.0.0.1:3000/auth/callback"),
        (
            env::ROLE_MAP,
            "berth-managers=manager; berth-admins=admin;berth-auditors=auditor",
        ),
    ];

    #[test]
    fn good_settings_parse_with_defaults() {
        let s = OidcSettings::from_lookup(lookup(GOOD)).unwrap();
        assert_eq!(s.issuer_url, "http://127.0.0.1:4444");
        assert_eq!(s.scopes, vec!["openid", "profile", "email"]);
        assert_eq!(s.groups_claim, "groups");
        assert_eq!(s.end_session_redirect.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(s.role_map["berth-admins"], vec![Role::Admin]);
        assert_eq!(s.role_map.len(), 3);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = OidcSettings::from_lookup(lookup(&[
            (env::ISSUER, "http://idp.example.com"),
            (env::REDIRECT_URL, "not a url"),
            (env::ROLE_MAP, "berth-admins=root;=manager;oops"),
            (env::SCOPES, "openid \"bad\""),
        ]))
        .unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        for v in [
            env::ISSUER,
            env::CLIENT_ID,
            env::CLIENT_SECRET,
            env::REDIRECT_URL,
            env::SCOPES,
        ] {
            assert!(vars.contains(&v), "{v} missing from {err}");
        }
        assert_eq!(
            vars.iter().filter(|v| **v == env::ROLE_MAP).count(),
            3,
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("must use https"), "{text}");
        assert!(text.contains("unknown role 'root'"), "{text}");
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let mut pairs = GOOD.to_vec();
        pairs.retain(|(k, _)| *k != env::ISSUER);
        let err = OidcSettings::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(!err.to_string().contains("berth-local-secret"));
        let ok = OidcSettings::from_lookup(lookup(GOOD)).unwrap();
        assert!(!format!("{ok:?}").contains("berth-local-secret"));
    }

    #[test]
    fn role_map_accepts_multiple_roles_and_ldap_names() {
        let map =
            parse_role_map("cn=ops,ou=groups,dc=example=admin,auditor\nstaff = manager").unwrap();
        assert_eq!(
            map["cn=ops,ou=groups,dc=example"],
            vec![Role::Admin, Role::Auditor]
        );
        assert_eq!(map["staff"], vec![Role::Manager]);
        assert!(parse_role_map(" ; ").is_err());
        assert!(parse_role_map("a=admin;a=manager").is_err());
    }

    #[test]
    fn roles_are_the_union_of_mapped_groups_and_nothing_by_default() {
        let s = OidcSettings::from_lookup(lookup(GOOD)).unwrap();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.roles_for(&g(&[
                "berth-admins",
                "berth-managers",
                "berth-admins",
                "other"
            ])),
            vec![Role::Manager, Role::Admin]
        );
        assert!(s.roles_for(&g(&["other"])).is_empty());
        assert!(s.roles_for(&[]).is_empty());
        // Case-sensitive on purpose: group names are identifiers at the IdP.
        assert!(s.roles_for(&g(&["BERTH-ADMINS"])).is_empty());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_url("http://127.0.0.1:4444", "x").is_ok());
        assert!(check_url("http://[::1]:4444", "x").is_ok());
        assert!(check_url("http://localhost:4444", "x").is_ok());
        assert!(check_url("http://10.0.0.1", "x").is_err());
        assert!(check_url("https://idp.example.com/realms/a", "x").is_ok());
        assert!(check_url("https://idp.example.com/#x", "x").is_err());
        assert!(check_url("ftp://idp.example.com", "x").is_err());
    }

    #[test]
    fn scopes_are_split_and_deduplicated() {
        assert_eq!(
            parse_scopes("openid  profile,email openid"),
            vec!["openid", "profile", "email"]
        );
    }
}
