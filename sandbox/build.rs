//! Builds the preloaded library of the observation fast path (`fastpath/*.c`) into
//! `$OUT_DIR/shark-fast.so`, which the crate embeds, and `fastpath/check.c` into a static
//! library the crate's tests compare the Rust side with.

use std::path::PathBuf;
use std::process::Command;

const SOURCES: [&str; 3] = ["fastpath/core.c", "fastpath/files.c", "fastpath/exec.c"];
const HEADERS: [&str; 4] = [
    "fastpath/fast.h",
    "fastpath/kinds.h",
    "fastpath/layout.h",
    "fastpath/paths.h",
];

fn main() {
    for file in SOURCES.iter().chain(&HEADERS).chain(&["fastpath/check.c"]) {
        println!("cargo:rerun-if-changed={file}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let so = out.join("shark-fast.so");
    let mut cmd: Command = cc::Build::new().get_compiler().to_command();
    cmd.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-g0",
        "-std=gnu11",
        "-U_FORTIFY_SOURCE",
        "-fvisibility=hidden",
        "-fno-stack-protector",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-unused-parameter",
        "-Wno-nonnull-compare",
        "-fno-delete-null-pointer-checks",
        "-Wl,-soname,shark-fast.so",
        "-Wl,-z,now",
        "-Wl,--as-needed",
        "-o",
    ]);
    cmd.arg(&so).args(SOURCES).arg("-ldl");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler ({e}): shark needs gcc"));
    assert!(status.success(), "building the fast-path library failed");
    cc::Build::new()
        .file("fastpath/check.c")
        .warnings_into_errors(true)
        .compile("shark_fast_check");
}
