//! Bad input: FIFOs, missing directories, a process killed mid-put, and files or store
//! directories that an unprivileged user may not read or write.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{csv, fixture, noise, wait_for_marker};
use crate::blob::Encoding;
use crate::{Corruption, Digest, StatCache, Store, StoreError, PACK_MAX};

/// Runs `f` on another thread and fails the test if it has not returned within 10 s (a call
/// blocked on a FIFO never would).
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} blocked"))
}

#[test]
fn a_fifo_is_refused_not_waited_on() {
    let f = fixture();
    let fifo = f.dir.path().join("pipe");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let (store, p) = (f.store.clone(), fifo.clone());
    let err = within_deadline("put_file", move || store.put_file(&p).unwrap_err());
    assert!(
        matches!(&err, StoreError::NotAFile { path } if *path == fifo),
        "{err:?}"
    );
    let p = fifo.clone();
    let err = within_deadline("Digest::of_file", move || Digest::of_file(&p).unwrap_err());
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let (db, p) = (f.dir.path().join("stat.db"), fifo.clone());
    let err = within_deadline("digest_file", move || {
        StatCache::open(&db).unwrap().digest_file(&p).unwrap_err()
    });
    assert!(matches!(err, StoreError::NotAFile { .. }), "{err:?}");
    assert_eq!(f.tmp_entries(), 0);
}

#[test]
fn a_restore_into_a_missing_directory_is_named() {
    let f = fixture();
    let put = f.store.put_bytes(b"x\n").unwrap();
    let target = f.dir.path().join("no-such-dir/out.txt");
    let err = f.store.restore(&put.digest, &target, 0o644).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot restore blob {} to {}", put.digest, target.display())
    );
    assert!(matches!(&err, StoreError::Restore { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound));
}

/// The child half of the kill test: puts fresh content until it is killed.
#[test]
fn child_put_until_killed() {
    let Ok(root) = std::env::var("SHARK_TEST_PUT_UNTIL_KILLED") else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    for seed in 1.. {
        let bytes = match seed % 2 {
            0 => noise(6 << 20, seed),
            _ => csv(6 << 20),
        };
        store.put_bytes(&bytes).unwrap();
        // Small ones go to the pack, each a transaction and a WAL fsync.
        for i in 0..20 {
            let mut small = csv(100 + 500 * i as usize);
            small.extend(format!("{seed} {i}\n").bytes());
            store.put_bytes(&small).unwrap();
            if (seed, i) == (1, 0) {
                // A row is committed: the pack and its table exist.
                fs::write(Path::new(&root).join("started"), b"").unwrap();
            }
            store
                .put_bytes(&noise(50 + 700 * i as usize, seed * 100 + i))
                .unwrap();
        }
    }
}

#[test]
fn a_process_killed_mid_put_leaves_only_complete_blobs() {
    let f = fixture();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::bad_input::child_put_until_killed",
            "--test-threads=1",
        ])
        .env("SHARK_TEST_PUT_UNTIL_KILLED", f.store.root())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_marker(&mut child, &f.store.root().join("started"));
    // Into the small puts, the next large one, or the ones after.
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL: no destructor runs, the temp file stays
    child.wait().unwrap();
    let store = Store::open(f.store.root()).unwrap();
    let report = store.verify_all().unwrap();
    assert!(report.is_clean(), "{:?}", report.corrupt);
    let packed: i64 = f
        .pack_db()
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert!(packed > 0, "the row committed before the marker is gone");
    // Whatever was being written is a temp file, never a blob, and the sweep removes it; a
    // later put still works.
    let swept = store.sweep().unwrap();
    assert_eq!(f.tmp_entries(), 0, "{swept:?}");
    let put = store.put_bytes(&csv(6 << 20)).unwrap();
    store.verify(&put.digest).unwrap();
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap()
}

