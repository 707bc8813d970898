//! The pack of small blobs: what goes there, damage to its rows, rows gone missing, blob files
//! left by a store of format version 1, and a pack this version cannot use.

use std::fs;
use std::io::Read;

use super::{access_paths, csv, fixture, flip_middle, noise, Encoding};
use crate::pack::PACK_VERSION;
use crate::{Corruption, Digest, Store, StoreError, PACK_MAX};

#[test]
fn content_under_pack_max_is_a_row_and_the_rest_a_file() {
    let f = fixture();
    let max = PACK_MAX as usize;
    for (content, packed, enc) in [
        (Vec::new(), true, Encoding::Raw),
        (noise(max - 1, 3), true, Encoding::Raw),
        (csv(max - 1), true, Encoding::Zstd),
        (noise(max, 3), false, Encoding::Raw),
        (csv(max), false, Encoding::Zstd),
    ] {
        let len = content.len();
        let put = f.store.put_bytes(&content).unwrap();
        assert_eq!(put.compressed, enc == Encoding::Zstd, "{len}");
        let file = f.blob_file(&put.digest, enc);
        assert_eq!(file.exists(), !packed, "{len}");
        let row = f.row(&put.digest);
        assert_eq!(row.is_some(), packed, "{len}");
        let stored = row.map_or_else(|| fs::metadata(&file).unwrap().len(), |r| r.len() as u64);
        assert_eq!(put.stored, stored, "{len}");
        assert_eq!(f.store.read_to_vec(&put.digest).unwrap(), content, "{len}");
        // A row holds exactly what a blob file would: for raw content, the content.
        if packed && enc == Encoding::Raw {
            assert_eq!(f.row(&put.digest).unwrap(), content);
        }
    }
}

#[test]
fn a_store_that_touches_only_large_blobs_never_opens_the_pack() {
    let f = fixture();
    let big = f.store.put_bytes(&noise(1 << 20, 4)).unwrap();
    let target = f.dir.path().join("out");
    f.store.restore(&big.digest, &target, 0o644).unwrap();
    f.store.verify(&big.digest).unwrap();
    assert!(f.store.contains(&big.digest));
    assert!(!f.store.contains(&Digest::of_bytes(b"never stored")));
    assert_eq!(f.store.blobs().count(), 1);
    f.store.batched().sync().unwrap();
    assert!(!f.pack_path().exists());
    f.store.put_bytes(b"small\n").unwrap();
    assert!(f.pack_path().is_file());
}

#[test]
fn putting_packed_content_again_reports_it_existed() {
    let f = fixture();
    for content in [b"again\n".to_vec(), csv(9_000)] {
        let first = f.store.put_bytes(&content).unwrap();
        assert!(!first.existed);
        let file = f.file("again", &content);
        for again in [f.store.put_bytes(&content), f.store.put_file(&file)] {
            let again = again.unwrap();
            assert!(again.existed);
            assert_eq!(
                (again.digest, again.size, again.stored, again.compressed),
                (first.digest, first.size, first.stored, first.compressed)
            );
        }
        // Another handle (another process, in effect) finds it too.
        let other = Store::open(f.store.root()).unwrap();
        assert!(other.put_bytes(&content).unwrap().existed);
    }
    assert_eq!(f.store.blobs().count(), 2);
}

#[test]
fn a_flipped_byte_in_a_packed_blob_is_caught_everywhere_and_moved_aside() {
    for (content, enc) in [
        (noise(5_000, 6), Encoding::Raw),
        (csv(12_000), Encoding::Zstd),
    ] {
        for (name, access) in access_paths() {
            let f = fixture();
            let put = f.store.put_bytes(&content).unwrap();
            assert_eq!(put.compressed, enc == Encoding::Zstd);
            let good = f.store.put_bytes(b"fine\n").unwrap();
            f.damage_row(&put.digest, |d| flip_middle(d));
            let damaged = f.row(&put.digest).unwrap();
            let err = access(&f, &put.digest).expect(name);
            let reason_fits = match (&err, enc) {
                (StoreError::Corrupt { reason, .. }, Encoding::Raw) => {
                    let mut bad = content.clone();
                    flip_middle(&mut bad);
                    matches!(reason, Corruption::Mismatch { actual } if *actual == Digest::of_bytes(&bad))
                }
                // A flipped bit in a zstd frame may or may not still decode.
                (StoreError::Corrupt { reason, .. }, Encoding::Zstd) => matches!(
                    reason,
                    Corruption::Mismatch { .. } | Corruption::Undecodable { .. }
                ),
                _ => false,
            };
            assert!(reason_fits, "{name} {enc:?}: {err:?}");
            assert_eq!(err.to_string(), format!("blob {} is corrupt", put.digest));
            // The damaged bytes are kept aside; the row is gone.
            assert_eq!(fs::read(f.quarantined(&put.digest, enc)).unwrap(), damaged);
            assert_eq!(f.row(&put.digest), None, "{name}");
            f.store.verify(&good.digest).unwrap();
            f.assert_moved_aside_and_healed(&content, enc);
        }
    }
}

