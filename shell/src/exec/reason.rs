//! Why a run ran (or which run it reused), as recorded for `shark why`.
//!
//! Stored as a small JSON object in the run's `reason` column, with a `kind` field:
//! `fresh`, `network`, `no-earlier-run`, `key-changed` (with `run`, `what`), `input-changed`
//! (with `run`, `path`, `was`, `now`), `not-reusable` (with `run`, `why`), `restore-failed`
//! (with `run`, `detail`), `remote` (with `server`, `host`, `run`), `remote-rejected` (with
//! `server`, `detail`), `reused` (with `run`).

use serde::{Deserialize, Serialize};

/// Why a command ran instead of being reused, or what it reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// `--fresh` was given.
    Fresh,
    /// Network access was allowed; such runs are never reused.
    Network,
    /// No earlier successful run of this command (same weak key) was recorded.
    NoEarlierRun,
    /// No earlier successful run had this weak key, but the newest earlier run of the same
    /// command text did: what differs between the two invocations.
    KeyChanged {
        /// That earlier run.
        run: i64,
        /// What differs, in words (e.g. "variable SRC changed").
        what: Vec<String>,
    },
    /// The newest earlier run read something that has changed since.
    InputChanged {
        /// The earlier run.
        run: i64,
        /// The input that changed.
        path: String,
        /// What it was then.
        was: String,
        /// What it is now.
        now: String,
    },
    /// The newest earlier run of this command succeeded but may not be reused (an input
    /// changed while it ran, it read the terminal, ...).
    NotReusable {
        /// That earlier run.
        run: i64,
        /// Why it may not be reused.
        why: String,
    },
    /// The earlier run's outputs could not be restored (missing or corrupt blob).
    RestoreFailed {
        /// The earlier run.
        run: i64,
        /// What went wrong.
        detail: String,
    },
    /// This run was computed on another machine and its result came from a remote cache.
    Remote {
        /// The remote cache's URL.
        server: String,
        /// The machine that ran it.
        host: String,
        /// Its run id there.
        run: i64,
    },
    /// The remote cache had a result, but it was rejected (a corrupt blob, an input that
    /// does not hold here), so the command ran.
    RemoteRejected {
        /// The remote cache's URL.
        server: String,
        /// What was wrong.
        detail: String,
    },
    /// This run reused an earlier one.
    Reused {
        /// The run reused.
        run: i64,
    },
}

impl Reason {
    /// The JSON stored in the database.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("reasons always serialize")
    }

    /// Reads a stored reason; `None` for text this version does not understand.
    pub fn from_json(text: &str) -> Option<Reason> {
        serde_json::from_str(text).ok()
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Reason::Fresh => "it was run with --fresh".into(),
            Reason::Network => "it had network access, and networked runs are never reused".into(),
            Reason::NoEarlierRun => "there was no earlier successful run of this command".into(),
            Reason::KeyChanged { run, what } if what.is_empty() => {
                format!("it was invoked differently from run {run}")
            }
            Reason::KeyChanged { run, what } => {
                format!(
                    "it was invoked differently from run {run}: {}",
                    what.join("; ")
                )
            }
            Reason::InputChanged {
                run,
                path,
                was,
                now,
            } => {
                format!("{path} changed since run {run}: it was {was}, it is now {now}")
            }
            Reason::NotReusable { run, why } => {
                format!("run {run} of the same command may not be reused: {why}")
            }
            Reason::RestoreFailed { run, detail } => {
                format!("run {run} could not be restored: {detail}")
            }
            Reason::Remote { server, host, run } => {
                format!(
                    "it ran on {host} (run {run} there) and came from the remote cache {server}"
                )
            }
            Reason::RemoteRejected { server, detail } => {
                format!("the result in the remote cache {server} was rejected: {detail}")
            }
            Reason::Reused { run } => format!("it reused run {run}"),
        }
    }
}

/// The differences between two environments, in words: variables added, removed or
/// changed, and for a step of a session, what differs of the shell state it reaches (shell
/// variables, functions, options, aliases, `$?`...; see [`crate::state::reach`]).
pub fn env_changes(
    before: &[(std::ffi::OsString, std::ffi::OsString)],
    after: &[(std::ffi::OsString, std::ffi::OsString)],
) -> Vec<String> {
    use std::collections::BTreeMap;
    let volatile = |k: &str| {
        matches!(
            k,
            "_" | "SHLVL" | "OLDPWD" | "SHARK_HOME" | "SHARK_FAST_PATH"
        ) || k.starts_with("SHARK_REMOTE")
    };
    let map = |env: &[(std::ffi::OsString, std::ffi::OsString)]| -> BTreeMap<String, String> {
        env.iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .filter(|(k, _)| !volatile(k))
            .collect()
    };
    let describe = crate::state::reach::describe;
    let (b, a) = (map(before), map(after));
    let mut out = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => out.push(format!("{} is new", describe(k))),
            Some(old) if old != v && k == "%options" => out.extend(option_changes(old, v)),
            Some(old) if old != v => out.push(format!("{} changed", describe(k))),
            Some(_) => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{} was unset", describe(k)));
    }
    out
}

/// The shell options that differ between two `shopt -p`/`set +o` listings.
fn option_changes(before: &str, after: &str) -> Vec<String> {
    let lines =
        |t: &str| -> std::collections::BTreeSet<String> { t.lines().map(str::to_owned).collect() };
    let (b, a) = (lines(before), lines(after));
    let mut names: Vec<String> = a
        .symmetric_difference(&b)
        .filter_map(|l| l.rsplit(' ').next().map(str::to_owned))
        .collect();
    names.dedup();
    names
        .into_iter()
        .map(|n| format!("shell option {n} changed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let r = Reason::InputChanged {
            run: 3,
            path: "/w/a".into(),
            was: "file 1".into(),
            now: "absent".into(),
        };
        assert_eq!(
            r.to_json(),
            r#"{"kind":"input-changed","run":3,"path":"/w/a","was":"file 1","now":"absent"}"#
        );
        assert_eq!(Reason::from_json(&r.to_json()), Some(r));
        assert_eq!(
            Reason::from_json(r#"{"kind":"fresh"}"#),
            Some(Reason::Fresh)
        );
        assert_eq!(Reason::from_json("garbage"), None);
    }
}
