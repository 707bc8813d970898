//! [`Store`]: opening a store, finding, listing, reading and removing blobs.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::Access;

use crate::blob::{blob_path, parse_blob_name, BlobReader, Encoding};
use crate::durable::Durability;
use crate::{Digest, StoreError};

/// Temp files older than this are left over from a crash and removed when a store is opened.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// A content-addressed store of blobs in a directory (layout in [`crate::blob`]).
///
/// A `Store` is a handle on a directory; any number of handles, in any number of processes, may
/// use one directory at the same time.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    pub(crate) blobs: PathBuf,
    pub(crate) tmp: PathBuf,
    pub(crate) durability: Durability,
}

impl Store {
    /// Opens the store at `root`, creating it (and `root/blobs`, `root/tmp`) if needed. The
    /// handle's puts are durable when they return; see [`Store::batched`] for a faster kind.
    ///
    /// Fails with [`StoreError::Root`] naming the directory when one cannot be created or is
    /// not readable, writable and searchable by this process.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_owned(),
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            durability: Durability::Immediate,
        };
        for dir in [&store.root, &store.blobs, &store.tmp] {
            let root_err = |source| StoreError::Root {
                path: dir.clone(),
                source,
            };
            fs::create_dir_all(dir).map_err(root_err)?;
            rustix::fs::access(dir, Access::READ_OK | Access::WRITE_OK | Access::EXEC_OK)
                .map_err(|e| root_err(e.into()))?;
        }
        store.sweep_stale_temps();
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a blob named `digest` is in the store (its content is not checked).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.locate(digest).is_some()
    }

    /// Where `digest`'s blob is and how it is encoded, if it is in the store.
    pub(crate) fn locate(&self, digest: &Digest) -> Option<(PathBuf, Encoding)> {
        [Encoding::Raw, Encoding::Zstd].into_iter().find_map(|enc| {
            let path = blob_path(&self.blobs, digest, enc);
            path.symlink_metadata().is_ok().then_some((path, enc))
        })
    }

    /// Like [`Store::locate`], but a missing blob is [`StoreError::NoSuchBlob`].
    pub(crate) fn find(&self, digest: &Digest) -> Result<(PathBuf, Encoding), StoreError> {
        self.locate(digest)
            .ok_or(StoreError::NoSuchBlob { digest: *digest })
    }

    /// A reader of `digest`'s content that decodes and checks it as it goes (see
    /// [`BlobReader`]).
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader, StoreError> {
        // Opening each possible name is one call where looking first would be two.
        for encoding in [Encoding::Raw, Encoding::Zstd] {
            let path = blob_path(&self.blobs, digest, encoding);
            match BlobReader::open(*digest, path.clone(), encoding) {
                Ok(reader) => return Ok(reader),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::ReadBlob {
                        digest: *digest,
                        path,
                        source,
                    })
                }
            }
        }
        Err(StoreError::NoSuchBlob { digest: *digest })
    }

    /// The whole content of `digest`'s blob, checked against its digest.
    pub fn read_to_vec(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut reader = self.open_blob(digest)?;
        let mut out = Vec::new();
        match reader.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(e) => Err(reader.classify(e)),
        }
    }

    /// Removes `digest`'s blob. Removing a blob that is not there is [`StoreError::NoSuchBlob`].
    pub fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        let mut removed = false;
        for enc in [Encoding::Raw, Encoding::Zstd] {
            let path = blob_path(&self.blobs, digest, enc);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Remove { path, source }),
            }
        }
        match removed {
            true => Ok(()),
            false => Err(StoreError::NoSuchBlob { digest: *digest }),
        }
    }

    /// Every blob's digest, in ascending order; content is not checked.
    pub fn blobs(&self) -> impl Iterator<Item = Result<Digest, StoreError>> {
        self.entries().map(|e| e.map(|e| e.digest))
    }

    /// Every blob with its file and encoding, in ascending digest order.
    pub(crate) fn entries(&self) -> Entries {
        Entries {
            blobs: self.blobs.clone(),
            shards: None,
            current: Vec::new().into_iter(),
        }
    }

    /// Best effort: a temp file that a crash left behind is garbage, but failing to remove it
    /// is no reason to refuse to open the store.
    fn sweep_stale_temps(&self) {
        let Ok(dir) = fs::read_dir(&self.tmp) else {
            return;
        };
        let now = SystemTime::now();
        for entry in dir.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP_AGE);
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// One blob found by listing the store.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub digest: Digest,
    pub path: PathBuf,
    pub encoding: Encoding,
}

/// Iterator over the store's blobs, one shard directory at a time.
#[derive(Debug)]
pub(crate) struct Entries {
    blobs: PathBuf,
    shards: Option<std::vec::IntoIter<(String, PathBuf)>>,
    current: std::vec::IntoIter<Entry>,
}

impl Entries {
    fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let list_err = |source| StoreError::List {
            path: dir.to_owned(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push((name, entry.path()));
            }
        }
        names.sort();
        Ok(names)
    }

    fn load_shard(&mut self, shard: &str, dir: &Path) -> Result<(), StoreError> {
        let entries: Vec<Entry> = Self::list(dir)?
            .into_iter()
            .filter_map(|(name, path)| {
                let (digest, encoding) = parse_blob_name(shard, &name)?;
                Some(Entry {
                    digest,
                    path,
                    encoding,
                })
            })
            .collect();
        self.current = entries.into_iter();
        Ok(())
    }
}

impl Iterator for Entries {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some(Ok(entry));
            }
            if self.shards.is_none() {
                match Self::list(&self.blobs) {
                    Ok(shards) => self.shards = Some(shards.into_iter()),
                    Err(e) => {
                        self.shards = Some(Vec::new().into_iter());
                        return Some(Err(e));
                    }
                }
            }
            let (shard, dir) = self.shards.as_mut()?.next()?;
            if shard.len() != 2 || !dir.is_dir() {
                continue;
            }
            if let Err(e) = self.load_shard(&shard, &dir) {
                return Some(Err(e));
            }
        }
    }
}
