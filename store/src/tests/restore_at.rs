//! Restores into an open directory: by name, never through a symbolic link, atomic, staged,
//! on a filesystem without `O_TMPFILE`, and without debris after a kill (the sweep).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{blob_path, csv, fixture, flip_middle, noise, wait_for_marker, Encoding};
use crate::{Digest, RestoreMethod, Store, StoreError};

fn open_dir(path: &Path) -> File {
    File::open(path).unwrap()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A new empty directory in the fixture's folder.
fn new_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    fs::create_dir(&dir).unwrap();
    dir
}

#[test]
fn restore_at_writes_each_encoding_under_its_name_with_its_mode() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let dir = open_dir(&d);
    for content in [
        b"".to_vec(),
        b"hello\n".to_vec(),
        noise(3 << 20, 1),
        csv(3 << 20),
    ] {
        let put = f.store.put_bytes(&content).unwrap();
        let how = f
            .store
            .restore_at(&put.digest, dir.as_fd(), OsStr::new("out"), 0o640)
            .unwrap();
        assert_eq!(how, RestoreMethod::Copy);
        assert_eq!(fs::read(d.join("out")).unwrap(), content);
        assert_eq!(mode(&d.join("out")), 0o640);
        assert_eq!(names(&d), ["out"], "{} bytes", content.len());
    }
}

#[test]
fn a_directory_opened_with_o_path_will_do() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY;
    let dir = rustix::fs::open(&d, flags, rustix::fs::Mode::empty()).unwrap();
    fs::write(d.join("old"), b"old\n").unwrap();
    for (name, content) in [("new", noise(2 << 20, 12)), ("old", b"small\n".to_vec())] {
        let put = f.store.put_bytes(&content).unwrap();
        f.store
            .restore_at(&put.digest, dir.as_fd(), OsStr::new(name), 0o644)
            .unwrap();
        assert_eq!(fs::read(d.join(name)).unwrap(), content);
    }
    assert_eq!(names(&d), ["new", "old"]);
}

#[test]
fn a_symlink_at_the_name_is_replaced_not_followed() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let victim = f.file("victim", b"mine\n");
    std::os::unix::fs::symlink("../victim", d.join("out")).unwrap();
    std::os::unix::fs::symlink("../created", d.join("new")).unwrap();
    let dir = open_dir(&d);
    for content in [b"packed\n".to_vec(), noise(2 << 20, 5), csv(2 << 20)] {
        let put = f.store.put_bytes(&content).unwrap();
        for name in ["out", "new"] {
            f.store
                .restore_at(&put.digest, dir.as_fd(), OsStr::new(name), 0o644)
                .unwrap();
            let meta = fs::symlink_metadata(d.join(name)).unwrap();
            assert!(meta.is_file(), "{name} is still a symlink");
            assert_eq!(fs::read(d.join(name)).unwrap(), content);
        }
        assert_eq!(fs::read(&victim).unwrap(), b"mine\n");
        assert!(!f.dir.path().join("created").exists());
    }
}

#[test]
fn names_that_are_not_one_component_are_refused() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let dir = open_dir(&d);
    let put = f.store.put_bytes(b"x\n").unwrap();
    for name in ["", ".", "..", "a/b", "../escape", "/abs", "out/"] {
        let err = f
            .store
            .restore_at(&put.digest, dir.as_fd(), OsStr::new(name), 0o644)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Restore { source, .. }
                if source.kind() == std::io::ErrorKind::InvalidInput),
            "{name:?}: {err:?}"
        );
    }
    assert!(names(&d).is_empty());
    assert_eq!(names(f.dir.path()), ["d", "store"]);
}

#[test]
fn a_directory_at_the_name_is_not_replaced() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    fs::create_dir(d.join("out")).unwrap();
    fs::write(d.join("out/inside"), b"kept\n").unwrap();
    let dir = open_dir(&d);
    for content in [b"packed\n".to_vec(), noise(2 << 20, 6)] {
        let put = f.store.put_bytes(&content).unwrap();
        let err = f
            .store
            .restore_at(&put.digest, dir.as_fd(), OsStr::new("out"), 0o644)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Restore { source, path, .. }
                if source.raw_os_error() == Some(21) && *path == d.join("out")),
            "{err:?}"
        );
        assert_eq!(fs::read(d.join("out/inside")).unwrap(), b"kept\n");
        assert_eq!(names(&d), ["out"]);
    }
}

