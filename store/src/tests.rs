//! Behaviour of a store on an ordinary filesystem: puts, dedup, encodings, reads, restores,
//! corruption, stats and the stat cache.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use crate::blob::{blob_path, Encoding};
use crate::{Corruption, Digest, RestoreMethod, StatCache, Store, StoreError, PACK_MAX};

mod bad_input;
mod durable;
mod heal;
mod packed;
mod restore_at;
mod sparse;

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Store,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    Fixture { dir, store }
}

impl Fixture {
    pub(crate) fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    pub(crate) fn blob_file(&self, digest: &Digest, enc: Encoding) -> PathBuf {
        blob_path(&self.store.root().join("blobs"), digest, enc)
    }

    pub(crate) fn tmp_entries(&self) -> usize {
        fs::read_dir(self.store.root().join("tmp")).unwrap().count()
    }

    pub(crate) fn pack_path(&self) -> PathBuf {
        self.store.root().join("pack.db")
    }

    /// A connection of its own to the store's pack, as another process (or a failing disk)
    /// would touch it.
    pub(crate) fn pack_db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.pack_path()).unwrap()
    }

    /// The stored bytes of `digest`'s row in the pack, if there is one.
    pub(crate) fn row(&self, digest: &Digest) -> Option<Vec<u8>> {
        use rusqlite::OptionalExtension;
        self.pack_db()
            .query_row(
                "SELECT data FROM blobs WHERE digest = ?1",
                [digest.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }

    /// Rewrites the stored bytes of `digest`'s row.
    pub(crate) fn damage_row(&self, digest: &Digest, damage: impl FnOnce(&mut Vec<u8>)) {
        let mut data = self.row(digest).expect("the blob is packed");
        damage(&mut data);
        let changed = self
            .pack_db()
            .execute(
                "UPDATE blobs SET data = ?2 WHERE digest = ?1",
                rusqlite::params![digest.as_bytes().as_slice(), data],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
}

/// Flips one byte in the middle of a packed blob's stored bytes.
/// Waits until the child process `child` has created `marker` (the point it reached that the
/// test needs), failing if the child stops first; then removes the marker.
pub(crate) fn wait_for_marker(child: &mut std::process::Child, marker: &Path) {
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child stopped before {}: {status}", marker.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    fs::remove_file(marker).unwrap();
}

pub(crate) fn flip_middle(data: &mut [u8]) {
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
}

/// Deterministic incompressible bytes (xorshift).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// CSV-like text, which zstd shrinks several times.
pub(crate) fn csv(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        let line = format!(
            "{i},{:.3},{},site-{}\n",
            (i * 37 % 1000) as f64 / 7.0,
            i % 97,
            i % 13
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn open_creates_the_layout() {
    let f = fixture();
    assert!(f.store.root().join("blobs").is_dir());
    assert!(f.store.root().join("tmp").is_dir());
    assert_eq!(f.store.blobs().count(), 0);
    assert!(
        !f.pack_path().exists(),
        "the pack is created when first needed"
    );
}

#[test]
fn same_content_twice_is_stored_once() {
    let f = fixture();
    let a = f.store.put_bytes(b"same\n").unwrap();
    let p = f.file("same.txt", b"same\n");
    let b = f.store.put_file(&p).unwrap();
    assert_eq!(a.digest, Digest::of_bytes(b"same\n"));
    assert_eq!((a.existed, b.existed), (false, true));
    assert_eq!(a.digest, b.digest);
    let all: Vec<Digest> = f.store.blobs().map(Result::unwrap).collect();
    assert_eq!(all, vec![a.digest]);
    assert_eq!(f.tmp_entries(), 0);
}

#[test]
fn puts_give_the_pinned_file_digests() {
    use crate::digest::tests::{vector_content, FILE_VECTORS};
    let f = fixture();
    for (pattern, times, hex) in FILE_VECTORS {
        let content = vector_content(pattern, times);
        let put = f.store.put_file(&f.file("vector", &content)).unwrap();
        assert_eq!(put.digest.to_string(), hex);
        assert_eq!(f.store.put_bytes(&content).unwrap().digest.to_string(), hex);
    }
}

#[test]
fn compressible_content_is_zstd_and_noise_is_raw() {
    let f = fixture();
    let text = csv(1 << 20);
    let t = f.store.put_bytes(&text).unwrap();
    assert!(t.compressed);
    assert_eq!(t.size, 1 << 20);
    assert!(t.stored * 3 < t.size, "stored {} of {}", t.stored, t.size);
    assert!(f.blob_file(&t.digest, Encoding::Zstd).is_file());
    assert!(!f.blob_file(&t.digest, Encoding::Raw).exists());

    let random = noise(1 << 20, 7);
    let r = f.store.put_bytes(&random).unwrap();
    assert!(!r.compressed);
    assert_eq!(r.stored, r.size);
    // A raw blob is byte for byte the content.
    assert_eq!(
        fs::read(f.blob_file(&r.digest, Encoding::Raw)).unwrap(),
        random
    );
}

#[test]
fn blobs_are_read_only_files() {
    let f = fixture();
    let put = f.store.put_bytes(&noise(PACK_MAX as usize, 1)).unwrap();
    let mode = fs::metadata(f.blob_file(&put.digest, Encoding::Raw))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
}

#[test]
fn round_trips_empty_small_and_multi_chunk_content() {
    let f = fixture();
    let mut big = csv(3 << 20);
    big.extend(noise(5 << 20, 3)); // compressible head, so zstd, with a random tail
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("small", b"hello\n".to_vec()),
        ("noise", noise(2_500_000, 9)),
        ("big", big),
    ] {
        let p = f.file(name, &bytes);
        let put = f.store.put_file(&p).unwrap();
        assert_eq!(put.digest, Digest::of_bytes(&bytes), "{name}");
        assert_eq!(put.size, bytes.len() as u64, "{name}");
        assert_eq!(f.store.read_to_vec(&put.digest).unwrap(), bytes, "{name}");
        let target = f.dir.path().join(format!("{name}.out"));
        f.store.restore(&put.digest, &target, 0o640).unwrap();
        assert_eq!(fs::read(&target).unwrap(), bytes, "{name}");
        f.store.verify(&put.digest).unwrap();
    }
    assert_eq!(f.tmp_entries(), 0);
}

#[test]
fn restore_sets_exact_mode_bits_and_replaces_the_target() {
    let f = fixture();
    let put = f.store.put_bytes(b"#!/bin/sh\necho hi\n").unwrap();
    let target = f.file("run.sh", b"old content");
    for mode in [0o755, 0o600, 0o4711, 0o444] {
        let how = f.store.restore_file(&put.digest, &target, mode).unwrap();
        assert_eq!(how, RestoreMethod::Copy, "ext4/tmpfs have no reflink");
        let got = fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, mode, "{mode:o}");
        assert_eq!(fs::read(&target).unwrap(), b"#!/bin/sh\necho hi\n");
    }
    // No temp file is left beside the target.
    let names: Vec<_> = fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("shark-tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn missing_blobs_and_sources_are_named() {
    let f = fixture();
    let d = Digest::of_bytes(b"never stored");
    assert!(!f.store.contains(&d));
    let err = f.store.open_blob(&d).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchBlob { digest } if digest == d));
    assert_eq!(err.to_string(), format!("no blob {d} in the store"));
    let target = f.dir.path().join("t");
    assert!(matches!(
        f.store.restore(&d, &target, 0o644),
        Err(StoreError::NoSuchBlob { .. })
    ));
    assert!(!target.exists());

    let missing = f.dir.path().join("no-such-file");
    let err = f.store.put_file(&missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read {}", missing.display())
    );
    assert!(matches!(&err, StoreError::ReadSource { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound));
    let err = f.store.put_file(f.dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotAFile { path } if path == f.dir.path()));
    assert_eq!(f.tmp_entries(), 0);
}

/// Flips one byte in the middle of a blob file.
fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, bytes).unwrap();
}

