//! From the ordered access log of one path to what the run depended on there.
//!
//! The rule (the ordered access model, see `ARCHITECTURE.md`): per path, the accesses *before
//! the run's own first write* decide its dependency on the state the path had before the run.
//!
//! - A first access that reads (read, list, stat, exec, readlink, extended attributes) or
//!   that writes while keeping or testing what was there (an update-open, an append, an
//!   exclusive create, mkdir, unlink, a rename away, chmod) makes the prior state an input:
//!   its content, kind and permission bits, or its absence.
//! - A first access that replaces without reading (`O_TRUNC`, a rename over it, a write-only
//!   open immediately truncated to zero) depends only on there being no directory in the way.
//! - Everything after the run's own first write reads what the run wrote: not an input.
//!
//! A write counts only if it took effect, which the run's changes tell (a write that failed,
//! say for lack of permission, leaves what was there to be read by later accesses).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shark_sandbox::{AccessKind, Fingerprint};

/// One access to a resolved path: its position in the run's log, kind, and fingerprint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub(crate) at: usize,
    pub(crate) kind: AccessKind,
    pub(crate) fingerprint: Option<Fingerprint>,
}

/// How much of the prior state a run depended on, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Need {
    /// Only that no directory was in the way.
    NotDir,
    /// Existence, kind, permission bits and (for files) content.
    Content,
    /// As `Content`, and for a directory its listing too.
    Listing,
}

/// What a run depended on at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dependency {
    /// On the prior state; `None` when the run only wrote the path.
    pub(crate) need: Option<Need>,
    /// Whether it read the path's extended attributes before writing it.
    pub(crate) xattrs: bool,
    /// The fingerprint taken at the first access that read the prior state.
    pub(crate) fingerprint: Option<Fingerprint>,
    /// Where its first listing of the path happened (for the names to leave out).
    pub(crate) listed_at: Option<usize>,
    /// The run replaced the path after looking at it (created it where nothing was, made a
    /// directory there, renamed something over it, deleted it and made it again), rather
    /// than changing what was there in place (an append, an update, a chmod).
    pub(crate) replaced: bool,
    /// The run listed the path at some point (before or after writing it).
    pub(crate) listed: bool,
}

/// The dependency of a run on one path from its accesses there, in order; `written` tells
/// whether the run's changes include the path (its writes took effect), `existed` whether
/// something was there before the run.
pub(crate) fn dependency(events: &[Event], written: bool, existed: bool) -> Dependency {
    let mut dep = Dependency {
        need: None,
        xattrs: false,
        fingerprint: None,
        listed_at: None,
        replaced: false,
        listed: events.iter().any(|e| e.kind == AccessKind::List),
    };
    // An open for writing without `O_CREAT` of a path where nothing was failed: it only
    // probed. Where something was, it updated it.
    let kind_of = |k: AccessKind| match k {
        AccessKind::Reopen if !existed => AccessKind::Stat,
        AccessKind::Reopen => AccessKind::Update,
        k => k,
    };
    for (i, e) in events.iter().enumerate() {
        let kind = kind_of(e.kind);
        let next = events.get(i + 1).map(|n| kind_of(n.kind));
        if written && kind.is_write() {
            if dep.need.is_none() {
                dep.need = first_write_need(kind, next);
            }
            let rest: Vec<AccessKind> = events[i + 1..].iter().map(|e| kind_of(e.kind)).collect();
            let made_again = (0..rest.len()).any(|j| replaces(rest[j], rest.get(j + 1).copied()));
            dep.replaced = replaces(kind, next)
                || matches!(kind, AccessKind::Delete | AccessKind::RenameFrom) && made_again;
            if dep.fingerprint.is_none() {
                dep.fingerprint = e.fingerprint;
            }
            return dep;
        }
        if dep.fingerprint.is_none() {
            dep.fingerprint = e.fingerprint;
        }
        let need = match kind {
            AccessKind::List => {
                dep.listed_at.get_or_insert(e.at);
                Need::Listing
            }
            AccessKind::Xattr => {
                dep.xattrs = true;
                Need::Content
            }
            // A failed replacement: the path was in the way.
            k if k.discards_old() => Need::NotDir,
            _ => Need::Content,
        };
        dep.need = dep.need.max(Some(need));
    }
    dep
}

/// The need of a run whose first access to a path is the write `kind`, followed by `next`.
fn first_write_need(kind: AccessKind, next: Option<AccessKind>) -> Option<Need> {
    match kind {
        AccessKind::Create | AccessKind::RenameTo => Some(Need::NotDir),
        AccessKind::Overwrite if next == Some(AccessKind::Truncate) => Some(Need::NotDir),
        _ => Some(Need::Content),
    }
}

/// Whether the write `kind` (followed by `next`) replaces the path rather than building on
/// what was there.
fn replaces(kind: AccessKind, next: Option<AccessKind>) -> bool {
    use AccessKind::*;
    match kind {
        Create | RenameTo | CreateNew | Mkdir | Symlink | Link | Mknod | Truncate => true,
        Overwrite => next == Some(Truncate),
        _ => false,
    }
}

