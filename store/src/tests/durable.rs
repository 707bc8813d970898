//! Small puts from memory, batched durability, and what a crash before a sync leaves.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use super::{csv, fixture, noise, wait_for_marker, Encoding};
use crate::durable::SYNC_EACH_MAX;
use crate::put::SMALL_MAX;
use crate::{Digest, Store, PACK_MAX};

/// What changes when anything writes a file or a directory entry.
fn stamp(path: &Path) -> (u64, i64, i64, i64, i64) {
    let m = fs::symlink_metadata(path).unwrap();
    (
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

#[test]
fn putting_content_already_stored_writes_nothing() {
    let f = fixture();
    let tmp = f.store.root().join("tmp");
    for content in [b"".to_vec(), b"hello\n".to_vec(), csv(200_000)] {
        let first = f.store.put_bytes(&content).unwrap();
        let enc = match first.compressed {
            true => Encoding::Zstd,
            false => Encoding::Raw,
        };
        // What a second put would touch: the blob file and its shard, or the pack.
        let touched = match (content.len() as u64) < PACK_MAX {
            true => vec![f.pack_path(), f.store.root().join("pack.db-wal")],
            false => {
                let blob = f.blob_file(&first.digest, enc);
                vec![blob.parent().unwrap().to_owned(), blob]
            }
        };
        let before: Vec<_> = touched.iter().chain([&tmp]).map(|p| stamp(p)).collect();
        // Coarse timestamps would hide a rewrite within the same tick.
        std::thread::sleep(Duration::from_millis(20));
        let file = f.file("again", &content);
        for again in [f.store.put_bytes(&content), f.store.put_file(&file)] {
            let again = again.unwrap();
            assert!(again.existed);
            assert_eq!((again.digest, again.size), (first.digest, first.size));
            assert_eq!(
                (again.stored, again.compressed),
                (first.stored, first.compressed)
            );
        }
        // No temp file was even created (that would touch tmp/), no blob renamed over, no
        // transaction written.
        let after: Vec<_> = touched.iter().chain([&tmp]).map(|p| stamp(p)).collect();
        assert_eq!(after, before, "{} bytes", content.len());
    }
}

#[test]
fn small_and_streaming_puts_make_identical_blobs() {
    let (a, b) = (fixture(), fixture());
    let contents = [
        b"".to_vec(),
        b"x".to_vec(),
        csv(PACK_MAX as usize - 1),
        noise(PACK_MAX as usize - 1, 4),
        csv(300_000),
        noise(300_000, 5),
        csv(SMALL_MAX as usize - 1),
    ];
    for content in &contents {
        let small = a.store.put_small(content).unwrap();
        let streamed = match b
            .store
            .put_stream(crate::sparse::Dense(&content[..]), content.len() as u64)
        {
            Ok(o) => o,
            Err(_) => panic!("streaming put of {} bytes failed", content.len()),
        };
        assert_eq!(small, streamed);
        assert_eq!(small.digest, Digest::of_bytes(content));
        let enc = match small.compressed {
            true => Encoding::Zstd,
            false => Encoding::Raw,
        };
        // A packed row holds the very bytes of the blob file a streaming put writes.
        let fb = fs::read(b.blob_file(&small.digest, enc)).unwrap();
        let fa = match (content.len() as u64) < PACK_MAX {
            true => a.row(&small.digest).unwrap(),
            false => fs::read(a.blob_file(&small.digest, enc)).unwrap(),
        };
        assert_eq!(fa, fb, "{} bytes", content.len());
        assert_eq!(fa.len() as u64, small.stored);
        assert_eq!(a.store.read_to_vec(&small.digest).unwrap(), *content);
    }
    assert_eq!(a.tmp_entries() + b.tmp_entries(), 0);
}

#[test]
fn files_on_either_side_of_the_small_limit_are_stored_alike() {
    let f = fixture();
    for len in [SMALL_MAX - 1, SMALL_MAX, SMALL_MAX + 1] {
        let content = csv(len as usize);
        let file = f.file("edge.csv", &content);
        let put = f.store.put_file(&file).unwrap();
        assert_eq!(put.digest, Digest::of_bytes(&content));
        assert_eq!(put.size, len);
        assert!(put.compressed);
        f.store.verify(&put.digest).unwrap();
    }
}

#[test]
fn a_blob_too_short_for_its_content_is_replaced_by_the_next_put() {
    // What a power loss before a sync can leave: the name, without all of the data.
    let f = fixture();
    for (content, enc) in [
        (noise(50_000, 9), Encoding::Raw),
        (csv(50_000), Encoding::Zstd),
    ] {
        let put = f.store.put_bytes(&content).unwrap();
        let blob = f.blob_file(&put.digest, enc);
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&blob)
            .unwrap()
            .set_len(0)
            .unwrap();
        let again = f.store.put_bytes(&content).unwrap();
        assert!(!again.existed, "an empty blob must not count as stored");
        f.store.verify(&put.digest).unwrap();
        assert_eq!(f.store.read_to_vec(&put.digest).unwrap(), content);
    }
}

#[test]
fn batched_puts_are_readable_at_once_and_sync_flushes_them() {
    let f = fixture();
    let batched = f.store.batched();
    f.store.sync().unwrap(); // an immediate handle has nothing to flush
    batched.sync().unwrap(); // nor a batched one that has put nothing
    for count in [SYNC_EACH_MAX, SYNC_EACH_MAX + 5] {
        let digests: Vec<Digest> = (0..count)
            .map(|i| {
                let content = format!("{count} {i}\n").into_bytes();
                let put = batched.put_bytes(&content).unwrap();
                // Visible to every handle before any sync: the rename has happened.
                assert_eq!(f.store.read_to_vec(&put.digest).unwrap(), content);
                put.digest
            })
            .collect();
        batched.clone().sync().unwrap();
        batched.sync().unwrap();
        for d in digests {
            f.store.verify(&d).unwrap();
        }
    }
    let big = batched.put_bytes(&noise(3 << 20, 2)).unwrap();
    batched.sync().unwrap();
    f.store.verify(&big.digest).unwrap();
    assert_eq!(f.tmp_entries(), 0);
}

/// The child half of the crash test: puts through a batched handle until it is killed,
/// never syncing. Runs only when re-executed by that test, which passes the round number so
/// that every round writes new content (content already stored would only be hashed).
#[test]
fn child_put_until_killed() {
    let (Ok(root), Ok(round)) = (
        std::env::var("SHARK_TEST_CRASH_STORE"),
        std::env::var("SHARK_TEST_CRASH_ROUND"),
    ) else {
        return;
    };
    let round: u64 = round.parse().unwrap();
    let store = Store::open(Path::new(&root)).unwrap().batched();
    for i in 0u64.. {
        store
            .put_bytes(format!("small {round} {i}\n").as_bytes())
            .unwrap();
        // Packed too (deferred in memory until a sync that never comes), and compressed.
        let mut text = csv(2_000 + (i as usize % 13) * 1_000);
        text.extend(format!("{round} {i}\n").bytes());
        store.put_bytes(&text).unwrap();
        // Large enough to stream, so a kill often lands in the middle of writing one.
        store
            .put_bytes(&noise(3 << 20, round * 1_000_000 + i + 1))
            .unwrap();
        if i == 1 {
            // Two blob files of this round are in place: what the test counts on finding.
            fs::write(Path::new(&root).join("started"), b"").unwrap();
        }
    }
}

#[test]
fn a_crash_before_sync_leaves_only_whole_blobs() {
    let f = fixture();
    for round in 0..3u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::durable::child_put_until_killed",
                "--test-threads=1",
            ])
            .env("SHARK_TEST_CRASH_STORE", f.store.root())
            .env("SHARK_TEST_CRASH_ROUND", round.to_string())
            .spawn()
            .unwrap();
        wait_for_marker(&mut child, &f.store.root().join("started"));
        // Lands anywhere from the middle of the third large put onwards.
        std::thread::sleep(Duration::from_millis(1 + 40 * round));
        child.kill().unwrap(); // SIGKILL: no destructor, no sync
        child.wait().unwrap();
        let report = f.store.verify_all().unwrap();
        assert!(report.corrupt.is_empty(), "{:?}", report.corrupt);
        // The blob files renamed before the marker, in this round and the earlier ones, are
        // all there: nothing a later kill interrupts takes them away.
        assert!(
            report.checked >= 2 * (round + 1),
            "round {round}: {} blobs",
            report.checked
        );
    }
}
