//! Safety: restores and applies never leave the writable roots, the sandbox does not change the
//! host, and concurrent commands do not lose each other's writes.
//!
//! Tried as an attacker (a symlink swapped in for a parent directory, a script forging the
//! lineage database) and as a careless user (two commands on one file at once).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{stderr, stdout, TestEnv};

/// Defines a test that runs `body` as the test's user and, when that is root, again in a tree
/// owned by uid 65534 with every shark command run as that user.
macro_rules! both_users {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            let body: fn(&TestEnv) = $body;
            body(&TestEnv::new());
            if let Some(env) = TestEnv::unprivileged() {
                body(&env);
            }
        }
    };
}

/// A shark whose only writable root is the work directory, so that the test folder around it
/// (where the victims live) is outside every root.
fn confined(env: &TestEnv, line: &str) -> Output {
    env.shark()
        .env("SHARK_WRITABLE", &env.work)
        .args(["-c", line])
        .output()
        .unwrap()
}

/// A directory outside the writable roots, with a file in it.
fn victim(env: &TestEnv) -> std::path::PathBuf {
    let victim = env.work.parent().unwrap().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), "precious\n").unwrap();
    env.own(&victim.join("keep"));
    victim
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn swap_for_symlink(env: &TestEnv, dir: &str, target: &Path) {
    std::fs::remove_dir_all(env.path(dir)).unwrap();
    std::os::unix::fs::symlink(target, env.path(dir)).unwrap();
    env.own(&env.path(dir));
}

fn mkdir(env: &TestEnv, rel: &str) {
    std::fs::create_dir_all(env.path(rel)).unwrap();
    env.own(&env.path(rel));
}

both_users!(
    a_reuse_never_writes_through_a_symlinked_parent,
    |env: &TestEnv| {
        let victim = victim(env);
        mkdir(env, "out");
        let line = "echo p > out/f";
        assert!(confined(env, line).status.success());
        swap_for_symlink(env, "out", &victim);
        let out = confined(env, line);
        // Run fresh, the command cannot write there either: it fails as it would, read-only.
        assert_ne!(out.status.code(), Some(0));
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            stderr(&out)
        );
        assert!(!env.last_cached());
        assert_eq!(names(&victim), ["keep"]);
    }
);

both_users!(
    a_reuse_never_deletes_or_chmods_through_a_symlinked_parent,
    |env: &TestEnv| {
        let victim = victim(env);
        std::fs::create_dir(victim.join("d")).unwrap();
        env.own(&victim.join("d"));
        mkdir(env, "out/d");
        env.write("out/keep", "mine\n");
        let line = "rm -f out/keep; chmod 700 out/d";
        assert!(confined(env, line).status.success());
        // The same state again (as the run found it), but out/ is now a symlink.
        swap_for_symlink(env, "out", &victim);
        let _ = confined(env, line);
        assert!(!env.last_cached());
        assert_eq!(names(&victim), ["d", "keep"]);
        assert_eq!(
            std::fs::read_to_string(victim.join("keep")).unwrap(),
            "precious\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(victim.join("d"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_ne!(mode, 0o700, "the victim's directory kept its mode");
    }
);

both_users!(
    a_script_cannot_get_a_forged_database_restored_over_the_real_one,
    |env: &TestEnv| {
        // Four lines run inside shark: make a forged database as an output, then point `out` at
        // the shark home, then ask for the output again.
        env.write(
            "evil.sh",
            "mkdir -p out\necho forged > out/lineage.db\n\
         rm -rf out; ln -s \"$SHARK_HOME\" out\n\
         echo forged > out/lineage.db || true\n",
        );
        let _ = env.run(&["evil.sh"]);
        let _ = env.run(&["evil.sh"]);
        let db = std::fs::read(env.home.join("lineage.db")).unwrap();
        assert!(!db.starts_with(b"forged"), "the database was overwritten");
        let verify = env.run(&["store", "verify"]);
        assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
        assert!(env.log().len() >= 8, "the history is still there");
    }
);

#[test]
fn the_host_kernel_settings_are_out_of_reach_even_for_root() {
    let env = TestEnv::new();
    let before = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let out = env.line("echo 61 > /proc/sys/vm/swappiness");
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(),
        before
    );
    let out = env.line("test -w /proc/sys/kernel/core_pattern && echo writable || echo no");
    assert_eq!(stdout(&out), "no\n");
}