/// The names to leave out of the listing of `dir` taken at `listed_at`: entries the run
/// itself wrote before it listed the directory, which it saw (or did not) whatever had been
/// there. `paths` holds the events of every resolved path of the run; `written` the run's
/// changes.
pub(crate) fn excluded_names(
    dir: &Path,
    listed_at: usize,
    paths: &BTreeMap<PathBuf, Vec<Event>>,
    written: &dyn Fn(&Path) -> bool,
) -> Vec<String> {
    let mut names = Vec::new();
    let children = paths
        .range(dir.to_path_buf()..)
        .skip_while(|(p, _)| p.as_path() == dir)
        .take_while(|(p, _)| p.starts_with(dir));
    for (path, events) in children {
        if path.parent() != Some(dir) {
            continue;
        }
        let before: Vec<&Event> = events
            .iter()
            .filter(|e| e.at < listed_at && e.kind.is_write())
            .collect();
        let Some(last) = before.last() else { continue };
        let removed = matches!(last.kind, AccessKind::Delete | AccessKind::RenameFrom);
        if !(written(path) || removed) {
            continue;
        }
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccessKind::*;

    fn events(kinds: &[AccessKind]) -> Vec<Event> {
        kinds
            .iter()
            .enumerate()
            .map(|(at, &kind)| Event {
                at,
                kind,
                fingerprint: (!kind.discards_old()).then_some(Fingerprint::Absent),
            })
            .collect()
    }

    fn need(kinds: &[AccessKind], written: bool) -> Option<Need> {
        dependency(&events(kinds), written, true).need
    }

    #[test]
    fn the_first_access_decides() {
        // Read-modify-write: the prior content is an input.
        assert_eq!(need(&[Read, Create, Read], true), Some(Need::Content));
        // Write then read back: only "no directory in the way".
        assert_eq!(need(&[Create, Read], true), Some(Need::NotDir));
        assert_eq!(need(&[RenameTo, Stat], true), Some(Need::NotDir));
        assert_eq!(need(&[Overwrite, Truncate, Read], true), Some(Need::NotDir));
        // Appending and updating keep what was there.
        assert_eq!(need(&[Append], true), Some(Need::Content));
        assert_eq!(need(&[Overwrite], true), Some(Need::Content));
        assert_eq!(need(&[Update, Read], true), Some(Need::Content));
        assert_eq!(need(&[Mkdir], true), Some(Need::Content));
        // A listing before the run's own write is a listing input.
        assert_eq!(need(&[Stat, List, Create], true), Some(Need::Listing));
        assert_eq!(need(&[Create, List], true), Some(Need::NotDir));
    }

    #[test]
    fn writes_that_did_not_take_effect_leave_the_prior_state_read() {
        // `echo x > f; cat f` where the redirection failed: cat read what was there.
        assert_eq!(need(&[Create, Read], false), Some(Need::Content));
        assert_eq!(need(&[Create], false), Some(Need::NotDir));
    }

    #[test]
    fn replacement_and_fingerprints() {
        // GDAL reads its old output to identify it, deletes it, then creates the new one.
        let dep = dependency(&events(&[Stat, Read, Delete, Create]), true, true);
        assert!(dep.replaced);
        assert_eq!(dep.fingerprint, Some(Fingerprint::Absent));
        let dep = dependency(&events(&[Stat, Delete]), true, true);
        assert!(!dep.replaced, "deleted, not made again");
        let dep = dependency(&events(&[Read, SetAttr]), true, true);
        assert!(!dep.replaced);
        let dep = dependency(&events(&[Read, Create]), true, false);
        assert!(dep.replaced);
        let dep = dependency(&events(&[Read, Append]), true, false);
        assert!(!dep.replaced);
        let dep = dependency(&events(&[Create, Read]), true, false);
        assert_eq!(dep.fingerprint, None, "nothing prior was read");
    }

    #[test]
    fn a_failed_update_open_is_a_probe() {
        // `gdalwarp -overwrite`: an O_RDWR open of its missing output, then a creation.
        let dep = dependency(&events(&[Reopen, Stat, Create]), true, false);
        assert_eq!(dep.need, Some(Need::Content));
        assert!(dep.replaced);
        // Where the file was, the same open updates it.
        let dep = dependency(&events(&[Reopen, Create]), true, true);
        assert_eq!(dep.need, Some(Need::Content));
        assert!(!dep.replaced);
    }

    #[test]
    fn names_written_before_a_listing_are_left_out() {
        let dir = PathBuf::from("/w");
        let mut paths = BTreeMap::new();
        let ev = |at, kind| Event {
            at,
            kind,
            fingerprint: None,
        };
        paths.insert(dir.clone(), vec![ev(5, List)]);
        paths.insert(dir.join("made"), vec![ev(1, Create)]);
        paths.insert(dir.join("tmp"), vec![ev(2, Create), ev(3, Delete)]);
        paths.insert(dir.join("later"), vec![ev(7, Create)]);
        paths.insert(dir.join("failed"), vec![ev(4, Create)]);
        paths.insert(dir.join("sub/deep"), vec![ev(0, Create)]);
        let written = |p: &Path| p.ends_with("made") || p.ends_with("later");
        assert_eq!(excluded_names(&dir, 5, &paths, &written), ["made", "tmp"]);
    }
}