#[test]
fn a_put_of_content_whose_row_is_damaged_replaces_the_row() {
    let f = fixture();
    for (content, enc) in [
        (noise(2_000, 7), Encoding::Raw),
        (csv(7_000), Encoding::Zstd),
    ] {
        let put = f.store.put_bytes(&content).unwrap();
        let good = f.row(&put.digest).unwrap();
        f.damage_row(&put.digest, |d| flip_middle(d));
        let damaged = f.row(&put.digest).unwrap();
        let again = f.store.put_bytes(&content).unwrap();
        assert!(
            !again.existed,
            "{enc:?}: the damaged row must not count as stored"
        );
        assert_eq!(f.row(&put.digest).unwrap(), good, "{enc:?}");
        assert_eq!(fs::read(f.quarantined(&put.digest, enc)).unwrap(), damaged);
        f.store.verify(&put.digest).unwrap();
        assert!(f.store.put_bytes(&content).unwrap().existed);
    }
}

#[test]
fn a_truncated_or_undecodable_zstd_row_is_corrupt() {
    let f = fixture();
    let content = csv(15_000);
    let put = f.store.put_bytes(&content).unwrap();
    assert!(put.compressed);
    f.damage_row(&put.digest, |data| data.truncate(data.len() / 2));
    let target = f.dir.path().join("never");
    let err = f.store.restore(&put.digest, &target, 0o644).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                reason: Corruption::Undecodable { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!target.exists());
    f.assert_moved_aside_and_healed(&content, Encoding::Zstd);

    // Not a zstd frame at all, through a reader.
    f.damage_row(&put.digest, |data| data.iter_mut().for_each(|b| *b = 0xAA));
    let mut reader = f.store.open_blob(&put.digest).unwrap();
    let e = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(matches!(
        reader.classify(e),
        StoreError::Corrupt {
            reason: Corruption::Undecodable { .. },
            ..
        }
    ));
    assert_eq!(reader.path(), f.pack_path());
    f.assert_moved_aside_and_healed(&content, Encoding::Zstd);
}

#[test]
fn verify_all_names_corrupt_rows_and_files_once_then_the_store_is_clean() {
    let f = fixture();
    let small = f.store.put_bytes(&noise(3_000, 8)).unwrap();
    let large = f.store.put_bytes(&noise(300_000, 8)).unwrap();
    f.store.put_bytes(b"fine\n").unwrap();
    f.damage_row(&small.digest, |d| flip_middle(d));
    super::flip_byte(&f.blob_file(&large.digest, Encoding::Raw));
    let report = f.store.verify_all().unwrap();
    assert_eq!(report.checked, 3);
    let mut named: Vec<Digest> = report.corrupt.iter().map(|c| c.0).collect();
    named.sort();
    let mut want = vec![small.digest, large.digest];
    want.sort();
    assert_eq!(named, want);
    let again = f.store.verify_all().unwrap();
    assert_eq!((again.checked, again.corrupt.len()), (1, 0));
}

#[test]
fn a_row_replaced_by_a_good_copy_meanwhile_is_not_deleted() {
    let f = fixture();
    let content = noise(4_000, 13);
    let put = f.store.put_bytes(&content).unwrap();
    f.damage_row(&put.digest, |d| flip_middle(d));
    let mut reader = f.store.open_blob(&put.digest).unwrap();
    // Another process heals the blob while this reader holds the damaged bytes.
    f.pack_db()
        .execute(
            "DELETE FROM blobs WHERE digest = ?1",
            [put.digest.as_bytes().as_slice()],
        )
        .unwrap();
    assert!(!f.store.put_bytes(&content).unwrap().existed);
    assert!(reader.read_to_end(&mut Vec::new()).is_err());
    assert!(f.store.contains(&put.digest), "the good copy must stay");
    f.store.verify(&put.digest).unwrap();
}