fn truncate_half(path: &Path) {
    let len = fs::metadata(path).unwrap().len();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

impl Fixture {
    /// Where a blob found corrupt is moved.
    fn quarantined(&self, digest: &Digest, enc: Encoding) -> PathBuf {
        let suffix = if enc == Encoding::Zstd { ".zst" } else { "" };
        self.store
            .root()
            .join("corrupt")
            .join(format!("{digest}{suffix}"))
    }

    /// The blob is out of the way and a new put of `content` stores a good copy.
    fn assert_moved_aside_and_healed(&self, content: &[u8], enc: Encoding) {
        let digest = Digest::of_bytes(content);
        assert!(!self.store.contains(&digest));
        assert!(self.quarantined(&digest, enc).is_file());
        let again = self.store.put_bytes(content).unwrap();
        assert!(!again.existed, "the damaged copy must not count as stored");
        self.store.verify(&digest).unwrap();
        assert_eq!(self.store.read_to_vec(&digest).unwrap(), content);
    }
}

/// Each way of getting at a blob's content, applied to a blob with one flipped byte.
#[allow(clippy::type_complexity)]
fn access_paths() -> Vec<(
    &'static str,
    Box<dyn Fn(&Fixture, &Digest) -> Option<StoreError>>,
)> {
    vec![
        ("verify", Box::new(|f, d| f.store.verify(d).err())),
        ("read_to_vec", Box::new(|f, d| f.store.read_to_vec(d).err())),
        (
            "restore",
            Box::new(|f, d| {
                let target = f.file("target", b"precious");
                let err = f.store.restore(d, &target, 0o644).err();
                assert_eq!(fs::read(&target).unwrap(), b"precious");
                err
            }),
        ),
        (
            "open_blob",
            Box::new(|f, d| {
                // A reader delivers bytes, but never a clean end of stream.
                let mut reader = f.store.open_blob(d).unwrap();
                let e = reader.read_to_end(&mut Vec::new()).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                let again = reader.read(&mut [0u8; 16]);
                assert!(
                    again.is_err(),
                    "a second read must not end cleanly: {again:?}"
                );
                Some(reader.classify(e))
            }),
        ),
    ]
}

#[test]
fn a_flipped_byte_in_a_raw_blob_is_caught_everywhere_and_moved_aside() {
    let content = noise(300_000, 5);
    let mut damaged = content.clone();
    damaged[150_000] ^= 0x01;
    let actual = Digest::of_bytes(&damaged);
    for (name, access) in access_paths() {
        let f = fixture();
        let put = f.store.put_bytes(&content).unwrap();
        let good = f.store.put_bytes(b"fine\n").unwrap();
        flip_byte(&f.blob_file(&put.digest, Encoding::Raw));
        let err = access(&f, &put.digest).expect(name);
        assert!(
            matches!(&err, StoreError::Corrupt { digest, reason: Corruption::Mismatch { actual: a } }
                if *digest == put.digest && *a == actual),
            "{name}: {err:?}"
        );
        assert_eq!(err.to_string(), format!("blob {} is corrupt", put.digest));
        let names: Vec<_> = fs::read_dir(f.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| n == "store" || n == "target"),
            "{name}: {names:?}"
        );
        f.store.verify(&good.digest).unwrap();
        f.assert_moved_aside_and_healed(&content, Encoding::Raw);
    }
}

