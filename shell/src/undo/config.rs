//! Undo settings: environment variables first, then the config file
//! (`$XDG_CONFIG_HOME/shark/config`, else `~/.config/shark/config`), then defaults.
//!
//! The config file holds `key = value` lines; `#` starts a comment. Keys:
//!
//! - `undo` (`SHARK_UNDO`): `on` (default) or `off`, whether prior content is kept at all;
//! - `undo_bytes` (`SHARK_UNDO_BYTES`): the budget of store bytes kept only for undo, as bytes
//!   with an optional `K`, `M`, `G` or `T` suffix (binary), or a percentage of the free space of
//!   the store's filesystem; default 10%;
//! - `snapshots` (`SHARK_SNAPSHOTS`): `on` (default) or `off`, whether ZFS and btrfs snapshots
//!   stand in for the store where they can;
//! - `snapshot_keep_last`, `snapshot_hourly`, `snapshot_daily`, `snapshot_weekly`: the
//!   retention policy (default 50, 48, 14, 8; see [`shark_zfs::Retention`]).

use std::path::Path;

use shark_zfs::Retention;

use crate::error::CliError;

/// The default budget: this share of the free space where the store lives.
const DEFAULT_PERCENT: u64 = 10;

/// How big the undo budget is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// A number of bytes.
    Bytes(u64),
    /// A percentage of the free space of the store's filesystem.
    Percent(u64),
}

impl Budget {
    /// The budget in bytes, for a store at `store`.
    pub(crate) fn bytes(self, store: &Path) -> u64 {
        match self {
            Budget::Bytes(n) => n,
            Budget::Percent(p) => {
                let free = rustix::fs::statvfs(store)
                    .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
                    .unwrap_or(0);
                free / 100 * p
            }
        }
    }
}

/// Every undo setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) enabled: bool,
    pub(crate) budget: Budget,
    pub(crate) snapshots: bool,
    pub(crate) retention: Retention,
}

impl Config {
    /// The settings in force: environment, then config file, then defaults. A malformed value
    /// is a usage error naming the key and where it came from.
    pub(crate) fn load() -> Result<Config, CliError> {
        let file = crate::repl::files::config_dir()
            .map(|d| d.join("config"))
            .and_then(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)));
        let lookup = |key: &str, env: Option<&str>| -> Option<(String, String)> {
            if let Some(v) = env.and_then(std::env::var_os).filter(|v| !v.is_empty()) {
                return Some((v.to_string_lossy().into_owned(), env?.to_owned()));
            }
            let (path, text) = file.as_ref()?;
            file_value(text, key).map(|v| (v, format!("{key} in {}", path.display())))
        };
        parse_with(lookup)
    }
}

/// Builds a config from a lookup of (value, where it came from) by key and variable name.
fn parse_with(
    lookup: impl Fn(&str, Option<&str>) -> Option<(String, String)>,
) -> Result<Config, CliError> {
    let switch = |key, env| -> Result<bool, CliError> {
        match lookup(key, Some(env)) {
            None => Ok(true),
            Some((v, from)) => match v.as_str() {
                "on" | "1" | "yes" | "true" => Ok(true),
                "off" | "0" | "no" | "false" => Ok(false),
                _ => Err(bad(&from, &v, "on or off")),
            },
        }
    };
    let count = |key, default: u64| -> Result<u64, CliError> {
        match lookup(key, None) {
            None => Ok(default),
            Some((v, from)) => v.parse().map_err(|_| bad(&from, &v, "a whole number")),
        }
    };
    let budget = match lookup("undo_bytes", Some("SHARK_UNDO_BYTES")) {
        None => Budget::Percent(DEFAULT_PERCENT),
        Some((v, from)) => {
            parse_budget(&v).ok_or_else(|| bad(&from, &v, "bytes such as 512M or 20G, or 10%"))?
        }
    };
    let defaults = Retention::default();
    Ok(Config {
        enabled: switch("undo", "SHARK_UNDO")?,
        budget,
        snapshots: switch("snapshots", "SHARK_SNAPSHOTS")?,
        retention: Retention {
            last: count("snapshot_keep_last", defaults.last as u64)? as usize,
            hourly: count("snapshot_hourly", defaults.hourly)?,
            daily: count("snapshot_daily", defaults.daily)?,
            weekly: count("snapshot_weekly", defaults.weekly)?,
        },
    })
}

fn bad(from: &str, value: &str, want: &str) -> CliError {
    CliError::usage(
        format!("invalid {from}: {value:?}"),
        Some(format!("give {want}")),
    )
}

/// The value of `key` in config file text (the last line that sets it wins).
fn file_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .next_back()
}

/// `123`, `512K`, `20G`, `1.5T` (binary units) or `10%`.
fn parse_budget(text: &str) -> Option<Budget> {
    let text = text.trim();
    if let Some(p) = text.strip_suffix('%') {
        return p
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= 100)
            .map(Budget::Percent);
    }
    let (number, shift) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 10),
        (i, 'M' | 'm') => (&text[..i], 20),
        (i, 'G' | 'g') => (&text[..i], 30),
        (i, 'T' | 't') => (&text[..i], 40),
        _ => (text, 0),
    };
    let value: f64 = number.trim().parse().ok().filter(|v: &f64| *v >= 0.0)?;
    Some(Budget::Bytes((value * (1u64 << shift) as f64) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_in_binary_units_and_percent() {
        assert_eq!(parse_budget("123"), Some(Budget::Bytes(123)));
        assert_eq!(parse_budget("512K"), Some(Budget::Bytes(512 << 10)));
        assert_eq!(parse_budget("1.5G"), Some(Budget::Bytes(3 << 29)));
        assert_eq!(parse_budget("10%"), Some(Budget::Percent(10)));
        assert_eq!(parse_budget("101%"), None);
        assert_eq!(parse_budget("-1"), None);
        assert_eq!(parse_budget("lots"), None);
    }

    #[test]
    fn the_environment_wins_over_the_file_and_bad_values_name_their_source() {
        let file = "# undo settings\nundo_bytes = 1G\nsnapshot_keep_last = 3 # few\n";
        let lookup = |env_value: Option<&'static str>| {
            move |key: &str, env: Option<&str>| {
                if let (Some(v), Some("SHARK_UNDO_BYTES")) = (env_value, env) {
                    return Some((v.to_owned(), "SHARK_UNDO_BYTES".to_owned()));
                }
                file_value(file, key).map(|v| (v, format!("{key} in config")))
            }
        };
        let c = parse_with(lookup(None)).unwrap();
        assert_eq!(c.budget, Budget::Bytes(1 << 30));
        assert_eq!(c.retention.last, 3);
        assert_eq!(c.retention.daily, 14);
        assert!(c.enabled && c.snapshots);
        let c = parse_with(lookup(Some("2M"))).unwrap();
        assert_eq!(c.budget, Budget::Bytes(2 << 20));
        let e = parse_with(lookup(Some("much"))).unwrap_err();
        assert_eq!(e.to_string(), "invalid SHARK_UNDO_BYTES: \"much\"");
    }
}
