//! Sharing a run: its blobs, then the strong entry, then the weak entry's path-sets.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use shark_lineage::{Input, OutputKind, Run};
use shark_store::Digest;

use crate::bytestream::Quiet;
use crate::cache::{batches, RemoteCache, SHARK_FILE, STREAM_FROM};
use crate::digest::{DigestKind, RemoteDigest};
use crate::key::WeakKey;
use crate::portable::{Locations, Role};
use crate::shared::{
    input_kind_name, output_kind_name, BlobRef, Description, PathSet, PathSets, SharedInput,
    SharedOutput,
};
use crate::RemoteError;

/// Why a run was not uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unshareable {
    /// A path or text cannot be put in portable form (not UTF-8).
    NotPortable,
    /// An output or stream mentions a location of this machine, so it would be wrong
    /// elsewhere.
    Mentions {
        /// The output's path, or `stdout`, `stderr`.
        what: String,
        /// Which location.
        role: Role,
    },
    /// The server does not accept Action Cache updates.
    UpdatesRefused,
}

impl std::fmt::Display for Unshareable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unshareable::NotPortable => write!(f, "a path or argument is not UTF-8"),
            Unshareable::Mentions { what, role } => {
                write!(f, "{what} mentions this machine's {role:?} directory")
            }
            Unshareable::UpdatesRefused => write!(f, "the server refuses Action Cache updates"),
        }
    }
}

/// What an upload sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Blobs uploaded (those the server lacked).
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// One run to upload.
#[derive(Debug)]
pub struct Upload<'a> {
    /// Its weak key.
    pub weak: &'a WeakKey,
    /// The machine's locations when it ran.
    pub locations: &'a Locations,
    /// The run, with inputs and outputs.
    pub run: &'a Run,
    /// The name of this machine.
    pub host: &'a str,
    /// The shell state it left, in portable form, if any.
    pub state: Option<Vec<u8>>,
}

impl RemoteCache {
    /// Shares `up`: uploads the blobs the server lacks, then the strong entry, then the weak
    /// entry with the run's path-set first. `Ok(Err(..))` when the run cannot be shared.
    pub fn upload(&self, up: &Upload<'_>) -> Result<Result<Sent, Unshareable>, RemoteError> {
        let caps = self.client.capabilities()?;
        if !caps.update_enabled {
            return Ok(Err(Unshareable::UpdatesRefused));
        }
        let kind = caps.digest;
        let Some(set) = PathSet::of(&up.run.inputs, up.locations) else {
            return Ok(Err(Unshareable::NotPortable));
        };
        let mut blobs = Blobs::default();
        let described = match self.describe(up, kind, &mut blobs)? {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        let description = described.to_bytes();
        let description_digest = kind.of_bytes(&description);
        blobs.memory.push((description_digest.clone(), description));
        let sent = self.send(&blobs)?;
        let strong = up
            .weak
            .strong_action(kind, &set.observed(kind, &up.run.inputs));
        self.client.update_action_result(
            &strong,
            strong_result(up, &described, &description_digest, kind),
        )?;
        self.add_path_set(up.weak, kind, set)?;
        Ok(Ok(sent))
    }

    /// The run's description, collecting the blobs it names into `blobs`.
    fn describe(
        &self,
        up: &Upload<'_>,
        kind: DigestKind,
        blobs: &mut Blobs,
    ) -> Result<Result<Description, Unshareable>, RemoteError> {
        let locs = up.locations;
        let run = up.run;
        let mut outputs = Vec::new();
        for o in &run.outputs {
            let Some(path) = locs.encode_path(std::path::Path::new(&o.path)) else {
                return Ok(Err(Unshareable::NotPortable));
            };
            let blob = match (o.kind, o.digest) {
                (OutputKind::File, Some(d)) => match self.blob_ref(&d, kind, locs, blobs)? {
                    Ok(b) => Some(b),
                    Err(role) => {
                        return Ok(Err(Unshareable::Mentions {
                            what: o.path.clone(),
                            role,
                        }))
                    }
                },
                _ => None,
            };
            if let Some(role) = o
                .symlink_target
                .as_ref()
                .and_then(|t| locs.mentioned_in(t.as_bytes()))
            {
                return Ok(Err(Unshareable::Mentions {
                    what: o.path.clone(),
                    role,
                }));
            }
            outputs.push(SharedOutput {
                path,
                kind: output_kind_name(o.kind).into(),
                blob,
                mode: o.mode,
                target: o.symlink_target.clone(),
            });
        }
        let mut streams = [None, None];
        for (slot, (name, digest)) in streams
            .iter_mut()
            .zip([("stdout", run.stdout), ("stderr", run.stderr)])
        {
            if let Some(d) = digest {
                match self.blob_ref(&d, kind, locs, blobs)? {
                    Ok(b) => *slot = Some(b),
                    Err(role) => {
                        return Ok(Err(Unshareable::Mentions {
                            what: name.into(),
                            role,
                        }))
                    }
                }
            }
        }
        let state = up.state.as_ref().map(|bytes| {
            let remote = kind.of_bytes(bytes);
            let r = BlobRef::new(&Digest::of_bytes(bytes), &remote);
            blobs.memory.push((remote, bytes.clone()));
            r
        });
        let Some(inputs) = shared_inputs(&run.inputs, locs) else {
            return Ok(Err(Unshareable::NotPortable));
        };
        let [stdout, stderr] = streams;
        Ok(Ok(Description {
            format: Description::FORMAT.into(),
            host: up.host.into(),
            run: run.id.0,
            duration_ms: u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX),
            exit_code: run.exit_code.unwrap_or(0),
            inputs,
            outputs,
            stdout,
            stderr,
            state,
            stdin_consumed: run.stdin_consumed,
        }))
    }

