//! Undo through snapshots on real filesystems: btrfs on a loop device, ZFS through zfs-fuse
//! (started by `tests/setup/undo.sh`). Each test makes its own filesystem under /var/tmp
//! (outside the default writable roots, where the sandbox would refuse a mount point) and
//! skips with a printed reason when it cannot (not root, tools missing).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{stderr, stdout};
use crate::undo::{noise, ok, populate, tree, MESS};

/// A filesystem made for one test, with a work directory (the writable root) on it.
struct Fs {
    dir: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
    teardown: Vec<Vec<String>>,
    as_user: bool,
}

impl Drop for Fs {
    /// Unmounts or destroys what the test made. zfs-fuse reports a pool busy for a moment
    /// after its last files were closed, so teardown waits for it (up to ten seconds).
    fn drop(&mut self) {
        for cmd in &self.teardown {
            for _ in 0..100 {
                if run(&cmd.iter().map(String::as_str).collect::<Vec<_>>()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

fn run(cmd: &[&str]) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip(why: &str) -> Option<Fs> {
    eprintln!("skipped: {why}");
    None
}

fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("shark-snap-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

impl Fs {
    /// A btrfs filesystem of `size` on a loop device, its work directory a subvolume.
    fn btrfs(size: &str) -> Option<Fs> {
        if !nix::unistd::geteuid().is_root() {
            return skip("a btrfs loop device needs root");
        }
        if !run(&["mkfs.btrfs", "--version"]) {
            return skip("mkfs.btrfs is not installed (btrfs-progs)");
        }
        let dir = scratch();
        let img = dir.path().join("img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let (img_s, mnt_s) = (img.to_str().unwrap(), mnt.to_str().unwrap());
        assert!(run(&["truncate", "-s", size, img_s]));
        assert!(run(&["mkfs.btrfs", "-q", img_s]));
        if !run(&["mount", "-o", "loop", img_s, mnt_s]) {
            return skip("cannot mount a loop device");
        }
        let work = mnt.join("work");
        assert!(run(&[
            "btrfs",
            "subvolume",
            "create",
            work.to_str().unwrap()
        ]));
        Some(Fs {
            home: mnt.join("home"),
            work,
            teardown: vec![vec!["umount".into(), mnt_s.into()]],
            dir,
            as_user: false,
        })
    }

    /// A zfs-fuse pool on a file, its work directory a dataset.
    fn zfs() -> Option<Fs> {
        if !nix::unistd::geteuid().is_root() {
            return skip("a zfs-fuse pool needs root");
        }
        if !run(&["zpool", "list"]) {
            return skip("zfs-fuse is not running (tests/setup/undo.sh starts it as root)");
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pool = format!("sharktest{}x{n}", std::process::id());
        let dir = scratch();
        let img = dir.path().join("pool.img");
        let mnt = dir.path().join("mnt");
        assert!(run(&["truncate", "-s", "400M", img.to_str().unwrap()]));
        let created = run(&[
            "zpool",
            "create",
            "-m",
            mnt.to_str().unwrap(),
            &pool,
            img.to_str().unwrap(),
        ]);
        assert!(created, "zpool create {pool}");
        assert!(run(&["zfs", "create", &format!("{pool}/work")]));
        Some(Fs {
            home: dir.path().join("home"),
            work: mnt.join("work"),
            teardown: vec![vec!["zpool".into(), "destroy".into(), "-f".into(), pool]],
            dir,
            as_user: false,
        })
    }

    fn pool(&self) -> &str {
        &self.teardown[0][3]
    }

    /// Hands the work tree and a home to uid 65534, and runs shark as that user from now on.
    fn give_to_nobody(&mut self) {
        for d in [&self.home, &self.user()] {
            std::fs::create_dir_all(d).unwrap();
        }
        for d in [&self.work, &self.home, &self.user()] {
            assert!(run(&["chown", "-R", "65534:65534", d.to_str().unwrap()]));
        }
        self.as_user = true;
    }

    fn user(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    fn shark(&self, args: &[&str]) -> Output {
        let bin = crate::common::reachable_shark();
        let mut c = if self.as_user {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(bin);
            c
        } else {
            Command::new(bin)
        };
        std::fs::create_dir_all(self.user()).unwrap();
        c.args(args)
            .env_clear()
            .env("SHARK_HOME", &self.home)
            .env("HOME", self.user())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("SHARK_WRITABLE", &self.work)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LANG", "C.UTF-8")
            .current_dir(&self.work);
        c.output().unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.shark(args);
        ok(&out);
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    fn snapshots(&self) -> Vec<serde_json::Value> {
        let out = self.shark(&["snapshots", "--json"]);
        ok(&out);
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Every restore in a dry run reads from a snapshot, and the store kept nothing for undo.
fn assert_through_snapshots(fs: &Fs, run: &str) {
    let plan = fs.json(&["undo", run, "--dry-run", "--json"]);
    let files: Vec<&serde_json::Value> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "file")
        .collect();
    assert!(!files.is_empty(), "{plan}");
    for f in files {
        assert!(f["from"]["snapshot"].is_string(), "{f}");
    }
    let stats = fs.json(&["store", "stats", "--json"]);
    assert_eq!(stats["undo"]["kept_bytes"], 0, "{stats}");
}

#[test]
fn btrfs_undo_goes_through_a_snapshot_and_restores_byte_for_byte() {
    let Some(fs) = Fs::btrfs("1G") else { return };
    populate(&fs.work);
    let before = tree(&fs.work);
    ok(&fs.shark(&["-c", MESS]));
    let after = tree(&fs.work);
    let snaps = fs.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["backend"], "btrfs");
    assert_through_snapshots(&fs, "1");
    // A later change is refused, by path.
    std::fs::write(fs.work.join("made/sub/x"), "by hand\n").unwrap();
    let out = fs.shark(&["undo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("made/sub/x"), "{}", stderr(&out));
    std::fs::write(fs.work.join("made/sub/x"), "new\n").unwrap();
    ok(&fs.shark(&["undo"]));
    assert_eq!(tree(&fs.work), before);
    ok(&fs.shark(&["undo"]));
    assert_eq!(tree(&fs.work), after, "the undo of the undo");
}

#[test]
fn btrfs_a_gigabyte_output_is_replaced_and_undone_without_copying() {
    let Some(fs) = Fs::btrfs("4G") else { return };
    let big = fs.work.join("big");
    let status = Command::new("sh")
        .args(["-c", "head -c 1073741824 /dev/urandom > big"])
        .current_dir(&fs.work)
        .status()
        .unwrap();
    assert!(status.success());
    let digest = shark_store::Digest::of_file(&big).unwrap();
    ok(&fs.shark(&["-c", "head -c 1073741824 /dev/zero > big"]));
    assert_through_snapshots(&fs, "1");
    ok(&fs.shark(&["undo"]));
    assert_eq!(shark_store::Digest::of_file(&big).unwrap(), digest);
    // The restored file shares all its extents with the snapshot: nothing was copied.
    let out = Command::new("btrfs")
        .args(["filesystem", "du", "--raw", "-s"])
        .arg(&big)
        .output()
        .unwrap();
    let text = stdout(&out);
    let exclusive: u64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("btrfs filesystem du: {text}"));
    assert_eq!(exclusive, 0, "{text}");
}

#[test]
fn btrfs_snapshots_are_taken_by_the_subvolume_owner_without_privileges() {
    let Some(mut fs) = Fs::btrfs("1G") else {
        return;
    };
    populate(&fs.work);
    fs.give_to_nobody();
    let before = tree(&fs.work);
    let out = fs.shark(&["-c", MESS]);
    ok(&out);
    assert!(
        !stderr(&out).contains("not snapshotting"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs.snapshots().len(), 1);
    assert_through_snapshots(&fs, "1");
    ok(&fs.shark(&["undo"]));
    assert_eq!(tree(&fs.work), before);
    // Its owner can prune them too (emptied, then removed: no privilege needed).
    let config = fs.dir.path().join("config/shark");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config"),
        "snapshot_keep_last = 1\nsnapshot_hourly = 0\nsnapshot_daily = 0\nsnapshot_weekly = 0\n",
    )
    .unwrap();
    let out = fs.shark(&["-c", "echo more >> notes.txt"]);
    ok(&out);
    assert!(!stderr(&out).contains("cannot prune"), "{}", stderr(&out));
    let names: Vec<String> = fs
        .snapshots()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("/.shark-snapshots/shark-3"), "{names:?}");
    let left: Vec<_> = std::fs::read_dir(fs.work.join(".shark-snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["shark-3"]);
}

#[test]
fn zfs_undo_rolls_back_when_the_snapshot_is_the_latest() {
    let Some(fs) = Fs::zfs() else { return };
    populate(&fs.work);
    let before = tree(&fs.work);
    ok(&fs.shark(&["-c", MESS]));
    let after = tree(&fs.work);
    assert_eq!(
        fs.snapshots()[0]["name"],
        format!("{}/work@shark-1", fs.pool())
    );
    assert_through_snapshots(&fs, "1");
    let done = fs.json(&["undo", "--json"]);
    assert_eq!(
        done["rolled_back"],
        serde_json::json!([format!("{}/work@shark-1", fs.pool())])
    );
    assert_eq!(tree(&fs.work), before);
    ok(&fs.shark(&["undo"]));
    assert_eq!(tree(&fs.work), after, "the undo of the undo");
}

#[test]
fn zfs_undo_of_an_earlier_run_copies_from_the_snapshot() {
    let Some(fs) = Fs::zfs() else { return };
    populate(&fs.work);
    let mut before = tree(&fs.work);
    ok(&fs.shark(&["-c", MESS]));
    std::fs::write(fs.work.join("made/sub/x"), "by hand\n").unwrap();
    let out = fs.shark(&["undo", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("made/sub/x"), "{}", stderr(&out));
    std::fs::write(fs.work.join("made/sub/x"), "new\n").unwrap();
    ok(&fs.shark(&["-c", "echo later > other"]));
    assert_eq!(fs.snapshots().len(), 2);
    let done = fs.json(&["undo", "1", "--json"]);
    assert_eq!(done["rolled_back"], serde_json::json!([]), "{done}");
    before.insert("other".into(), ('f', 0o644, b"later\n".to_vec()));
    assert_eq!(tree(&fs.work), before);
}

#[test]
fn zfs_retention_prunes_snapshots_by_count() {
    let Some(fs) = Fs::zfs() else { return };
    let config = fs.dir.path().join("config/shark");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config"),
        "snapshot_keep_last = 3\nsnapshot_hourly = 0\nsnapshot_daily = 0\nsnapshot_weekly = 0\n",
    )
    .unwrap();
    std::fs::write(fs.work.join("f"), "0\n").unwrap();
    for i in 1..=5 {
        ok(&fs.shark(&["-c", &format!("echo {i} > f")]));
    }
    let names: Vec<String> = fs
        .snapshots()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (3..=5)
        .map(|i| format!("{}/work@shark-{i}", fs.pool()))
        .collect();
    assert_eq!(names, want);
    let out = Command::new("zfs")
        .args(["list", "-H", "-t", "snapshot", "-o", "name"])
        .output()
        .unwrap();
    let listed: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with(&format!("{}/", fs.pool())))
        .map(String::from)
        .collect();
    assert_eq!(listed, want);
    let out = fs.shark(&["undo", "1", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pruned"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(fs.work.join("f")).unwrap(), "5\n");
    ok(&fs.shark(&["undo", "5"]));
    assert_eq!(std::fs::read_to_string(fs.work.join("f")).unwrap(), "4\n");
}

#[test]
fn zfs_without_the_right_to_snapshot_falls_back_to_the_store_with_one_notice() {
    let Some(mut fs) = Fs::zfs() else { return };
    std::fs::write(fs.work.join("hand.bin"), noise(7, 50_000)).unwrap();
    fs.give_to_nobody();
    let out = fs.shark(&["-c", "echo one > hand.bin"]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("not snapshotting zfs"), "{err}");
    assert!(
        err.contains("prior content for undo goes to the store"),
        "{err}"
    );
    let out = fs.shark(&["-c", "echo two > other"]);
    ok(&out);
    assert!(
        !stderr(&out).contains("not snapshotting"),
        "one notice: {}",
        stderr(&out)
    );
    assert!(fs.snapshots().is_empty());
    ok(&fs.shark(&["undo", "1", "--force"]));
    assert_eq!(
        std::fs::read(fs.work.join("hand.bin")).unwrap(),
        noise(7, 50_000)
    );
}
