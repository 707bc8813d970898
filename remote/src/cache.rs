//! [`RemoteCache`]: the two-phase lookup and the upload of runs, on a [`Client`].

use shark_lineage::{Input, OutputKind, Run};
use shark_store::{Digest, Store};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;

use crate::bytestream::{Progress, Quiet};
use crate::client::Client;
use crate::digest::{DigestKind, RemoteDigest};
use crate::key::WeakKey;
use crate::map::DigestMap;
use crate::portable::{Locations, Role};
use crate::shared::{
    input_kind_name, output_kind_name, BlobRef, Description, PathEntry, PathSet, PathSets,
    SharedInput, SharedOutput,
};
use crate::RemoteError;

/// The output name under which an entry's blob of shark data is listed: the path-sets in a
/// weak entry, the description in a strong one. Portable paths are absolute or start with
/// the escape byte, so this relative name never collides with an output.
pub const SHARK_FILE: &str = "shark.json";

/// Blobs from this size on go through ByteStream (and show progress on a terminal).
pub const STREAM_FROM: u64 = 1 << 20;

/// Observes, on this machine, the state of a path-set's paths.
pub trait Probe {
    /// What is at `path` (this machine's form of `entry.path`), looked at as `entry` says,
    /// as an input record (kind, digest, and the mode if `entry.mode`). An unreadable path
    /// is a `File` without digest (it never matches).
    fn observe(&mut self, entry: &PathEntry, path: &str) -> Input;
}

/// Makes a progress display for one large transfer (`what`, `size` bytes).
pub type ProgressFactory = Box<dyn Fn(&str, u64) -> Box<dyn Progress>>;

/// A remote result found for a command.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The run as described by the machine that recorded it.
    pub description: Description,
    /// Its inputs, with this machine's paths.
    pub inputs: Vec<Input>,
    /// Its outputs, with this machine's paths.
    pub outputs: Vec<shark_lineage::Output>,
}

/// Why the remote had no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No machine recorded this command.
    NoEntry,
    /// Machines recorded it, but none read what this machine has now.
    NoMatch {
        /// How many recorded path-sets were tried.
        tried: usize,
    },
}

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

