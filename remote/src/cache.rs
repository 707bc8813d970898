//! [`RemoteCache`]: the two-phase lookup and the upload of runs, on a [`Client`].

use shark_lineage::Input;
use shark_store::{Digest, Store};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;

use crate::bytestream::{Progress, Quiet};
use crate::client::Client;
use crate::digest::{DigestKind, RemoteDigest};
use crate::key::WeakKey;
use crate::map::DigestMap;
use crate::portable::Locations;
use crate::shared::{BlobRef, Description, PathEntry, PathSet, PathSets};
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
pub type ProgressFactory = Box<dyn Fn(&str, u64) -> Box<dyn Progress> + Send + Sync>;

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

/// A remote cache: a client, the digest map and the local store.
pub struct RemoteCache {
    pub(crate) client: Client,
    pub(crate) map: DigestMap,
    pub(crate) store: Store,
    pub(crate) progress: ProgressFactory,
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

    pub(crate) fn kind(&self) -> Result<DigestKind, RemoteError> {
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
    pub(crate) fn shark_blob(
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
pub(crate) fn batches<T>(items: Vec<T>, max: u64, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
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

pub(crate) fn malformed(what: &str) -> RemoteError {
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