    /// The reference to local blob `d`, hashing it for the server if its name there is not
    /// known, and scanning it for this machine's locations (`Err(role)` if it mentions one).
    fn blob_ref(
        &self,
        d: &Digest,
        kind: DigestKind,
        locs: &Locations,
        blobs: &mut Blobs,
    ) -> Result<Result<BlobRef, Role>, RemoteError> {
        // Empty content is never stored (nor uploaded: every server has it).
        if *d == Digest::of_bytes(b"") {
            return Ok(Ok(BlobRef::new(d, &kind.of_bytes(b""))));
        }
        // The content is read once whatever happens, for the scan; it is hashed for the
        // server only when the server's name for it is not known yet (never under BLAKE3).
        let known = match kind {
            DigestKind::Blake3 => None,
            DigestKind::Sha256 => self.map.get(kind, d)?,
        };
        let mut hasher = (kind != DigestKind::Blake3 && known.is_none()).then(|| kind.hasher());
        let mut reader = self.store.open_blob(d)?;
        let mut scanner = locs.scanner();
        let mut size = 0;
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| reader.classify(e))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            scanner.update(&buf[..n]);
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
        }
        if let Some(role) = scanner.found() {
            return Ok(Err(role));
        }
        let remote = match (known, hasher) {
            (Some(remote), _) => remote,
            (None, Some(h)) => {
                let remote = h.finish();
                self.map.put(kind, d, &remote)?;
                remote
            }
            (None, None) => RemoteDigest {
                hash: d.to_hex(),
                size,
            },
        };
        blobs.stored.push((*d, remote.clone()));
        Ok(Ok(BlobRef::new(d, &remote)))
    }

    /// Uploads what the server lacks of `blobs`.
    fn send(&self, blobs: &Blobs) -> Result<Sent, RemoteError> {
        let mut all: Vec<RemoteDigest> = blobs.stored.iter().map(|(_, r)| r.clone()).collect();
        all.extend(blobs.memory.iter().map(|(r, _)| r.clone()));
        all.sort();
        all.dedup();
        let missing = self.client.find_missing(&all)?;
        let mut sent = Sent::default();
        let mut small = Vec::new();
        for remote in &missing {
            sent.blobs += 1;
            sent.bytes += remote.size;
            if let Some((_, data)) = blobs.memory.iter().find(|(r, _)| r == remote) {
                small.push((remote.clone(), data.clone()));
                continue;
            }
            let Some((local, _)) = blobs.stored.iter().find(|(_, r)| r == remote) else {
                continue;
            };
            if remote.size < STREAM_FROM {
                small.push((remote.clone(), self.store.read_to_vec(local)?));
            } else {
                let reader = self.store.open_blob(local)?;
                let mut progress = (self.progress)("uploading", remote.size);
                self.client
                    .write_blob(remote, Box::new(reader), progress.as_mut())?;
            }
        }
        let max = self.client.capabilities()?.max_batch;
        for group in batches(small, max, |(r, _)| r.size) {
            self.client.batch_update(group)?;
        }
        Ok(sent)
    }

    /// Puts `set` first in the weak entry's path-sets.
    fn add_path_set(
        &self,
        weak: &WeakKey,
        kind: DigestKind,
        set: PathSet,
    ) -> Result<(), RemoteError> {
        let action = weak.action(kind);
        // A missing, unreadable or malformed list is replaced: it is only a cache.
        let current = match self.client.get_action_result(&action)? {
            Some(entry) => self
                .shark_blob(&entry, kind)
                .ok()
                .and_then(|b| PathSets::parse(&b))
                .unwrap_or_default(),
            None => PathSets::default(),
        };
        let Some(updated) = current.with_newest(set) else {
            return Ok(());
        };
        let bytes = updated.to_bytes();
        let digest = kind.of_bytes(&bytes);
        if bytes.len() as u64 >= STREAM_FROM {
            self.client
                .write_blob(&digest, Box::new(std::io::Cursor::new(bytes)), &mut Quiet)?;
        } else {
            self.client.batch_update(vec![(digest.clone(), bytes)])?;
        }
        let entry = re::ActionResult {
            output_files: vec![shark_file(&digest)],
            ..Default::default()
        };
        self.client.update_action_result(&action, entry)
    }
}

