//! What is shared of a run: its path-set (the weak entry's side) and its description (the
//! strong entry's side), in portable form.
//!
//! A **path-set** is the list of paths a run depended on and how each was looked at (a path
//! probed for what is there, a directory also listed, a symlink read, standard input),
//! without the values seen. Machines compute the values from their own filesystem: equal
//! values give the same strong key.
//!
//! # Value encoding (part of the strong key; change it only with a new salt)
//!
//! For each entry in order: `F` + 32-byte BLAKE3 of a file's content, `D` a directory not
//! listed, `L` + listing digest, `S` + symlink target digest, `I` + standard input digest, `A`
//! absent, `X` + digest of a fifo, socket or device node, `Z` + digest of extended attributes,
//! `T` anything but a directory (a path replaced unread), `U` unreadable (never recorded, so it
//! never matches); then, for an entry whose permission bits count, `M` + 4 bytes little-endian
//! mode, or `N` when there is nothing to have them. A listing entry's names left out of the
//! digest (the run's own) are part of the path-set.

use serde::{Deserialize, Serialize};
use shark_lineage::{Input, InputKind, Output, OutputKind};
use shark_store::Digest;

use crate::digest::{DigestKind, RemoteDigest};
use crate::portable::Locations;

/// The pseudo path of standard input (as the executor records it).
pub const STDIN_PATH: &str = "<stdin>";

/// How an entry's path is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Look {
    /// What is there (file content, directory, absence), following symlinks.
    Path,
    /// As `Path`, and a directory's listing.
    Listing,
    /// The target of the symlink that is there.
    Symlink,
    /// The bytes given on standard input.
    Stdin,
    /// Only whether a directory is in the way (a path replaced without being read).
    NotDir,
    /// The extended attributes of what is there.
    Xattrs,
}

/// One path of a path-set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathEntry {
    /// Portable path (or [`STDIN_PATH`]).
    pub path: String,
    /// How it is looked at.
    pub look: Look,
    /// Whether its permission bits count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mode: bool,
    /// For a listing: names left out of it (the run created or removed them itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// The paths one recorded run depended on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PathSet(pub Vec<PathEntry>);

