//! Sparse files: hashed and stored without reading their holes, restored with holes.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::{blob_path, fixture, noise, Encoding};
use crate::put::Failure;
use crate::sparse::SparseFile;
use crate::{Digest, StatCache};

const MIB: u64 = 1 << 20;

/// Where a file holds data: (offset, bytes).
type Pieces = Vec<(u64, Vec<u8>)>;

/// A sparse file of `len` bytes holding `pieces` (offset, bytes) and holes elsewhere; returns
/// its dense content too when `len` is small enough to hold in memory.
fn sparse_file(path: &Path, len: u64, pieces: &[(u64, &[u8])]) -> Option<Vec<u8>> {
    let file = File::create(path).unwrap();
    file.set_len(len).unwrap();
    for (at, bytes) in pieces {
        file.write_all_at(bytes, *at).unwrap();
    }
    (len <= 256 * MIB).then(|| {
        let mut dense = vec![0u8; len as usize];
        for (at, bytes) in pieces {
            dense[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
        }
        dense
    })
}

/// Bytes the file at `path` has allocated.
fn allocated(path: &Path) -> u64 {
    fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn a_sparse_file_hashes_to_its_content_holes_included() {
    let f = fixture();
    let path = f.dir.path().join("sparse.bin");
    let layouts: [(u64, Pieces); 4] = [
        (64 * MIB, vec![]),
        (64 * MIB, vec![(32 * MIB + 5, noise(4096, 1))]),
        (
            64 * MIB + 7,
            vec![(0, noise(100, 2)), (64 * MIB, b"tail!!!".to_vec())],
        ),
        (3 * MIB, vec![(MIB - 1, noise(MIB as usize + 2, 3))]),
    ];
    for (len, pieces) in &layouts {
        let pieces: Vec<(u64, &[u8])> = pieces.iter().map(|(a, b)| (*a, b.as_slice())).collect();
        let dense = sparse_file(&path, *len, &pieces).unwrap();
        let want = Digest::of_bytes(&dense);
        assert_eq!(Digest::of_file(&path).unwrap(), want, "{len} bytes");
        let cache = StatCache::open(&f.dir.path().join("stat.db")).unwrap();
        assert_eq!(cache.digest_file(&path).unwrap(), want);
        assert_eq!(f.store.put_file(&path).unwrap().digest, want);
    }
}

#[test]
fn sparse_content_is_stored_and_restored_with_its_holes() {
    let f = fixture();
    let d = f.dir.path().join("d");
    fs::create_dir(&d).unwrap();
    let dir = File::open(&d).unwrap();
    // Zeros first: zstd. Noise first: a raw blob, which keeps the holes itself.
    let cases = [
        (Encoding::Zstd, vec![(100 * MIB, noise(4096, 4))]),
        (
            Encoding::Raw,
            vec![(0, noise(512 << 10, 5)), (150 * MIB, noise(10_000, 6))],
        ),
    ];
    for (enc, pieces) in &cases {
        let src = f.dir.path().join("src.bin");
        let pieces: Vec<(u64, &[u8])> = pieces.iter().map(|(a, b)| (*a, b.as_slice())).collect();
        let dense = sparse_file(&src, 200 * MIB, &pieces).unwrap();
        let put = f.store.put_file(&src).unwrap();
        assert_eq!(put.digest, Digest::of_bytes(&dense));
        assert_eq!(put.compressed, *enc == Encoding::Zstd);
        let blob = blob_path(&f.store.root().join("blobs"), &put.digest, *enc);
        assert!(
            allocated(&blob) < 2 * MIB,
            "{enc:?} blob: {}",
            allocated(&blob)
        );
        f.store.verify(&put.digest).unwrap();
        f.store
            .restore_at(&put.digest, dir.as_fd(), OsStr::new("out.bin"), 0o644)
            .unwrap();
        let out = d.join("out.bin");
        assert_eq!(fs::metadata(&out).unwrap().len(), 200 * MIB);
        assert!(
            allocated(&out) < 2 * MIB,
            "{enc:?}: {} allocated",
            allocated(&out)
        );
        assert!(fs::read(&out).unwrap() == dense, "{enc:?}: content differs");
    }
}

#[test]
fn a_file_that_changes_size_while_stored_is_refused() {
    let f = fixture();
    let path = f.dir.path().join("changing.bin");
    sparse_file(&path, 8 * MIB, &[(MIB, &noise(4096, 7))]);
    let file = File::open(&path).unwrap();
    // What the put expects against what the file holds now: shrunk, grown.
    let put = f
        .store
        .put_stream(SparseFile::new(&file, 8 * MIB + 4096), 8 * MIB + 4096);
    assert!(matches!(put, Err(Failure::Changed { actual }) if actual == 8 * MIB));
    let put = f
        .store
        .put_stream(SparseFile::new(&file, 8 * MIB - 4096), 8 * MIB - 4096);
    assert!(matches!(put, Err(Failure::Changed { actual }) if actual > 8 * MIB - 4096));
    assert_eq!(f.tmp_entries(), 0);
    assert_eq!(f.store.blobs().count(), 0);
}

#[test]
fn zero_blocks_of_written_content_become_holes_at_block_boundaries() {
    use crate::sparse::{SparseWriter, BLOCK};
    use std::io::Write;
    let f = fixture();
    let path = f.dir.path().join("written.bin");
    // Data, zeros covering blocks 2..6 and part of 6, data again, zeros to the end.
    let mut content = noise(5000, 8);
    content.resize(25_000, 0);
    content.extend(noise(3, 9));
    content.resize(40_000, 0);
    let file = File::create(&path).unwrap();
    let mut sink = SparseWriter::new(&file);
    // Pieces that straddle block boundaries every which way, and zeros sent as counts.
    for (i, piece) in content.chunks(1000).enumerate() {
        match i % 3 == 2 && piece.iter().all(|&b| b == 0) {
            true => sink.skip(piece.len() as u64).unwrap(),
            false => sink.write_all(piece).unwrap(),
        }
    }
    assert_eq!(sink.finish().unwrap(), 40_000);
    drop(file);
    assert_eq!(fs::read(&path).unwrap(), content);
    let file = File::open(&path).unwrap();
    let seek = |from| rustix::fs::seek(&file, from).unwrap();
    use rustix::fs::SeekFrom::{Data, Hole};
    assert_eq!(seek(Hole(0)), 2 * BLOCK as u64);
    assert_eq!(seek(Data(2 * BLOCK as u64)), 6 * BLOCK as u64);
    assert_eq!(seek(Hole(6 * BLOCK as u64)), 7 * BLOCK as u64);
}