/// A remote cache: a client, the digest map and the local store.
pub struct RemoteCache {
    client: Client,
    map: DigestMap,
    store: Store,
    progress: ProgressFactory,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCache")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl RemoteCache {
    /// A remote cache on `client`, keeping digests in `map` and blobs in `store`.
    pub fn new(
        client: Client,
        map: DigestMap,
        store: Store,
        progress: ProgressFactory,
    ) -> RemoteCache {
        RemoteCache {
            client,
            map,
            store,
            progress,
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The digest map.
    pub fn map(&self) -> &DigestMap {
        &self.map
    }

    fn kind(&self) -> Result<DigestKind, RemoteError> {
        Ok(self.client.capabilities()?.digest)
    }

    /// The two-phase lookup of `weak` from this machine (`locations`, `probe`).
    pub fn lookup(
        &self,
        weak: &WeakKey,
        locations: &Locations,
        probe: &mut dyn Probe,
    ) -> Result<Result<Hit, Miss>, RemoteError> {
        let kind = self.kind()?;
        let Some(entry) = self.client.get_action_result(&weak.action(kind))? else {
            return Ok(Err(Miss::NoEntry));
        };
        let sets = self.shark_blob(&entry, kind)?;
        let sets = PathSets::parse(&sets).ok_or_else(|| malformed("path-sets blob"))?;
        for set in &sets.sets {
            let Some(values) = observe(set, locations, probe) else {
                continue;
            };
            let strong = weak.strong_action(kind, &set.observed(kind, &values));
            let Some(result) = self.client.get_action_result(&strong)? else {
                continue;
            };
            let bytes = self.shark_blob(&result, kind)?;
            let description =
                Description::parse(&bytes).ok_or_else(|| malformed("run description"))?;
            let inputs = description.local_inputs(locations);
            let outputs = description.local_outputs(locations);
            if let (Some(inputs), Some(outputs)) = (inputs, outputs) {
                return Ok(Ok(Hit {
                    description,
                    inputs,
                    outputs,
                }));
            }
        }
        Ok(Err(Miss::NoMatch {
            tried: sets.sets.len(),
        }))
    }

    /// The blob of shark data an entry lists.
    fn shark_blob(
        &self,
        entry: &re::ActionResult,
        kind: DigestKind,
    ) -> Result<Vec<u8>, RemoteError> {
        let digest = entry
            .output_files
            .iter()
            .find(|f| f.path == SHARK_FILE)
            .and_then(|f| f.digest.as_ref())
            .and_then(|d| RemoteDigest::from_proto(d, kind))
            .ok_or_else(|| malformed("Action Cache entry"))?;
        self.read_to_vec(&digest)
    }

    fn read_to_vec(&self, digest: &RemoteDigest) -> Result<Vec<u8>, RemoteError> {
        if digest.size < STREAM_FROM {
            let mut found = self.client.batch_read(std::slice::from_ref(digest))?;
            return found
                .pop()
                .map(|(_, data)| data)
                .ok_or_else(|| missing(digest));
        }
        let mut out = Vec::new();
        self.client.read_blob(digest, &mut out, &mut Quiet)?;
        Ok(out)
    }

    /// Brings every blob `hit` needs into the local store, each checked against both its
    /// remote digest and its BLAKE3 digest; returns the portable shell state, if the run
    /// left one. A corrupt blob is [`RemoteError::Corrupt`] and nothing of it is kept.
    pub fn fetch(&self, hit: &Hit) -> Result<Option<Vec<u8>>, RemoteError> {
        let kind = self.kind()?;
        let d = &hit.description;
        let mut wanted: Vec<&BlobRef> = d.outputs.iter().filter_map(|o| o.blob.as_ref()).collect();
        wanted.extend(d.stdout.iter().chain(&d.stderr));
        let mut small = Vec::new();
        for blob in wanted {
            let local = blob
                .local()
                .ok_or_else(|| malformed("digest in run description"))?;
            let remote = blob
                .remote(kind)
                .ok_or_else(|| malformed("digest in run description"))?;
            if self.store.contains(&local) {
                continue;
            }
            if remote.size == 0 {
                self.store.put_bytes(b"")?;
                continue;
            }
            if remote.size < STREAM_FROM {
                small.push((local, remote));
            } else {
                self.download_large(&local, &remote)?;
            }
        }
        self.download_small(small)?;
        match &d.state {
            Some(blob) => {
                let remote = blob
                    .remote(kind)
                    .ok_or_else(|| malformed("digest in run description"))?;
                Ok(Some(self.read_to_vec(&remote)?))
            }
            None => Ok(None),
        }
    }

    fn download_small(&self, blobs: Vec<(Digest, RemoteDigest)>) -> Result<(), RemoteError> {
        let kind = self.kind()?;
        let max = self.client.capabilities()?.max_batch;
        for group in batches(blobs, max, |(_, r)| r.size) {
            let remotes: Vec<RemoteDigest> = group.iter().map(|(_, r)| r.clone()).collect();
            let found = self.client.batch_read(&remotes)?;
            for (local, remote) in &group {
                let (_, data) = found
                    .iter()
                    .find(|(r, _)| r == remote)
                    .ok_or_else(|| missing(remote))?;
                if Digest::of_bytes(data) != *local {
                    return Err(RemoteError::Corrupt {
                        digest: remote.to_string(),
                    });
                }
                self.store.put_bytes(data)?;
                self.map.put(kind, local, remote)?;
            }
        }
        Ok(())
    }

    fn download_large(&self, local: &Digest, remote: &RemoteDigest) -> Result<(), RemoteError> {
        let kind = self.kind()?;
        let tmp =
            tempfile::NamedTempFile::new_in(self.store.root().join("tmp")).map_err(|source| {
                RemoteError::Io {
                    path: self.store.root().join("tmp"),
                    source,
                }
            })?;
        let io_err = |source| RemoteError::Io {
            path: tmp.path().to_owned(),
            source,
        };
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let mut progress = (self.progress)("downloading", remote.size);
        self.client
            .read_blob(remote, &mut writer, progress.as_mut())?;
        std::io::Write::flush(&mut writer).map_err(io_err)?;
        drop(writer);
        let put = self.store.put_file(tmp.path())?;
        if put.digest != *local {
            // The server's digest matched but shark's does not: the entry lied about it.
            let _ = self.store.remove(&put.digest);
            return Err(RemoteError::Corrupt {
                digest: remote.to_string(),
            });
        }
        self.map.put(kind, local, remote)
    }

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
        let mut reader = self.store.open_blob(d)?;
        let mut scanner = locs.scanner();
        let mut hasher = kind.hasher();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| reader.classify(e))?;
            if n == 0 {
                break;
            }
            scanner.update(&buf[..n]);
            hasher.update(&buf[..n]);
        }
        if let Some(role) = scanner.found() {
            return Ok(Err(role));
        }
        let remote = hasher.finish();
        self.map.put(kind, d, &remote)?;
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
            })
        })
        .collect()
}

/// The values of `set`'s paths on this machine, `None` if one names a location it lacks.
fn observe(set: &PathSet, locations: &Locations, probe: &mut dyn Probe) -> Option<Vec<Input>> {
    set.0
        .iter()
        .map(|entry| {
            let path = match entry.path.as_str() {
                crate::shared::STDIN_PATH => crate::shared::STDIN_PATH.to_owned(),
                p => locations.decode_path(p)?.to_str()?.to_owned(),
            };
            Some(probe.observe(entry, &path))
        })
        .collect()
}

/// Groups `items` so that each group's sizes add up to at most `max` (an item larger than
/// `max` goes alone).
fn batches<T>(items: Vec<T>, max: u64, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut total = 0;
    for item in items {
        let s = size(&item);
        match out.last_mut() {
            Some(group) if total + s <= max => {
                total += s;
                group.push(item);
            }
            _ => {
                total = s;
                out.push(vec![item]);
            }
        }
    }
    out
}

fn malformed(what: &str) -> RemoteError {
    RemoteError::Malformed { what: what.into() }
}

fn missing(digest: &RemoteDigest) -> RemoteError {
    RemoteError::Call {
        call: "BatchReadBlobs",
        status: Box::new(tonic::Status::not_found(format!(
            "blob {digest} is not in the CAS"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_limit() {
        let groups = batches(vec![3u64, 3, 3, 10, 1], 6, |s| *s);
        assert_eq!(groups, vec![vec![3, 3], vec![3], vec![10], vec![1]]);
        assert!(batches(Vec::<u64>::new(), 6, |s| *s).is_empty());
    }
}
