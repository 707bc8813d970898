//! Turning a path argument into the absolute path the process meant, and normalising it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The absolute form of `raw`, relative to `dirfd` (or the cwd) of thread `pid`; `/proc/self/fd/N`
/// and its aliases become what the descriptor points to. `None` when it names no path (a pipe,
/// a socket, a vanished process).
pub(crate) fn absolute(pid: u32, dirfd: i32, raw: &[u8]) -> Option<PathBuf> {
    let path = if raw.first() == Some(&b'/') {
        PathBuf::from(OsStr::from_bytes(raw))
    } else {
        let base = if dirfd == libc::AT_FDCWD {
            std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?
        } else {
            std::fs::read_link(format!("/proc/{pid}/fd/{dirfd}")).ok()?
        };
        if !base.is_absolute() {
            return None;
        }
        if raw.is_empty() {
            base
        } else {
            base.join(OsStr::from_bytes(raw))
        }
    };
    match fd_alias(&path) {
        Some(fd) => {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
            target.is_absolute().then_some(target)
        }
        None => Some(path),
    }
}

/// The descriptor number when `path` names one of the process's own descriptors.
fn fd_alias(path: &Path) -> Option<u32> {
    let bytes = path.as_os_str().as_bytes();
    match bytes {
        b"/dev/stdin" => return Some(0),
        b"/dev/stdout" => return Some(1),
        b"/dev/stderr" => return Some(2),
        _ => {}
    }
    let rest = [
        &b"/proc/self/fd/"[..],
        b"/proc/thread-self/fd/",
        b"/dev/fd/",
    ]
    .iter()
    .find_map(|prefix| bytes.strip_prefix(*prefix))?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// Lexical normalisation that never crosses a symlink: `.` and empty components go, and `..`
/// removes the previous component only when that is a real directory on the host.
#[derive(Debug, Default)]
pub(crate) struct Normalizer {
    is_real_dir: HashMap<PathBuf, bool>,
}

impl Normalizer {
    pub(crate) fn normalize(&mut self, path: &Path) -> PathBuf {
        let mut out = PathBuf::from("/");
        let mut kept_dotdot = false;
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::Normal(name) => out.push(name),
                Component::ParentDir => {
                    if out.parent().is_none() {
                        continue; // "/.." is "/"
                    }
                    if !kept_dotdot && self.real_dir(&out) {
                        out.pop();
                    } else {
                        kept_dotdot = true;
                        out.push("..");
                    }
                }
            }
        }
        out
    }

    fn real_dir(&mut self, path: &Path) -> bool {
        if let Some(&known) = self.is_real_dir.get(path) {
            return known;
        }
        let real = std::fs::symlink_metadata(path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        self.is_real_dir.insert(path.to_path_buf(), real);
        real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_without_crossing_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink("/usr/bin", dir.path().join("link")).unwrap();
        let mut n = Normalizer::default();
        let d = dir.path().display();
        assert_eq!(
            n.normalize(Path::new(&format!("{d}/./real//../x"))),
            dir.path().join("x")
        );
        assert_eq!(
            n.normalize(Path::new(&format!("{d}/link/../x"))),
            dir.path().join("link/../x")
        );
        assert_eq!(
            n.normalize(Path::new("/../etc/./passwd")),
            Path::new("/etc/passwd")
        );
    }

    #[test]
    fn recognises_descriptor_aliases() {
        assert_eq!(fd_alias(Path::new("/proc/self/fd/7")), Some(7));
        assert_eq!(fd_alias(Path::new("/dev/fd/0")), Some(0));
        assert_eq!(fd_alias(Path::new("/dev/stderr")), Some(2));
        assert_eq!(fd_alias(Path::new("/proc/self/fd/7/x")), None);
        assert_eq!(fd_alias(Path::new("/proc/self/status")), None);
    }
}
