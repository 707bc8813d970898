//! Putting content into the store: hashed, atomic, and for large content streaming.
//!
//! Content under [`PACK_MAX`] bytes is stored as a row of the pack (see [`crate::pack`]):
//! hashed first, so that nothing is written when the pack (or, in a store written by an older
//! shark, a blob file) already holds it, then encoded in memory and inserted in one
//! transaction. A row found under the digest is compared with the content, and replaced if
//! it is damaged.
//!
//! Content under [`SMALL_MAX`] bytes (a file is measured when it is opened) is put from
//! memory: it is read whole and hashed first, so when its blob is already stored nothing is
//! written at all; otherwise it is encoded in memory and written to a fresh temp file under
//! `root/tmp` on the calling thread.
//!
//! Larger content streams: the first [`SAMPLE_SIZE`](crate::compress::SAMPLE_SIZE) bytes
//! choose the encoding, then the whole content flows through the hasher and (for zstd blobs)
//! the encoder into a temp file, written by a second thread (see [`crate::pipe`]), so memory
//! does not grow with the content's size.
//!
//! Either way a blob file's temp file is made read-only and renamed to its blob name. Until
//! that rename nothing is visible under the digest, so a crash, a full disk or a read error
//! leaves at most a temp file, which is removed on the way out (or, after a crash, by a later
//! [`Store::open`]). Whether the put also waits for the disk (fsync of the file before the
//! rename and of the shard directory after it, or of the pack's WAL after the insert) depends
//! on the handle: see [`crate::durable`]. Two puts of the same content at once both succeed:
//! each renames a complete, identical file onto the same name, or the second insert finds the
//! first's row. A blob file found under the name is trusted only when its size fits the
//! content (see [`crate::durable`] for why one might not).

use std::borrow::Cow;
use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::blob::{blob_path, hash, zstd_content_size, Encoding, CHUNK};
use crate::compress::{self, LEVEL, MULTITHREAD_MIN, SAMPLE_SIZE};
use crate::pack::PACK_MAX;
use crate::pipe::{self, Feeder};
use crate::sparse::{self, hash_zeros, Dense, Piece, Source, SparseFile, SparseWriter};
use crate::{Digest, Store, StoreError};

/// Content under this many bytes is put from memory, without a writer thread.
pub(crate) const SMALL_MAX: u64 = CHUNK as u64;

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

/// Why a put failed, before the caller names the source.
pub(crate) enum Failure {
    Source(io::Error),
    Changed {
        actual: u64,
    },
    Store(StoreError),
    /// The writing side stopped; its error is reported instead.
    WriterGone,
}

