//! Changes: what the upper layer records, and applying it to the real tree.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use shark_sandbox::{apply_changes, run, AccessKind::*, Change, Tree};

use crate::common::{set, Env};

fn mode(env: &Env, rel: &str) -> u32 {
    fs::symlink_metadata(env.root.join(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

both_legs!(delete_and_rename, |env: &Env| {
    env.write("work/gone.txt", "g");
    env.write("work/old.txt", "o");
    fs::create_dir(env.work.join("dir1")).unwrap();
    env.write("work/dir1/f", "f");
    let report =
        run(env.spec(&["sh", "-c", "rm gone.txt; mv old.txt new.txt; mv dir1 dir2"])).unwrap();
    assert!(report.status.success());
    let expected = [
        "deleted work/dir1",
        "dir work/dir2 755",
        "file work/dir2/f 644 \"f\"",
        "deleted work/gone.txt",
        "file work/new.txt 644 \"o\"",
        "deleted work/old.txt",
    ];
    assert_eq!(env.changes(&report), expected);
    let probes = set(&[
        ("work/gone.txt", Delete),
        ("work/old.txt", RenameFrom),
        ("work/new.txt", Link),
    ]);
    let seen = env.accesses(&report);
    assert!(seen.is_superset(&probes), "{seen:?}");
    report.apply().unwrap();
    let mut names: Vec<_> = fs::read_dir(&env.work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["dir2", "new.txt"]);
    assert_eq!(env.read("work/dir2/f"), "f");
    assert_eq!(env.read("work/new.txt"), "o");
});

both_legs!(symlink_and_empty_directory, |env: &Env| {
    let report = run(env.spec(&["sh", "-c", "ln -s target link && mkdir -m 0701 empty"])).unwrap();
    assert!(report.status.success());
    assert_eq!(
        env.changes(&report),
        ["dir work/empty 701", "symlink work/link -> target"]
    );
    assert_eq!(
        env.accesses(&report),
        set(&[
            ("work/link", Symlink),
            ("work/empty", Mkdir),
            ("work/empty", Read)
        ])
    );
    report.apply().unwrap();
    assert_eq!(
        fs::read_link(env.work.join("link")).unwrap(),
        std::path::Path::new("target")
    );
    assert_eq!(mode(env, "work/empty"), 0o701);
    assert_eq!(fs::read_dir(env.work.join("empty")).unwrap().count(), 0);
});

both_legs!(replaced_directory_is_opaque, |env: &Env| {
    fs::create_dir(env.work.join("d")).unwrap();
    env.write("work/d/old", "old");
    let report = run(env.spec(&[
        "sh",
        "-c",
        "rm -r d && mkdir d && echo new > d/new && chmod 600 d/new",
    ]))
    .unwrap();
    assert!(report.status.success());
    let expected = [
        "deleted work/d",
        "dir work/d 755",
        "file work/d/new 600 \"new\\n\"",
    ];
    assert_eq!(env.changes(&report), expected);
    report.apply().unwrap();
    assert!(!env.work.join("d/old").exists());
    assert_eq!(mode(env, "work/d/new"), 0o600);
});

both_legs!(directory_replaced_by_a_file, |env: &Env| {
    fs::create_dir(env.work.join("x")).unwrap();
    env.write("work/x/inner", "i");
    let report = run(env.spec(&["sh", "-c", "rm -r x && echo file > x"])).unwrap();
    assert!(report.status.success());
    assert_eq!(
        env.changes(&report),
        ["deleted work/x", "file work/x 644 \"file\\n\""]
    );
    report.apply().unwrap();
    assert_eq!(env.read("work/x"), "file\n");
});

both_legs!(mode_change_of_an_existing_file, |env: &Env| {
    env.write("work/script", "echo\n");
    fs::set_permissions(env.work.join("script"), fs::Permissions::from_mode(0o644)).unwrap();
    let report = run(env.spec(&["chmod", "4755", "script"])).unwrap();
    assert!(report.status.success());
    assert_eq!(env.changes(&report), ["file work/script 4755 \"echo\\n\""]);
    assert_eq!(
        env.accesses(&report),
        set(&[("work/script", Stat), ("work/script", SetAttr)])
    );
    report.apply().unwrap();
    assert_eq!(mode(env, "work/script"), 0o4755);
});

both_legs!(apply_copies_across_filesystems, |env: &Env| {
    // The upper layer on tmpfs, the target on the test tree's filesystem: apply must copy.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let mut spec = env.spec(&["sh", "-c", "echo data > out.txt && chmod 640 out.txt"]);
    spec.scratch_dir = shm.path().to_path_buf();
    let report = run(spec).unwrap();
    assert_eq!(env.changes(&report), ["file work/out.txt 640 \"data\\n\""]);
    report.apply().unwrap();
    assert_eq!(env.read("work/out.txt"), "data\n");
    assert_eq!(mode(env, "work/out.txt"), 0o640);
    let leftovers: Vec<_> = fs::read_dir(&env.work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["out.txt"],
        "no temporary file is left beside the target"
    );
});

both_legs!(apply_changes_standalone_replaces_atomically, |env: &Env| {
    env.write("tmp/src", "new");
    env.write("work/f", "old");
    fs::create_dir(env.work.join("gone")).unwrap();
    env.write("work/gone/x", "x");
    let changes = [
        Change::Deleted {
            path: env.work.join("gone"),
        },
        Change::Dir {
            path: env.work.join("a/b").parent().unwrap().to_path_buf(),
            mode: 0o750,
        },
        Change::Symlink {
            path: env.work.join("a/l"),
            target: "../f".into(),
        },
        Change::File {
            path: env.work.join("f"),
            source: env.tmp.join("src"),
            mode: 0o600,
        },
    ];
    let tree = Tree::open(std::slice::from_ref(&env.work), &[]).unwrap();
    apply_changes(&tree, &changes).unwrap();
    assert!(!env.work.join("gone").exists());
    assert_eq!(mode(env, "work/a"), 0o750);
    assert_eq!(env.read("work/a/l"), "new");
    assert_eq!(mode(env, "work/f"), 0o600);
});

both_legs!(scratch_inside_a_writable_root, |env: &Env| {
    // The usual configuration: shark's scratch space lives under $HOME or /tmp, which are
    // writable roots themselves.
    let mut spec = env.spec(&["sh", "-c", "echo x > $TMPDIR/out.txt && cat $HOME/in.txt"]);
    spec.scratch_dir = env.tmp.join("scratch");
    env.write("home/in.txt", "in");
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert_eq!(env.changes(&report), ["file tmp/out.txt 644 \"x\\n\""]);
    assert_eq!(
        env.accesses(&report),
        set(&[("tmp/out.txt", Create), ("home/in.txt", Read)])
    );
    report.apply().unwrap();
    assert_eq!(env.read("tmp/out.txt"), "x\n");
    drop(report);
    // What is left is the run's scratch directory, left for washing (see scratch.rs).
    let left: Vec<_> = fs::read_dir(env.tmp.join("scratch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let name = left[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(".shark-used-"), "{name}");
    // The next run sees nothing of the last one, and washes its directory for the one after.
    let mut spec = env.spec(&["sh", "-c", "ls -a $TMPDIR"]);
    spec.scratch_dir = env.tmp.join("scratch");
    let report = run(spec).unwrap();
    assert!(report.status.success());
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    drop(report);
    let mut spec = env.spec(&["true"]);
    spec.scratch_dir = env.tmp.join("scratch");
    assert!(run(spec).unwrap().changes.is_empty());
});

both_legs!(writable_roots_keep_their_modes, |env: &Env| {
    // The root of an overlay shows its upper layer's attributes: `/tmp` must keep its sticky
    // bit and a private home its 0700, run after run (scratch directories are recycled).
    fs::set_permissions(&env.tmp, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(&env.home, fs::Permissions::from_mode(0o700)).unwrap();
    for round in 0..2 {
        let (out, stdout) = env.capture("modes.txt");
        let mut spec = env.spec(&["sh", "-c", "stat -c %a \"$TMPDIR\" \"$HOME\""]);
        spec.stdout = stdout;
        let report = run(spec).unwrap();
        assert!(report.status.success());
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "1777\n700\n",
            "round {round}"
        );
    }
});

both_legs!(the_private_shm_is_readable_after_the_run, |env: &Env| {
    // What the command leaves in its own /dev/shm is no change and no input, but the caller
    // can read it back from the report after the sandbox is gone.
    let script = "printf 'state\\n' > /dev/shm/dump && ln -s /etc/passwd /dev/shm/link \
                  && mkdir /dev/shm/dir";
    let report = run(env.spec(&["sh", "-c", script])).unwrap();
    assert!(report.status.success());
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert_eq!(
        report.read_private("dump").as_deref(),
        Some(&b"state\n"[..])
    );
    assert_eq!(report.read_private("missing"), None);
    assert_eq!(
        report.read_private("link"),
        None,
        "symlinks are not followed"
    );
    assert_eq!(report.read_private("dir"), None, "only regular files");
    assert_eq!(report.read_private("../dump"), None);
    assert_eq!(report.read_private(""), None);
    // Each sandbox has its own: the next run does not see the last one's file.
    let next = run(env.spec(&["sh", "-c", "test ! -e /dev/shm/dump"])).unwrap();
    assert!(next.status.success());
    assert_eq!(next.read_private("dump"), None);
});

both_legs!(applying_never_follows_a_symlinked_parent, |env: &Env| {
    // The run wrote out/f in a real directory; before the changes are applied, out/ is
    // swapped for a symlink to a directory outside the writable roots.
    fs::create_dir(env.work.join("out")).unwrap();
    let report = run(env.spec(&["sh", "-c", "echo p > out/f; rm -f out/old"])).unwrap();
    assert!(report.status.success());
    fs::remove_dir(env.work.join("out")).unwrap();
    let victim = env.root.join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("old"), "keep").unwrap();
    std::os::unix::fs::symlink(&victim, env.work.join("out")).unwrap();
    let err = report.apply().unwrap_err();
    assert!(err.to_string().contains("out/f"), "names the path: {err}");
    assert!(
        !victim.join("f").exists(),
        "nothing written through the symlink"
    );
    assert_eq!(fs::read_to_string(victim.join("old")).unwrap(), "keep");
});
both_legs!(
    a_mapped_root_is_seen_inside_and_recorded_by_host_path,
    |env: &Env| {
        use shark_sandbox::MappedRoot;
        // `/data` does not exist on the host: the sandbox makes its mount point on a synthetic
        // root without touching the host's `/`.
        assert!(
            !std::path::Path::new("/data").exists(),
            "the test needs a host without /data"
        );
        fs::create_dir(env.work.join("data")).unwrap();
        env.write("work/data/in.txt", "3\n1\n2\n");
        let mut spec = env.spec(&[
        "sh",
        "-c",
        "sort /data/in.txt > /data/out.txt && cd /data && cat out.txt >/dev/null && ls /usr/bin/sh /etc/passwd >/dev/null",
    ]);
        spec.mapped_roots = vec![MappedRoot {
            inside: "/data".into(),
            host: env.work.join("data"),
        }];
        let report = run(spec).unwrap();
        assert!(report.status.success(), "{:?}", report.status);
        assert_eq!(
            env.changes(&report),
            ["file work/data/out.txt 644 \"1\\n2\\n3\\n\""]
        );
        let read = set(&[("work/data/in.txt", Read)]);
        assert!(
            env.accesses(&report).is_superset(&read),
            "{:?}",
            env.accesses(&report)
        );
        assert!(!report.accesses.iter().any(|a| a.path.starts_with("/data")));
        assert!(!std::path::Path::new("/data").exists());
        assert!(
            !env.work.join("data/out.txt").exists(),
            "changes wait for apply"
        );
        report.apply().unwrap();
        assert_eq!(env.read("work/data/out.txt"), "1\n2\n3\n");
    }
);
