//! Man pages and shell completions, generated from the clap definitions in [`crate::cli`].
//!
//! `man/` holds the rendered pages; a test renders them again and fails when they differ, so
//! they never go stale. Regenerate with `SHARK_UPDATE_MAN=1 cargo test -p shark --test tests man`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::CliError;

/// The hand-written part of shark(1): what a reader needs before the option list.
const OVERVIEW: &str = include_str!("man_overview.roff");

/// Every man page: (file name, roff text). `shark.1` first, then one per subcommand
/// (`shark-store-verify.1` for `shark store verify`).
pub fn pages() -> Vec<(String, String)> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, "shark", &mut out);
    out
}

fn collect(cmd: &clap::Command, name: &str, out: &mut Vec<(String, String)>) {
    let cmd = cmd
        .clone()
        .name(name.to_owned())
        .display_name(name.replace('-', " "));
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone())
        .date("")
        .source("shark")
        .manual("Shark Manual");
    man.render_title(&mut page).expect("render to memory");
    man.render_name_section(&mut page)
        .expect("render to memory");
    man.render_synopsis_section(&mut page)
        .expect("render to memory");
    man.render_description_section(&mut page)
        .expect("render to memory");
    if name == "shark" {
        page.extend_from_slice(OVERVIEW.as_bytes());
    }
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)
            .expect("render to memory");
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)
            .expect("render to memory");
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)
            .expect("render to memory");
    }
    out.push((
        format!("{name}.1"),
        String::from_utf8(page).expect("roff is UTF-8"),
    ));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        collect(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}

/// `shark completions SHELL`: prints the completion script.
pub fn completions(shell: clap_complete::Shell) -> Result<i32, CliError> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "shark", &mut buf);
    use std::io::Write;
    match std::io::stdout().lock().write_all(&buf) {
        Err(e) if !crate::error::is_broken_pipe(&e) => {
            Err(CliError::failed("cannot write to stdout", e))
        }
        _ => Ok(0),
    }
}
