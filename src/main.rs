//! The `shark` binary: everything lives in `shark-shell`; this only hands over the process.

fn main() {
    std::process::exit(shark_shell::main());
}