#[test]
fn replacing_a_file_swaps_inodes_and_leaves_no_name_behind() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    fs::write(d.join("out"), b"old\n").unwrap();
    fs::hard_link(d.join("out"), d.join("keep")).unwrap();
    let dir = open_dir(&d);
    for content in [b"new\n".to_vec(), noise(3 << 20, 7), csv(3 << 20)] {
        let put = f.store.put_bytes(&content).unwrap();
        f.store
            .restore_at(&put.digest, dir.as_fd(), OsStr::new("out"), 0o600)
            .unwrap();
        assert_eq!(fs::read(d.join("out")).unwrap(), content);
        assert_eq!(mode(&d.join("out")), 0o600);
        // Replaced, not written through: the other link still has the old content.
        assert_eq!(fs::read(d.join("keep")).unwrap(), b"old\n");
        assert_eq!(fs::metadata(d.join("keep")).unwrap().nlink(), 1);
        assert_eq!(names(&d), ["keep", "out"]);
    }
    // The temporary names were journaled, and the journal emptied once they were gone.
    let journals: Vec<_> = fs::read_dir(f.store.root().join("restores"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    assert_eq!(fs::metadata(&journals[0]).unwrap().len(), 0);
    drop(f.store);
    assert_eq!(names(&f.dir.path().join("store/restores")), [] as [&str; 0]);
}

#[test]
fn a_corrupt_blob_stages_nothing_and_leaves_the_target() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let dir = open_dir(&d);
    for (content, enc) in [
        (noise(2 << 20, 8), Encoding::Raw),
        (csv(2 << 20), Encoding::Zstd),
    ] {
        fs::write(d.join("out"), b"old\n").unwrap();
        let put = f.store.put_bytes(&content).unwrap();
        let blob = blob_path(&f.store.root().join("blobs"), &put.digest, enc);
        let mut bytes = fs::read(&blob).unwrap();
        flip_middle(&mut bytes);
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&blob, bytes).unwrap();
        let err = f
            .store
            .stage_at(&put.digest, dir.as_fd(), OsStr::new("out"), 0o644)
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert_eq!(fs::read(d.join("out")).unwrap(), b"old\n");
        assert_eq!(names(&d), ["out"]);
    }
}

#[test]
fn staged_files_are_invisible_until_committed() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let dir = open_dir(&d);
    let contents = [b"a\n".to_vec(), noise(2 << 20, 9), csv(2 << 20)];
    let staged: Vec<_> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let put = f.store.put_bytes(c).unwrap();
            let name = format!("out{i}");
            f.store
                .stage_at(&put.digest, dir.as_fd(), OsStr::new(&name), 0o644)
                .unwrap()
        })
        .collect();
    assert!(names(&d).is_empty(), "{:?}", names(&d));
    let mut staged = staged.into_iter();
    drop(staged.next()); // never committed: leaves nothing
    for s in staged {
        s.commit().unwrap();
    }
    assert_eq!(names(&d), ["out1", "out2"]);
    assert_eq!(fs::read(d.join("out2")).unwrap(), contents[2]);
}

/// A FUSE passthrough filesystem (bindfs) over a folder: no `O_TMPFILE`, no
/// `RENAME_EXCHANGE`. Unmounted on drop. Mounted under /var/tmp, which is no writable root
/// of shark's: a mount point inside /tmp would make shark commands running meanwhile (other
/// tests, other users) refuse to run, since overlayfs cannot cover it.
struct Fuse {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl Fuse {
    fn new() -> Option<Fuse> {
        let dir = tempfile::Builder::new()
            .prefix("shark-store-fuse-")
            .tempdir_in("/var/tmp")
            .ok()?;
        let under = new_dir(dir.path(), "under");
        let mount = new_dir(dir.path(), "fuse");
        let mounted = std::process::Command::new("bindfs")
            .arg(&under)
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Fuse { _dir: dir, mount })
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        for (cmd, arg) in [
            ("fusermount", "-u"),
            ("fusermount3", "-u"),
            ("umount", "-l"),
        ] {
            let done = std::process::Command::new(cmd)
                .arg(arg)
                .arg(&self.mount)
                .status();
            if done.is_ok_and(|s| s.success()) {
                return;
            }
        }
    }
}