/// The child half of the permission tests, run as `nobody`.
#[test]
fn child_as_nobody() {
    let Ok(root) = std::env::var("SHARK_TEST_STORE") else {
        return;
    };
    // An unreadable input is named; nothing is left behind.
    let store = Store::open(Path::new(&root)).unwrap();
    let file = var("SHARK_TEST_UNREADABLE");
    let err = store.put_file(Path::new(&file)).unwrap_err();
    assert_eq!(err.to_string(), format!("cannot read {file}"));
    assert!(matches!(&err, StoreError::ReadSource { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied));
    assert_eq!(store.blobs().count(), 0);
    assert_eq!(
        fs::read_dir(Path::new(&root).join("tmp")).unwrap().count(),
        0
    );

    // A store directory this user may not write is named.
    let theirs = var("SHARK_TEST_ROOT_STORE");
    let err = Store::open(Path::new(&theirs)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Root { path, source }
        if path == Path::new(&theirs) && source.kind() == std::io::ErrorKind::PermissionDenied),
        "{err:?}"
    );

    // An unreadable blob is an I/O error naming its file, not corruption: it stays put.
    let shared = Store::open(Path::new(&var("SHARK_TEST_SHARED_STORE"))).unwrap();
    let locked: Digest = var("SHARK_TEST_LOCKED").parse().unwrap();
    let err = shared.read_to_vec(&locked).unwrap_err();
    assert!(
        matches!(&err, StoreError::ReadBlob { digest, source, .. }
        if *digest == locked && source.kind() == std::io::ErrorKind::PermissionDenied),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read blob {locked} at ")));
    let report = shared.verify_all().unwrap();
    assert_eq!(report.corrupt.len(), 1);
    assert!(matches!(report.corrupt[0], (d, Corruption::Unreadable { .. }) if d == locked));
    assert!(shared.contains(&locked));

    // A restore into a directory this user may not write is named and leaves nothing.
    let readable: Digest = var("SHARK_TEST_READABLE").parse().unwrap();
    let target = Path::new(&var("SHARK_TEST_RO_DIR")).join("out.bin");
    let err = shared.restore(&readable, &target, 0o644).unwrap_err();
    assert!(
        matches!(&err, StoreError::Restore { path, source, .. }
        if *path == target && source.kind() == std::io::ErrorKind::PermissionDenied),
        "{err:?}"
    );

    // A pack this user may not write is named; large blobs still go to files.
    let packed = Store::open(Path::new(&var("SHARK_TEST_PACKED_STORE"))).unwrap();
    let pack = packed.root().join("pack.db");
    let err = packed.put_bytes(b"nobody's\n").unwrap_err();
    assert!(
        matches!(&err, StoreError::Pack { path, .. } if *path == pack),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot use the blob pack {}", pack.display())
    );
    packed.put_bytes(&noise(PACK_MAX as usize, 9)).unwrap();
}

#[test]
fn unreadable_inputs_blobs_and_unwritable_directories_are_named_for_an_unprivileged_user() {
    if !is_root() {
        eprintln!("skipped: the unprivileged half runs through setpriv, which needs root");
        return;
    }
    let f = fixture();
    chmod(f.dir.path(), 0o755);
    let secret = f.file("secret.csv", b"a,b\n");
    chmod(&secret, 0o000);
    let own = f.dir.path().join("nobody-store");
    fs::create_dir(&own).unwrap();
    chmod(&own, 0o777);
    let theirs = f.dir.path().join("root-store");
    Store::open(&theirs).unwrap();
    let ro_dir = f.dir.path().join("read-only");
    fs::create_dir(&ro_dir).unwrap();
    // A store everyone may write, holding one blob nobody but root may read.
    let shared = Store::open(&f.dir.path().join("shared-store")).unwrap();
    // Large enough to be files (a small blob is a row of the pack, which nobody could read).
    let locked = shared
        .put_bytes(&noise(PACK_MAX as usize, 3))
        .unwrap()
        .digest;
    let readable = shared
        .put_bytes(&noise(PACK_MAX as usize, 4))
        .unwrap()
        .digest;
    // A store everyone may write, whose pack only root may.
    let packed = Store::open(&f.dir.path().join("packed-store")).unwrap();
    packed.put_bytes(b"root's\n").unwrap();
    for dir in ["", "blobs", "tmp"] {
        chmod(&packed.root().join(dir), 0o777);
    }
    for dir in ["", "blobs", "tmp"] {
        chmod(&shared.root().join(dir), 0o777);
    }
    let locked_file = super::blob_path(&shared.root().join("blobs"), &locked, Encoding::Raw);
    chmod(&locked_file, 0o000);

    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(reachable_exe(f.dir.path()))
        .args([
            "--exact",
            "tests::bad_input::child_as_nobody",
            "--test-threads=1",
        ])
        .env("SHARK_TEST_STORE", &own)
        .env("SHARK_TEST_UNREADABLE", &secret)
        .env("SHARK_TEST_ROOT_STORE", &theirs)
        .env("SHARK_TEST_SHARED_STORE", shared.root())
        .env("SHARK_TEST_LOCKED", locked.to_string())
        .env("SHARK_TEST_READABLE", readable.to_string())
        .env("SHARK_TEST_RO_DIR", &ro_dir)
        .env("SHARK_TEST_PACKED_STORE", packed.root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child ran nothing: {text}");
    assert_eq!(fs::read_dir(&ro_dir).unwrap().count(), 0);
    assert!(locked_file.exists(), "an unreadable blob is not corrupt");
    assert!(!shared.root().join("corrupt").exists());
}

/// This test binary, or a copy of it in `dir` when uid 65534 cannot reach the build's own
/// (a checkout under a private folder).
fn reachable_exe(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().unwrap();
    let open_to_others =
        |p: &std::path::Path| fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    if exe.ancestors().all(open_to_others) {
        return exe;
    }
    let copy = dir.join("store-tests");
    fs::copy(&exe, &copy).unwrap();
    copy
}
