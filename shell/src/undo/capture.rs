//! Capturing what the paths a run is about to change hold now.
//!
//! The paths come from the run's outputs (its state after): each path once, in output order,
//! and the whole tree below a path the run deletes (a deleted directory takes its contents
//! with it). A file's content goes into the store (hashed through the stat cache; content the
//! store already holds, such as an earlier run's output, costs nothing) unless a snapshot
//! taken just before holds it; then only its kind and mode are recorded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use shark_lineage::{Output, OutputKind, Prior, PriorKind};
use shark_store::{StatCache, Store};

use super::fsops::{self, Found};
use super::UndoError;

/// Directories named like this hold btrfs snapshots; they are never captured.
const SNAPSHOT_DIR: &str = ".shark-snapshots";

/// A path to capture, and whether its whole tree goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) path: PathBuf,
    pub(crate) tree: bool,
}

/// The distinct paths of `outputs`, in order.
pub(crate) fn targets(outputs: &[Output]) -> Vec<Target> {
    let mut order: Vec<Target> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for o in outputs {
        let deleted = o.kind == OutputKind::Deleted;
        match index.get(&o.path) {
            Some(&i) => {
                let t: &mut Target = &mut order[i];
                t.tree |= deleted;
            }
            None => {
                index.insert(o.path.clone(), order.len());
                order.push(Target {
                    path: PathBuf::from(&o.path),
                    tree: deleted,
                });
            }
        }
    }
    order
}

/// The prior state of the targets, and the store bytes it newly took.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) prior: Vec<Prior>,
    pub(crate) kept_bytes: u64,
}

/// Where a file's content is kept, and what is known of it already.
pub(crate) trait Keep {
    /// The snapshot that holds `path`'s current content, if one does.
    fn snapshot_of(&self, path: &Path) -> Option<String>;

    /// `path`'s digest if it is known without hashing (a run's output left untouched).
    fn known_digest(&self, _path: &Path) -> Option<shark_store::Digest> {
        None
    }
}

struct Ctx<'a> {
    store: &'a Store,
    cache: &'a StatCache,
    keep: &'a dyn Keep,
    budget: u64,
    seen: HashSet<PathBuf>,
    out: Captured,
}

/// Captures every target. `after` is the run's final state of each path, so that a file the
/// run leaves exactly as it was is no change to undo. Content that would take the store past
/// `budget` new bytes stops the capture (before it is stored) with [`UndoError::OverBudget`].
pub(crate) fn capture(
    targets: &[Target],
    after: &[Output],
    store: &Store,
    cache: &StatCache,
    keep: &dyn Keep,
    budget: u64,
) -> Result<Captured, UndoError> {
    let mut ctx = Ctx {
        store,
        cache,
        keep,
        budget,
        seen: HashSet::new(),
        out: Captured::default(),
    };
    for t in targets {
        let same = |o: &&Output| Path::new(&o.path) == t.path;
        let last = after.iter().rev().find(same);
        ctx.path(&t.path, t.tree, last)?;
    }
    Ok(ctx.out)
}

impl Ctx<'_> {
    fn path(&mut self, path: &Path, tree: bool, after: Option<&Output>) -> Result<(), UndoError> {
        if path.file_name().is_some_and(|n| n == SNAPSHOT_DIR) || !self.seen.insert(path.into()) {
            return Ok(());
        }
        let io = |source| UndoError::Capture {
            path: path.to_owned(),
            source,
        };
        let found = fsops::lookup(path).map_err(io)?;
        let entry = |kind, mode| Prior {
            path: path.to_string_lossy().into_owned(),
            kind,
            digest: None,
            mode,
            symlink_target: None,
            snapshot: None,
        };
        match found {
            Found::Absent => self.out.prior.push(entry(PriorKind::Absent, None)),
            Found::Other => {} // sockets, fifos, devices: nothing a run's outputs could be
            Found::Symlink { target } => self.out.prior.push(Prior {
                symlink_target: Some(target.to_string_lossy().into_owned()),
                ..entry(PriorKind::Symlink, None)
            }),
            Found::File { mode } => {
                if let Some(p) = self.file(path, mode, after)? {
                    self.out.prior.push(p);
                }
            }
            Found::Dir { mode } => {
                self.out.prior.push(entry(PriorKind::Dir, Some(mode)));
                if tree {
                    for name in fsops::list(path).map_err(io)? {
                        self.path(&path.join(name), true, None)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A file's prior entry; `None` when it already holds what the run leaves there.
    fn file(
        &mut self,
        path: &Path,
        mode: u32,
        after: Option<&Output>,
    ) -> Result<Option<Prior>, UndoError> {
        let mut prior = Prior {
            path: path.to_string_lossy().into_owned(),
            kind: PriorKind::File,
            digest: None,
            mode: Some(mode),
            symlink_target: None,
            snapshot: None,
        };
        if let Some(snapshot) = self.keep.snapshot_of(path) {
            prior.snapshot = Some(snapshot);
            return Ok(Some(prior));
        }
        let store_err = |source| UndoError::Keep {
            path: path.to_owned(),
            source,
        };
        let mut digest = match self.keep.known_digest(path) {
            Some(d) => d,
            None => self.cache.digest_file(path).map_err(store_err)?,
        };
        let unchanged = after.is_some_and(|o| {
            o.kind == OutputKind::File && o.digest == Some(digest) && o.mode == Some(mode)
        });
        if unchanged {
            return Ok(None);
        }
        if !self.store.contains(&digest) {
            let size = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
            if self.out.kept_bytes.saturating_add(size) > self.budget {
                return Err(UndoError::OverBudget {
                    path: path.to_owned(),
                    budget: self.budget,
                });
            }
            let put = self.store.put_file(path).map_err(store_err)?;
            // Changed since it was hashed: keep what was stored, which is what is there now.
            digest = put.digest;
            if !put.existed {
                self.out.kept_bytes += put.stored;
            }
        }
        prior.digest = Some(digest);
        Ok(Some(prior))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(path: &str, kind: OutputKind) -> Output {
        Output {
            path: path.into(),
            kind,
            digest: None,
            mode: None,
            symlink_target: None,
        }
    }

    #[test]
    fn targets_are_distinct_and_deletions_take_trees() {
        let outputs = [
            out("/w/d", OutputKind::Deleted),
            out("/w/d", OutputKind::Dir),
            out("/w/d/f", OutputKind::File),
            out("/w/g", OutputKind::File),
        ];
        let t = targets(&outputs);
        assert_eq!(t.len(), 3);
        assert!(t[0].tree && !t[1].tree && !t[2].tree);
        assert_eq!(t[1].path, PathBuf::from("/w/d/f"));
    }
}
