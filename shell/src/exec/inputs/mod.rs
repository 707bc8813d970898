//! From observed accesses to recorded inputs, and back: does a recorded input still hold?
//!
//! A run's accesses come from the sandbox in the order the kernel saw them. Each path is
//! resolved on the real filesystem ([`resolve`]); symlinks met become inputs of their own,
//! and the accesses are grouped by the place they reached. The ordered accesses of each place
//! give the run's dependency on the state it had before the run ([`derive`]), which becomes
//! an input: a file's content and permission bits, a directory's existence or listing, a
//! special file, extended attributes, an absence, or only "no directory in the way". The
//! real filesystem holds the state before the run's writes, because the sandbox kept those in
//! its overlay until they are applied.
//!
//! Each input is also checked against the fingerprint the sandbox took when the run first
//! touched the path: a file edited, or an entry added, while the run was using it makes the
//! run recorded but never reused, since the record could not say what the run really read.
//!
//! Checking is deliberately conservative: any doubt (an unreadable file, a path that is not
//! UTF-8) means "does not hold", which costs a re-run and never a stale reuse.

mod derive;
mod resolve;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use shark_lineage::{AsLeft, Input, InputKind, PathState};
use shark_sandbox::{Access, Fingerprint};
use shark_store::{Digest, StatCache};

use derive::{Event, Need};
pub use state::listing_digest;
pub(crate) use state::unit_state;

/// The inputs of a run and whether they could all be recorded faithfully.
#[derive(Debug, Default)]
pub struct Observed {
    /// The inputs, sorted by path (several kinds may share a path: a file and its extended
    /// attributes).
    pub inputs: Vec<Input>,
    /// False when some input could not be recorded exactly (a non-UTF-8 path, a file that
    /// could not be hashed); such a run is recorded but never reused.
    pub faithful: bool,
    /// Inputs that changed while the run was using them: such a run is recorded but never
    /// reused (its record could not say which version it read).
    pub changed: Vec<String>,
    /// Accessed paths (as the sandbox named them) that resolve elsewhere through symlinks,
    /// with the path they reached: the form inputs are recorded and checked under.
    pub resolved: HashMap<PathBuf, PathBuf>,
}

/// Turns the sandbox's ordered accesses into inputs, skipping paths under `ignore`;
/// `written` maps the real paths the run changed (its changes took effect there) to whether
/// the run left a directory there.
pub fn observe(
    accesses: &[Access],
    written: &HashMap<PathBuf, bool>,
    ignore: &[PathBuf],
    cache: &StatCache,
) -> Observed {
    let mut out = Observed {
        faithful: true,
        ..Observed::default()
    };
    let mut resolver = resolve::Resolver::default();
    let mut paths: BTreeMap<PathBuf, Vec<Event>> = BTreeMap::new();
    let mut links: BTreeMap<PathBuf, std::ffi::OsString> = BTreeMap::new();
    let ignored = |p: &Path| ignore.iter().any(|i| p.starts_with(i));
    for (at, a) in accesses.iter().enumerate() {
        if ignored(&a.path) {
            continue;
        }
        let resolved = resolver.resolve(&a.path);
        links.extend(resolved.links.iter().cloned());
        if resolved.real != a.path {
            out.resolved.insert(a.path.clone(), resolved.real.clone());
        }
        let event = Event {
            at,
            kind: a.kind,
            fingerprint: a.fingerprint,
        };
        paths.entry(resolved.real.clone()).or_default().push(event);
    }
    let mut inputs = Vec::new();
    for (link, target) in links {
        if !ignored(&link) {
            let digest = Digest::of_symlink(target.as_bytes());
            push(
                &mut inputs,
                &mut out,
                &link,
                Input::new("", InputKind::Symlink, Some(digest)),
            );
        }
    }
    let is_written = |p: &Path| written.contains_key(p);
    for (path, events) in &paths {
        if ignored(path) {
            continue;
        }
        let existed = resolver.resolve(path).meta.is_some();
        let dep = derive::dependency(events, is_written(path), existed);
        let Some(need) = dep.need else { continue };
        let exclude = match dep.listed_at {
            Some(at) if need == Need::Listing => {
                derive::excluded_names(path, at, &paths, &is_written)
            }
            _ => Vec::new(),
        };
        let meta = resolver.resolve(path).meta.clone();
        match record(path, need, meta.as_ref(), &exclude, cache) {
            Ok((mut input, after)) => {
                input.as_left = as_left(&input, &dep, written.get(path.as_path()).copied());
                let before = meta
                    .as_ref()
                    .map_or(Fingerprint::Absent, Fingerprint::of_metadata);
                let stable = after.is_none_or(|after| after == before);
                if !stable || !unchanged(&input, dep.fingerprint, before) {
                    out.changed.push(path.to_string_lossy().into_owned());
                }
                push(&mut inputs, &mut out, path, input);
            }
            Err(()) => out.faithful = false,
        }
        if dep.xattrs {
            match state::xattrs_digest(path) {
                Ok(d) => push(
                    &mut inputs,
                    &mut out,
                    path,
                    Input::new("", InputKind::Xattrs, Some(d)),
                ),
                Err(_) if meta.is_none() => {}
                Err(_) => out.faithful = false,
            }
        }
    }
    inputs.sort_by(|a, b| a.path.cmp(&b.path));
    out.inputs = inputs;
    out
}

