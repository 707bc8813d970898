//! The on-disk layout of a store, and reading blobs back.
//!
//! # Layout (format version 2)
//!
//! ```text
//! <root>/blobs/<h0h1>/<h2..h63>       raw blob: exactly the content's bytes
//! <root>/blobs/<h0h1>/<h2..h63>.zst   zstd blob: one zstd frame whose header records the
//!                                     content size
//! <root>/pack.db                      blobs of fewer than PACK_MAX (16 KiB) content bytes,
//!                                     one row each (with pack.db-wal and pack.db-shm)
//! <root>/tmp/                         files being written; never read as blobs
//! <root>/corrupt/<h0..h63>[.zst]       blobs found corrupt, moved aside (see below)
//! ```
//!
//! `h0..h63` is the 64-character lowercase hex [`Digest`] of the blob's *content* (the logical,
//! uncompressed bytes): the first two characters name a shard directory (at most 256 of them),
//! the other 62 name the file. The suffix records the encoding chosen for that blob, so no
//! header is needed: a raw blob is byte for byte the content, which is what lets a restore on
//! btrfs or xfs share its extents (reflink) with the restored file. The logical size of a blob
//! is the file size of a raw blob and the frame content size of a zstd blob, so statistics never
//! decompress anything. Which encoding a blob gets depends only on its content (see
//! [`crate::compress`]), so one digest is stored under at most one of the two names.
//!
//! Format version 2 adds the pack: content smaller than [`PACK_MAX`](crate::PACK_MAX) is
//! stored as a row of `pack.db` (schema in [`crate::pack`]) holding the same bytes a blob file
//! would, instead of costing an inode and a block of its own. Version 1 had no pack and kept
//! every blob as a file; such a store is a valid version 2 store, its small blob files are
//! found and used, and new small content goes to the pack.
//!
//! Blob files are written once (temp file in `tmp/`, fsync, rename) and made read-only
//! (mode 0444); nothing ever modifies one in place. Packed rows are likewise inserted whole
//! and never updated.
//!
//! A blob whose content is found not to match its digest (by a read, a restore or a
//! verification) is renamed into `corrupt/` at once (a packed blob's bytes are written there
//! and its row deleted): it keeps its bytes for inspection, but the digest is free again, so
//! the next put of that content stores a good copy instead of finding the damaged one and
//! keeping it. An I/O error is not corruption and moves nothing.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shark_store::{Digest, Store, PACK_MAX};
//! let store = Store::open(dir.path()).unwrap();
//! // Large content is a file of its own...
//! let big = vec![7u8; PACK_MAX as usize];
//! let hex = store.put_bytes(&big).unwrap().digest.to_string();
//! assert!(dir.path().join("blobs").join(&hex[..2]).join(format!("{}.zst", &hex[2..])).is_file());
//! // ...small content is a row of the pack.
//! let small = store.put_bytes(b"hello\n").unwrap();
//! let hex = small.digest.to_string();
//! assert!(!dir.path().join("blobs").join(&hex[..2]).join(&hex[2..]).exists());
//! assert!(dir.path().join("pack.db").is_file());
//! assert!(store.contains(&small.digest));
//! assert_eq!(store.read_to_vec(&small.digest).unwrap(), b"hello\n");
//! ```

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::pack::{Pack, Row};
use crate::{Corruption, Digest, StoreError};

/// Suffix of a zstd blob's file name.
pub const ZSTD_SUFFIX: &str = ".zst";

/// Bytes read, hashed and written at a time by puts, restores and checks.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Hashes on every core for large chunks; rayon costs more than it saves below ~128 KiB.
pub(crate) fn hash(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= 128 * 1024 {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

/// How a blob's content is encoded in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The file is the content.
    Raw,
    /// The file is one zstd frame of the content, with the content size in its header.
    Zstd,
}

/// The path of `digest`'s blob with `encoding` under the `blobs` directory.
pub(crate) fn blob_path(blobs: &Path, digest: &Digest, encoding: Encoding) -> PathBuf {
    let hex = digest.to_string();
    let mut name = hex[2..].to_owned();
    if encoding == Encoding::Zstd {
        name.push_str(ZSTD_SUFFIX);
    }
    blobs.join(&hex[..2]).join(name)
}

/// Parses a shard directory name and a file name back into a digest and an encoding; `None`
/// for anything that is not a blob name.
pub(crate) fn parse_blob_name(shard: &str, file: &str) -> Option<(Digest, Encoding)> {
    let (stem, encoding) = match file.strip_suffix(ZSTD_SUFFIX) {
        Some(stem) => (stem, Encoding::Zstd),
        None => (file, Encoding::Raw),
    };
    let hex = format!("{shard}{stem}");
    if shard.len() != 2 || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let digest = hex.parse().ok()?;
    Some((digest, encoding))
}

/// Reads the content size recorded in a zstd blob's frame header.
pub(crate) fn zstd_content_size(file: &mut File) -> io::Result<u64> {
    // A frame header is at most 18 bytes.
    let mut header = Vec::with_capacity(18);
    file.take(18).read_to_end(&mut header)?;
    match zstd::zstd_safe::get_frame_content_size(&header) {
        Ok(Some(size)) => Ok(size),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "zstd frame header without a content size",
        )),
    }
}

