//! From observed accesses to recorded inputs, and back: does a recorded input still hold?
//!
//! The sandbox reports each path a process named (joined to its cwd or dirfd, symlinks not
//! resolved). Here every such path is resolved on the real filesystem, component by component:
//! each symlink met on the way becomes an input of its own (its target), and the place reached
//! becomes a file (content digest), a directory (its listing digest if it was opened, else only
//! "is a directory"), or an absence. The real filesystem is the state *before* the command's
//! writes, because the sandbox kept those in its overlay until they are applied.
//!
//! Checking is deliberately conservative: any doubt (an unreadable file, a path that is not
//! UTF-8) means "does not hold", which costs a re-run and never a stale reuse.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use shark_lineage::{Input, InputKind, Output, OutputKind};
use shark_sandbox::{Access, AccessKind};
use shark_store::{Digest, EntryKind, StatCache};

/// Symlinks followed before a path is declared unresolvable (the kernel's limit).
const MAX_LINK_HOPS: usize = 40;

/// The inputs of a run and whether they could all be recorded faithfully.
#[derive(Debug, Default)]
pub struct Observed {
    /// The inputs, sorted by path, one per path.
    pub inputs: Vec<Input>,
    /// False when some input could not be recorded exactly (a non-UTF-8 path, a file that
    /// vanished while being hashed); such a run is recorded but never reused.
    pub faithful: bool,
    /// Accessed paths (as the sandbox named them) that resolve elsewhere through symlinks,
    /// with the path they reached: the form inputs are recorded and checked under.
    pub resolved: std::collections::HashMap<PathBuf, PathBuf>,
}

/// What a path resolved to.
enum Reached {
    Found(PathBuf, fs::Metadata),
    Missing,
}

/// What a run's accesses to one path make depend on it, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// Only truncating creations: earlier content is irrelevant, and so is whether a regular
    /// file was there at all; only something else in the way (a directory) matters.
    Replace,
    /// Existence, kind and (for files) content.
    Content,
    /// As `Content`, and for a directory its listing too.
    Listing,
}

/// Turns the sandbox's accesses into inputs, skipping paths under `ignore`.
pub fn observe(accesses: &[Access], ignore: &[PathBuf], cache: &StatCache) -> Observed {
    let mut needs: BTreeMap<&Path, Need> = BTreeMap::new();
    let mut executed: HashSet<&Path> = HashSet::new();
    for a in accesses {
        if ignore.iter().any(|p| a.path.starts_with(p)) {
            continue;
        }
        if a.kind == AccessKind::Exec {
            executed.insert(a.path.as_path());
        }
        let need = match a.kind {
            AccessKind::Read => Need::Listing,
            AccessKind::Create => Need::Replace,
            _ => Need::Content,
        };
        let slot = needs.entry(a.path.as_path()).or_insert(need);
        *slot = (*slot).max(need);
    }
    let mut out = Observed {
        faithful: true,
        ..Observed::default()
    };
    let mut seen = HashSet::new();
    let mut inputs = BTreeMap::new();
    let mut resolver = Resolver::default();
    for (path, need) in needs {
        let mut links = Vec::new();
        let reached = resolver.resolve(path, &mut links);
        if let Reached::Found(real, _) = &reached {
            if real != path {
                out.resolved.insert(path.to_path_buf(), real.clone());
            }
        }
        for (link, target) in links {
            if seen.insert(link.clone()) {
                let digest = Digest::of_symlink(target.as_bytes());
                insert(
                    &mut inputs,
                    &mut out,
                    &link,
                    InputKind::Symlink,
                    Some(digest),
                );
            }
        }
        // Whether a program may be executed is part of what a run that executed it depended on.
        let mode = match &reached {
            Reached::Found(_, meta) if executed.contains(path) && meta.is_file() => {
                Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777)
            }
            _ => None,
        };
        let (at, kind, digest) = match reached {
            Reached::Missing if need == Need::Replace => continue,
            Reached::Found(_, meta) if need == Need::Replace && meta.is_file() => continue,
            Reached::Missing => (path.to_path_buf(), InputKind::Absent, None),
            Reached::Found(real, meta) => {
                match describe(&real, &meta, need == Need::Listing, cache) {
                    Ok(Some((kind, digest))) => (real, kind, digest),
                    Ok(None) => continue,
                    Err(()) => {
                        out.faithful = false;
                        continue;
                    }
                }
            }
        };
        if ignore.iter().any(|p| at.starts_with(p)) {
            continue;
        }
        insert(&mut inputs, &mut out, &at, kind, digest);
        if let (Some(mode), Some(input)) = (mode, at.to_str().and_then(|t| inputs.get_mut(t))) {
            input.mode = Some(mode);
        }
    }
    out.inputs = inputs.into_values().collect();
    out
}