/// The names in the FUSE folder `dir` once the filesystem has processed the release of the
/// files just closed: libfuse keeps a file unlinked right after its last close under a
/// `.fuse_hidden*` name until the (asynchronous) release arrives, then removes it.
fn released(dir: &Path) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = names(dir);
        let hidden = now.iter().any(|n| n.starts_with(".fuse_hidden"));
        if !hidden || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn without_o_tmpfile_a_journaled_name_is_used_and_gone_after() {
    let available = std::process::Command::new("bindfs")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available || !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: needs bindfs and /dev/fuse (tests/setup/store.sh installs bindfs)");
        return;
    }
    let f = fixture();
    let Some(fuse) = Fuse::new() else {
        panic!("cannot mount bindfs");
    };
    let d = &fuse.mount;
    // The fallbacks are exercised for real.
    let tmpfile = rustix::fs::openat(
        open_dir(d).as_fd(),
        ".",
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR,
        rustix::fs::Mode::from_raw_mode(0o600),
    );
    assert!(
        tmpfile.is_err(),
        "bindfs has O_TMPFILE: this test tests nothing"
    );
    let dir = open_dir(d);
    for content in [b"small\n".to_vec(), noise(2 << 20, 10), csv(2 << 20)] {
        let put = f.store.put_bytes(&content).unwrap();
        for _ in 0..2 {
            // Once new, once replacing.
            f.store
                .restore_at(&put.digest, dir.as_fd(), OsStr::new("out.bin"), 0o644)
                .unwrap();
            assert_eq!(fs::read(d.join("out.bin")).unwrap(), content);
            assert_eq!(names(d), ["out.bin"]);
        }
        let staged = f
            .store
            .stage_at(&put.digest, dir.as_fd(), OsStr::new("dropped"), 0o644)
            .unwrap();
        // Under its journaled name while staged, gone when dropped.
        assert_eq!(names(d).len(), 2, "{:?}", names(d));
        drop(staged);
        assert_eq!(released(d), ["out.bin"]);
    }
    let journals = names(&f.store.root().join("restores"));
    assert_eq!(journals.len(), 1);
    let journal = f.store.root().join("restores").join(&journals[0]);
    assert_eq!(fs::metadata(journal).unwrap().len(), 0);
}

/// A journal line, as a dead process would have left it: `name` in the directory identified
/// by `id`'s device and inode, recorded under the path `path`.
fn journal_line(id: &Path, name: &str, path: &Path) -> String {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let m = fs::metadata(id).unwrap();
    format!(
        "{} {} {} {}\n",
        m.dev(),
        m.ino(),
        hex(name.as_bytes()),
        hex(path.as_os_str().as_encoded_bytes())
    )
}

