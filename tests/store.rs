//! The store end to end: `shark store stats|verify`, permissions as an unprivileged user, a full
//! disk, and reflink restores on real btrfs and xfs filesystems (the last three need root and
//! are skipped, saying why, without it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use shark_store::{Digest, RestoreMethod, Store, StoreError, PACK_MAX};

use crate::common::{stderr, stdout, TestEnv};

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Deterministic incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn csv(rows: usize) -> Vec<u8> {
    (0..rows)
        .flat_map(|i| format!("{i},site-{},{}\n", i % 17, i % 1000).into_bytes())
        .collect()
}

fn blob_file(store: &Path, d: &Digest, zstd: bool) -> PathBuf {
    let hex = d.to_string();
    let name = if zstd {
        format!("{}.zst", &hex[2..])
    } else {
        hex[2..].to_owned()
    };
    store.join("blobs").join(&hex[..2]).join(name)
}

fn damage(path: &Path, truncate: bool) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(path).unwrap();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    } else {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x80;
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn stats_of_an_empty_then_a_filled_store() {
    let env = TestEnv::new();
    let out = env
        .shark()
        .env("SHARK_UNDO_BYTES", "1G")
        .args(["store", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "blobs:        0 (0 compressed)\nlogical size: 0 B (0 bytes)\n\
         stored size:  0 B (0 bytes)\nratio:        1.00x\n\
         undo:         0 runs, 0 B kept only for undo (budget 1.0 GiB), 0 dropped, 0 snapshots\n"
    );
    let store = Store::open(&env.home.join("store")).unwrap();
    // The CSV is large enough for a file of its own; the 10 kB are a row of the pack.
    let text = store.put_bytes(&csv(50_000)).unwrap();
    let random = store.put_bytes(&noise(10_000, 4)).unwrap();
    store.put_bytes(&noise(10_000, 4)).unwrap();
    assert!(text.size >= PACK_MAX && random.size < PACK_MAX);
    assert!(blob_file(&env.home.join("store"), &text.digest, true).is_file());
    let out = env.run(&["store", "stats", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["blobs"], 2);
    assert_eq!(json["compressed_blobs"], 1);
    assert_eq!(json["logical_bytes"], text.size + 10_000);
    assert_eq!(json["stored_bytes"], text.stored + random.stored);
}

#[test]
fn verify_names_each_corrupt_blob_and_exits_1() {
    let env = TestEnv::new();
    let root = env.home.join("store");
    let store = Store::open(&root).unwrap();
    let flipped = store.put_bytes(&noise(200_000, 1)).unwrap();
    let truncated = store.put_bytes(&csv(40_000)).unwrap();
    let packed = store.put_bytes(&noise(3_000, 2)).unwrap();
    let fine = store.put_bytes(b"fine\n").unwrap();
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "4 blobs verified, all intact\n");

    damage(&blob_file(&root, &flipped.digest, false), false);
    damage(&blob_file(&root, &truncated.digest, true), true);
    let damaged = crate::common::damage_packed(&env.home, Some(&packed.digest));
    assert_eq!(
        damaged,
        [packed.digest],
        "a small blob is a row of the pack"
    );
    let out = env.run(&["store", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        text.contains(&format!("corrupt {}: content hashes to ", flipped.digest)),
        "{text}"
    );
    assert!(
        text.contains(&format!("corrupt {}: cannot decode", truncated.digest)),
        "{text}"
    );
    assert!(
        text.contains(&format!("corrupt {}: content hashes to ", packed.digest)),
        "{text}"
    );
    assert!(!text.contains(&fine.digest.to_string()), "{text}");
    assert_eq!(lines[3], "4 blobs verified, 3 corrupt");

    // Moved aside (the row's bytes into corrupt/): the store is clean, and a put heals it.
    assert!(root
        .join("corrupt")
        .join(packed.digest.to_string())
        .is_file());
    let out = env.run(&["store", "verify"]);
    assert_eq!(stdout(&out), "1 blobs verified, all intact\n");
    assert!(!store.put_bytes(&noise(3_000, 2)).unwrap().existed);
    let out = env.run(&["store", "verify"]);
    assert_eq!(stdout(&out), "2 blobs verified, all intact\n");
}

/// A command run as `nobody` (uid and gid 65534, no groups).
fn as_nobody(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program);
    c
}

#[test]
fn a_store_directory_without_write_permission_is_named() {
    if !is_root() {
        eprintln!("skipped: switching to an unprivileged user needs root");
        return;
    }
    let env = TestEnv::new();
    // nobody may use the home, but not the store inside it (root's, mode 0755).
    let top = env.home.parent().unwrap();
    fs::set_permissions(top, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(env.home.join("store")).unwrap();
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o777)).unwrap();
    let out = as_nobody(&crate::common::reachable_shark())
        .args(["store", "stats"])
        .env("SHARK_HOME", &env.home)
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "shark: error: cannot open the store: cannot use store directory {}: \
             Permission denied (os error 13)\n",
            env.home.join("store").display()
        )
    );
}