impl PathSet {
    /// The path-set of recorded `inputs` (in their order), `None` if one is not portable.
    pub fn of(inputs: &[Input], locs: &Locations) -> Option<PathSet> {
        inputs
            .iter()
            .map(|i| {
                let look = match i.kind {
                    InputKind::Stdin => Look::Stdin,
                    InputKind::Symlink => Look::Symlink,
                    InputKind::Dir if i.digest.is_some() => Look::Listing,
                    InputKind::NotDir => Look::NotDir,
                    InputKind::Xattrs => Look::Xattrs,
                    InputKind::File | InputKind::Dir | InputKind::Absent | InputKind::Special => {
                        Look::Path
                    }
                };
                Some(PathEntry {
                    path: portable_input_path(&i.path, locs)?,
                    look,
                    mode: i.mode.is_some(),
                    exclude: i.exclude.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .map(PathSet)
    }

    /// The hash that, with the command, makes the strong key: over this path-set and the
    /// value of each of its paths (`values[i]` for entry `i`, see the module docs).
    pub fn observed(&self, kind: DigestKind, values: &[Input]) -> RemoteDigest {
        let mut bytes = Vec::new();
        for (entry, value) in self.0.iter().zip(values) {
            field(&mut bytes, entry.path.as_bytes());
            field(&mut bytes, look_name(entry.look).as_bytes());
            bytes.push(u8::from(entry.mode));
            bytes.extend_from_slice(&(entry.exclude.len() as u64).to_le_bytes());
            for name in &entry.exclude {
                field(&mut bytes, name.as_bytes());
            }
            encode_value(&mut bytes, value, entry.mode);
        }
        kind.of_bytes(&bytes)
    }
}

fn look_name(look: Look) -> &'static str {
    match look {
        Look::Path => "path",
        Look::Listing => "listing",
        Look::Symlink => "symlink",
        Look::Stdin => "stdin",
        Look::NotDir => "notdir",
        Look::Xattrs => "xattrs",
    }
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the value encoding of `value` (an input as recorded, or as observed now).
pub(crate) fn encode_value(out: &mut Vec<u8>, value: &Input, with_mode: bool) {
    let digest = |out: &mut Vec<u8>, tag: u8, d: &Option<Digest>| match d {
        Some(d) => {
            out.push(tag);
            out.extend_from_slice(d.as_bytes());
        }
        None => out.push(b'U'),
    };
    match value.kind {
        InputKind::File => digest(out, b'F', &value.digest),
        InputKind::Dir if value.digest.is_none() => out.push(b'D'),
        InputKind::Dir => digest(out, b'L', &value.digest),
        InputKind::Symlink => digest(out, b'S', &value.digest),
        InputKind::Stdin => digest(out, b'I', &value.digest),
        InputKind::Absent => out.push(b'A'),
        InputKind::Special => digest(out, b'X', &value.digest),
        InputKind::Xattrs => digest(out, b'Z', &value.digest),
        InputKind::NotDir => out.push(b'T'),
    }
    if with_mode {
        match value.mode {
            Some(m) => {
                out.push(b'M');
                out.extend_from_slice(&m.to_le_bytes());
            }
            None => out.push(b'N'),
        }
    }
}

/// The path-sets recorded for one command, newest first (the weak entry's blob).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSets {
    /// Format name, `shark-path-sets-v1`.
    pub format: String,
    /// The path-sets.
    pub sets: Vec<PathSet>,
}

/// How many path-sets a weak entry keeps (the newest).
pub const MAX_PATH_SETS: usize = 16;

impl PathSets {
    const FORMAT: &'static str = "shark-path-sets-v1";

    /// Parses the blob; `None` if it is not one.
    pub fn parse(bytes: &[u8]) -> Option<PathSets> {
        serde_json::from_slice::<PathSets>(bytes)
            .ok()
            .filter(|p| p.format == Self::FORMAT)
    }

    /// The blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("path-sets always serialize")
    }

    /// These path-sets with `set` first (moved there if it was already listed), at most
    /// [`MAX_PATH_SETS`]. `None` when `set` was already the newest: nothing to update.
    pub fn with_newest(&self, set: PathSet) -> Option<PathSets> {
        if self.sets.first() == Some(&set) {
            return None;
        }
        let mut sets = vec![set.clone()];
        sets.extend(self.sets.iter().filter(|s| **s != set).cloned());
        sets.truncate(MAX_PATH_SETS);
        Some(PathSets {
            format: Self::FORMAT.into(),
            sets,
        })
    }
}

/// A blob the description names: shark's digest and the server's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// BLAKE3, hex.
    pub blake3: String,
    /// The server's digest (`hash/size`).
    pub remote: String,
}

impl BlobRef {
    /// Shark's digest.
    pub fn local(&self) -> Option<Digest> {
        self.blake3.parse().ok()
    }

    /// The server's digest.
    pub fn remote(&self, kind: DigestKind) -> Option<RemoteDigest> {
        let (hash, size) = self.remote.split_once('/')?;
        let proto = bazel_remote_apis::build::bazel::remote::execution::v2::Digest {
            hash: hash.into(),
            size_bytes: size.parse().ok()?,
        };
        RemoteDigest::from_proto(&proto, kind)
    }

