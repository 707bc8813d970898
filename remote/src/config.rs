//! Which server, and how to talk to it: `--remote URL`, `SHARK_REMOTE`, or the config file.
//!
//! The URL names the transport, the server and optionally the REAPI instance:
//! `grpc://HOST:PORT[/INSTANCE]` (plain HTTP/2) or `grpcs://HOST:PORT[/INSTANCE]` (TLS);
//! `http://` and `https://` are accepted as synonyms. The config file
//! (`$XDG_CONFIG_HOME/shark/config.toml`, else `~/.config/shark/config.toml`) may hold a
//! `[remote]` table:
//!
//! ```toml
//! [remote]
//! url = "grpcs://cache.example.org:443/main"
//! upload = true            # write results to the server (false: a read-only mirror)
//! download = true          # read results from it
//! token_file = "~/.config/shark/remote-token"   # sent as `authorization: Bearer ...`
//! ca_file = "/etc/ssl/my-ca.pem"                # trust this CA (default: the system's)
//! client_cert = "~/.config/shark/client.pem"    # TLS client certificate ...
//! client_key = "~/.config/shark/client.key"     # ... and its key
//! timeout_secs = 10        # bound on one call (transfers get more per megabyte)
//! ```
//!
//! A flag or environment variable overrides the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::RemoteError;

/// Everything needed to use one remote cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The URL as the user gave it (shown in messages and recorded with fetched runs).
    pub url: String,
    /// The endpoint tonic connects to (`http://HOST:PORT` or `https://HOST:PORT`).
    pub endpoint: String,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// The REAPI instance name (may be empty).
    pub instance: String,
    /// Whether results are written to the server.
    pub upload: bool,
    /// Whether results are read from it.
    pub download: bool,
    /// A file holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate and its key, for servers that ask for one.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// The bound on one small call; connecting gets the same.
    pub timeout: Duration,
}

/// The `[remote]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRemote {
    url: Option<String>,
    upload: Option<bool>,
    download: Option<bool>,
    token_file: Option<String>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(default)]
    remote: FileRemote,
}

/// What the command line and environment say (each overrides the config file).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--remote URL` or `SHARK_REMOTE` (an empty value turns the remote off).
    pub url: Option<String>,
    /// `--remote-upload BOOL`.
    pub upload: Option<bool>,
    /// `--remote-download BOOL`.
    pub download: Option<bool>,
}

/// The default bound on one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Settings {
    /// The settings from `overrides` over the config file at `config` (which may not exist);
    /// `Ok(None)` when no remote is configured.
    pub fn resolve(
        overrides: &Overrides,
        config: Option<&Path>,
    ) -> Result<Option<Settings>, RemoteError> {
        let file = match config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let f = file.remote;
        let Some(url) = overrides.url.clone().or(f.url).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let mut settings = Settings::parse_url(&url)?;
        settings.upload = overrides.upload.or(f.upload).unwrap_or(true);
        settings.download = overrides.download.or(f.download).unwrap_or(true);
        settings.token_file = f.token_file.map(|p| expand(&p));
        settings.ca_file = f.ca_file.map(|p| expand(&p));
        settings.client_identity = match (f.client_cert, f.client_key) {
            (Some(c), Some(k)) => Some((expand(&c), expand(&k))),
            (None, None) => None,
            _ => {
                return Err(RemoteError::Config {
                    what: "client_cert and client_key go together".into(),
                })
            }
        };
        if let Some(secs) = f.timeout_secs {
            settings.timeout = Duration::from_secs(secs.max(1));
        }
        Ok(Some(settings))
    }

    /// Settings for `url` with defaults for everything else.
    pub fn parse_url(url: &str) -> Result<Settings, RemoteError> {
        let bad = |why: &str| RemoteError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected grpc://HOST:PORT or grpcs://HOST:PORT"))?;
        let tls = match scheme {
            "grpc" | "http" => false,
            "grpcs" | "https" => true,
            _ => return Err(bad("the scheme must be grpc, grpcs, http or https")),
        };
        let (authority, instance) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let port = match (has_port, tls) {
            (true, _) => "",
            (false, true) => ":443",
            (false, false) => return Err(bad("give the port (grpc://HOST:PORT)")),
        };
        let endpoint = format!("{}://{authority}{port}", if tls { "https" } else { "http" });
        Ok(Settings {
            url: url.to_owned(),
            endpoint,
            tls,
            instance: instance.trim_end_matches('/').to_owned(),
            upload: true,
            download: true,
            token_file: None,
            ca_file: None,
            client_identity: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

/// The default config file: `$XDG_CONFIG_HOME/shark/config.toml`, else
/// `$HOME/.config/shark/config.toml`.
pub fn default_config_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("shark").join("config.toml"))
}

fn read_config(path: &Path) -> Result<FileConfig, RemoteError> {
    // A file this user cannot even see (another user's home, e.g. HOME=/root under setpriv)
    // is no config of theirs; one that is there but cannot be read is an error.
    if !path.try_exists().unwrap_or(false) {
        return Ok(FileConfig::default());
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(source) => {
            return Err(RemoteError::ConfigFile {
                path: path.to_owned(),
                source: Box::new(source),
            })
        }
    };
    toml::from_str(&text).map_err(|e| RemoteError::ConfigFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// `~/x` is `$HOME/x`.
fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = Settings::parse_url("grpc://127.0.0.1:50051").unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.tls, s.instance.as_str()),
            ("http://127.0.0.1:50051", false, "")
        );
        let s = Settings::parse_url("grpcs://cache.example.org/main/").unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.tls, s.instance.as_str()),
            ("https://cache.example.org:443", true, "main")
        );
        for bad in ["127.0.0.1:50051", "ftp://x:1", "grpc://host", "grpc:///x"] {
            assert!(Settings::parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[remote]\nurl = \"grpc://a:1\"\nupload = false\ntimeout_secs = 3\n",
        )
        .unwrap();
        let s = Settings::resolve(&Overrides::default(), Some(&path))
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.url.as_str(), s.upload, s.download),
            ("grpc://a:1", false, true)
        );
        assert_eq!(s.timeout, Duration::from_secs(3));
        let o = Overrides {
            url: Some("grpc://b:2".into()),
            upload: Some(true),
            download: Some(false),
        };
        let s = Settings::resolve(&o, Some(&path)).unwrap().unwrap();
        assert_eq!(
            (s.url.as_str(), s.upload, s.download),
            ("grpc://b:2", true, false)
        );
        // An empty URL turns a configured remote off.
        let off = Overrides {
            url: Some(String::new()),
            ..Overrides::default()
        };
        assert!(Settings::resolve(&off, Some(&path)).unwrap().is_none());
        assert!(
            Settings::resolve(&Overrides::default(), Some(&dir.path().join("none")))
                .unwrap()
                .is_none()
        );
        std::fs::write(&path, "[remote]\nurl = 3\n").unwrap();
        let err = Settings::resolve(&Overrides::default(), Some(&path)).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }
}
