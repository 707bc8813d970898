//! Behaviour of a store on an ordinary filesystem: puts, dedup, encodings, reads, restores,
//! corruption, stats and the stat cache.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::blob::{blob_path, Encoding};
use crate::{Corruption, Digest, RestoreMethod, StatCache, Store, StoreError};

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    Fixture { dir, store }
}

impl Fixture {
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn blob_file(&self, digest: &Digest, enc: Encoding) -> PathBuf {
        blob_path(&self.store.root().join("blobs"), digest, enc)
    }

    fn tmp_entries(&self) -> usize {
        fs::read_dir(self.store.root().join("tmp")).unwrap().count()
    }
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
    let put = f.store.put_bytes(b"x").unwrap();
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

#[test]
fn a_flipped_byte_in_a_raw_blob_is_caught_everywhere() {
    let f = fixture();
    let content = noise(300_000, 5);
    let put = f.store.put_bytes(&content).unwrap();
    let good = f.store.put_bytes(b"fine\n").unwrap();
    flip_byte(&f.blob_file(&put.digest, Encoding::Raw));
    let mut damaged = content.clone();
    damaged[150_000] ^= 0x01;
    let actual = Digest::of_bytes(&damaged);

    let err = f.store.verify(&put.digest).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { digest, reason: Corruption::Mismatch { actual: a } }
        if *digest == put.digest && *a == actual)
    );
    assert!(matches!(
        f.store.read_to_vec(&put.digest),
        Err(StoreError::Corrupt { .. })
    ));
    // A reader delivers bytes, but never a clean end of stream.
    let mut sink = Vec::new();
    let e = f
        .store
        .open_blob(&put.digest)
        .unwrap()
        .read_to_end(&mut sink)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);

    let target = f.file("target", b"precious");
    let err = f.store.restore(&put.digest, &target, 0o644).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }));
    assert_eq!(fs::read(&target).unwrap(), b"precious");
    assert_eq!(
        fs::read_dir(f.dir.path()).unwrap().count(),
        2,
        "store and target only"
    );

    let report = f.store.verify_all().unwrap();
    assert_eq!(report.checked, 2);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].0, put.digest);
    assert_eq!(
        report.corrupt[0].1.summary(),
        format!("content hashes to {actual}")
    );
    f.store.verify(&good.digest).unwrap();
}

#[test]
fn truncated_blobs_are_corrupt_raw_or_zstd() {
    let f = fixture();
    let raw = f.store.put_bytes(&noise(100_000, 11)).unwrap();
    let zst = f.store.put_bytes(&csv(400_000)).unwrap();
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
    assert!(matches!(
        f.store.verify(&zst.digest),
        Err(StoreError::Corrupt {
            reason: Corruption::Undecodable { .. },
            ..
        })
    ));
    let report = f.store.verify_all().unwrap();
    let mut named: Vec<Digest> = report.corrupt.iter().map(|c| c.0).collect();
    named.sort();
    let mut want = vec![raw.digest, zst.digest];
    want.sort();
    assert_eq!((report.checked, named), (2, want));
    let target = f.dir.path().join("never");
    assert!(f.store.restore(&zst.digest, &target, 0o644).is_err());
    assert!(!target.exists());
}

#[test]
fn a_flipped_byte_in_a_zstd_blob_is_corrupt() {
    let f = fixture();
    let put = f.store.put_bytes(&csv(500_000)).unwrap();
    flip_byte(&f.blob_file(&put.digest, Encoding::Zstd));
    assert!(matches!(
        f.store.verify(&put.digest),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn stats_count_logical_and_stored_bytes_without_decoding() {
    let f = fixture();
    assert_eq!(f.store.stats().unwrap(), Default::default());
    let text = f.store.put_bytes(&csv(1 << 20)).unwrap();
    let random = f.store.put_bytes(&noise(1000, 1)).unwrap();
    f.store.put_bytes(&noise(1000, 1)).unwrap();
    let s = f.store.stats().unwrap();
    assert_eq!(s.blobs, 2);
    assert_eq!(s.compressed_blobs, 1);
    assert_eq!(s.logical_bytes, (1 << 20) + 1000);
    assert_eq!(s.stored_bytes, text.stored + random.stored);
    assert!(s.ratio() > 3.0);
}

#[test]
fn remove_deletes_the_blob_and_reports_a_missing_one() {
    let f = fixture();
    let put = f.store.put_bytes(&csv(10_000)).unwrap();
    f.store.remove(&put.digest).unwrap();
    assert!(!f.store.contains(&put.digest));
    assert!(matches!(
        f.store.remove(&put.digest),
        Err(StoreError::NoSuchBlob { .. })
    ));
}

#[test]
fn stray_files_are_not_blobs_and_stale_temps_are_swept() {
    let f = fixture();
    let put = f.store.put_bytes(b"a").unwrap();
    let blobs = f.store.root().join("blobs");
    fs::write(blobs.join("README"), b"x").unwrap();
    fs::write(blobs.join(&put.digest.to_string()[..2]).join("junk"), b"x").unwrap();
    assert_eq!(
        f.store.blobs().map(Result::unwrap).collect::<Vec<_>>(),
        vec![put.digest]
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

/// The child half of the two-process test: runs only when re-executed by it.
#[test]
fn child_put() {
    let (Ok(root), Ok(file)) = (
        std::env::var("SHARK_TEST_STORE"),
        std::env::var("SHARK_TEST_FILE"),
    ) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    for _ in 0..5 {
        store.put_file(Path::new(&file)).unwrap();
    }
}

#[test]
fn concurrent_puts_of_one_blob_in_two_processes_both_succeed() {
    let f = fixture();
    let content = csv(6 << 20);
    let file = f.file("shared.csv", &content);
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::child_put", "--test-threads=1"])
            .env("SHARK_TEST_STORE", f.store.root())
            .env("SHARK_TEST_FILE", &file)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let all: Vec<Digest> = f.store.blobs().map(Result::unwrap).collect();
    assert_eq!(all, vec![Digest::of_bytes(&content)]);
    assert_eq!(f.store.read_to_vec(&all[0]).unwrap(), content);
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

/// The child half of the unreadable-input test, run as `nobody`.
#[test]
fn child_put_unreadable() {
    let (Ok(root), Ok(file)) = (
        std::env::var("SHARK_TEST_STORE"),
        std::env::var("SHARK_TEST_UNREADABLE"),
    ) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    let err = store.put_file(Path::new(&file)).unwrap_err();
    assert_eq!(err.to_string(), format!("cannot read {file}"));
    assert!(matches!(&err, StoreError::ReadSource { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied));
    assert_eq!(store.blobs().count(), 0);
    assert_eq!(
        fs::read_dir(Path::new(&root).join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn an_unreadable_input_is_named_for_an_unprivileged_user() {
    use std::os::unix::fs::MetadataExt;
    if fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: the unprivileged half runs through setpriv, which needs root");
        return;
    }
    let f = fixture();
    fs::set_permissions(f.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let secret = f.file("secret.csv", b"a,b\n");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let root = f.dir.path().join("nobody-store");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "tests::child_put_unreadable", "--test-threads=1"])
        .env("SHARK_TEST_STORE", &root)
        .env("SHARK_TEST_UNREADABLE", &secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child ran nothing: {text}");
}
