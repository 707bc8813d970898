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
    // `shark help` has no page of its own; without this, shark(1) would list shark-help(1).
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut names = Vec::new();
    page_names(&cmd, "shark", &mut names);
    let mut out = Vec::new();
    collect(&cmd, "shark", &names, &mut out);
    out
}

/// The name of every page, in the order [`pages`] renders them.
fn page_names(cmd: &clap::Command, name: &str, out: &mut Vec<String>) {
    out.push(name.to_owned());
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        page_names(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}

/// The EXAMPLES section: the command's `after_long_help`, less its `Examples:` title, as
/// preformatted text.
fn examples(cmd: &clap::Command) -> String {
    let Some(text) = cmd.get_after_long_help() else {
        return String::new();
    };
    let text = text.to_string();
    let body = text.strip_prefix("Examples:\n").unwrap_or(&text);
    let mut out = String::from(".SH EXAMPLES\n.nf\n");
    for line in body.lines() {
        out.push_str(&roff_escape(line));
        out.push('\n');
    }
    out.push_str(".fi\n");
    out
}

/// Text as roff shows it literally: backslashes doubled, a leading dot or quote protected.
fn roff_escape(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

/// The SEE ALSO section: shark(1) and the pages of the command's parent, siblings and
/// subcommands, all of which exist.
fn see_also(name: &str, names: &[String]) -> String {
    let parent = name.rsplit_once('-').map(|(p, _)| p).unwrap_or("");
    let related: Vec<&String> = names
        .iter()
        .filter(|n| n.as_str() != name)
        .filter(|n| {
            n.as_str() == "shark"
                || n.as_str() == parent
                || n.rsplit_once('-')
                    .is_some_and(|(p, _)| p == name || p == parent)
        })
        .collect();
    if related.is_empty() {
        return String::new();
    }
    let refs: Vec<String> = related
        .iter()
        .map(|n| format!(".BR {} (1)", n.replace('-', "\\-")))
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(" ,\n"))
}

fn collect(cmd: &clap::Command, name: &str, names: &[String], out: &mut Vec<(String, String)>) {
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
    page.extend_from_slice(examples(&cmd).as_bytes());
    page.extend_from_slice(see_also(name, names).as_bytes());
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
        collect(sub, &format!("{name}-{}", sub.get_name()), names, out);
    }
}

/// What bash completion adds to clap's: run ids after `shark show`, `why`, `replay` and
/// `--run` (from `shark log`), and commands after `shark run`.
const BASH_DYNAMIC: &str = r#"
# Run ids come from what is recorded; the program after `shark run` from PATH.
_shark_dynamic() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} sub=${COMP_WORDS[1]}
    if [[ $prev == --run ]] || { (( COMP_CWORD == 2 )) && [[ $sub == show || $sub == why || $sub == replay ]]; }; then
        COMPREPLY=($(compgen -W "$(shark log -n 50 --no-pager 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur"))
        [[ $sub == replay ]] && COMPREPLY+=($(compgen -f -- "$cur"))
        return 0
    fi
    if [[ $sub == run && $cur != -* ]]; then
        local i
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ ${COMP_WORDS[i]} == -* ]] || { _shark "$@"; return; }
        done
        COMPREPLY=($(compgen -c -- "$cur"))
        return 0
    fi
    _shark "$@"
}
complete -F _shark_dynamic -o nosort -o bashdefault -o default shark
"#;

/// `shark completions SHELL`: prints the completion script.
pub fn completions(shell: clap_complete::Shell) -> Result<i32, CliError> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "shark", &mut buf);
    if shell == clap_complete::Shell::Bash {
        buf.extend_from_slice(BASH_DYNAMIC.as_bytes());
    }
    use std::io::Write;
    match std::io::stdout().lock().write_all(&buf) {
        Err(e) if !crate::error::is_broken_pipe(&e) => {
            Err(CliError::failed("cannot write to stdout", e))
        }
        _ => Ok(0),
    }
}