    /// A reference to `local`, known remotely as `remote`.
    pub fn new(local: &Digest, remote: &RemoteDigest) -> BlobRef {
        BlobRef {
            blake3: local.to_hex(),
            remote: remote.to_string(),
        }
    }
}

/// An input as shared: portable path, kind, digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedInput {
    /// Portable path.
    pub path: String,
    /// `file`, `dir`, `symlink`, `absent`, `stdin`, `notdir`, `special` or `xattrs`.
    pub kind: String,
    /// BLAKE3, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// For a listing: names left out of its digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// An output as shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedOutput {
    /// Portable path.
    pub path: String,
    /// `file`, `dir`, `symlink` or `deleted`.
    pub kind: String,
    /// The content of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobRef>,
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Everything a machine needs to reuse a run recorded elsewhere (the strong entry's blob).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Format name, `shark-run-v1`.
    pub format: String,
    /// The machine that ran it.
    pub host: String,
    /// Its run id there.
    pub run: i64,
    /// How long it took there, in milliseconds.
    pub duration_ms: u64,
    /// Its exit status.
    pub exit_code: i32,
    /// What it read, with the values it saw.
    pub inputs: Vec<SharedInput>,
    /// What it changed, in order.
    pub outputs: Vec<SharedOutput>,
    /// Its standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<BlobRef>,
    /// Its standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<BlobRef>,
    /// The shell state it left, in portable form (the executor's format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<BlobRef>,
    /// How many bytes of a regular file on standard input it consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_consumed: Option<u64>,
}

impl Description {
    /// The format name.
    pub const FORMAT: &'static str = "shark-run-v1";

    /// Parses the blob; `None` if it is not one.
    pub fn parse(bytes: &[u8]) -> Option<Description> {
        serde_json::from_slice::<Description>(bytes)
            .ok()
            .filter(|d| d.format == Self::FORMAT)
    }

    /// The blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("descriptions always serialize")
    }

    /// The inputs on this machine, `None` if one names a location this machine lacks.
    pub fn local_inputs(&self, locs: &Locations) -> Option<Vec<Input>> {
        self.inputs
            .iter()
            .map(|i| {
                Some(Input {
                    path: local_input_path(&i.path, locs)?,
                    kind: input_kind(&i.kind)?,
                    digest: parse_opt(&i.digest)?,
                    mode: i.mode,
                    exclude: i.exclude.clone(),
                    // Checked strictly: the other machine's units of work are not known here.
                    as_left: shark_lineage::AsLeft::No,
                })
            })
            .collect()
    }

    /// The outputs on this machine, `None` if one names a location this machine lacks.
    pub fn local_outputs(&self, locs: &Locations) -> Option<Vec<Output>> {
        self.outputs
            .iter()
            .map(|o| {
                let kind = output_kind(&o.kind)?;
                let digest = match (kind, &o.blob, &o.target) {
                    (OutputKind::File, Some(b), _) => Some(b.local()?),
                    (OutputKind::Symlink, _, Some(t)) => Some(Digest::of_symlink(t.as_bytes())),
                    (OutputKind::File | OutputKind::Symlink, _, _) => return None,
                    _ => None,
                };
                Some(Output {
                    path: locs.decode_path(&o.path)?.to_str()?.to_owned(),
                    kind,
                    digest,
                    mode: o.mode,
                    symlink_target: o.target.clone(),
                })
            })
            .collect()
    }
}

/// `None` inside means "absent", the outer `None` "malformed".
fn parse_opt(d: &Option<String>) -> Option<Option<Digest>> {
    match d {
        None => Some(None),
        Some(hex) => hex.parse().ok().map(Some),
    }
}

/// The portable form of a recorded input's path.
pub fn portable_input_path(path: &str, locs: &Locations) -> Option<String> {
    match path {
        STDIN_PATH => Some(STDIN_PATH.into()),
        p => locs.encode_path(std::path::Path::new(p)),
    }
}

fn local_input_path(portable: &str, locs: &Locations) -> Option<String> {
    match portable {
        STDIN_PATH => Some(STDIN_PATH.into()),
        p => Some(locs.decode_path(p)?.to_str()?.to_owned()),
    }
}

/// The name of an input kind in the description.
pub fn input_kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::File => "file",
        InputKind::Dir => "dir",
        InputKind::Symlink => "symlink",
        InputKind::Absent => "absent",
        InputKind::Stdin => "stdin",
        InputKind::NotDir => "notdir",
        InputKind::Special => "special",
        InputKind::Xattrs => "xattrs",
    }
}

