//! Why a run ran (or which run it reused), as recorded for `shark why`.
//!
//! Stored as a small JSON object in the run's `reason` column, with a `kind` field:
//! `fresh`, `network`, `no-earlier-run`, `input-changed` (with `run`, `path`, `was`, `now`),
//! `restore-failed` (with `run`, `detail`), `reused` (with `run`).

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
    /// The earlier run's outputs could not be restored (missing or corrupt blob).
    RestoreFailed {
        /// The earlier run.
        run: i64,
        /// What went wrong.
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
            Reason::InputChanged {
                run,
                path,
                was,
                now,
            } => {
                format!("{path} changed since run {run}: it was {was}, it is now {now}")
            }
            Reason::RestoreFailed { run, detail } => {
                format!("run {run} could not be restored: {detail}")
            }
            Reason::Reused { run } => format!("it reused run {run}"),
        }
    }
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
