//! A minimal command line over the store, for benchmarks (`bench/store.sh`) and poking around.
//!
//! ```text
//! store-tool hash FILE                      print FILE's digest
//! store-tool put STORE FILE                 store FILE; print digest, sizes and encoding
//! store-tool restore STORE DIGEST TARGET    restore a blob to TARGET (mode 0644)
//! store-tool verify STORE                   check every blob
//! ```

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use shark_store::{Digest, Store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut line = format!("store-tool: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[&str]) -> Result<(), Box<dyn Error>> {
    match args {
        ["hash", file] => println!("{}", Digest::of_file(Path::new(file))?),
        ["put", store, file] => {
            let put = Store::open(Path::new(store))?.put_file(Path::new(file))?;
            let encoding = if put.compressed { "zstd" } else { "raw" };
            println!(
                "{} size={} stored={} {encoding}{}",
                put.digest,
                put.size,
                put.stored,
                if put.existed { " existed" } else { "" }
            );
        }
        ["restore", store, digest, target] => {
            let digest: Digest = digest.parse()?;
            let how = Store::open(Path::new(store))?.restore_file(&digest, Path::new(target), 0o644)?;
            println!("{how:?}");
        }
        ["verify", store] => {
            let report = Store::open(Path::new(store))?.verify_all()?;
            for (digest, reason) in &report.corrupt {
                println!("corrupt {digest}: {}", reason.summary());
            }
            println!("{} checked, {} corrupt", report.checked, report.corrupt.len());
        }
        _ => return Err("usage: store-tool hash FILE | put STORE FILE | restore STORE DIGEST TARGET | verify STORE".into()),
    }
    Ok(())
}