/// Blobs an upload names: in the local store (by BLAKE3) or in memory.
#[derive(Debug, Default)]
struct Blobs {
    stored: Vec<(Digest, RemoteDigest)>,
    memory: Vec<(RemoteDigest, Vec<u8>)>,
}

fn shark_file(digest: &RemoteDigest) -> re::OutputFile {
    re::OutputFile {
        path: SHARK_FILE.into(),
        digest: Some(digest.proto()),
        ..Default::default()
    }
}

/// The strong entry: the outputs as REAPI output files (so that the server keeps their
/// blobs with the entry), the streams, the exit status, and the description.
fn strong_result(
    up: &Upload<'_>,
    d: &Description,
    description: &RemoteDigest,
    kind: DigestKind,
) -> re::ActionResult {
    let mut files = vec![shark_file(description)];
    for o in &d.outputs {
        if let Some(remote) = o.blob.as_ref().and_then(|b| b.remote(kind)) {
            files.push(re::OutputFile {
                path: crate::portable::show(o.path.as_bytes()),
                digest: Some(remote.proto()),
                is_executable: o.mode.is_some_and(|m| m & 0o111 != 0),
                node_properties: Some(re::NodeProperties {
                    unix_mode: o
                        .mode
                        .map(|value| bazel_remote_apis::google::protobuf::UInt32Value { value }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    let stream = |b: &Option<BlobRef>| b.as_ref().and_then(|b| b.remote(kind)).map(|r| r.proto());
    re::ActionResult {
        output_files: files,
        exit_code: up.run.exit_code.unwrap_or(0),
        stdout_digest: stream(&d.stdout),
        stderr_digest: stream(&d.stderr),
        execution_metadata: Some(re::ExecutedActionMetadata {
            worker: up.host.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn shared_inputs(inputs: &[Input], locs: &Locations) -> Option<Vec<SharedInput>> {
    inputs
        .iter()
        .map(|i| {
            Some(SharedInput {
                path: crate::shared::portable_input_path(&i.path, locs)?,
                kind: input_kind_name(i.kind).into(),
                digest: i.digest.map(|d| d.to_hex()),
                mode: i.mode,
                exclude: i.exclude.clone(),
            })
        })
        .collect()
}