fn insert(
    inputs: &mut BTreeMap<String, Input>,
    out: &mut Observed,
    path: &Path,
    kind: InputKind,
    digest: Option<Digest>,
) {
    let Some(text) = path.to_str() else {
        out.faithful = false;
        return;
    };
    let new = Input {
        path: text.to_owned(),
        kind,
        digest,
        mode: None,
    };
    // A directory seen both listed and merely stat-ed keeps the stronger (listing) record.
    match inputs.get(text) {
        Some(old) if old.digest.is_some() && new.digest.is_none() => {}
        _ => {
            inputs.insert(text.to_owned(), new);
        }
    }
}

/// The kind and digest of something that exists: `Ok(None)` for devices, fifos and sockets
/// (no content to key on, not inputs), `Err(())` if it cannot be recorded exactly.
#[allow(clippy::result_unit_err)]
fn describe(
    path: &Path,
    meta: &fs::Metadata,
    listing: bool,
    cache: &StatCache,
) -> Result<Option<(InputKind, Option<Digest>)>, ()> {
    if meta.is_file() {
        let digest = cache.digest_file(path).map_err(|_| ())?;
        Ok(Some((InputKind::File, Some(digest))))
    } else if meta.is_dir() {
        let digest = match listing {
            true => Some(listing_digest(path).map_err(|_| ())?),
            false => None,
        };
        Ok(Some((InputKind::Dir, digest)))
    } else {
        Ok(None)
    }
}

/// Resolves many paths against one snapshot of the directories and symlinks met on the way,
/// so that the components shared by a run's inputs (`/usr`, `/usr/lib`, the `/lib` symlink)
/// are looked up once per run instead of once per input.
#[derive(Default)]
struct Resolver {
    dirs: HashSet<PathBuf>,
    symlinks: std::collections::HashMap<PathBuf, Option<OsString>>,
}

impl Resolver {
    /// Walks `path` component by component on the real filesystem, recording each symlink met.
    fn resolve(&mut self, path: &Path, links: &mut Vec<(PathBuf, OsString)>) -> Reached {
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
                None => {
                    let Ok(meta) = fs::symlink_metadata(&next) else {
                        return Reached::Missing;
                    };
                    if !meta.file_type().is_symlink() {
                        if meta.is_dir() {
                            self.dirs.insert(next.clone());
                        }
                        cur = next;
                        continue;
                    }
                    let target = fs::read_link(&next).ok().map(PathBuf::into_os_string);
                    self.symlinks.insert(next.clone(), target.clone());
                    target
                }
            };
            hops += 1;
            let Some(target) = target else {
                return Reached::Missing;
            };
            if hops > MAX_LINK_HOPS {
                return Reached::Missing;
            }
            links.push((next, target.clone()));
            if Path::new(&target).is_absolute() {
                cur = PathBuf::from("/");
            }
            pending.extend(components_rev(Path::new(&target)));
        }
        match fs::metadata(&cur) {
            Ok(meta) => Reached::Found(cur, meta),
            Err(_) => Reached::Missing,
        }
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

/// The listing digest of a directory (see `shark_store::digest`).
pub fn listing_digest(dir: &Path) -> std::io::Result<Digest> {
    let mut entries = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        entries.push((e.file_name(), EntryKind::of(e.file_type()?)));
    }
    Ok(Digest::of_listing(
        entries.iter().map(|(n, k)| (n.as_bytes(), *k)),
    ))
}

/// Why a recorded input no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The input's path.
    pub path: String,
    /// What was recorded, in words.
    pub was: String,
    /// What is there now, in words.
    pub now: String,
}

/// Checks one recorded input against the filesystem now; `stdin` is the digest of this
/// invocation's standard input, if it has one.
pub fn check(input: &Input, cache: &StatCache, stdin: Option<&Digest>) -> Result<(), Mismatch> {
    let now = current(input, cache, stdin);
    let was = State::Is(input.kind, input.digest);
    if now == was {
        check_mode(input)
    } else {
        Err(Mismatch {
            path: input.path.clone(),
            was: was.to_string(),
            now: now.to_string(),
        })
    }
}

