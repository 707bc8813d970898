//! Sparse files: content read without reading its holes, and written without allocating zeros.
//!
//! A hole reads as zeros, and a digest is of content, not of layout: hashing or storing a file
//! must feed the hole's zeros to the hasher (and the encoder) all the same, but need not read
//! them. [`SparseFile`] walks a file by `SEEK_DATA`/`SEEK_HOLE` and hands out its data in
//! chunks and its holes as counts of zero bytes ([`Piece::Zeros`]), which are hashed from a
//! static buffer ([`hash_zeros`]); a filesystem that cannot tell holes from data reports the
//! whole file as data. Nothing is ever mapped, so memory stays a few chunks whatever the size:
//! a 10 GiB file with 4 KiB of data is one read and ten GiB of hashing from [`ZEROS`].
//!
//! Writing the other way, [`SparseWriter`] leaves every block of [`BLOCK`] zero bytes (aligned
//! to the file's offsets) unwritten, so restored files and raw blobs keep their holes
//! whatever the encoding in between: a zstd blob does not remember where the holes were, but
//! its zero blocks come out of the decoder as zeros and go into the file as holes. A file
//! that had allocated zero blocks comes back with holes there; its content is the same.

use std::fs::File;
use std::io::{self, Read, Write};

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::blob::{hash, CHUNK};

/// The unit of holes written: a block of the filesystems shark restores to (ext4, xfs,
/// btrfs, tmpfs all use 4 KiB pages or blocks).
pub(crate) const BLOCK: usize = 4096;

/// Bytes read and hashed at a time by [`hash_file`] for large files.
const HASH_CHUNK: usize = 4 * CHUNK;

/// Zeros to hash, encode or compare against, without allocating or clearing anything.
pub(crate) static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// What a [`Source`] produced next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// This many bytes were appended to the caller's buffer.
    Data(usize),
    /// The next this many bytes are zeros (a hole); nothing was appended.
    Zeros(u64),
    /// The content has ended.
    End,
}

/// Content handed out in pieces: data in buffers, runs of zeros as counts.
pub(crate) trait Source {
    /// Appends up to `max` bytes of data to `buf`, or says that zeros or the end come next.
    fn next_piece(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Piece>;
}

/// Any reader, as a source of data only.
pub(crate) struct Dense<R>(pub R);

impl<R: Read> Source for Dense<R> {
    fn next_piece(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Piece> {
        match (&mut self.0).take(max as u64).read_to_end(buf)? {
            0 => Ok(Piece::End),
            n => Ok(Piece::Data(n)),
        }
    }
}

/// A regular file read by its data and holes, from offset 0 (it moves the file's offset).
///
/// The file is read up to the size it had when opened (`size`); a hole ends there. Past it,
/// the file is read densely to its end, so a file that grew meanwhile shows more bytes than
/// expected, and one that shrank shows fewer (a hole found past the end of a shrunk file is
/// not turned into zeros): callers that compare the count with `size` notice either way.
pub(crate) struct SparseFile<'a> {
    file: &'a File,
    size: u64,
    pos: u64,
    /// Where the extent that `pos` is in ends (`pos` itself when not known yet).
    extent_end: u64,
    /// Whether that extent is a hole.
    hole: bool,
}

impl<'a> SparseFile<'a> {
    pub(crate) fn new(file: &'a File, size: u64) -> Self {
        SparseFile {
            file,
            size,
            pos: 0,
            extent_end: 0,
            hole: false,
        }
    }

    /// Finds out what extent `pos` (before `size`) is in; false if the file has shrunk to
    /// end at or before `pos`.
    fn locate(&mut self) -> io::Result<bool> {
        match rustix::fs::seek(self.file, SeekFrom::Data(self.pos)) {
            Ok(data) if data > self.pos => {
                (self.hole, self.extent_end) = (true, data.min(self.size));
            }
            Ok(_) => {
                let hole = rustix::fs::seek(self.file, SeekFrom::Hole(self.pos));
                let end = hole.unwrap_or(self.size).clamp(self.pos + 1, self.size);
                (self.hole, self.extent_end) = (false, end);
            }
            // No data from here on: a hole up to the end, if the end is still past `pos`.
            Err(Errno::NXIO) => {
                let now = self.file.metadata()?.len();
                if now <= self.pos {
                    return Ok(false);
                }
                (self.hole, self.extent_end) = (true, now.min(self.size));
            }
            // A filesystem that cannot say: all data.
            Err(_) => (self.hole, self.extent_end) = (false, self.size),
        }
        Ok(true)
    }

