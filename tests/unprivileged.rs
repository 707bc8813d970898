//! Shark as an ordinary user: run, reuse, a changed input, queries. When the tests run as
//! root, these drop to uid/gid 65534 with `setpriv`; as any other user they run as that user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{stderr, stdout};

/// A work tree and home owned by the user the commands run as.
struct UserEnv {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    as_root: bool,
}

impl UserEnv {
    fn new() -> UserEnv {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let as_root = nix::unistd::geteuid().is_root();
        for d in ["work", "user", "home"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        if as_root {
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
            let status = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(&root)
                .status()
                .unwrap();
            assert!(status.success());
        }
        UserEnv {
            _dir: dir,
            root,
            as_root,
        }
    }

    fn shark(&self, args: &[&str]) -> Output {
        let bin = crate::common::reachable_shark();
        let mut c = if self.as_root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(bin);
            c
        } else {
            Command::new(bin)
        };
        c.args(args)
            .env_clear()
            .env("SHARK_HOME", self.root.join("home"))
            .env("HOME", self.root.join("user"))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .current_dir(self.root.join("work"));
        c.output().unwrap()
    }

    fn work(&self, rel: &str) -> std::path::PathBuf {
        self.root.join("work").join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let line = format!("printf '%s' '{text}' > {rel}");
        let out = if self.as_root {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(["sh", "-c", &line])
                .current_dir(self.root.join("work"))
                .output()
                .unwrap()
        } else {
            Command::new("sh")
                .args(["-c", &line])
                .current_dir(self.root.join("work"))
                .output()
                .unwrap()
        };
        assert!(out.status.success(), "{}", stderr(&out));
    }

    fn last_cached(&self) -> bool {
        let out = self.shark(&["log", "--json", "-n", "1"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        v["cached"].as_bool().unwrap()
    }
}

fn owner(p: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(p).unwrap())
}

#[test]
fn an_unprivileged_user_runs_reuses_and_reruns_on_change() {
    let env = UserEnv::new();
    env.write("in.txt", "b\na\n");
    let line = "sort in.txt > out.txt; cat out.txt";
    let out = env.shark(&["-c", line]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\nb\n");
    assert!(!env.last_cached());
    if env.as_root {
        assert_eq!(
            owner(&env.work("out.txt")),
            65534,
            "outputs belong to the user"
        );
    }

    std::fs::remove_file(env.work("out.txt")).unwrap();
    let out = env.shark(&["-c", line]);
    assert_eq!(stdout(&out), "a\nb\n", "{}", stderr(&out));
    assert!(env.last_cached());
    assert_eq!(
        std::fs::read_to_string(env.work("out.txt")).unwrap(),
        "a\nb\n"
    );
    if env.as_root {
        assert_eq!(
            owner(&env.work("out.txt")),
            65534,
            "restored files belong to the user"
        );
    }

    env.write("in.txt", "c\na\n");
    let out = env.shark(&["-c", line]);
    assert_eq!(stdout(&out), "a\nc\n", "{}", stderr(&out));
    assert!(!env.last_cached());

    let out = env.shark(&["lineage", "out.txt", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tree: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(tree["run"]["command"], line);
}

#[test]
fn an_unprivileged_write_outside_the_roots_is_denied() {
    let env = UserEnv::new();
    // /var/tmp is world-writable but not a writable root: the sandbox refuses the write.
    let target = format!("/var/tmp/shark-unpriv-{}", std::process::id());
    let out = env.shark(&["-c", &format!("echo x > {target}")]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!Path::new(&target).exists());
}
