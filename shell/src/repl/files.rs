//! The interactive shell's files: the history, the login profile and the startup file.

use std::path::PathBuf;

use crate::home::Home;

/// The history file: `$SHARK_HISTORY`, else `history` in the shark home (which follows
/// `SHARK_HOME` and `$XDG_DATA_HOME`), one line per entry.
pub(crate) fn history(home: &Home) -> PathBuf {
    match std::env::var_os("SHARK_HISTORY").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => home.root().join("history"),
    }
}

/// shark's configuration directory: `$XDG_CONFIG_HOME/shark`, else `~/.config/shark`.
pub(crate) fn config_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        let xdg = PathBuf::from(xdg);
        if xdg.is_absolute() {
            return Some(xdg.join("shark"));
        }
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config/shark"))
}

/// The files to run at startup, in order, that exist: `profile` for a login shell, then
/// `sharkrc`.
pub(crate) fn startup(login: bool) -> Vec<PathBuf> {
    let Some(dir) = config_dir() else {
        return Vec::new();
    };
    let names: &[&str] = if login {
        &["profile", "sharkrc"]
    } else {
        &["sharkrc"]
    };
    names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect()
}
