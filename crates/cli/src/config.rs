//! Where the CLI finds Berth and its token: `BERTH_URL` and `BERTH_TOKEN`, else the file
//! `berth login` wrote (`<config dir>/berth/credentials.json`, readable by its owner only).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// What `berth login` stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

/// The credentials file: `$XDG_CONFIG_HOME/berth/credentials.json` (or `~/.config/…`) on
/// Linux, the platform's configuration folder elsewhere.
pub fn path() -> anyhow::Result<PathBuf> {
    let dir = dirs::config_dir()
        .context("no configuration folder for this user (set HOME or XDG_CONFIG_HOME)")?;
    Ok(dir.join("berth").join("credentials.json"))
}

/// Reads the stored credentials; `None` when there are none.
pub fn load(file: &Path) -> anyhow::Result<Option<Credentials>> {
    match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a Berth credentials file", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Writes the credentials to `file`, created with mode 0600 (its folder 0700) and moved into
/// place, so the token is never readable by others, even for a moment.
pub fn save(file: &Path, creds: &Credentials) -> anyhow::Result<()> {
    let dir = file
        .parent()
        .context("the credentials file has no folder")?;
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut out = private_file(&tmp)?;
    let json = serde_json::to_string_pretty(creds)?;
    out.write_all(json.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

/// Removes the stored credentials; whether there were any.
pub fn remove(file: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", file.display())),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// A Berth URL as the CLI keeps it: `http(s)://host[:port][/prefix]`, without a trailing `/`
/// or `/api/v1` (pasting the API's URL works too).
pub fn normalize_url(raw: &str) -> anyhow::Result<String> {
    let mut url = raw.trim().trim_end_matches('/').to_owned();
    if let Some(stripped) = url.strip_suffix("/api/v1") {
        url = stripped.to_owned();
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(url),
        _ => bail!("{raw:?} is not a Berth URL: give one like https://berth.example.com"),
    }
}

/// A token as Berth issues it: `berth_pat_…` (a person's) or `berth_sat_…` (a service
/// account's). Checked before sending, so a pasted wrong value is caught at once.
pub fn check_token(raw: &str) -> anyhow::Result<String> {
    let token = raw.trim();
    if token.is_empty() {
        bail!("no token given");
    }
    if !(token.starts_with("berth_pat_") || token.starts_with("berth_sat_"))
        || token.contains(char::is_whitespace)
    {
        bail!("that is not a Berth API token: one starts with berth_pat_ or berth_sat_");
    }
    Ok(token.to_owned())
}

/// Berth's URL and token for this call: each from its environment variable when set, else from
/// the stored credentials. A stored token is only sent to the URL it was stored for.
pub fn resolve(
    env_url: Option<String>,
    env_token: Option<String>,
    stored: Option<Credentials>,
) -> anyhow::Result<Credentials> {
    let env_url = env_url
        .filter(|v| !v.trim().is_empty())
        .map(|u| normalize_url(&u))
        .transpose()
        .context("BERTH_URL")?;
    let env_token = env_token.filter(|v| !v.trim().is_empty());
    let stored = stored
        .map(|c| -> anyhow::Result<Credentials> {
            Ok(Credentials {
                url: normalize_url(&c.url)?,
                token: c.token,
            })
        })
        .transpose()?;
    let url = match (&env_url, &stored) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) => c.url.clone(),
        (None, None) => bail!("not logged in: run `berth login`, or set BERTH_URL and BERTH_TOKEN"),
    };
    let token = match (env_token, &stored) {
        (Some(t), _) => t.trim().to_owned(),
        (None, Some(c)) if c.url == url => c.token.clone(),
        (None, Some(c)) => bail!(
            "BERTH_URL is {url} but the stored token is for {}: set BERTH_TOKEN too, or run \
             `berth login` for {url}",
            c.url
        ),
        (None, None) => bail!("no token: run `berth login`, or set BERTH_TOKEN"),
    };
    Ok(Credentials { url, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(url: &str, token: &str) -> Credentials {
        Credentials {
            url: url.into(),
            token: token.into(),
        }
    }

    #[test]
    fn urls_are_kept_without_a_trailing_slash_or_the_api_prefix() {
        assert_eq!(
            normalize_url(" https://berth.example.com/ ").unwrap(),
            "https://berth.example.com"
        );
        assert_eq!(
            normalize_url("http://127.0.0.1:3000/api/v1/").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert!(normalize_url("berth.example.com").is_err());
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("https://").is_err());
    }

    #[test]
    fn tokens_must_look_like_berths() {
        assert!(check_token(" berth_pat_abc\n").is_ok());
        assert!(check_token("berth_sat_abc").is_ok());
        assert!(check_token("ghp_abc").is_err());
        assert!(check_token("").is_err());
    }

    #[test]
    fn environment_variables_override_the_file() {
        let file = Some(creds("https://berth.example.com", "berth_pat_file"));
        assert_eq!(
            resolve(None, None, file.clone()).unwrap(),
            creds("https://berth.example.com", "berth_pat_file")
        );
        assert_eq!(
            resolve(None, Some("berth_sat_env".into()), file.clone()).unwrap(),
            creds("https://berth.example.com", "berth_sat_env")
        );
        assert_eq!(
            resolve(
                Some("https://other.example.com/".into()),
                Some("berth_sat_env".into()),
                file.clone()
            )
            .unwrap(),
            creds("https://other.example.com", "berth_sat_env")
        );
        // The stored token never goes to another Berth.
        let e = resolve(Some("https://other.example.com".into()), None, file).unwrap_err();
        assert!(e.to_string().contains("stored token is for"), "{e}");
        let e = resolve(None, None, None).unwrap_err();
        assert!(e.to_string().contains("berth login"), "{e}");
        assert_eq!(
            resolve(
                Some("http://127.0.0.1:3000".into()),
                Some("berth_pat_x".into()),
                None
            )
            .unwrap(),
            creds("http://127.0.0.1:3000", "berth_pat_x")
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_credentials_file_is_private_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg/berth/credentials.json");
        save(&file, &creds("https://a.example", "berth_pat_1")).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        save(&file, &creds("https://b.example", "berth_pat_2")).unwrap();
        assert_eq!(
            load(&file).unwrap(),
            Some(creds("https://b.example", "berth_pat_2"))
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(remove(&file).unwrap());
        assert!(!remove(&file).unwrap());
        assert_eq!(load(&file).unwrap(), None);
    }
}