#[test]
fn the_sweep_removes_what_dead_processes_journaled_and_nothing_else() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let other = new_dir(f.dir.path(), "other");
    fs::write(d.join(".out.AAAAAA.shark-tmp"), b"debris").unwrap();
    fs::write(d.join("out"), b"the user's").unwrap();
    fs::create_dir(d.join(".dir.BBBBBB.shark-tmp")).unwrap();
    fs::write(other.join(".x.CCCCCC.shark-tmp"), b"moved dir").unwrap();
    std::os::unix::fs::symlink(&d, f.dir.path().join("link")).unwrap();
    let restores = new_dir(f.store.root(), "restores");
    let link = f.dir.path().join("link");
    let dead = [
        journal_line(&d, ".out.AAAAAA.shark-tmp", &d),
        journal_line(&d, ".dir.BBBBBB.shark-tmp", &d), // a directory: kept
        journal_line(&d, ".gone.DDDDDD.shark-tmp", &d), // never created
        // Recorded in `d`, but the path now leads to another directory: kept.
        journal_line(&d, ".x.CCCCCC.shark-tmp", &other),
        // Through a symlink: not followed.
        journal_line(&d, ".out.AAAAAA.shark-tmp", &link),
    ]
    .concat();
    fs::write(restores.join("1-dead.journal"), &dead).unwrap();
    // A live process's journal (this one's, through another handle) is left alone.
    let live = Store::open(f.store.root()).unwrap();
    live.journal
        .record(open_dir(&d).as_fd(), OsStr::new("out"))
        .unwrap();
    // A journal that a live process has created but not locked yet is left alone, one that
    // a process killed at that moment left is removed after an hour.
    fs::write(restores.join("2-young.new"), b"").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    fs::write(restores.join("3-old.new"), b"").unwrap();
    File::options()
        .write(true)
        .open(restores.join("3-old.new"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    let swept = f.store.sweep().unwrap();
    assert_eq!(swept.removed, [d.join(".out.AAAAAA.shark-tmp")]);
    assert_eq!(swept.journals, 2, "the dead one and the old new one");
    assert_eq!(names(&d), [".dir.BBBBBB.shark-tmp", "out"]);
    assert_eq!(names(&other), [".x.CCCCCC.shark-tmp"]);
    let left = names(&restores);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"2-young.new".to_owned()));
    assert!(fs::read(d.join("out")).unwrap() == b"the user's");
    drop(live);
    assert_eq!(names(&restores), ["2-young.new"]);
}

/// The child half of the kill test: restores two large files over and over, replacing them,
/// until it is killed. Runs only when re-executed by that test.
#[test]
fn child_restore_until_killed() {
    let (Ok(root), Ok(dir), Ok(digests)) = (
        std::env::var("SHARK_TEST_RESTORE_STORE"),
        std::env::var("SHARK_TEST_RESTORE_DIR"),
        std::env::var("SHARK_TEST_RESTORE_DIGESTS"),
    ) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    let digests: Vec<Digest> = digests.split(',').map(|d| d.parse().unwrap()).collect();
    let dir = open_dir(Path::new(&dir));
    for round in 0.. {
        for (i, digest) in digests.iter().enumerate() {
            let name = format!("out{i}");
            store
                .restore_at(digest, dir.as_fd(), OsStr::new(&name), 0o644)
                .unwrap();
            // The path-based restore too.
            store
                .restore(digest, &Path::new(&root).join("..").join(&name), 0o644)
                .unwrap();
        }
        if round == 0 {
            fs::write(Path::new(&root).join("started"), b"").unwrap();
        }
    }
}

#[test]
fn a_kill_mid_restore_leaves_nothing_after_the_sweep() {
    let f = fixture();
    let d = new_dir(f.dir.path(), "d");
    let contents = [noise(24 << 20, 11), csv(24 << 20), b"small\n".to_vec()];
    let digests: Vec<String> = contents
        .iter()
        .map(|c| f.store.put_bytes(c).unwrap().digest.to_string())
        .collect();
    for round in 0..8u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::restore_at::child_restore_until_killed",
                "--test-threads=1",
            ])
            .env("SHARK_TEST_RESTORE_STORE", f.store.root())
            .env("SHARK_TEST_RESTORE_DIR", &d)
            .env("SHARK_TEST_RESTORE_DIGESTS", digests.join(","))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_marker(&mut child, &f.store.root().join("started"));
        std::thread::sleep(Duration::from_millis(1 + 23 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        // The files in place are whole, whatever moment the kill came at.
        for (i, content) in contents.iter().enumerate() {
            for dir in [&d, &f.dir.path().to_path_buf()] {
                let got = fs::read(dir.join(format!("out{i}"))).unwrap();
                assert!(got == *content, "round {round}: out{i} is not whole");
            }
        }
    }
    f.store.sweep().unwrap();
    assert_eq!(names(&d), ["out0", "out1", "out2"]);
    assert_eq!(names(f.dir.path()), ["d", "out0", "out1", "out2", "store"]);
    assert_eq!(names(&f.store.root().join("restores")), [] as [&str; 0]);
}