#[test]
fn a_missing_row_is_no_such_blob() {
    let f = fixture();
    let put = f.store.put_bytes(b"here, then gone\n").unwrap();
    f.pack_db()
        .execute(
            "DELETE FROM blobs WHERE digest = ?1",
            [put.digest.as_bytes().as_slice()],
        )
        .unwrap();
    let d = put.digest;
    assert!(!f.store.contains(&d));
    let no_such = |r: Result<(), StoreError>| {
        assert!(
            matches!(r, Err(StoreError::NoSuchBlob { digest }) if digest == d),
            "{r:?}"
        )
    };
    no_such(f.store.open_blob(&d).map(drop));
    no_such(f.store.read_to_vec(&d).map(drop));
    no_such(f.store.verify(&d));
    no_such(f.store.remove(&d));
    let target = f.file("target", b"precious");
    no_such(f.store.restore(&d, &target, 0o644));
    assert_eq!(fs::read(&target).unwrap(), b"precious");
    assert_eq!(f.store.blobs().count(), 0);
    assert!(!f.store.put_bytes(b"here, then gone\n").unwrap().existed);
}

#[test]
fn packed_blobs_restore_with_exact_modes() {
    let f = fixture();
    let put = f.store.put_bytes(b"#!/bin/sh\necho small\n").unwrap();
    let target = f.file("run.sh", b"old content");
    for mode in [0o755, 0o600, 0o4711, 0o444] {
        let how = f.store.restore_file(&put.digest, &target, mode).unwrap();
        assert_eq!(how, crate::RestoreMethod::Copy);
        let got = {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(&target).unwrap().permissions().mode() & 0o7777
        };
        assert_eq!(got, mode, "{mode:o}");
        assert_eq!(fs::read(&target).unwrap(), b"#!/bin/sh\necho small\n");
    }
    let strays = fs::read_dir(f.dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains("shark-tmp")
        })
        .count();
    assert_eq!(strays, 0);
}

/// A small blob stored as a file, as a store of format version 1 (an older shark) has it.
fn old_style_blob(f: &super::Fixture, content: &[u8]) -> Digest {
    let put = match f
        .store
        .put_stream(crate::sparse::Dense(content), content.len() as u64)
    {
        Ok(put) => put,
        Err(_) => panic!("streaming put of {} bytes failed", content.len()),
    };
    let enc = match put.compressed {
        true => Encoding::Zstd,
        false => Encoding::Raw,
    };
    assert!(f.blob_file(&put.digest, enc).is_file());
    put.digest
}

#[test]
fn small_blob_files_of_an_older_store_are_found_and_not_duplicated() {
    let f = fixture();
    let raw = b"written by shark 0.1\n".to_vec();
    let zst = csv(6_000);
    let old = [old_style_blob(&f, &raw), old_style_blob(&f, &zst)];
    let new = f.store.put_bytes(b"written now\n").unwrap().digest;
    for (digest, content) in old.iter().zip([&raw, &zst]) {
        let again = f.store.put_bytes(content).unwrap();
        assert!(again.existed, "the file counts as stored");
        assert_eq!(f.row(digest), None, "no second copy in the pack");
        assert!(f.store.contains(digest));
        assert_eq!(f.store.read_to_vec(digest).unwrap(), *content);
        let target = f.dir.path().join("restored");
        f.store.restore(digest, &target, 0o644).unwrap();
        assert_eq!(fs::read(&target).unwrap(), *content);
    }
    let mut want = vec![old[0], old[1], new];
    want.sort();
    let all: Vec<Digest> = f.store.blobs().map(Result::unwrap).collect();
    assert_eq!(all, want);
    assert_eq!(f.store.stats().unwrap().blobs, 3);
    assert!(f.store.verify_all().unwrap().is_clean());
    for d in old {
        f.store.remove(&d).unwrap();
    }
    assert_eq!(f.store.blobs().count(), 1);
}

#[test]
fn a_blob_both_packed_and_a_file_is_listed_and_counted_once() {
    // Only a put by an older shark racing a newer one can make both; each copy is valid.
    let f = fixture();
    let content = b"in both places\n";
    let put = f.store.put_bytes(content).unwrap();
    old_style_blob(&f, content);
    assert_eq!(
        f.store.blobs().map(Result::unwrap).collect::<Vec<_>>(),
        vec![put.digest]
    );
    let stats = f.store.stats().unwrap();
    assert_eq!(
        (stats.blobs, stats.logical_bytes),
        (1, content.len() as u64)
    );
    f.store.remove(&put.digest).unwrap();
    assert!(!f.store.contains(&put.digest), "both copies are removed");
}

#[test]
fn listing_pages_through_many_rows_in_order() {
    let f = fixture();
    let batched = f.store.batched();
    let mut want: Vec<Digest> = (0..2_500)
        .map(|i| {
            batched
                .put_bytes(format!("row {i}\n").as_bytes())
                .unwrap()
                .digest
        })
        .collect();
    batched.sync().unwrap();
    // (noise's seeds are odd: 2, 4 and 6 give three different contents.)
    want.extend([2, 4, 6].map(|i| {
        f.store
            .put_bytes(&noise(PACK_MAX as usize, i))
            .unwrap()
            .digest
    }));
    want.sort();
    let all: Vec<Digest> = f.store.blobs().map(Result::unwrap).collect();
    assert_eq!(all.len(), 2_503);
    assert!(all == want, "listed out of order or not all");
}