    /// Appends up to `max` bytes read at `pos` to `buf`.
    fn read(&mut self, buf: &mut Vec<u8>, max: u64) -> io::Result<Piece> {
        rustix::fs::seek(self.file, SeekFrom::Start(self.pos))?;
        let n = self.file.take(max).read_to_end(buf)?;
        self.pos += n as u64;
        Ok(match n {
            0 => Piece::End,
            n => Piece::Data(n),
        })
    }
}

impl Source for SparseFile<'_> {
    fn next_piece(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<Piece> {
        let max = max as u64;
        if self.pos >= self.size {
            return self.read(buf, max);
        }
        if self.pos >= self.extent_end && !self.locate()? {
            return Ok(Piece::End);
        }
        let n = max.min(self.extent_end - self.pos);
        if self.hole {
            self.pos += n;
            return Ok(Piece::Zeros(n));
        }
        self.read(buf, n)
    }
}

/// Appends `source`'s content to `buf` until it holds `limit` bytes or the content ends,
/// zeros included.
pub(crate) fn fill(source: &mut impl Source, buf: &mut Vec<u8>, limit: usize) -> io::Result<()> {
    while buf.len() < limit {
        let want = limit - buf.len();
        match source.next_piece(buf, want)? {
            Piece::Data(_) => {}
            Piece::Zeros(n) => extend_zeros(buf, n as usize),
            Piece::End => break,
        }
    }
    Ok(())
}

/// Appends `count` zeros to `buf` (a copy from [`ZEROS`]: fast even unoptimised).
pub(crate) fn extend_zeros(buf: &mut Vec<u8>, mut count: usize) {
    while count > 0 {
        let n = count.min(CHUNK);
        buf.extend_from_slice(&ZEROS[..n]);
        count -= n;
    }
}

/// Feeds `count` zero bytes to `hasher`.
pub(crate) fn hash_zeros(hasher: &mut blake3::Hasher, mut count: u64) {
    while count > 0 {
        let n = count.min(CHUNK as u64) as usize;
        hash(hasher, &ZEROS[..n]);
        count -= n as u64;
    }
}

/// The BLAKE3 hash and length of the content of `file` (read from offset 0 to its end),
/// without reading its holes. A large file is read on a second thread while this one hashes
/// the chunk before on every core: rayon's workers then never wait for a read (waiting, they
/// spin, which cost more system time than the reads).
pub(crate) fn hash_file(file: &File) -> io::Result<(blake3::Hash, u64)> {
    let size = file.metadata()?.len();
    let mut source = SparseFile::new(file, size);
    let mut hasher = blake3::Hasher::new();
    if size < THREADED_MIN {
        let mut buf = Vec::with_capacity(CHUNK);
        let mut total = 0u64;
        loop {
            buf.clear();
            match source.next_piece(&mut buf, CHUNK)? {
                Piece::End => return Ok((hasher.finalize(), total)),
                piece => total += hash_piece(&mut hasher, piece, &buf),
            }
        }
    }
    // Three buffers go round: one being read into, one waiting, one being hashed. Recycled,
    // not reallocated: fresh memory costs a page fault per page.
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Piece, Vec<u8>)>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(3);
    for _ in 0..3 {
        let _ = empty_tx.send(Vec::with_capacity(HASH_CHUNK));
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> io::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                buf.clear();
                let piece = source.next_piece(&mut buf, HASH_CHUNK)?;
                let end = piece == Piece::End;
                if full_tx.send((piece, buf)).is_err() || end {
                    break;
                }
            }
            Ok(())
        });
        let mut total = 0u64;
        for (piece, buf) in full_rx {
            total += hash_piece(&mut hasher, piece, &buf);
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        Ok((hasher.finalize(), total))
    })
}

/// Hashes one piece of content (`buf` for data); its length.
fn hash_piece(hasher: &mut blake3::Hasher, piece: Piece, buf: &[u8]) -> u64 {
    match piece {
        Piece::Data(n) => {
            hash(hasher, buf);
            n as u64
        }
        Piece::Zeros(n) => {
            hash_zeros(hasher, n);
            n
        }
        Piece::End => 0,
    }
}

