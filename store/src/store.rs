//! [`Store`]: opening a store, finding, listing, reading and removing blobs.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::fs::Access;

use crate::blob::{blob_path, BlobReader, Encoding};
use crate::durable::Durability;
use crate::journal::{Journal, Swept};
use crate::pack::{Pack, Row};
use crate::{Digest, Healed, StoreError};

/// Where a blob is stored.
#[derive(Debug)]
pub(crate) enum Location {
    /// A blob file, and its encoding.
    File(PathBuf, Encoding),
    /// A row of the pack.
    Packed(Row),
}

/// Temp files older than this are left over from a crash and removed when a store is opened.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// A content-addressed store of blobs in a directory (layout in [`crate::blob`]).
///
/// A `Store` is a handle on a directory; any number of handles, in any number of processes, may
/// use one directory at the same time. Clones share one connection to the pack of small blobs
/// (`pack.db`), opened the first time a small blob is put or looked for there.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    pub(crate) blobs: PathBuf,
    pub(crate) tmp: PathBuf,
    pub(crate) pack: Pack,
    pub(crate) durability: Durability,
    /// Temporary names restores create in users' directories (see [`crate::journal`]).
    pub(crate) journal: Arc<Journal>,
}

impl Store {
    /// Opens the store at `root`, creating it (and `root/blobs`, `root/tmp`) if needed. The
    /// handle's puts are durable when they return; see [`Store::batched`] for a faster kind.
    /// The pack (`root/pack.db`) is not opened here, only when a blob in it is first needed.
    ///
    /// Fails with [`StoreError::Root`] naming the directory when one cannot be created or is
    /// not readable, writable and searchable by this process.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_owned(),
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            pack: Pack::new(root.join("pack.db")),
            durability: Durability::Immediate,
            journal: Arc::new(Journal::new(root.join("restores"))),
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

    /// Calls `f` whenever this handle (or a clone) finds the pack of small blobs damaged and
    /// heals it (see [`crate::heal`]), so that the user hears of it once.
    pub fn on_heal(&self, f: impl Fn(&Healed) + Send + Sync + 'static) {
        self.pack.on_heal(Arc::new(f));
    }

    /// Opens an existing store for reading only: nothing is created, and no leftover temp
    /// file is swept (a viewer such as `shark serve` changes nothing). Fails with
    /// [`StoreError::Root`] when `root` is not a readable directory. Puts through this handle
    /// fail as the directory's permissions say.
    pub fn open_read_only(root: &Path) -> Result<Store, StoreError> {
        let root_err = |source| StoreError::Root {
            path: root.to_owned(),
            source,
        };
        rustix::fs::access(root, Access::READ_OK | Access::EXEC_OK)
            .map_err(|e| root_err(e.into()))?;
        if !root.is_dir() {
            return Err(root_err(io::ErrorKind::NotADirectory.into()));
        }
        Ok(Store {
            root: root.to_owned(),
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            pack: Pack::new(root.join("pack.db")),
            durability: Durability::Immediate,
            journal: Arc::new(Journal::new(root.join("restores"))),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a blob named `digest` is in the store (its content is not checked). A pack that
    /// cannot be read holds nothing, as far as this answer goes; a put or a read reports why.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.locate(digest).is_ok_and(|found| found.is_some())
    }

    /// Where `digest`'s blob is, if it is in the store: a file first (so that a store whose
    /// commands touch only large blobs never opens the pack), then the pack.
    pub(crate) fn locate(&self, digest: &Digest) -> Result<Option<Location>, StoreError> {
        if let Some((path, encoding)) = self.locate_file(digest) {
            return Ok(Some(Location::File(path, encoding)));
        }
        Ok(self.pack.get(digest)?.map(Location::Packed))
    }

    /// Where `digest`'s blob file is and how it is encoded, if there is one.
    pub(crate) fn locate_file(&self, digest: &Digest) -> Option<(PathBuf, Encoding)> {
        [Encoding::Raw, Encoding::Zstd].into_iter().find_map(|enc| {
            let path = blob_path(&self.blobs, digest, enc);
            path.symlink_metadata().is_ok().then_some((path, enc))
        })
    }

    /// Like [`Store::locate`], but a missing blob is [`StoreError::NoSuchBlob`].
    pub(crate) fn find(&self, digest: &Digest) -> Result<Location, StoreError> {
        self.locate(digest)?
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
        let Some(row) = self.pack.get(digest)? else {
            return Err(StoreError::NoSuchBlob { digest: *digest });
        };
        BlobReader::packed(*digest, self.pack.clone(), row).map_err(|source| StoreError::ReadBlob {
            digest: *digest,
            path: self.pack.path().to_owned(),
            source,
        })
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

    /// Removes `digest`'s blob (its file, its row in the pack, or both should a concurrent put
    /// by an older shark have made both). Removing a blob that is not there is
    /// [`StoreError::NoSuchBlob`].
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
        removed |= self.pack.remove(digest)?;
        match removed {
            true => Ok(()),
            false => Err(StoreError::NoSuchBlob { digest: *digest }),
        }
    }

    /// Every blob's digest (files and packed ones, each once), in ascending order; content is
    /// not checked.
    pub fn blobs(&self) -> impl Iterator<Item = Result<Digest, StoreError>> {
        self.entries().map(|e| e.map(|e| e.digest))
    }

    /// Removes what killed shark processes left behind: the temporary names of their restores
    /// in users' directories (see [`crate::journal`] for exactly what is removed, and why
    /// that is safe), and the temp files of their puts in `tmp/` (named `put-PID-...`; those
    /// whose process no longer exists). Shark runs it when it starts. Best effort: what
    /// cannot be removed is left for next time, and only a journal directory that cannot be
    /// listed is an error.
    pub fn sweep(&self) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        let dir = self.journal.dir();
        crate::journal::sweep(dir, &mut swept).map_err(|source| StoreError::List {
            path: dir.to_owned(),
            source,
        })?;
        let Ok(entries) = fs::read_dir(&self.tmp) else {
            return Ok(swept);
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("put-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            let dead = pid.is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
            if dead && fs::remove_file(entry.path()).is_ok() {
                swept.temps += 1;
            }
        }
        Ok(swept)
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