#[test]
fn verify_all_names_each_corrupt_blob_once_then_the_store_is_clean() {
    let f = fixture();
    let content = noise(300_000, 5);
    let put = f.store.put_bytes(&content).unwrap();
    f.store.put_bytes(b"fine\n").unwrap();
    flip_byte(&f.blob_file(&put.digest, Encoding::Raw));
    let mut damaged = content.clone();
    damaged[150_000] ^= 0x01;
    let report = f.store.verify_all().unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].0, put.digest);
    assert_eq!(
        report.corrupt[0].1.summary(),
        format!("content hashes to {}", Digest::of_bytes(&damaged))
    );
    let again = f.store.verify_all().unwrap();
    assert_eq!((again.checked, again.corrupt.len()), (1, 0));
    f.assert_moved_aside_and_healed(&content, Encoding::Raw);
}

#[test]
fn truncated_blobs_are_corrupt_raw_or_zstd() {
    let f = fixture();
    let raw_content = noise(100_000, 11);
    let zst_content = csv(400_000);
    let raw = f.store.put_bytes(&raw_content).unwrap();
    let zst = f.store.put_bytes(&zst_content).unwrap();
    assert!(zst.compressed);
    truncate_half(&f.blob_file(&raw.digest, Encoding::Raw));
    truncate_half(&f.blob_file(&zst.digest, Encoding::Zstd));
    assert!(matches!(
        f.store.verify(&raw.digest),
        Err(StoreError::Corrupt {
            reason: Corruption::Mismatch { .. },
            ..
        })
    ));
    let target = f.dir.path().join("never");
    assert!(matches!(
        f.store.restore(&zst.digest, &target, 0o644),
        Err(StoreError::Corrupt {
            reason: Corruption::Undecodable { .. },
            ..
        })
    ));
    assert!(!target.exists());
    assert_eq!(f.store.blobs().count(), 0);
    f.assert_moved_aside_and_healed(&raw_content, Encoding::Raw);
    f.assert_moved_aside_and_healed(&zst_content, Encoding::Zstd);
}

