//! Putting content into the store: streaming, hashed while written, atomic.
//!
//! A put reads the first [`SAMPLE_SIZE`](crate::compress::SAMPLE_SIZE) bytes, chooses the
//! encoding from them, then streams the whole content through the hasher and (for zstd blobs)
//! the encoder into a fresh temp file under `root/tmp`. The temp file is fsynced, made
//! read-only and renamed to its blob name, and the shard directory is fsynced. Until that
//! rename nothing is visible under the digest, so a crash, a full disk or a read error leaves
//! at most a temp file, which is removed on the way out (or, after a crash, by a later
//! [`Store::open`]). Two puts of the same content at once both succeed: each renames a
//! complete, identical file onto the same name.

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::blob::{blob_path, hash, Encoding, CHUNK};
use crate::compress::{self, LEVEL, MULTITHREAD_MIN, SAMPLE_SIZE};
use crate::pipe::{self, Feeder};
use crate::{Digest, Store, StoreError};

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// The content's digest: the blob's name.
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: u64,
    /// The size of the blob's file (smaller than `size` when compressed).
    pub stored: u64,
    /// Whether the blob is stored as zstd.
    pub compressed: bool,
    /// Whether the store already held this blob (nothing new was kept).
    pub existed: bool,
}

/// Why a streaming put failed, before the caller names the source.
enum Failure {
    Source(io::Error),
    Changed {
        actual: u64,
    },
    Store(StoreError),
    /// The writing side stopped; its error is reported instead.
    WriterGone,
}

/// Hashes and hands on `buf` and then the rest of `src`, which must come to `size` bytes.
fn stream(
    src: &mut impl Read,
    mut buf: Vec<u8>,
    size: u64,
    feeder: &Feeder,
) -> Result<blake3::Hasher, Failure> {
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    while !buf.is_empty() {
        total += buf.len() as u64;
        if total > size {
            return Err(Failure::Changed { actual: total });
        }
        hash(&mut hasher, &buf);
        feeder.send(buf).map_err(|_| Failure::WriterGone)?;
        buf = feeder.buffer();
        fill(src, &mut buf, CHUNK).map_err(Failure::Source)?;
    }
    if total != size {
        return Err(Failure::Changed { actual: total });
    }
    Ok(hasher)
}

impl Store {
    /// Stores the content of the regular file at `path`.
    pub fn put_file(&self, path: &Path) -> Result<PutOutcome, StoreError> {
        let read_err = |source| StoreError::ReadSource {
            path: path.to_owned(),
            source,
        };
        let file = open_nonblocking(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile {
                path: path.to_owned(),
            });
        }
        self.put_stream(file, meta.len()).map_err(|f| match f {
            Failure::Source(source) => read_err(source),
            Failure::Changed { actual } => StoreError::SourceChanged {
                path: path.to_owned(),
                expected: meta.len(),
                actual,
            },
            Failure::Store(e) => e,
            Failure::WriterGone => unreachable!("a writer error is returned first"),
        })
    }

    /// Stores `bytes`.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        self.put_stream(bytes, bytes.len() as u64)
            .map_err(|f| match f {
                Failure::Store(e) => e,
                Failure::Source(_) | Failure::Changed { .. } | Failure::WriterGone => {
                    unreachable!("a byte slice neither fails nor changes; write errors come first")
                }
            })
    }

    /// Streams `size` bytes from `src` into a blob.
    fn put_stream(&self, mut src: impl Read, size: u64) -> Result<PutOutcome, Failure> {
        let mut first = Vec::with_capacity(CHUNK);
        fill(&mut src, &mut first, SAMPLE_SIZE).map_err(Failure::Source)?;
        let encoding = compress::choose(&first);
        let temp = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(&self.tmp)
            .map_err(|e| Failure::Store(write_err(&self.tmp, e)))?;
        let temp_err = |e| Failure::Store(write_err(temp.path(), e));
        let sink = Sink::new(temp.as_file(), encoding, size).map_err(temp_err)?;
        let (hashed, written) = pipe::with_writer(sink, temp.as_file(), |feeder| {
            stream(&mut src, first, size, feeder)
        });
        // A write error first: it is why the reading side stopped, if it did.
        let sink = written.map_err(temp_err)?;
        let hasher = hashed?;
        sink.finish().map_err(temp_err)?;
        temp.as_file().sync_all().map_err(temp_err)?;
        let stored = temp.as_file().metadata().map_err(temp_err)?.len();
        let digest = Digest::from(hasher.finalize());
        let existed = self
            .persist(temp, &digest, encoding)
            .map_err(Failure::Store)?;
        Ok(PutOutcome {
            digest,
            size,
            stored,
            compressed: encoding == Encoding::Zstd,
            existed,
        })
    }

    /// Renames a complete temp file to its blob name; returns whether the blob already existed
    /// (then the temp file is dropped, which removes it).
    fn persist(
        &self,
        temp: NamedTempFile,
        digest: &Digest,
        encoding: Encoding,
    ) -> Result<bool, StoreError> {
        let target = blob_path(&self.blobs, digest, encoding);
        if target.symlink_metadata().is_ok() {
            return Ok(true);
        }
        let shard = target.parent().expect("a blob path has a shard directory");
        if !shard.is_dir() {
            // A new shard's name must be durable before the blob's is.
            fs::create_dir_all(shard).map_err(|e| write_err(shard, e))?;
            sync_dir(&self.blobs)?;
        }
        temp.as_file()
            .set_permissions(Permissions::from_mode(0o444))
            .map_err(|e| write_err(temp.path(), e))?;
        temp.persist(&target)
            .map_err(|e| write_err(&target, e.error))?;
        // The rename is durable only once the directory holding the new name is.
        sync_dir(shard)?;
        Ok(false)
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_err(dir, e))
}

/// Opens `path` for reading without blocking: a FIFO given by mistake must be refused (it is
/// not a regular file), not waited on until some writer turns up.
pub(crate) fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

fn write_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Where a put's bytes go: the temp file itself, or a zstd encoder in front of it.
enum Sink<'a> {
    Raw(&'a File),
    Zstd(Box<zstd::stream::write::Encoder<'static, &'a File>>),
}

impl<'a> Sink<'a> {
    fn new(file: &'a File, encoding: Encoding, size: u64) -> io::Result<Self> {
        if encoding == Encoding::Raw {
            return Ok(Sink::Raw(file));
        }
        let mut enc = zstd::stream::write::Encoder::new(file, LEVEL)?;
        enc.include_checksum(false)?; // the BLAKE3 digest checks the content
        enc.include_contentsize(true)?;
        enc.set_pledged_src_size(Some(size))?;
        if size >= MULTITHREAD_MIN {
            enc.multithread(2)?;
        }
        Ok(Sink::Zstd(Box::new(enc)))
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Raw(_) => Ok(()),
            Sink::Zstd(enc) => enc.finish().map(drop),
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Raw(file) => file.write(bytes),
            Sink::Zstd(enc) => enc.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Raw(file) => file.flush(),
            Sink::Zstd(enc) => enc.flush(),
        }
    }
}

/// Reads from `src` until `buf` holds `limit` bytes or the source ends.
fn fill(src: &mut impl Read, buf: &mut Vec<u8>, limit: usize) -> io::Result<()> {
    let want = limit.saturating_sub(buf.len()) as u64;
    src.by_ref().take(want).read_to_end(buf).map(drop)
}
