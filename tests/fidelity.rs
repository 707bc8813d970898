//! The fidelity suite (`tests/fidelity/*.sh`): each script runs under bash and, twice, under
//! shark; stdout, stderr and the exit status must be identical byte for byte (see
//! `tests/fidelity/run.sh`, which also gives the score over all scripts).

use std::path::Path;
use std::process::Command;

/// Runs one script of the suite; panics with the differences.
fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity");
    let out = Command::new("bash")
        .arg(dir.join("run.sh"))
        .arg(env!("CARGO_BIN_EXE_shark"))
        .arg(name)
        .output()
        .expect("run tests/fidelity/run.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} differs from bash:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)); })*
        /// Every script of the folder has a test above.
        #[test]
        fn every_script_is_listed() {
            let listed = [$(stringify!($name)),*];
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity");
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if let Some(stem) = name.strip_suffix(".sh").filter(|s| *s != "run") {
                    assert!(listed.contains(&stem), "{name} is not listed in tests/fidelity.rs");
                }
            }
        }
    };
}

scripts!(
    aliases,
    arith,
    arrays,
    attributes,
    background,
    bash_source,
    big_output,
    big_step,
    casestmt,
    comments_blank,
    dirs,
    dollar_dollar,
    err_trap,
    evals,
    exec_redirect,
    exit_trap,
    function_lines,
    functions,
    getopts,
    heredocs,
    ifs_words,
    io_misc,
    lastpipe_misc,
    lineno,
    logging,
    loops,
    machinery,
    misc_real,
    nonutf8,
    options,
    pipefail,
    procsubst,
    quoting,
    readloop,
    realworld_build,
    realworld_data,
    return_local,
    scoping,
    select_menu,
    set_e,
    sourcing,
    splitter,
    status,
    stdin_file,
    stdin_pipe,
    strict_mode,
    subshell_exit,
    subshells,
    syntax_error,
    traps,
    umask,
    unterminated,
    xtrace,
);
