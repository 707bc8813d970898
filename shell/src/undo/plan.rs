//! What undoing a run takes: whether its paths are still as it left them, and the steps that
//! bring back what was there before it.
//!
//! The run's state after is the last output recorded at each path. Undo removes what the run
//! created (deepest first), then restores the prior entries in their order (a directory
//! before its contents). A path whose state differs from the run's result is a conflict, and
//! so is an entry added since inside a directory that undo would remove.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;
use shark_lineage::{FileStamp, Output, OutputKind, Prior, PriorKind};
use shark_store::{Digest, StatCache};

use super::fsops::{self, Found};

/// Where a restored file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// A blob in the store.
    Store(#[serde(serialize_with = "hex")] Digest),
    /// The snapshot of that name.
    Snapshot(String),
}

fn hex<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_hex())
}

/// One step of an undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub(crate) enum Action {
    /// Remove what the run created.
    Remove { path: PathBuf },
    /// Make a directory (or give it back its mode).
    Dir { path: PathBuf, mode: u32 },
    /// Put back a file.
    File {
        path: PathBuf,
        mode: u32,
        from: Source,
    },
    /// Put back a symlink.
    Symlink { path: PathBuf, target: String },
}

impl Action {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Action::Remove { path }
            | Action::Dir { path, .. }
            | Action::File { path, .. }
            | Action::Symlink { path, .. } => path,
        }
    }

    /// One line for `--dry-run`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Action::Remove { path } => format!("remove  {}", path.display()),
            Action::Dir { path, mode } => format!("dir     {} ({mode:04o})", path.display()),
            Action::File { path, mode, from } => {
                let from = match from {
                    Source::Store(_) => "from the store".to_owned(),
                    Source::Snapshot(s) => format!("from snapshot {s}"),
                };
                format!("restore {} ({mode:04o}, {from})", path.display())
            }
            Action::Symlink { path, target } => {
                format!("symlink {} -> {target}", path.display())
            }
        }
    }
}

/// A path that is no longer as the run left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Conflict {
    pub(crate) path: PathBuf,
    pub(crate) what: &'static str,
}

/// An undo, worked out.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) actions: Vec<Action>,
    pub(crate) conflicts: Vec<Conflict>,
}

/// The last output at each path: the run's state after.
pub(crate) fn final_state(outputs: &[Output]) -> HashMap<PathBuf, &Output> {
    outputs
        .iter()
        .map(|o| (PathBuf::from(&o.path), o))
        .collect()
}

/// Plans undoing a run that left `outputs` (files with `stamps` just after) and found `prior`
/// before it.
pub(crate) fn plan(
    outputs: &[Output],
    prior: &[Prior],
    stamps: &HashMap<String, FileStamp>,
    cache: &StatCache,
) -> Plan {
    let after = final_state(outputs);
    let mut plan = Plan::default();
    let mut removed: Vec<&Prior> = prior
        .iter()
        .filter(|p| p.kind == PriorKind::Absent)
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(Path::new(&p.path).components().count()));
    let removed_dirs: HashSet<PathBuf> = removed.iter().map(|p| PathBuf::from(&p.path)).collect();
    let mut checked: Vec<(&PathBuf, &&Output)> = after.iter().collect();
    checked.sort_by(|a, b| a.0.cmp(b.0));
    for (path, o) in checked {
        let stamp = stamps.get(&o.path);
        if let Some(what) = differs(path, o, stamp, cache) {
            plan.conflicts.push(Conflict {
                path: path.clone(),
                what,
            });
        }
        if o.kind == OutputKind::Dir && removed_dirs.contains(path) {
            for name in fsops::list(path).unwrap_or_default() {
                let child = path.join(&name);
                if !after.contains_key(&child) {
                    plan.conflicts.push(Conflict {
                        path: child,
                        what: "added since",
                    });
                }
            }
        }
    }
    for p in removed {
        plan.actions.push(Action::Remove {
            path: PathBuf::from(&p.path),
        });
    }
    plan.actions.extend(prior.iter().filter_map(restore));
    plan
}

fn m_mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o7777
}

fn restore(p: &Prior) -> Option<Action> {
    let path = PathBuf::from(&p.path);
    Some(match p.kind {
        PriorKind::Absent => return None,
        PriorKind::Dir => Action::Dir {
            path,
            mode: p.mode.unwrap_or(0o755),
        },
        PriorKind::Symlink => Action::Symlink {
            path,
            target: p.symlink_target.clone().unwrap_or_default(),
        },
        PriorKind::File => Action::File {
            path,
            mode: p.mode.unwrap_or(0o644),
            from: match (&p.digest, &p.snapshot) {
                (Some(d), _) => Source::Store(*d),
                (None, Some(s)) => Source::Snapshot(s.clone()),
                (None, None) => return None,
            },
        },
    })
}

/// How `path` differs from the run's result `o`, if it does. A file whose stat still equals
/// `stamp`, taken just after the run, is unchanged without hashing: any write moves its
/// `ctime` (kernels since 6.13 give a fine-grained one to a change after a stat, so even a
/// write in the same clock tick shows), and no user can set `ctime`.
pub(crate) fn differs(
    path: &Path,
    o: &Output,
    stamp: Option<&FileStamp>,
    cache: &StatCache,
) -> Option<&'static str> {
    if let Some(stamp) = stamp {
        let now = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file());
        if now.is_some_and(|m| super::stamp_of(&m) == *stamp && o.mode == Some(m_mode(&m))) {
            return None;
        }
    }
    let found = match fsops::lookup(path) {
        Ok(f) => f,
        Err(_) => return Some("cannot be read"),
    };
    match (o.kind, found) {
        (OutputKind::Deleted, Found::Absent) => None,
        (OutputKind::Deleted, _) => Some("created since"),
        (_, Found::Absent) => Some("removed since"),
        (OutputKind::Dir, Found::Dir { mode }) => {
            (o.mode.is_some_and(|m| m != mode)).then_some("mode changed since")
        }
        (OutputKind::Symlink, Found::Symlink { target }) => {
            let want = o.symlink_target.as_deref().map(OsString::from);
            (want != Some(target)).then_some("changed since")
        }
        (OutputKind::File, Found::File { mode }) => {
            if o.mode.is_some_and(|m| m != mode) {
                return Some("mode changed since");
            }
            match o.digest {
                Some(d) if cache.digest_file(path).ok() != Some(d) => Some("changed since"),
                _ => None,
            }
        }
        _ => Some("replaced since"),
    }
}