#[test]
fn verify_all_reports_truncated_blobs_of_both_encodings() {
    let f = fixture();
    let raw = f.store.put_bytes(&noise(100_000, 11)).unwrap();
    let zst = f.store.put_bytes(&csv(400_000)).unwrap();
    truncate_half(&f.blob_file(&raw.digest, Encoding::Raw));
    truncate_half(&f.blob_file(&zst.digest, Encoding::Zstd));
    let report = f.store.verify_all().unwrap();
    let mut named: Vec<Digest> = report.corrupt.iter().map(|c| c.0).collect();
    named.sort();
    let mut want = vec![raw.digest, zst.digest];
    want.sort();
    assert_eq!((report.checked, named), (2, want));
}

#[test]
fn a_flipped_byte_in_a_zstd_blob_is_corrupt() {
    let f = fixture();
    let content = csv(500_000);
    let put = f.store.put_bytes(&content).unwrap();
    flip_byte(&f.blob_file(&put.digest, Encoding::Zstd));
    assert!(matches!(
        f.store.verify(&put.digest),
        Err(StoreError::Corrupt { .. })
    ));
    f.assert_moved_aside_and_healed(&content, Encoding::Zstd);
}

#[test]
fn a_blob_replaced_by_a_good_copy_meanwhile_is_not_moved_aside() {
    let f = fixture();
    let content = noise(200_000, 13);
    let put = f.store.put_bytes(&content).unwrap();
    let path = f.blob_file(&put.digest, Encoding::Raw);
    flip_byte(&path);
    let mut reader = f.store.open_blob(&put.digest).unwrap();
    // Another process heals the blob while this reader still holds the damaged file.
    fs::remove_file(&path).unwrap();
    assert!(!f.store.put_bytes(&content).unwrap().existed);
    assert!(reader.read_to_end(&mut Vec::new()).is_err());
    assert!(f.store.contains(&put.digest), "the good copy must stay");
    f.store.verify(&put.digest).unwrap();
}

