//! The command line itself: help, version, usage errors, the shark home.

use crate::common::{stderr, stdout, TestEnv};

#[test]
fn version_names_the_package_version() {
    let env = TestEnv::new();
    let out = env.run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        format!("shark {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_subcommands_and_home_option() {
    let env = TestEnv::new();
    let out = env.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in ["store", "--home <DIR>", "SHARK_HOME"] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

#[test]
fn unknown_option_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env.run(&["--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--no-such-option"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn home_that_is_a_file_is_named_in_the_error() {
    let env = TestEnv::new();
    let file = env.work.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = env
        .shark()
        .env("SHARK_HOME", &file)
        .args(["store", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot use shark home {}", file.display())),
        "{err}"
    );
}

#[test]
fn home_option_overrides_environment() {
    let env = TestEnv::new();
    let chosen = env.work.join("chosen");
    let out = env
        .shark()
        .arg("--home")
        .arg(&chosen)
        .args(["store", "stats"])
        .output()
        .unwrap();
    assert!(chosen.is_dir(), "--home was not created: {}", stderr(&out));
    assert!(!env.home.exists(), "SHARK_HOME was used despite --home");
}

#[test]
fn a_device_on_stdin_is_read_and_never_reused() {
    // /dev/zero is no content to hash: the command reads it as it is.
    let env = TestEnv::new();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let run = || {
        env.shark()
            .args(["-c", "head -c 4 | od -An -tx1"])
            .stdin(zero.try_clone().unwrap())
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = run();
        assert_eq!(stdout(&out).trim(), "00 00 00 00", "{}", stderr(&out));
    }
    assert!(!env.last_cached(), "a run that read a device is not reused");
}

#[test]
fn a_command_line_that_is_not_utf8_runs() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let line = std::ffi::OsStr::from_bytes(b"printf '%s' 'caf\xe9' | od -An -tx1");
    let out = env.shark().arg("-c").arg(line).output().unwrap();
    assert_eq!(stdout(&out).trim(), "63 61 66 e9", "{}", stderr(&out));
}