/// Hashes and hands on `buf` and then the rest of `src`, which must come to `size` bytes.
/// Runs of zeros (holes) are hashed from a static buffer and handed on as counts.
fn stream(
    src: &mut impl Source,
    buf: Vec<u8>,
    size: u64,
    feeder: &Feeder,
) -> Result<blake3::Hasher, Failure> {
    let mut hasher = blake3::Hasher::new();
    let mut total = buf.len() as u64;
    if total > size {
        return Err(Failure::Changed { actual: total });
    }
    hash(&mut hasher, &buf);
    feeder.send(buf).map_err(|_| Failure::WriterGone)?;
    loop {
        let mut buf = feeder.buffer();
        let piece = src.next_piece(&mut buf, CHUNK).map_err(Failure::Source)?;
        total += match piece {
            Piece::Data(n) => n as u64,
            Piece::Zeros(n) => n,
            Piece::End => break,
        };
        // Checked before anything is handed on: the encoder was promised `size` bytes.
        if total > size {
            return Err(Failure::Changed { actual: total });
        }
        let sent = match piece {
            Piece::Zeros(n) => {
                hash_zeros(&mut hasher, n);
                feeder.zeros(n)
            }
            _ => {
                hash(&mut hasher, &buf);
                feeder.send(buf)
            }
        };
        sent.map_err(|_| Failure::WriterGone)?;
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
        let size = meta.len();
        let put = match size < SMALL_MAX {
            true => read_whole(file, size).and_then(|b| self.put_small(&b).map_err(Failure::Store)),
            false => self.put_stream(SparseFile::new(&file, size), size),
        };
        put.map_err(|f| match f {
            Failure::Source(source) => read_err(source),
            Failure::Changed { actual } => StoreError::SourceChanged {
                path: path.to_owned(),
                expected: size,
                actual,
            },
            Failure::Store(e) => e,
            Failure::WriterGone => unreachable!("a writer error is returned first"),
        })
    }

    /// Stores `bytes`.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        if (bytes.len() as u64) < SMALL_MAX {
            return self.put_small(bytes);
        }
        self.put_stream(Dense(bytes), bytes.len() as u64)
            .map_err(|f| match f {
                Failure::Store(e) => e,
                Failure::Source(_) | Failure::Changed { .. } | Failure::WriterGone => {
                    unreachable!("a byte slice neither fails nor changes; write errors come first")
                }
            })
    }

    /// Stores content held in memory: nothing is written when its blob is already stored.
    /// Content under [`PACK_MAX`] goes to the pack, larger content to a file.
    pub(crate) fn put_small(&self, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let digest = Digest::of_bytes(bytes);
        let size = bytes.len() as u64;
        if size < PACK_MAX {
            return self.put_packed(digest, bytes);
        }
        if let Some((encoding, stored)) = self.stored(&digest, size) {
            return Ok(PutOutcome {
                digest,
                size,
                stored,
                compressed: encoding == Encoding::Zstd,
                existed: true,
            });
        }
        let encoding = compress::choose(&bytes[..bytes.len().min(SAMPLE_SIZE)]);
        let temp = self.temp_file().map_err(|e| write_err(&self.tmp, e))?;
        let temp_err = |e| write_err(temp.path(), e);
        let stored = match encoding {
            Encoding::Raw => {
                temp.as_file().write_all(bytes).map_err(temp_err)?;
                size
            }
            Encoding::Zstd => {
                let mut sink = Encoder::new(Vec::new(), encoding, size).map_err(temp_err)?;
                sink.write_all(bytes).map_err(temp_err)?;
                let packed = sink.finish().map_err(temp_err)?;
                temp.as_file().write_all(&packed).map_err(temp_err)?;
                packed.len() as u64
            }
        };
        // Looked for a moment ago: a concurrent put of the same content renames an identical
        // file onto the same name, which is harmless.
        self.commit(temp, &digest, encoding)?;
        Ok(PutOutcome {
            digest,
            size,
            stored,
            compressed: encoding == Encoding::Zstd,
            existed: false,
        })
    }

    /// Stores `bytes`, whose digest is `digest` and which are fewer than [`PACK_MAX`], as a
    /// row of the pack, unless the pack or a blob file (from a store of format version 1)
    /// already holds them.
    fn put_packed(&self, digest: Digest, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let size = bytes.len() as u64;
        let outcome = |encoding, stored, existed| PutOutcome {
            digest,
            size,
            stored,
            compressed: encoding == Encoding::Zstd,
            existed,
        };
        match self.pack.find(&digest)? {
            Some(row) if row.holds(bytes) => {
                // The row may be another batched handle's, not yet synced: see crate::durable.
                self.durability.defer_pack();
                return Ok(outcome(row.encoding, row.data.len() as u64, true));
            }
            Some(damaged) => self
                .pack
                .quarantine(&digest, damaged.encoding, &damaged.data),
            None => {}
        }
        if let Some((encoding, stored)) = self.stored(&digest, size) {
            return Ok(outcome(encoding, stored, true));
        }
        let encoding = compress::choose(bytes);
        let data = match encoding {
            Encoding::Raw => Cow::Borrowed(bytes),
            Encoding::Zstd => {
                let pack_err = |e| write_err(self.pack.path(), e);
                let mut sink = Encoder::new(Vec::new(), encoding, size).map_err(pack_err)?;
                sink.write_all(bytes).map_err(pack_err)?;
                Cow::Owned(sink.finish().map_err(pack_err)?)
            }
        };
        let stored = data.len() as u64;
        if self.durability.immediate() {
            let inserted = self.pack.insert(&digest, encoding, size, &data)?;
            self.pack.sync()?;
            return Ok(outcome(encoding, stored, !inserted));
        }
        // Batched: inserted with the run's other small blobs, in one transaction, at the sync.
        let added = self
            .pack
            .insert_deferred(&digest, encoding, size, data.into_owned())?;
        self.durability.defer_pack();
        Ok(outcome(encoding, stored, !added))
    }

    /// Streams `size` bytes from `src` into a blob. A raw blob keeps the content's holes
    /// (and gets holes for its zero blocks); a zstd blob encodes zeros to next to nothing.
    pub(crate) fn put_stream(
        &self,
        mut src: impl Source,
        size: u64,
    ) -> Result<PutOutcome, Failure> {
        let mut first = Vec::with_capacity(CHUNK);
        sparse::fill(&mut src, &mut first, SAMPLE_SIZE).map_err(Failure::Source)?;
        let encoding = compress::choose(&first);
        let temp = self
            .temp_file()
            .map_err(|e| Failure::Store(write_err(&self.tmp, e)))?;
        let temp_err = |e| Failure::Store(write_err(temp.path(), e));
        let out = SparseWriter::new(temp.as_file());
        let sink = Encoder::new(out, encoding, size).map_err(temp_err)?;
        let (hashed, written) = pipe::with_writer(sink, Some(temp.as_file()), |feeder| {
            stream(&mut src, first, size, feeder)
        });
        // A write error first: it is why the reading side stopped, if it did.
        let sink = written.map_err(temp_err)?;
        let hasher = hashed?;
        sink.finish()
            .and_then(SparseWriter::finish)
            .map_err(temp_err)?;
        let stored = temp.as_file().metadata().map_err(temp_err)?.len();
        let digest = Digest::from(hasher.finalize());
        // The digest is known only now: a blob already stored makes the temp file garbage.
        let existed = self.stored(&digest, size).is_some();
        if !existed {
            self.commit(temp, &digest, encoding)
                .map_err(Failure::Store)?;
        }
        Ok(PutOutcome {
            digest,
            size,
            stored,
            compressed: encoding == Encoding::Zstd,
            existed,
        })
    }

    fn temp_file(&self) -> io::Result<NamedTempFile> {
        // The process id lets a sweep tell a dead process's temp file from a live one's.
        tempfile::Builder::new()
            .prefix(&format!("put-{}-", std::process::id()))
            .tempfile_in(&self.tmp)
    }

    /// The encoding and stored size of `digest`'s blob, if one is stored whose size fits
    /// content of `size` bytes. A blob that does not fit (left empty or short by a power
    /// loss before it was synced) is not trusted: the put writes a good copy over it.
    fn stored(&self, digest: &Digest, size: u64) -> Option<(Encoding, u64)> {
        [Encoding::Raw, Encoding::Zstd].into_iter().find_map(|enc| {
            let path = blob_path(&self.blobs, digest, enc);
            let stored = path.symlink_metadata().ok()?.len();
            let fits = match enc {
                Encoding::Raw => stored == size,
                Encoding::Zstd => File::open(&path)
                    .and_then(|mut f| zstd_content_size(&mut f))
                    .is_ok_and(|s| s == size),
            };
            fits.then_some((enc, stored))
        })
    }

    /// Makes a complete temp file the blob `digest`, replacing any file of that name (durably,
    /// for an immediate handle).
    fn commit(
        &self,
        temp: NamedTempFile,
        digest: &Digest,
        encoding: Encoding,
    ) -> Result<(), StoreError> {
        let immediate = self.durability.immediate();
        let temp_err = |e| write_err(temp.path(), e);
        if immediate {
            temp.as_file().sync_all().map_err(temp_err)?;
        }
        let target = blob_path(&self.blobs, digest, encoding);
        let shard = target
            .parent()
            .expect("a blob path has a shard directory")
            .to_owned();
        let shard = shard.as_path();
        let new_shard = !shard.is_dir();
        if new_shard {
            // A new shard's name must be durable before the blob's is.
            fs::create_dir_all(shard).map_err(|e| write_err(shard, e))?;
            if immediate {
                sync_dir(&self.blobs)?;
            }
        }
        temp.as_file()
            .set_permissions(Permissions::from_mode(0o444))
            .map_err(temp_err)?;
        temp.persist(&target)
            .map_err(|e| write_err(&target, e.error))?;
        if immediate {
            // The rename is durable only once the directory holding the new name is.
            sync_dir(shard)?;
        } else {
            let blobs = self.blobs.as_path();
            let dirs: &[&Path] = if new_shard { &[blobs, shard] } else { &[shard] };
            self.durability.defer(target, dirs);
        }
        Ok(())
    }
}

