//! Applying a run's changes to the user's files as a compare-and-swap.
//!
//! A command runs against the files as they were when it touched them; another process (a
//! concurrent shark command, an editor) may change them before the command's changes are
//! applied. Before each change, the path is compared with the fingerprint the sandbox took at
//! the run's first access to it:
//!
//! - unchanged: the change is applied (a rename into place, through [`Tree`]);
//! - the run only appended to the file (`>>`, `O_APPEND`): the run's appended bytes (what its
//!   copy holds past the size the file had when the sandbox copied it) are appended to the file
//!   as it is now, whether or not it changed, so concurrent appenders all keep their lines,
//!   each once;
//! - changed otherwise: the change is not applied, the newer content is kept, and the
//!   conflict is reported (the caller marks the run as never to be reused).
//!
//! Directories the run created are created if missing whatever happened meanwhile.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use shark_sandbox::{AccessKind, Change, Entry, Fingerprint, Report, Tree, TreeError};

/// A change that was not applied because the path changed while the command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The path.
    pub path: PathBuf,
    /// What it was when the command first touched it, and what it is now, in words.
    pub what: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} changed while the command ran ({}); the command's version was not applied and \
             the newer content is kept",
            self.path.display(),
            self.what
        )
    }
}

/// What the run did at each real path: its first fingerprint and whether it only appended
/// (with the size its copy started from, when the sandbox knows it).
struct Seen {
    first: HashMap<PathBuf, Fingerprint>,
    only_appended: HashSet<PathBuf>,
    append_bases: HashMap<PathBuf, u64>,
}

impl Seen {
    fn of(report: &Report, resolved: &HashMap<PathBuf, PathBuf>) -> Seen {
        let mut first = HashMap::new();
        let mut writes: HashMap<PathBuf, Vec<AccessKind>> = HashMap::new();
        for a in &report.accesses {
            let real = resolved.get(&a.path).unwrap_or(&a.path).clone();
            if let Some(f) = a.fingerprint {
                first.entry(real.clone()).or_insert(f);
            }
            if a.kind.is_write() {
                writes.entry(real).or_default().push(a.kind);
            }
        }
        let only_appended = writes
            .into_iter()
            .filter(|(_, kinds)| kinds.iter().all(|k| *k == AccessKind::Append))
            .map(|(p, _)| p)
            .collect();
        let append_bases = report
            .append_bases
            .iter()
            .map(|(p, size)| (resolved.get(p).unwrap_or(p).clone(), *size))
            .collect();
        Seen {
            first,
            only_appended,
            append_bases,
        }
    }
}

/// Applies `report`'s changes beneath `tree`; `resolved` maps the paths the sandbox named to
/// the real paths they reached. Returns the conflicts (changes not applied).
pub fn apply(
    report: &Report,
    resolved: &HashMap<PathBuf, PathBuf>,
    tree: &Tree,
) -> Result<Vec<Conflict>, TreeError> {
    let seen = Seen::of(report, resolved);
    let mut conflicts = Vec::new();
    // Paths this apply already changed: what is there now is the run's own doing (a directory
    // deleted, then a file made in its place), not someone else's.
    let mut ours: HashSet<&Path> = HashSet::new();
    for change in &report.changes {
        let path = change.path();
        let then = seen.first.get(path).copied();
        let now = fingerprint(tree, path)?;
        let own = path.ancestors().any(|a| ours.contains(a));
        ours.insert(path);
        let unchanged = own || then.is_none_or(|then| same(then, now));
        let absent = now == Some(Fingerprint::Absent);
        match change {
            // Made (or re-moded) whatever happened meanwhile, unless something else is there.
            Change::Dir { .. } if absent || is_dir(now) => shark_sandbox::apply_one(tree, change)?,
            // Already gone: nothing to delete, nothing lost.
            Change::Deleted { .. } if absent => {}
            // Appended to, and not replaced meanwhile by something of this apply: an append,
            // never a replace, so that another appender's lines are neither lost nor doubled.
            Change::File { source, mode, .. } if seen.only_appended.contains(path) && !own => {
                let base = seen.append_bases.get(path).copied();
                match append_since(tree, path, source, then, base, now, *mode)? {
                    None => {}
                    Some(conflict) => conflicts.push(conflict),
                }
            }
            _ if unchanged => shark_sandbox::apply_one(tree, change)?,
            _ => conflicts.push(Conflict {
                path: path.to_path_buf(),
                what: format!("{} then, {} now", describe(then), describe(now)),
            }),
        }
    }
    Ok(conflicts)
}

/// Appends what the run appended to `path` (the bytes of `source` past `base`, the size of
/// the file when the sandbox copied it, else the size it had when the run first touched it)
/// to the file as it is now. A conflict when the file is no longer a file that could have had
/// those bytes appended (it shrank, or is something else).
fn append_since(
    tree: &Tree,
    path: &Path,
    source: &Path,
    then: Option<Fingerprint>,
    base: Option<u64>,
    now: Option<Fingerprint>,
    mode: u32,
) -> Result<Option<Conflict>, TreeError> {
    let start = base.unwrap_or(match then {
        Some(Fingerprint::Present { size, .. }) => size,
        _ => 0,
    });
    let grew = match (then, now) {
        (_, None | Some(Fingerprint::Absent)) => true,
        (Some(Fingerprint::Present { .. }), Some(Fingerprint::Present { size, mode, .. })) => {
            size >= start && mode & libc::S_IFMT == libc::S_IFREG
        }
        (_, Some(Fingerprint::Present { mode, .. })) => mode & libc::S_IFMT == libc::S_IFREG,
    };
    if !grew {
        return Ok(Some(Conflict {
            path: path.to_path_buf(),
            what: format!("{} then, {} now", describe(then), describe(now)),
        }));
    }
    let io = |source| TreeError::Io {
        op: "read the appended bytes for",
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(source).map_err(io)?;
    file.seek(std::io::SeekFrom::Start(start)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    tree.append(path, &tail, mode)?;
    Ok(None)
}

/// The fingerprint of `path` now, reached without following a symlink in a parent; `None`
/// when its parent is gone (then there is nothing to compare, and the apply itself reports).
fn fingerprint(tree: &Tree, path: &Path) -> Result<Option<Fingerprint>, TreeError> {
    match tree.entry(path) {
        Ok(Entry::Absent) => Ok(Some(Fingerprint::Absent)),
        Ok(_) => Ok(std::fs::symlink_metadata(path)
            .ok()
            .map(|m| Fingerprint::of_metadata(&m))),
        Err(TreeError::NotBeneath { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_dir(f: Option<Fingerprint>) -> bool {
    matches!(f, Some(Fingerprint::Present { mode, .. }) if mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Whether `now` is what `then` was, in what a file's content and kind could differ by.
fn same(then: Fingerprint, now: Option<Fingerprint>) -> bool {
    match now {
        None => true,
        Some(now) => then == now,
    }
}

fn describe(f: Option<Fingerprint>) -> String {
    match f {
        None => "unknown".into(),
        Some(Fingerprint::Absent) => "absent".into(),
        Some(Fingerprint::Present { mode, .. }) if mode & libc::S_IFMT == libc::S_IFDIR => {
            "a directory".into()
        }
        Some(Fingerprint::Present { size, .. }) => format!("{size} bytes"),
    }
}
