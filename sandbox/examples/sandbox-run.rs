//! Runs a command in the sandbox and prints a summary of the report to stderr.
//!
//! Usage: `sandbox-run [-q] [--net] [--apply] [--slow] [--root DIR]... [--scratch DIR] COMMAND
//! [ARGS...]`. With `-q` only the counts are printed; with `--slow` every access is notified
//! (no fast path); with `--apply` the changes are applied to the real
//! filesystem; each `--root` replaces the default writable roots (`$HOME`, the cwd, `/tmp`);
//! `--scratch` puts the upper layers in DIR instead of the temporary directory. Exits with the
//! command's status. Used by `bench/sandbox.sh`.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (mut quiet, mut net, mut apply, mut slow) = (false, false, false, false);
    let mut roots = Vec::new();
    let mut scratch = None;
    while let Some(flag) = args.first().and_then(|a| a.to_str()).map(str::to_owned) {
        match flag.as_str() {
            "-q" => quiet = true,
            "--net" => net = true,
            "--apply" => apply = true,
            "--slow" => slow = true,
            "--root" if args.len() > 1 => roots.push(std::path::PathBuf::from(args.remove(1))),
            "--scratch" if args.len() > 1 => {
                scratch = Some(std::path::PathBuf::from(args.remove(1)))
            }
            _ => break,
        }
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!(
            "usage: sandbox-run [-q] [--net] [--apply] [--slow] [--root DIR]... [--scratch DIR] COMMAND [ARGS...]"
        );
        return ExitCode::from(2);
    }
    let cwd = std::env::current_dir().expect("current directory");
    let mut spec = shark_sandbox::Spec::new(args, cwd);
    spec.network = net;
    spec.fast_path = !slow;
    if !roots.is_empty() {
        spec.writable_roots = roots;
    }
    if let Some(scratch) = scratch {
        spec.scratch_dir = scratch;
    }
    let report = match shark_sandbox::run(spec) {
        Ok(report) => report,
        Err(e) => {
            let mut msg = format!("sandbox-run: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            return ExitCode::from(125);
        }
    };
    if !quiet {
        for p in &report.processes {
            eprintln!("process {} {:?}", p.pid, p.argv);
        }
        for a in &report.accesses {
            eprintln!(
                "{:<8} {} ({})",
                format!("{:?}", a.kind),
                a.path.display(),
                a.pid
            );
        }
        for c in &report.changes {
            eprintln!("change {c:?}");
        }
    }
    eprintln!(
        "status {:?}, {} accesses, {} processes, {} changes, {} notifications, {} fast, wall {:?}, user {:?}, sys {:?}, landlock {:?}",
        report.status,
        report.accesses.len(),
        report.processes.len(),
        report.changes.len(),
        report.stats.notifications,
        report.stats.fast_path,
        report.wall,
        report.rusage.user,
        report.rusage.system,
        report.landlock
    );
    if apply {
        if let Err(e) = report.apply() {
            eprintln!("sandbox-run: {e}");
            return ExitCode::from(125);
        }
    }
    ExitCode::from(report.status.code().clamp(0, 255) as u8)
}