#[test]
fn stats_count_logical_and_stored_bytes_without_decoding() {
    let f = fixture();
    assert_eq!(f.store.stats().unwrap(), Default::default());
    let text = f.store.put_bytes(&csv(1 << 20)).unwrap();
    let random = f.store.put_bytes(&noise(100_000, 1)).unwrap();
    f.store.put_bytes(&noise(100_000, 1)).unwrap();
    let s = f.store.stats().unwrap();
    assert_eq!(s.blobs, 2);
    assert_eq!(s.compressed_blobs, 1);
    assert_eq!(s.logical_bytes, (1 << 20) + 100_000);
    assert_eq!(s.stored_bytes, text.stored + random.stored);
    assert!(s.ratio() > 3.0);
    // Packed blobs count the same way: content size, and the row's stored bytes.
    let small_text = f.store.put_bytes(&csv(10_000)).unwrap();
    let small_random = f.store.put_bytes(&noise(1000, 1)).unwrap();
    f.store.put_bytes(&noise(1000, 1)).unwrap();
    assert!(small_text.compressed && !small_random.compressed);
    assert_eq!(
        small_text.stored,
        f.row(&small_text.digest).unwrap().len() as u64
    );
    let s = f.store.stats().unwrap();
    assert_eq!((s.blobs, s.compressed_blobs), (4, 2));
    assert_eq!(s.logical_bytes, (1 << 20) + 100_000 + 10_000 + 1000);
    assert_eq!(
        s.stored_bytes,
        text.stored + random.stored + small_text.stored + 1000
    );
}

#[test]
fn remove_deletes_the_blob_and_reports_a_missing_one() {
    let f = fixture();
    for content in [csv(10_000), csv(100_000)] {
        let put = f.store.put_bytes(&content).unwrap();
        let other = f
            .store
            .put_bytes(&[b"kept ", &content[..]].concat())
            .unwrap();
        f.store.remove(&put.digest).unwrap();
        assert!(!f.store.contains(&put.digest));
        assert!(matches!(
            f.store.remove(&put.digest),
            Err(StoreError::NoSuchBlob { .. })
        ));
        assert!(f.store.contains(&other.digest));
        f.store.remove(&other.digest).unwrap();
    }
    assert_eq!(f.store.blobs().count(), 0);
    assert_eq!(f.store.stats().unwrap(), Default::default());
}

#[test]
fn stray_files_are_not_blobs_and_stale_temps_are_swept() {
    let f = fixture();
    let put = f.store.put_bytes(&noise(PACK_MAX as usize, 2)).unwrap();
    let blobs = f.store.root().join("blobs");
    fs::write(blobs.join("README"), b"x").unwrap();
    fs::write(blobs.join(&put.digest.to_string()[..2]).join("junk"), b"x").unwrap();
    assert_eq!(
        f.store.blobs().map(Result::unwrap).collect::<Vec<_>>(),
        vec![put.digest]
    );
    // Packed blobs are listed among them, in order.
    let packed = f.store.put_bytes(b"a").unwrap();
    let mut want = vec![put.digest, packed.digest];
    want.sort();
    assert_eq!(
        f.store.blobs().map(Result::unwrap).collect::<Vec<_>>(),
        want
    );

    let stale = f.store.root().join("tmp/put-stale");
    let fresh = f.store.root().join("tmp/put-fresh");
    fs::write(&stale, b"x").unwrap();
    fs::write(&fresh, b"x").unwrap();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86400);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    Store::open(f.store.root()).unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists());
}

#[test]
fn concurrent_puts_of_one_blob_in_threads_all_succeed() {
    let f = fixture();
    let content = noise(4 << 20, 21);
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| f.store.put_bytes(&content)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert!(outcomes
        .iter()
        .all(|o| o.digest == Digest::of_bytes(&content)));
    assert_eq!(f.store.blobs().count(), 1);
    f.store.verify(&outcomes[0].digest).unwrap();
    assert_eq!(f.tmp_entries(), 0);
}

/// Small contents every putter shares, and some that are `tag`'s own.
fn small_contents(tag: &str) -> Vec<Vec<u8>> {
    let shared = (0..150).map(|i| format!("shared {i}\n").into_bytes());
    let own = (0..150).map(|i| csv(200 + 37 * i).into_iter().chain(tag.bytes()).collect());
    shared.chain(own).collect()
}