/// Whether `input` may also hold as the run's unit of work left its path (see [`AsLeft`]):
///
/// - a listing, and a directory the run made where nothing was, as the unit left its listing:
///   honoured in every unit of work, so a folder that later steps (or the command itself) wrote
///   into does not make the listing step run again;
/// - anything else but stdin and "no directory in the way", as the unit left what is there:
///   honoured for scripts and documents only ([`CheckContext::whole_units`]), where a re-run
///   with nothing changed since the last one is a no-op, as in a build.
///
/// `made` is `Some(is a directory)` when the run's changes include the path.
fn as_left(input: &Input, dep: &derive::Dependency, made: Option<bool>) -> AsLeft {
    match (input.kind, made) {
        (InputKind::Dir, _) if input.digest.is_some() => AsLeft::Listing,
        (InputKind::Absent, Some(true)) => AsLeft::Listing,
        (_, Some(true)) if dep.replaced && dep.listed => AsLeft::Listing,
        (InputKind::NotDir | InputKind::Stdin | InputKind::Xattrs, _) => AsLeft::No,
        _ => AsLeft::Entry,
    }
}

/// Adds `input` at `path`, or marks the run unfaithful when the path is not UTF-8.
fn push(inputs: &mut Vec<Input>, out: &mut Observed, path: &Path, input: Input) {
    match path.to_str() {
        Some(text) => inputs.push(Input {
            path: text.to_owned(),
            ..input
        }),
        None => out.faithful = false,
    }
}

/// The input recording what `need` depended on at `path` (whose metadata is `meta`, symlinks
/// followed), and for content that was read (a file hashed, a directory listed) the path's
/// fingerprint once it was read. `Err` when it cannot be recorded exactly.
fn record(
    path: &Path,
    need: Need,
    meta: Option<&std::fs::Metadata>,
    exclude: &[String],
    cache: &StatCache,
) -> Result<(Input, Option<Fingerprint>), ()> {
    let Some(meta) = meta else {
        let input = match need {
            Need::NotDir => Input::new("", InputKind::NotDir, None),
            _ => Input::new("", InputKind::Absent, None),
        };
        return Ok((input, None));
    };
    if need == Need::NotDir && !meta.is_dir() {
        return Ok((Input::new("", InputKind::NotDir, None), None));
    }
    let mode = Some(state::mode_of(meta));
    let (kind, digest) = if meta.is_file() {
        let digest = cache.digest_file(path).map_err(|_| ())?;
        (InputKind::File, Some(digest))
    } else if meta.is_dir() {
        let listing = match need {
            Need::Listing => Some(listing_digest(path, exclude).map_err(|_| ())?),
            _ => None,
        };
        (InputKind::Dir, listing)
    } else {
        (InputKind::Special, Some(state::special_digest(meta)))
    };
    let read = kind == InputKind::File || digest.is_some() && kind == InputKind::Dir;
    let after = read.then(|| Fingerprint::of(path));
    let input = Input {
        mode,
        exclude: exclude.to_vec(),
        ..Input::new("", kind, digest)
    };
    Ok((input, after))
}

/// Whether the path of `input` is the same between the run's first access (`then`) and the
/// recording (`now`) in what the input records: a file's identity, size and times (so its
/// content), a listed directory's entries (its times), the kind and permission bits of
/// anything, an absence.
fn unchanged(input: &Input, then: Option<Fingerprint>, now: Fingerprint) -> bool {
    let Some(then) = then else {
        return true;
    };
    match (input.kind, then, now) {
        (InputKind::NotDir, ..) => true,
        (InputKind::Absent, Fingerprint::Absent, Fingerprint::Absent) => true,
        (InputKind::File, a, b) => a == b,
        (InputKind::Dir, a, b) if input.digest.is_some() => a == b,
        (
            _,
            Fingerprint::Present {
                dev: d1,
                ino: i1,
                mode: m1,
                ..
            },
            Fingerprint::Present {
                dev: d2,
                ino: i2,
                mode: m2,
                ..
            },
        ) => (d1, i1, m1) == (d2, i2, m2),
        _ => false,
    }
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

/// What a check may need beyond the filesystem.
pub struct CheckContext<'a> {
    /// The stat cache.
    pub cache: &'a StatCache,
    /// The digest of this invocation's standard input, if it has content.
    pub stdin: Option<&'a Digest>,
    /// The states the candidate run's units of work left a path in (for inputs that may
    /// hold as a unit left them).
    pub unit_states: &'a dyn Fn(&str) -> Vec<PathState>,
    /// Whether the command is a step of a script or document: then what its earlier run read
    /// also holds where it is as the script left it (make's rule: nothing changed since the
    /// script last ran, nothing runs). Commands typed one at a time keep bash's rule: a
    /// command that rewrites what it read runs again.
    pub whole_units: bool,
}

