//! Resolving the paths a run named to the places they reached on the real filesystem.
//!
//! The sandbox reports each path as the process named it (joined to its cwd or dirfd,
//! symlinks not resolved). Here it is walked component by component on the real filesystem,
//! which holds the state *before* the run's writes (the sandbox kept those in its overlay):
//! each symlink met becomes an input of its own (its target), and the walk ends at the place
//! reached. A path that does not exist resolves to where it would be: its parent resolved,
//! then its last name, so that a file the run created through a symlinked directory is found
//! among the run's changes, which are recorded at real paths.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before a path is declared unresolvable (the kernel's limit).
const MAX_LINK_HOPS: usize = 40;

/// Where a named path led.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The real path reached, or where it would be if it does not exist.
    pub(crate) real: PathBuf,
    /// Its metadata (symlinks followed), `None` when nothing is there.
    pub(crate) meta: Option<fs::Metadata>,
    /// Every symlink met on the way, with its target.
    pub(crate) links: Vec<(PathBuf, OsString)>,
}

/// Resolves many paths against one snapshot of the directories and symlinks met on the way,
/// so that the components shared by a run's inputs (`/usr`, `/usr/lib`, the `/lib` symlink)
/// are looked up once per run instead of once per input.
#[derive(Default)]
pub(crate) struct Resolver {
    dirs: HashSet<PathBuf>,
    symlinks: HashMap<PathBuf, Option<OsString>>,
    done: HashMap<PathBuf, Resolved>,
}

impl Resolver {
    /// Resolves `path` (absolute), once per path.
    pub(crate) fn resolve(&mut self, path: &Path) -> &Resolved {
        if !self.done.contains_key(path) {
            let resolved = self.walk(path);
            self.done.insert(path.to_path_buf(), resolved);
        }
        &self.done[path]
    }

    fn walk(&mut self, path: &Path) -> Resolved {
        let mut links = Vec::new();
        let mut pending: Vec<OsString> = components_rev(path);
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&part);
            if self.dirs.contains(&next) {
                cur = next;
                continue;
            }
            let target = match self.symlinks.get(&next) {
                Some(target) => target.clone(),
                None => match fs::symlink_metadata(&next) {
                    Err(_) => return missing(next, pending, links),
                    Ok(meta) if !meta.file_type().is_symlink() => {
                        if meta.is_dir() {
                            self.dirs.insert(next.clone());
                        }
                        cur = next;
                        continue;
                    }
                    Ok(_) => {
                        let target = fs::read_link(&next).ok().map(PathBuf::into_os_string);
                        self.symlinks.insert(next.clone(), target.clone());
                        target
                    }
                },
            };
            hops += 1;
            let Some(target) = target.filter(|_| hops <= MAX_LINK_HOPS) else {
                return missing(next, pending, links);
            };
            links.push((next, target.clone()));
            if Path::new(&target).is_absolute() {
                cur = PathBuf::from("/");
            }
            pending.extend(components_rev(Path::new(&target)));
        }
        let meta = fs::metadata(&cur).ok();
        Resolved {
            real: cur,
            meta,
            links,
        }
    }
}

/// A path that stops existing at `at`: the rest of the named path is appended lexically.
fn missing(at: PathBuf, mut rest: Vec<OsString>, links: Vec<(PathBuf, OsString)>) -> Resolved {
    let mut real = at;
    while let Some(part) = rest.pop() {
        if part == ".." {
            real.pop();
        } else {
            real.push(part);
        }
    }
    Resolved {
        real,
        meta: None,
        links,
    }
}

/// The normal components of `path` in reverse order (a stack), `..` kept, `.` dropped.
fn components_rev(path: &Path) -> Vec<OsString> {
    let mut parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    parts.reverse();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_parents_and_missing_leaves_resolve_to_real_places() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("real")).unwrap();
        fs::write(root.join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink("real", root.join("link")).unwrap();
        let mut r = Resolver::default();
        let found = r.resolve(&root.join("link/f")).clone();
        assert_eq!(found.real, root.join("real/f"));
        assert!(found.meta.is_some());
        assert_eq!(found.links, [(root.join("link"), OsString::from("real"))]);
        let new = r.resolve(&root.join("link/new/../g")).clone();
        assert_eq!(new.real, root.join("real/g"));
        assert!(new.meta.is_none());
        let dangling = root.join("dangling");
        std::os::unix::fs::symlink("nowhere", &dangling).unwrap();
        assert_eq!(r.resolve(&dangling).real, root.join("nowhere"));
    }
}
