//! Writable roots: a mount inside one is refused with a way out (`SHARK_WRITABLE`), and a
//! chosen set of roots without `/tmp` still carries the shell state between steps.

use std::process::Command;

use crate::common::{stderr, stdout};

/// A tree under /var/tmp (not under /tmp, which concurrent tests use as a writable root).
fn tree() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("shark-roots-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for d in ["user", "work/sub", "work/mnt"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    dir
}

fn shark(
    dir: &std::path::Path,
    cwd: &str,
    writable: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shark"));
    c.env_clear()
        .env("SHARK_HOME", dir.join("home"))
        .env("HOME", dir.join("user"))
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir(dir.join(cwd))
        .args(args);
    if let Some(w) = writable {
        c.env("SHARK_WRITABLE", w);
    }
    c.output().unwrap()
}

#[test]
fn chosen_roots_without_tmp_carry_state_and_record_outputs() {
    let dir = tree();
    let sub = dir.path().join("work/sub");
    std::fs::write(
        sub.join("s.sh"),
        "x=41\ny=$((x + 1))\necho $y > out.txt\ncat out.txt\n",
    )
    .unwrap();
    let w = sub.to_str().unwrap();
    let out = shark(dir.path(), "work/sub", Some(w), &["s.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "42\n");
    assert_eq!(
        std::fs::read_to_string(sub.join("out.txt")).unwrap(),
        "42\n"
    );
    assert!(
        !sub.join(".shark-state").exists(),
        "the state dump is not an output"
    );
    // /tmp is not writable for these commands.
    let out = shark(
        dir.path(),
        "work/sub",
        Some(w),
        &["-c", "echo x > /tmp/shark-roots-probe"],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(!std::path::Path::new("/tmp/shark-roots-probe").exists());
}

#[test]
fn a_mount_inside_a_writable_root_is_refused_with_a_way_out() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = tree();
    let mnt = dir.path().join("work/mnt");
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    let out = shark(dir.path(), "work", None, &["-c", "true"]);
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} is a mount point", mnt.display())),
        "{err}"
    );
    assert!(err.contains("SHARK_WRITABLE"), "{err}");
}