#[test]
fn concurrent_packed_puts_in_threads_all_succeed() {
    let f = fixture();
    let batched = f.store.batched();
    let tags = ["a", "b", "c", "d", "e", "f"];
    let existed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = tags
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                // Clones share one connection; the odd ones sync as they go.
                let store = if i % 2 == 0 {
                    f.store.clone()
                } else {
                    batched.clone()
                };
                s.spawn(move || {
                    let mut existed = 0;
                    for content in small_contents(tag) {
                        let put = store.put_bytes(&content).unwrap();
                        assert_eq!(put.digest, Digest::of_bytes(&content));
                        existed += usize::from(put.existed);
                    }
                    store.sync().unwrap();
                    existed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // Each shared content was new to exactly one thread.
    assert_eq!(existed, 150 * (tags.len() - 1));
    let report = f.store.verify_all().unwrap();
    assert!(report.is_clean(), "{:?}", report.corrupt);
    assert_eq!(report.checked, 150 + 150 * tags.len() as u64);
    assert!(!f
        .store
        .root()
        .join("blobs")
        .read_dir()
        .unwrap()
        .any(|_| true));
}

/// The child half of the two-process test: runs only when re-executed by it.
#[test]
fn child_put() {
    let (Ok(root), Ok(file), Ok(tag)) = (
        std::env::var("SHARK_TEST_STORE"),
        std::env::var("SHARK_TEST_FILE"),
        std::env::var("SHARK_TEST_TAG"),
    ) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    for _ in 0..5 {
        store.put_file(Path::new(&file)).unwrap();
    }
    // Small files too, which go to the pack: one write transaction each.
    let dir = tempfile::tempdir().unwrap();
    for (i, content) in small_contents(&tag).iter().enumerate() {
        let small = dir.path().join(format!("{i}"));
        fs::write(&small, content).unwrap();
        assert_eq!(
            store.put_file(&small).unwrap().digest,
            Digest::of_bytes(content)
        );
    }
}

#[test]
fn concurrent_puts_in_two_processes_all_succeed() {
    let f = fixture();
    let content = csv(6 << 20);
    let file = f.file("shared.csv", &content);
    let spawn = |tag: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::child_put", "--test-threads=1"])
            .env("SHARK_TEST_STORE", f.store.root())
            .env("SHARK_TEST_FILE", &file)
            .env("SHARK_TEST_TAG", tag)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let all: Vec<Digest> = f.store.blobs().map(Result::unwrap).collect();
    let mut want: Vec<Digest> = small_contents("a")
        .iter()
        .chain(&small_contents("b"))
        .chain([&content])
        .map(|c| Digest::of_bytes(c))
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(all, want);
    assert_eq!(all.len(), 1 + 150 + 2 * 150);
    assert_eq!(
        f.store.read_to_vec(&Digest::of_bytes(&content)).unwrap(),
        content
    );
    assert!(f.store.verify_all().unwrap().is_clean());
    assert_eq!(f.tmp_entries(), 0);
}

#[test]
fn stat_cache_does_not_rehash_an_unchanged_file() {
    let f = fixture();
    let p = f.file("input.csv", b"a,b\n1,2\n");
    let db = f.dir.path().join("stat.db");
    std::thread::sleep(Duration::from_millis(60));
    let cache = StatCache::open(&db)
        .unwrap()
        .with_racy_window(Duration::from_millis(50));
    assert_eq!(
        cache.digest_file(&p).unwrap(),
        Digest::of_bytes(b"a,b\n1,2\n")
    );
    assert_eq!(
        cache.digest_file(&p).unwrap(),
        Digest::of_bytes(b"a,b\n1,2\n")
    );
    assert_eq!(cache.hashed(), 1);
    // Another handle (another process, in effect) trusts the entry too.
    let again = StatCache::open(&db)
        .unwrap()
        .with_racy_window(Duration::from_millis(50));
    again.digest_file(&p).unwrap();
    assert_eq!(again.hashed(), 0);
    // A real change is seen: new size.
    fs::write(&p, b"a,b\n1,2\n3,4\n").unwrap();
    assert_eq!(
        again.digest_file(&p).unwrap(),
        Digest::of_bytes(b"a,b\n1,2\n3,4\n")
    );
    assert_eq!(again.hashed(), 1);
}

#[test]
fn stat_cache_rehashes_a_racily_clean_file() {
    let f = fixture();
    let p = f.file("racy.txt", b"version 1");
    let cache = StatCache::open(&f.dir.path().join("stat.db")).unwrap();
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    // Written just now: hashed every time, never remembered.
    assert_eq!(
        cache.digest_file(&p).unwrap(),
        Digest::of_bytes(b"version 1")
    );
    assert_eq!(
        cache.digest_file(&p).unwrap(),
        Digest::of_bytes(b"version 1")
    );
    assert_eq!(cache.hashed(), 2);
    // Same size, and the mtime put back: only ctime could tell, and it is within the window.
    fs::write(&p, b"version 2").unwrap();
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        cache.digest_file(&p).unwrap(),
        Digest::of_bytes(b"version 2")
    );
    assert_eq!(cache.hashed(), 3);
    // remember() of a just-written file is ignored for the same reason.
    let meta = fs::metadata(&p).unwrap();
    cache
        .remember(&p, &meta, Digest::of_bytes(b"wrong"))
        .unwrap();
    assert_eq!(
        cache.digest_file(&p).unwrap(),
        Digest::of_bytes(b"version 2")
    );
}

#[test]
fn stat_cache_remember_is_trusted_once_settled() {
    let f = fixture();
    let p = f.file("restored.bin", b"content");
    std::thread::sleep(Duration::from_millis(60));
    let cache = StatCache::open(&f.dir.path().join("stat.db"))
        .unwrap()
        .with_racy_window(Duration::from_millis(50));
    let meta = fs::metadata(&p).unwrap();
    // The cache believes what it is told: proof that the entry, not a hash, answered.
    cache
        .remember(&p, &meta, Digest::of_bytes(b"told"))
        .unwrap();
    assert_eq!(cache.digest_file(&p).unwrap(), Digest::of_bytes(b"told"));
    assert_eq!(cache.hashed(), 0);
}

#[test]
fn stat_cache_errors_name_the_path() {
    let f = fixture();
    let cache = StatCache::open(&f.dir.path().join("stat.db")).unwrap();
    let missing = f.dir.path().join("gone");
    let err = cache.digest_file(&missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read {}", missing.display())
    );
    assert!(matches!(
        cache.digest_file(f.dir.path()),
        Err(StoreError::NotAFile { .. })
    ));
    let bad = f.dir.path().join("no-dir/stat.db");
    let err = StatCache::open(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("stat cache {} failed", bad.display())
    );
}

#[test]
fn a_read_only_handle_reads_blobs_and_creates_nothing() {
    let f = fixture();
    let small = f.store.put_bytes(b"small").unwrap().digest;
    let big_bytes = vec![7u8; 64 * 1024];
    let big = f.store.put_bytes(&big_bytes).unwrap().digest;
    let stale = f.store.root().join("tmp").join("leftover");
    fs::write(&stale, b"x").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let ro = Store::open_read_only(f.store.root()).unwrap();
    assert_eq!(ro.read_to_vec(&small).unwrap(), b"small");
    assert_eq!(ro.read_to_vec(&big).unwrap(), big_bytes);
    assert!(stale.exists(), "a read-only handle sweeps nothing");
    let missing = f.dir.path().join("no-store");
    assert!(matches!(
        Store::open_read_only(&missing),
        Err(StoreError::Root { path, .. }) if path == missing
    ));
    assert!(!missing.exists());
}