/// Files at least this large are read on a thread of their own while being hashed.
const THREADED_MIN: u64 = 8 * CHUNK as u64;

/// Whether `bytes` are all zero (a `memcmp` against [`ZEROS`], fast even unoptimised).
pub(crate) fn is_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(CHUNK)
        .all(|chunk| chunk == &ZEROS[..chunk.len()])
}

/// Writes content into a file from offset 0 by `pwrite`, leaving blocks of zeros (aligned
/// to the file's offsets) unwritten, and gives the file its full length at
/// [`SparseWriter::finish`]. A block split between two writes is held back until complete.
///
/// The file must start empty (a fresh temp file): a block left unwritten must read as zeros.
#[derive(Debug)]
pub(crate) struct SparseWriter<'a> {
    file: &'a File,
    /// Where `pending` starts: a block boundary.
    base: u64,
    /// The start of an incomplete block (fewer than [`BLOCK`] bytes).
    pending: Vec<u8>,
}

impl<'a> SparseWriter<'a> {
    pub(crate) fn new(file: &'a File) -> Self {
        SparseWriter {
            file,
            base: 0,
            pending: Vec::with_capacity(BLOCK),
        }
    }

    /// Leaves the next `count` bytes as zeros, writing nothing.
    pub(crate) fn skip(&mut self, count: u64) -> io::Result<()> {
        let mut count = count;
        if !self.pending.is_empty() {
            let n = count.min((BLOCK - self.pending.len()) as u64);
            extend_zeros(&mut self.pending, n as usize);
            count -= n;
            if !self.complete_pending()? {
                return Ok(());
            }
        }
        let whole = count - count % BLOCK as u64;
        self.base += whole;
        extend_zeros(&mut self.pending, (count - whole) as usize);
        Ok(())
    }

    /// Writes what is held back and extends the file to the length written, for content
    /// that ends in zeros; returns that length. Only ever extends: shrinking a fresh file
    /// (even to its own size) would make ext4 flush it on close, as it does for files
    /// truncated to be rewritten.
    pub(crate) fn finish(self) -> io::Result<u64> {
        let end = self.base + self.pending.len() as u64;
        if !is_zero(&self.pending) {
            write_all_at(self.file, &self.pending, self.base)?;
        }
        if self.file.metadata()?.len() < end {
            self.file.set_len(end)?;
        }
        Ok(end)
    }

    /// Writes the held-back block if it is complete; whether it was.
    fn complete_pending(&mut self) -> io::Result<bool> {
        if self.pending.len() < BLOCK {
            return Ok(false);
        }
        let mut block = std::mem::take(&mut self.pending);
        self.put_blocks(&block)?;
        block.clear();
        self.pending = block;
        Ok(true)
    }

    /// Writes `blocks` (whole blocks) at `base`, each run of data blocks at once, and moves
    /// `base` past them.
    fn put_blocks(&mut self, blocks: &[u8]) -> io::Result<()> {
        let mut rest = blocks;
        while !rest.is_empty() {
            let zeros = rest.chunks(BLOCK).take_while(|b| is_zero(b)).count() * BLOCK;
            let data = rest[zeros..]
                .chunks(BLOCK)
                .take_while(|b| !is_zero(b))
                .count()
                * BLOCK;
            let at = self.base + zeros as u64;
            write_all_at(self.file, &rest[zeros..zeros + data], at)?;
            self.base += (zeros + data) as u64;
            rest = &rest[zeros + data..];
        }
        Ok(())
    }

    /// Writes `bytes` at the current offset, all of them, skipping whole zero blocks.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        if !self.pending.is_empty() {
            let n = rest.len().min(BLOCK - self.pending.len());
            self.pending.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if !self.complete_pending()? {
                return Ok(());
            }
        }
        let whole = rest.len() - rest.len() % BLOCK;
        self.put_blocks(&rest[..whole])?;
        self.pending.extend_from_slice(&rest[whole..]);
        Ok(())
    }
}

/// `pwrite` of all of `bytes` at `offset`.
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::pwrite(file, bytes, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Write for SparseWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.put(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