#[test]
fn a_pack_that_cannot_be_opened_is_named() {
    let f = fixture();
    let big = f.store.put_bytes(&noise(PACK_MAX as usize, 5)).unwrap();
    fs::create_dir(f.pack_path()).unwrap();
    let err = f.store.put_bytes(b"small\n").unwrap_err();
    assert!(
        matches!(&err, StoreError::Pack { path, .. } if *path == f.pack_path()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot use the blob pack {}", f.pack_path().display())
    );
    // Large blobs still work, and listing says what is wrong.
    f.store.verify(&big.digest).unwrap();
    assert!(!f.store.contains(&Digest::of_bytes(b"small\n")));
    let listed: Vec<_> = f.store.blobs().collect();
    assert!(
        listed
            .iter()
            .any(|r| matches!(r, Err(StoreError::Pack { .. }))),
        "{listed:?}"
    );
    assert!(listed
        .iter()
        .any(|r| matches!(r, Ok(d) if *d == big.digest)));
    assert!(matches!(f.store.stats(), Err(StoreError::Pack { .. })));
}

#[test]
fn a_pack_of_a_newer_version_is_refused_and_left_alone() {
    let f = fixture();
    let put = f.store.put_bytes(b"v1\n").unwrap();
    f.pack_db()
        .pragma_update(None, "user_version", PACK_VERSION + 1)
        .unwrap();
    let store = Store::open(f.store.root()).unwrap();
    let err = store.read_to_vec(&put.digest).unwrap_err();
    assert!(
        matches!(&err, StoreError::PackVersion { path, found, supported }
            if *path == f.pack_path() && *found == PACK_VERSION + 1 && *supported == PACK_VERSION),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the blob pack {} has format version {}; this shark reads version {}",
            f.pack_path().display(),
            PACK_VERSION + 1,
            PACK_VERSION
        )
    );
    assert!(f.row(&put.digest).is_some());
}

#[test]
fn batched_small_puts_wait_for_the_sync_and_go_in_together() {
    // A batched handle keeps its small blobs and inserts them in one transaction at the sync:
    // it reads them back at once, another process sees them once synced.
    let f = fixture();
    let batched = f.store.batched();
    let contents: Vec<Vec<u8>> = (0..50).map(|i| noise(100 + i, 2 * i as u64 + 1)).collect();
    let digests: Vec<Digest> = contents
        .iter()
        .map(|c| batched.put_bytes(c).unwrap().digest)
        .collect();
    let again = batched.put_bytes(&contents[0]).unwrap();
    assert!(again.existed, "a second put finds the deferred row");
    for (d, c) in digests.iter().zip(&contents) {
        assert!(batched.contains(d));
        assert_eq!(&batched.read_to_vec(d).unwrap(), c);
        assert!(f.row(d).is_none(), "not in the database before the sync");
    }
    let other = Store::open(f.store.root()).unwrap();
    assert!(!other.contains(&digests[0]));
    batched.sync().unwrap();
    for (d, c) in digests.iter().zip(&contents) {
        assert!(f.row(d).is_some());
        assert_eq!(&other.read_to_vec(d).unwrap(), c);
    }
    // Removing a deferred row, and listing, which inserts what is deferred first.
    let late = batched.put_bytes(b"late").unwrap().digest;
    let gone = batched.put_bytes(b"gone").unwrap().digest;
    batched.remove(&gone).unwrap();
    assert!(!batched.contains(&gone));
    let listed: Vec<Digest> = batched.blobs().map(|d| d.unwrap()).collect();
    assert!(listed.contains(&late) && !listed.contains(&gone));
    assert_eq!(listed.len(), digests.len() + 1);
}

#[test]
fn deferred_rows_are_inserted_once_they_fill_the_buffer() {
    // Memory stays bounded: past a few MiB of deferred rows, they go in without a sync.
    let f = fixture();
    let batched = f.store.batched();
    let first = batched
        .put_bytes(&noise(PACK_MAX as usize - 1, 7))
        .unwrap()
        .digest;
    for i in 0..400u64 {
        batched
            .put_bytes(&noise(PACK_MAX as usize - 1, 1001 + 2 * i))
            .unwrap();
    }
    assert!(f.row(&first).is_some(), "inserted before any sync");
}

#[test]
fn a_batched_handle_dropped_without_a_sync_keeps_its_rows() {
    let f = fixture();
    let digest = {
        let batched = f.store.batched();
        batched.put_bytes(b"put, never synced").unwrap().digest
    };
    assert!(f.row(&digest).is_some());
}