both_users!(concurrent_appends_all_land, |env: &TestEnv| {
    env.write("log", "");
    let children: Vec<_> = (0..16)
        .map(|n| {
            env.shark()
                .args(["-c", &format!("echo p{n} >> log")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut lines: Vec<String> = env.read("log").lines().map(str::to_owned).collect();
    lines.sort();
    let mut want: Vec<String> = (0..16).map(|n| format!("p{n}")).collect();
    want.sort();
    assert_eq!(lines, want);
});

both_users!(
    concurrent_edits_of_one_file_conflict_instead_of_losing_one,
    |env: &TestEnv| {
        use std::io::{BufRead, BufReader};
        env.write("f", "a\nb\n");
        // Both commands read f before either's change is applied: each says so, then waits for a
        // file outside the writable roots that the test makes once both have spoken.
        let go = env.work.parent().unwrap().join("user/go");
        let edit = |script: &str| {
            let line = format!(
                "{script} f; echo read; until [ -e {} ]; do sleep 0.01; done",
                go.display()
            );
            env.shark()
                .env("SHARK_WRITABLE", &env.work)
                .args(["-c", &line])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut children = [edit("sed -i s/a/A/"), edit("sed -i s/b/B/")];
        for child in &mut children {
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line, "read\n");
        }
        std::fs::write(&go, "").unwrap();
        let outs = children.map(|c| c.wait_with_output().unwrap());
        let content = env.read("f");
        // One edit is in place; the other was refused with a clear conflict naming the file,
        // and the file keeps the newer content.
        assert!(content == "A\nb\n" || content == "a\nB\n", "{content:?}");
        let failed: Vec<&Output> = outs.iter().filter(|o| !o.status.success()).collect();
        assert_eq!(failed.len(), 1, "{outs:?}");
        let err = stderr(failed[0]);
        let f = env.path("f");
        assert!(
            err.contains("conflict") && err.contains(&format!("{} changed", f.display())),
            "{err}"
        );
        // The refused run is never reused: the same edit runs again on the file as it is now.
        let line = if content == "A\nb\n" {
            "sed -i s/b/B/ f"
        } else {
            "sed -i s/a/A/ f"
        };
        let again = env
            .shark()
            .env("SHARK_WRITABLE", &env.work)
            .args(["-c", line])
            .output()
            .unwrap();
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(env.read("f"), "A\nB\n", "both edits in the end, none lost");
    }
);

both_users!(
    a_shark_home_reached_through_a_symlink_works,
    |env: &TestEnv| {
        let real = env.work.parent().unwrap().join("real-home");
        std::fs::create_dir(&real).unwrap();
        env.own(&real);
        let link = env.work.parent().unwrap().join("home-link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let run = |line: &str| {
            env.shark()
                .env("SHARK_HOME", &link)
                .args(["-c", line])
                .output()
                .unwrap()
        };
        let out = run("echo hi > f && cat f");
        assert_eq!(stdout(&out), "hi\n", "{}", stderr(&out));
        assert_eq!(env.read("f"), "hi\n");
        let out = run("echo hi > f && cat f");
        assert_eq!(stdout(&out), "hi\n", "{}", stderr(&out));
        assert!(real.join("lineage.db").exists());
    }
);

#[test]
fn an_unprivileged_user_works_in_its_folder_below_someone_elses() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to set up another user's folders");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    // /tmp/X/shared is root's; /tmp/X/shared/alice and its work folder are uid 65534's.
    let alice = dir.path().join("shared/alice");
    let work = alice.join("work");
    std::fs::create_dir_all(&work).unwrap();
    for d in [&alice, &work] {
        nix::unistd::chown(d, Some(65534.into()), Some(65534.into())).unwrap();
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::common::reachable_shark())
        .args([
            "-c",
            "echo x > f && mkdir -p sub && echo y > sub/g && cat f sub/g",
        ])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &alice)
        .env("SHARK_HOME", alice.join(".shark"))
        .current_dir(&work)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "x\ny\n", "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(work.join("sub/g")).unwrap(), "y\n");
}

both_users!(
    a_host_unix_socket_outside_the_roots_cannot_be_reached,
    |env: &TestEnv| {
        // A service's socket outside the writable folders, like /run/docker.sock.
        let sock = env.work.parent().unwrap().join("user/service.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let line = format!(
            "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}')\"",
            sock.display()
        );
        let out = confined(env, &line);
        assert_ne!(out.status.code(), Some(0));
        assert!(stderr(&out).contains("PermissionError"), "{}", stderr(&out));
        assert!(listener.accept().is_err(), "nobody connected");
    }
);

#[test]
fn a_directory_replaced_by_a_file_is_no_conflict() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("y/sub")).unwrap();
    env.write("y/sub/f", "old\n");
    let out = env.line("rm -r y && echo now > y");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("y"), "now\n");
    std::fs::remove_file(env.path("y")).unwrap();
    env.write("z", "file\n");
    let out = env.line("rm z && mkdir -p z/sub && echo in > z/sub/f");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.read("z/sub/f"), "in\n");
}