/// Moves the corrupt blob at `path` (`<root>/blobs/<shard>/<name>`) to `<root>/corrupt/`, if
/// `path` still names the file `opened` was opened from (a concurrent put may already have
/// replaced it with a good copy, which must stay). Best effort: the caller reports the
/// corruption either way, and a blob that stays is caught again next time.
pub(crate) fn quarantine(digest: &Digest, path: &Path, opened: &File) {
    use std::os::unix::fs::MetadataExt;
    let (Some(shard_dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let Some(root) = shard_dir.parent().and_then(Path::parent) else {
        return;
    };
    let same = match (opened.metadata(), path.symlink_metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if !same {
        return;
    }
    let corrupt = root.join("corrupt");
    let hex = digest.to_string();
    let suffix = name
        .to_string_lossy()
        .strip_prefix(&hex[2..])
        .unwrap_or_default()
        .to_owned();
    if std::fs::create_dir_all(&corrupt).is_ok() {
        let _ = std::fs::rename(path, corrupt.join(format!("{hex}{suffix}")));
    }
}

/// Where a reader's bytes come from.
enum Source {
    /// A raw blob file.
    Raw(File),
    /// A zstd blob file.
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<File>>>),
    /// A raw row of the pack, read into memory.
    PackedRaw(Pack, io::Cursor<Vec<u8>>),
    /// A zstd row of the pack, read into memory.
    PackedZstd(
        Pack,
        Box<zstd::stream::read::Decoder<'static, io::Cursor<Vec<u8>>>>,
    ),
}

/// A blob's content, decoded and checked as it is read.
///
/// Bytes come out as they are decoded; the content is hashed on the way, and at the end of the
/// stream a digest mismatch (or a stream that cannot be decoded) is an [`io::Error`] of kind
/// [`io::ErrorKind::InvalidData`] whose inner error is a [`Corruption`], instead of a clean end
/// of file. A reader that reaches `Ok(0)` has therefore delivered exactly the blob's content;
/// callers that act on the bytes before the end (a restore) must hold them back until then.
/// A blob in the pack is read from memory (it is small), checked the same way. The one
/// exception: after [`BlobReader::hash_elsewhere`] the caller hashes and checks.
pub struct BlobReader {
    source: Source,
    hasher: blake3::Hasher,
    digest: Digest,
    path: PathBuf,
    finished: bool,
    /// False once the caller took the hashing over ([`BlobReader::hash_elsewhere`]).
    hash_here: bool,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    /// A reader of the blob file at `path`.
    pub(crate) fn open(digest: Digest, path: PathBuf, encoding: Encoding) -> io::Result<Self> {
        let file = File::open(&path)?;
        let source = match encoding {
            Encoding::Raw => Source::Raw(file),
            Encoding::Zstd => Source::Zstd(Box::new(zstd::stream::read::Decoder::new(file)?)),
        };
        Ok(BlobReader::new(digest, path, source))
    }

    /// A reader of a packed blob's stored bytes, `row`, from `pack`.
    pub(crate) fn packed(digest: Digest, pack: Pack, row: Row) -> io::Result<Self> {
        let path = pack.path().to_owned();
        let bytes = io::Cursor::new(row.data);
        let source = match row.encoding {
            Encoding::Raw => Source::PackedRaw(pack, bytes),
            Encoding::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(bytes)?;
                Source::PackedZstd(pack, Box::new(decoder))
            }
        };
        Ok(BlobReader::new(digest, path, source))
    }

    fn new(digest: Digest, path: PathBuf, source: Source) -> Self {
        BlobReader {
            source,
            hasher: blake3::Hasher::new(),
            digest,
            path,
            finished: false,
            hash_here: true,
        }
    }

    /// The digest this reader checks the content against.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The blob's file in the store, or the pack (`pack.db`) holding it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the hashing to the caller: reads then end with `Ok(0)` unchecked, and the caller
    /// hands the hasher of every byte read to [`BlobReader::check`]. A restore hashes on its
    /// writing thread that way, while this one only decodes.
    pub(crate) fn hash_elsewhere(&mut self) {
        self.hash_here = false;
    }

    /// After [`BlobReader::hash_elsewhere`] and a read to the end: whether `hasher`, fed every
    /// byte read, gives the blob's digest; a mismatch moves the blob aside.
    pub(crate) fn check(&self, hasher: &blake3::Hasher) -> io::Result<()> {
        let actual = Digest::from(hasher.finalize());
        match actual == self.digest {
            true => Ok(()),
            false => Err(self.corrupt(Corruption::Mismatch { actual })),
        }
    }

    /// Turns an error from this reader into a store error: a corruption, or an I/O error.
    pub fn classify(&self, e: io::Error) -> StoreError {
        classify(self.digest, &self.path, e)
    }

    /// Moves the blob aside and returns the corruption as an error.
    fn corrupt(&self, c: Corruption) -> io::Error {
        match &self.source {
            Source::Raw(file) => quarantine(&self.digest, &self.path, file),
            Source::Zstd(decoder) => {
                quarantine(&self.digest, &self.path, decoder.get_ref().get_ref())
            }
            Source::PackedRaw(pack, bytes) => {
                pack.quarantine(&self.digest, Encoding::Raw, bytes.get_ref())
            }
            Source::PackedZstd(pack, decoder) => {
                pack.quarantine(&self.digest, Encoding::Zstd, decoder.get_ref().get_ref())
            }
        }
        corruption(c)
    }

    fn read_source(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let res = match &mut self.source {
            Source::Raw(file) => return file.read(buf),
            Source::PackedRaw(_, bytes) => return bytes.read(buf),
            Source::Zstd(decoder) => decoder.read(buf),
            Source::PackedZstd(_, decoder) => decoder.read(buf),
        };
        match res {
            // Errors carrying an errno come from the file; all others are the decoder's.
            Err(e) if e.raw_os_error().is_none() => {
                Err(self.corrupt(Corruption::Undecodable { source: e }))
            }
            other => other,
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished || buf.is_empty() {
            return Ok(0);
        }
        let n = self.read_source(buf)?;
        if n > 0 {
            if self.hash_here {
                hash(&mut self.hasher, &buf[..n]);
            }
            return Ok(n);
        }
        if !self.hash_here {
            self.finished = true;
            return Ok(0);
        }
        let actual = Digest::from(self.hasher.finalize());
        if actual != self.digest {
            return Err(self.corrupt(Corruption::Mismatch { actual }));
        }
        self.finished = true;
        Ok(0)
    }
}

fn corruption(c: Corruption) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, c)
}