/// Reads the whole of a small file that should hold `size` bytes.
fn read_whole(file: File, size: u64) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::with_capacity(size as usize + 1);
    // One byte more than expected reveals a file that grew.
    file.take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(Failure::Source)?;
    match bytes.len() as u64 == size {
        true => Ok(bytes),
        false => Err(Failure::Changed {
            actual: bytes.len() as u64,
        }),
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

/// Where a put's bytes go: the blob's file (or a buffer) itself, or a zstd encoder in front
/// of it.
enum Encoder<W: Write> {
    Raw(W),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, encoding: Encoding, size: u64) -> io::Result<Self> {
        if encoding == Encoding::Raw {
            return Ok(Encoder::Raw(out));
        }
        let mut enc = zstd::stream::write::Encoder::new(out, LEVEL)?;
        enc.include_checksum(false)?; // the BLAKE3 digest checks the content
        enc.include_contentsize(true)?;
        enc.set_pledged_src_size(Some(size))?;
        if size >= MULTITHREAD_MIN {
            enc.multithread(2)?;
        }
        Ok(Encoder::Zstd(Box::new(enc)))
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Raw(out) => Ok(out),
            Encoder::Zstd(enc) => enc.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Raw(out) => out.write(bytes),
            Encoder::Zstd(enc) => enc.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Raw(out) => out.flush(),
            Encoder::Zstd(enc) => enc.flush(),
        }
    }
}

impl<W: pipe::Sink> pipe::Sink for Encoder<W> {
    fn zeros(&mut self, count: u64) -> io::Result<()> {
        match self {
            Encoder::Raw(out) => out.zeros(count),
            Encoder::Zstd(enc) => pipe::write_zeros(enc, count),
        }
    }
}
