//! Link options for the `shark` binary.
//!
//! Relative relocations are packed (`DT_RELR`, glibc 2.36+, binutils 2.38+): the binary
//! carries tens of thousands of them, and applying them one entry at a time took about 1 ms
//! of each command's start-up, more than the rest of a reused command's dynamic loading.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && relr_supported() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the linker understands `-z pack-relative-relocs` (binutils 2.38 and later, lld):
/// asked by linking an empty program with it.
fn relr_supported() -> bool {
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let src = std::path::Path::new(&out).join("relr-probe.c");
    let exe = std::path::Path::new(&out).join("relr-probe");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    std::process::Command::new(cc)
        .arg("-Wl,-z,pack-relative-relocs")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .is_ok_and(|o| o.status.success() && o.stderr.is_empty())
}
