//! The man pages in man/ are generated from the CLI definitions; this fails when they are stale.
//! Regenerate with `SHARK_UPDATE_MAN=1 cargo test --test tests man`.

use std::path::Path;

use crate::common::{stdout, TestEnv};

#[test]
fn man_pages_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = shark_shell::man::pages();
    let update = std::env::var_os("SHARK_UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for (name, text) in &pages {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    // A page for a subcommand that no longer exists is stale too.
    let expected: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".1") && !expected.contains(&name.as_str()) {
            if update {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run SHARK_UPDATE_MAN=1 cargo test --test tests man"
    );
}

#[test]
fn man_page_of_shark_has_overview_and_subcommands() {
    let pages = shark_shell::man::pages();
    let (name, text) = &pages[0];
    assert_eq!(name, "shark.1");
    assert!(text.contains(".SH OVERVIEW"), "{text}");
    assert!(text.contains("store"), "{text}");
    assert!(pages.iter().any(|(n, _)| n == "shark-store-verify.1"));
}

#[test]
fn completions_name_the_subcommands() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(
            text.contains("verify"),
            "{shell} completion lacks subcommands"
        );
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_page_has_examples_and_names_only_pages_that_exist() {
    let pages = shark_shell::man::pages();
    let names: Vec<String> = pages
        .iter()
        .map(|(n, _)| n.trim_end_matches(".1").to_owned())
        .collect();
    for (name, text) in &pages {
        assert!(text.contains(".SH EXAMPLES"), "{name} has no examples");
        // References look like `shark\-store (1)` (from .BR) or `shark-store(1)` in prose.
        let plain = text.replace("\\-", "-").replace(" (1)", "(1)");
        for (at, _) in plain.match_indices("(1)") {
            let before = &plain[..at];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(0, |i| i + 1);
            let referenced = &before[start..];
            if referenced.starts_with("shark") {
                assert!(
                    names.iter().any(|n| n == referenced),
                    "{name} refers to {referenced}(1), which does not exist"
                );
            }
        }
    }
}

#[test]
fn the_markdown_format_and_retired_runs_are_explained() {
    let pages = shark_shell::man::pages();
    let page = |n: &str| &pages.iter().find(|(name, _)| name == n).unwrap().1;
    let md = page("shark-md.1");
    for word in [
        "shark\\-run",
        "shark\\-import",
        "shark\\-publish",
        "frontmatter",
    ] {
        assert!(md.contains(word), "shark-md(1) does not explain {word}");
    }
    assert!(page("shark-store-gc.1").contains("retired run is"));
}

#[test]
fn bash_completes_run_ids_and_commands_after_shark_run() {
    let env = TestEnv::new();
    assert_eq!(env.line("true").status.code(), Some(0));
    assert_eq!(env.line("echo hi").status.code(), Some(0));
    let script = stdout(&env.run(&["completions", "bash"]));
    let file = env.work.join("completion.bash");
    std::fs::write(&file, script).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_shark"))
        .parent()
        .unwrap();
    let complete = |words: &str| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _shark_dynamic shark \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &program])
            .env("SHARK_HOME", &env.home)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .current_dir(&env.work)
            .output()
            .unwrap();
        stdout(&out)
    };
    assert_eq!(complete("shark show ''"), "2\n1\n");
    assert_eq!(complete("shark restore f --run 2"), "2\n");
    assert!(complete("shark run gre").lines().any(|l| l == "grep"));
}