/// A mounted filesystem, unmounted on drop.
struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    fn new(args: &[&str], source: &str) -> Mount {
        // Not under /tmp: shark commands that other tests run at the same time make /tmp a
        // writable root, and the sandbox refuses a root with a mount point inside it.
        let dir = tempfile::Builder::new()
            .prefix("shark-test-mount-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let st = Command::new("mount")
            .args(args)
            .arg(source)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount {args:?} {source}");
        Mount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_leaves_no_partial_blob_and_no_temp_file() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let tiny = Mount::new(&["-t", "tmpfs", "-o", "size=2m"], "tmpfs");
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.bin");
    let content = noise(5_000_000, 8);
    fs::write(&big, &content).unwrap();

    // 6 MB of random hex digits halve as zstd, still more than 2 MB: the encoder's writes
    // fail too.
    let text: Vec<u8> = noise(3_000_000, 9)
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    let big_text = work.path().join("big.csv");
    fs::write(&big_text, &text).unwrap();

    let store = Store::open(&tiny.path().join("store")).unwrap();
    for (file, bytes) in [(&big, &content), (&big_text, &text)] {
        let err = store.put_file(file).unwrap_err();
        match &err {
            StoreError::Write { path, source } => {
                assert!(path.starts_with(tiny.path().join("store/tmp")), "{path:?}");
                assert_eq!(source.raw_os_error(), Some(28), "{source}"); // ENOSPC
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        assert!(!store.contains(&Digest::of_bytes(bytes)));
    }
    assert_eq!(store.blobs().count(), 0);
    assert_eq!(
        fs::read_dir(tiny.path().join("store/tmp")).unwrap().count(),
        0
    );
    // The store still works for what fits.
    let small = store.put_bytes(b"small\n").unwrap();
    assert_eq!(store.read_to_vec(&small.digest).unwrap(), b"small\n");

    // Restoring onto the full filesystem fails and leaves the old file as it was.
    let roomy = Store::open(&work.path().join("store")).unwrap();
    let put = roomy.put_file(&big).unwrap();
    let target = tiny.path().join("old.txt");
    fs::write(&target, b"old content").unwrap();
    let err = roomy.restore(&put.digest, &target, 0o644).unwrap_err();
    assert!(
        matches!(err, StoreError::Restore { ref path, .. } if *path == target),
        "{err:?}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"old content");
    let names: Vec<_> = fs::read_dir(tiny.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "only the store and old.txt: {names:?}");
}

/// Makes an image of `fs_type` and mounts it, or says why not.
fn loop_mount(fs_type: &str, dir: &Path) -> Result<Mount, String> {
    if !is_root() {
        return Err("loop mounts need root".into());
    }
    let mkfs = format!("mkfs.{fs_type}");
    let img = dir.join(format!("{fs_type}.img"));
    fs::File::create(&img).unwrap().set_len(320 << 20).unwrap();
    let made = Command::new(&mkfs).arg("-q").arg(&img).output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Err(format!("{mkfs} failed: {}", stderr(&o))),
        Err(e) => {
            return Err(format!(
                "{mkfs} not available ({e}); apt-get install btrfs-progs xfsprogs"
            ))
        }
    }
    Ok(Mount::new(&["-o", "loop"], img.to_str().unwrap()))
}

fn shares_extents(path: &Path) -> bool {
    let out = Command::new("filefrag")
        .arg("-v")
        .arg(path)
        .output()
        .unwrap();
    stdout(&out).contains("shared")
}

fn reflink_restore_on(fs_type: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let mount = match loop_mount(fs_type, scratch.path()) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped reflink restore on {fs_type}: {why}");
            return;
        }
    };
    let store = Store::open(&mount.path().join("store")).unwrap();
    let content = noise(8 << 20, 17);
    let put = store.put_bytes(&content).unwrap();
    assert!(!put.compressed);
    let target = mount.path().join("restored.tif");
    let how = store.restore_file(&put.digest, &target, 0o640).unwrap();
    assert_eq!(how, RestoreMethod::Reflink);
    assert_eq!(fs::read(&target).unwrap(), content);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert!(
        shares_extents(&target),
        "filefrag shows no shared extents on {fs_type}"
    );

    // A corrupt raw blob is cloned, caught by hashing the clone, and never handed out.
    damage(&blob_file(store.root(), &put.digest, false), false);
    let err = store.restore(&put.digest, &target, 0o644).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        fs::read(&target).unwrap(),
        content,
        "the earlier restore is untouched"
    );
    let strays = fs::read_dir(mount.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("shark-tmp")
        })
        .count();
    assert_eq!(strays, 0);
}

#[test]
fn restore_on_btrfs_is_a_verified_reflink() {
    reflink_restore_on("btrfs");
}

#[test]
fn restore_on_xfs_is_a_verified_reflink() {
    reflink_restore_on("xfs");
}
