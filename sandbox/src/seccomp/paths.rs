//! Turning a path argument into the absolute path the process meant, and normalising it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The absolute form of `raw`, relative to `dirfd` (or the cwd) of thread `pid`, in the
/// sandbox's view (which is the host's, apart from the run's own writes). Paths through the
/// process's magic links in `/proc` (`/proc/self/root/...`, `/proc/self/cwd/...`,
/// `/proc/PID/fd/N/...`, `/dev/fd/N`, `/dev/stdin`) become the paths they reach. With
/// `chrooted`, an absolute path is taken relative to the process's root. `None` when it names
/// no path (a pipe, a socket, a vanished process).
pub(crate) fn absolute(pid: u32, dirfd: i32, raw: &[u8], chrooted: bool) -> Option<PathBuf> {
    let path = if raw.first() == Some(&b'/') {
        let path = PathBuf::from(OsStr::from_bytes(raw));
        match chrooted {
            true => under_root(pid, &path)?,
            false => path,
        }
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
    through_magic_links(pid, path)
}

/// `path` (absolute in the process's view) prefixed with the process's root, when it has
/// changed its root.
fn under_root(pid: u32, path: &Path) -> Option<PathBuf> {
    let root = std::fs::read_link(format!("/proc/{pid}/root")).ok()?;
    if root == Path::new("/") {
        return Some(path.to_path_buf());
    }
    Some(root.join(path.strip_prefix("/").unwrap_or(path)))
}

/// Follows the magic links of `/proc` (and the `/dev` names of descriptors) at the start of
/// `path`, a few times at most, so a read through them is recorded at the file it reached.
fn through_magic_links(pid: u32, mut path: PathBuf) -> Option<PathBuf> {
    for _ in 0..8 {
        let Some((link, rest)) = magic_link(pid, &path) else {
            return Some(path);
        };
        let target = std::fs::read_link(&link).ok()?;
        if !target.is_absolute() {
            return None; // pipe:[..], socket:[..], anon_inode:..
        }
        path = match rest {
            Some(rest) if !rest.as_os_str().is_empty() => target.join(rest),
            _ => target,
        };
    }
    Some(path)
}

/// When `path` starts with a magic link of a process, the host path to read that link at and
/// what follows it.
pub(crate) fn magic_link(pid: u32, path: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    let bytes = path.as_os_str().as_bytes();
    let std_fd = match bytes {
        b"/dev/stdin" => Some(0),
        b"/dev/stdout" => Some(1),
        b"/dev/stderr" => Some(2),
        _ => None,
    };
    if let Some(fd) = std_fd {
        return Some((PathBuf::from(format!("/proc/{pid}/fd/{fd}")), None));
    }
    let mut parts = path
        .strip_prefix("/")
        .ok()?
        .components()
        .map(|c| c.as_os_str());
    let first = parts.next()?;
    // Where the process's own /proc entry is on the host, and the first part after it.
    let (proc_dir, link) = if first == "dev" {
        if parts.next()? != "fd" {
            return None;
        }
        (format!("/proc/{pid}"), OsStr::new("fd"))
    } else if first == "proc" {
        let who = parts.next()?;
        let own = who == "self" || who == "thread-self";
        let mut dir = if own {
            format!("/proc/{pid}")
        } else if who.as_bytes().iter().all(u8::is_ascii_digit) {
            // A pid of the sandbox's own pid namespace: read the link through its /proc.
            format!("/proc/{pid}/root/proc/{}", who.to_string_lossy())
        } else {
            return None;
        };
        let mut link = parts.next()?;
        if link == "task" {
            // The process's own threads share its root, cwd and descriptors (as seen here,
            // their ids are the sandbox's, not the host's).
            let tid = parts.next()?;
            if !own {
                dir = format!("{dir}/task/{}", tid.to_string_lossy());
            }
            link = parts.next()?;
        }
        (dir, link)
    } else {
        return None;
    };
    let mut at = PathBuf::from(proc_dir);
    at.push(link);
    if link == "fd" || link == "map_files" {
        at.push(parts.next()?);
    } else if link != "root" && link != "cwd" && link != "exe" {
        return None;
    }
    let rest: PathBuf = parts.collect();
    Some((at, Some(rest)))
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
    fn recognises_magic_links() {
        let m = |p: &str| magic_link(7, Path::new(p));
        let pb = |p: &str| PathBuf::from(p);
        assert_eq!(
            m("/proc/self/fd/3"),
            Some((pb("/proc/7/fd/3"), Some(pb(""))))
        );
        assert_eq!(m("/dev/fd/0/x"), Some((pb("/proc/7/fd/0"), Some(pb("x")))));
        assert_eq!(m("/dev/stderr"), Some((pb("/proc/7/fd/2"), None)));
        assert_eq!(
            m("/proc/self/root/etc/passwd"),
            Some((pb("/proc/7/root"), Some(pb("etc/passwd"))))
        );
        assert_eq!(
            m("/proc/thread-self/cwd/a/b"),
            Some((pb("/proc/7/cwd"), Some(pb("a/b"))))
        );
        assert_eq!(
            m("/proc/1/cwd/in.txt"),
            Some((pb("/proc/7/root/proc/1/cwd"), Some(pb("in.txt"))))
        );
        assert_eq!(
            m("/proc/self/task/9/root/x"),
            Some((pb("/proc/7/root"), Some(pb("x"))))
        );
        assert_eq!(m("/proc/self/status"), None);
        assert_eq!(m("/proc/cpuinfo"), None);
        assert_eq!(m("/dev/null"), None);
        assert_eq!(m("/home/proc/self/root"), None);
    }
}