/// Turns an error met while reading blob `digest` at `path` into a store error.
pub(crate) fn classify(digest: Digest, path: &Path, e: io::Error) -> StoreError {
    if e.get_ref().is_some_and(|inner| inner.is::<Corruption>()) {
        let inner = e.into_inner().expect("checked above");
        let reason = *inner.downcast::<Corruption>().expect("checked above");
        return StoreError::Corrupt { digest, reason };
    }
    StoreError::ReadBlob {
        digest,
        path: path.to_owned(),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_scheme_is_pinned() {
        let d = Digest::of_bytes(b"");
        let p = blob_path(Path::new("b"), &d, Encoding::Raw);
        assert_eq!(
            p,
            Path::new("b/af/1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
        );
        let z = blob_path(Path::new("b"), &d, Encoding::Zstd);
        assert_eq!(
            z,
            Path::new("b/af/1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262.zst")
        );
    }

    #[test]
    fn blob_names_parse_back_and_strangers_do_not() {
        let d = Digest::of_bytes(b"x");
        let hex = d.to_string();
        assert_eq!(
            parse_blob_name(&hex[..2], &hex[2..]),
            Some((d, Encoding::Raw))
        );
        let zst = format!("{}.zst", &hex[2..]);
        assert_eq!(parse_blob_name(&hex[..2], &zst), Some((d, Encoding::Zstd)));
        assert_eq!(parse_blob_name(&hex[..3], &hex[3..]), None);
        assert_eq!(parse_blob_name(&hex[..2], &hex[3..]), None);
        assert_eq!(parse_blob_name(&hex[..2], &hex[2..].to_uppercase()), None);
        assert_eq!(parse_blob_name("zz", &hex[2..]), None);
        assert_eq!(parse_blob_name(&hex[..2], "put-123"), None);
    }
}
