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