fn input_kind(name: &str) -> Option<InputKind> {
    [
        InputKind::File,
        InputKind::Dir,
        InputKind::Symlink,
        InputKind::Absent,
        InputKind::Stdin,
        InputKind::NotDir,
        InputKind::Special,
        InputKind::Xattrs,
    ]
    .into_iter()
    .find(|k| input_kind_name(*k) == name)
}

/// The name of an output kind in the description.
pub fn output_kind_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::File => "file",
        OutputKind::Dir => "dir",
        OutputKind::Symlink => "symlink",
        OutputKind::Deleted => "deleted",
    }
}

fn output_kind(name: &str) -> Option<OutputKind> {
    [
        OutputKind::File,
        OutputKind::Dir,
        OutputKind::Symlink,
        OutputKind::Deleted,
    ]
    .into_iter()
    .find(|k| output_kind_name(*k) == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn input(path: &str, kind: InputKind, digest: Option<&[u8]>) -> Input {
        Input {
            path: path.into(),
            kind,
            digest: digest.map(Digest::of_bytes),
            mode: None,
            exclude: Vec::new(),
            as_left: shark_lineage::AsLeft::No,
        }
    }

    #[test]
    fn equal_values_give_equal_observations_and_any_change_differs() {
        let locs = Locations::new(Path::new("/w"), None, None, None);
        let inputs = vec![
            input("/w/a", InputKind::File, Some(b"a")),
            input("/w/d", InputKind::Dir, Some(b"listing")),
            input("/w/gone", InputKind::Absent, None),
            Input {
                mode: Some(0o755),
                ..input("/usr/bin/tool", InputKind::File, Some(b"elf"))
            },
        ];
        let set = PathSet::of(&inputs, &locs).unwrap();
        assert_eq!(set.0[0].path, "\u{1}c/a");
        assert_eq!(set.0[1].look, Look::Listing);
        assert!(set.0[3].mode);
        let k = DigestKind::Sha256;
        let base = set.observed(k, &inputs);
        let mut changed = inputs.clone();
        changed[0].digest = Some(Digest::of_bytes(b"b"));
        assert_ne!(set.observed(k, &changed), base);
        let mut changed = inputs.clone();
        changed[2] = input("/w/gone", InputKind::File, Some(b""));
        assert_ne!(set.observed(k, &changed), base);
        let mut changed = inputs.clone();
        changed[3].mode = Some(0o644);
        assert_ne!(set.observed(k, &changed), base);
        assert_eq!(set.observed(k, &inputs.clone()), base);
        // Names left out of a listing are part of what was looked at.
        let mut excluding = inputs.clone();
        excluding[1].exclude = vec!["own".into()];
        let other = PathSet::of(&excluding, &locs).unwrap();
        assert_eq!(other.0[1].exclude, ["own"]);
        assert_ne!(other.observed(k, &excluding), base);
        // The ordered model's kinds travel too.
        for kind in [InputKind::NotDir, InputKind::Special, InputKind::Xattrs] {
            assert_eq!(input_kind(input_kind_name(kind)), Some(kind));
        }
    }

    #[test]
    fn newest_path_set_goes_first_and_the_list_is_bounded() {
        let set = |n: usize| {
            PathSet(vec![PathEntry {
                path: format!("/{n}"),
                look: Look::Path,
                mode: false,
                exclude: Vec::new(),
            }])
        };
        let mut sets = PathSets::default();
        for n in 0..MAX_PATH_SETS + 3 {
            sets = sets.with_newest(set(n)).unwrap();
        }
        assert_eq!(sets.sets.len(), MAX_PATH_SETS);
        assert_eq!(sets.sets[0], set(MAX_PATH_SETS + 2));
        assert!(sets.with_newest(set(MAX_PATH_SETS + 2)).is_none());
        let moved = sets.with_newest(set(5)).unwrap();
        assert_eq!(moved.sets[0], set(5));
        assert_eq!(moved.sets.len(), MAX_PATH_SETS);
        assert_eq!(PathSets::parse(&moved.to_bytes()), Some(moved));
        assert_eq!(PathSets::parse(b"{}"), None);
    }
}