/// Whether the path of an input now holds exactly what `run` itself left there (`output`),
/// which counts as the input holding: a command that looks for its own output before
/// writing it (`mkdir -p d`, GDAL opening an existing dataset to replace it) finds, on a
/// re-run in place, the state it produced, and the reuse restores that same state. Only a
/// command that behaves differently when its own result is already there (rare, and against
/// the idempotence pipelines rely on) is affected; see the design notes.
///
/// It stands in only for what the output fully determines: a file's content, a symlink's
/// target, a directory's existence, never a directory's listing (`input` was listed: entries
/// the run did not make may have come since).
pub fn holds_as_output(input: &Input, output: &Output, cache: &StatCache) -> bool {
    let path = Path::new(&output.path);
    match output.kind {
        OutputKind::Dir if input.kind == InputKind::Dir && input.digest.is_some() => false,
        OutputKind::File => match fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => cache.digest_file(path).ok() == output.digest,
            _ => false,
        },
        OutputKind::Dir => fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()),
        OutputKind::Symlink => fs::read_link(path)
            .is_ok_and(|t| Some(Digest::of_symlink(t.as_os_str().as_bytes())) == output.digest),
        // A run that deleted what it found (`rm x`, `mv x y`) fails when run again without
        // it, so finding it gone is not the state the run started from.
        OutputKind::Deleted => false,
    }
}

/// For an executed file, its permission bits must be as recorded too.
fn check_mode(input: &Input) -> Result<(), Mismatch> {
    let Some(was) = input.mode else {
        return Ok(());
    };
    let now = fs::metadata(&input.path)
        .ok()
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
    match now {
        Some(now) if now == was => Ok(()),
        now => Err(Mismatch {
            path: input.path.clone(),
            was: format!("mode {was:o}"),
            now: now.map_or_else(|| "unreadable".into(), |m| format!("mode {m:o}")),
        }),
    }
}

/// What is at an input's path, compared in full and displayed short.
#[derive(Debug, PartialEq)]
enum State {
    Is(InputKind, Option<Digest>),
    Unreadable(String),
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |d: &Option<Digest>| d.map_or_else(|| "?".to_string(), |d| d.short(12));
        match self {
            State::Unreadable(why) => write!(f, "{why}"),
            State::Is(InputKind::File, d) => write!(f, "file {}", short(d)),
            State::Is(InputKind::Dir, Some(d)) => write!(f, "directory listing {}", d.short(12)),
            State::Is(InputKind::Dir, None) => write!(f, "a directory"),
            State::Is(InputKind::Symlink, d) => write!(f, "symlink {}", short(d)),
            State::Is(InputKind::Absent, _) => write!(f, "absent"),
            State::Is(InputKind::Stdin, d) => write!(f, "stdin {}", short(d)),
        }
    }
}

/// The current state of an input's path.
fn current(input: &Input, cache: &StatCache, stdin: Option<&Digest>) -> State {
    let path = Path::new(&input.path);
    match input.kind {
        InputKind::Stdin => return State::Is(InputKind::Stdin, stdin.copied()),
        InputKind::Symlink => {
            return match fs::read_link(path) {
                Ok(t) => State::Is(
                    InputKind::Symlink,
                    Some(Digest::of_symlink(t.as_os_str().as_bytes())),
                ),
                Err(_) => State::Unreadable("absent or not a symlink".into()),
            }
        }
        _ => {}
    }
    match fs::metadata(path) {
        Err(_) => State::Is(InputKind::Absent, None),
        Ok(m) if m.is_file() => match cache.digest_file(path) {
            Ok(d) => State::Is(InputKind::File, Some(d)),
            Err(e) => State::Unreadable(format!("unreadable file ({e})")),
        },
        Ok(m) if m.is_dir() => match input.digest {
            None => State::Is(InputKind::Dir, None),
            Some(_) => match listing_digest(path) {
                Ok(d) => State::Is(InputKind::Dir, Some(d)),
                Err(e) => State::Unreadable(format!("unreadable directory ({e})")),
            },
        },
        Ok(_) => State::Unreadable("a special file".into()),
    }
}