impl std::fmt::Debug for CheckContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckContext")
            .field("stdin", &self.stdin)
            .finish_non_exhaustive()
    }
}

/// Checks one recorded input against the filesystem now.
pub fn check(input: &Input, ctx: &CheckContext<'_>) -> Result<(), Mismatch> {
    let now = current(input, ctx.cache, ctx.stdin);
    let was = state::Now::Is(input.kind, input.digest, input.mode);
    if now == was {
        return Ok(());
    }
    let honoured = match input.as_left {
        AsLeft::No => false,
        AsLeft::Listing => true,
        AsLeft::Entry => ctx.whole_units,
    };
    if honoured && holds_as_left(input, ctx) {
        return Ok(());
    }
    let (was, now) = match (&was, &now) {
        // Only the permission bits differ: say just that.
        (state::Now::Is(k1, d1, Some(m1)), state::Now::Is(k2, d2, Some(m2)))
            if (k1, d1) == (k2, d2) =>
        {
            (format!("mode {m1:o}"), format!("mode {m2:o}"))
        }
        _ => (describe(&was), describe(&now)),
    };
    Err(Mismatch {
        path: input.path.clone(),
        was,
        now,
    })
}

fn describe(s: &state::Now) -> String {
    match s {
        state::Now::Is(kind, digest, mode) => state::describe(*kind, digest.as_ref(), *mode),
        state::Now::Unreadable(why) => why.clone(),
    }
}

/// Whether the input's path is now exactly as one of the candidate's units of work left it.
fn holds_as_left(input: &Input, ctx: &CheckContext<'_>) -> bool {
    let listing = input.as_left == AsLeft::Listing;
    let states = (ctx.unit_states)(&input.path);
    if states.is_empty() {
        return false;
    }
    let Some(now) = unit_state(Path::new(&input.path), listing, ctx.cache) else {
        return false;
    };
    states.contains(&now)
}

/// What is at `input`'s path now, as `input` records it (kind, digest and, when the input has
/// them, permission bits); a state that cannot be read comes back as a file without digest,
/// which no recorded input equals.
pub(crate) fn now_as(input: &Input, cache: &StatCache, stdin: Option<&Digest>) -> Input {
    let (kind, digest, mode) = match current(input, cache, stdin) {
        state::Now::Is(k, d, m) => (k, d, m),
        state::Now::Unreadable(_) => (InputKind::File, None, None),
    };
    Input {
        kind,
        digest,
        mode,
        ..input.clone()
    }
}

/// The state of an input's path now, in the input's terms.
fn current(input: &Input, cache: &StatCache, stdin: Option<&Digest>) -> state::Now {
    use state::Now;
    let path = Path::new(&input.path);
    match input.kind {
        InputKind::Stdin => Now::Is(InputKind::Stdin, stdin.copied(), None),
        InputKind::Symlink => match std::fs::read_link(path) {
            Ok(t) => Now::Is(
                InputKind::Symlink,
                Some(Digest::of_symlink(t.as_os_str().as_bytes())),
                None,
            ),
            Err(_) => Now::Unreadable("absent or not a symlink".into()),
        },
        InputKind::Xattrs => match state::xattrs_digest(path) {
            Ok(d) => Now::Is(InputKind::Xattrs, Some(d), None),
            Err(e) => Now::Unreadable(format!("extended attributes unreadable ({e})")),
        },
        InputKind::NotDir => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Now::Is(InputKind::Dir, None, Some(state::mode_of(&m))),
            _ => Now::Is(InputKind::NotDir, None, None),
        },
        _ => {
            let listing = (input.kind == InputKind::Dir && input.digest.is_some())
                .then_some(input.exclude.as_slice());
            match state::now(path, listing, cache) {
                // Recorded without permission bits (older records): compare without them.
                Now::Is(k, d, _) if input.mode.is_none() => Now::Is(k, d, None),
                other => other,
            }
        }
    }
}
