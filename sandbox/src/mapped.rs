//! Mapped roots ([`MappedRoot`]): host folders the command sees at another path.
//!
//! Each one is a writable root whose overlay is mounted at `inside` rather than at its host
//! path, so its changes come out of the upper layer named by host path like any other. What
//! the tracer sees is named as the command named it (`/data/x`); the tracer passes every path
//! through [`to_host`], which turns such a path into the host path (`HOST/x`), before it
//! fingerprints or records it, so that the executor hashes and records the real file. When a mount point does not exist on the host, the plan
//! asks for a synthetic root ([`top_level`]): a tmpfs holding a bind of each top-level entry
//! of the host's `/` and the missing mount points (see `mounts::synthetic_root`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::InvalidSpec;
use crate::{MappedRoot, SandboxError, Spec};

/// One top-level entry of the host's `/`, as the synthetic root re-creates it.
#[derive(Debug)]
pub(crate) enum TopEntry {
    /// A directory, bound (recursively) from `host` onto `target`.
    Dir { host: CString, target: CString },
    /// A file, bound from `host` onto a new empty file `target`.
    File { host: CString, target: CString },
    /// A symbolic link re-created at `target` pointing to `link`.
    Symlink { link: CString, target: CString },
}

/// The root a plan builds when a mapped root's mount point is missing on the host.
#[derive(Debug)]
pub(crate) struct SyntheticRoot {
    /// The host's top-level entries, re-created on a tmpfs.
    pub(crate) entries: Vec<TopEntry>,
    /// The missing mount points to make there.
    pub(crate) points: Vec<CString>,
}

/// The mapped roots of `spec`, their hosts resolved; each host must be an existing directory
/// and each inside path absolute.
pub(crate) fn resolve(spec: &Spec) -> Result<Vec<MappedRoot>, SandboxError> {
    spec.mapped_roots
        .iter()
        .map(|m| {
            for p in [&m.inside, &m.host] {
                if !p.is_absolute() {
                    let reason = InvalidSpec::RelativePath(p.clone());
                    return Err(SandboxError::InvalidSpec { reason });
                }
            }
            let host = std::fs::canonicalize(&m.host).map_err(|source| SandboxError::Io {
                op: "resolve mapped root",
                path: m.host.clone(),
                source,
            })?;
            Ok(MappedRoot {
                inside: m.inside.clone(),
                host,
            })
        })
        .collect()
}

/// `path` as the host names it: under a mapped root's `inside`, the same place under its
/// `host`; anything else unchanged.
pub(crate) fn to_host(path: &Path, mapped: &[MappedRoot]) -> PathBuf {
    for m in mapped {
        if let Ok(rest) = path.strip_prefix(&m.inside) {
            return if rest.as_os_str().is_empty() {
                m.host.clone()
            } else {
                m.host.join(rest)
            };
        }
    }
    path.to_path_buf()
}

/// The host's top-level entries re-created under `root`, when some mapped root's mount point
/// does not exist on the host (`None` when every one does); and the mount points to create.
/// A missing mount point must be directly under `/`.
pub(crate) fn top_level(
    root: &Path,
    mapped: &[MappedRoot],
    under: fn(&Path, &Path) -> Result<CString, SandboxError>,
) -> Result<Option<SyntheticRoot>, SandboxError> {
    let missing: Vec<&MappedRoot> = mapped.iter().filter(|m| !m.inside.is_dir()).collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut points = Vec::new();
    for m in missing {
        if m.inside.parent() != Some(Path::new("/")) || m.inside.exists() {
            let reason = InvalidSpec::UnmountablePath(m.inside.clone());
            return Err(SandboxError::InvalidSpec { reason });
        }
        points.push(under(root, &m.inside)?);
    }
    let io = |source| SandboxError::Io {
        op: "list the host's root directory",
        path: PathBuf::from("/"),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir("/").map_err(io)? {
        let entry = entry.map_err(io)?;
        let host = Path::new("/").join(entry.file_name());
        let target = under(root, &host)?;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| SandboxError::InvalidSpec {
                reason: InvalidSpec::NulByte,
            })
        };
        let kind = entry.file_type().map_err(io)?;
        entries.push(if kind.is_symlink() {
            let link = std::fs::read_link(&host).map_err(io)?;
            TopEntry::Symlink {
                link: c(&link)?,
                target,
            }
        } else if kind.is_dir() {
            TopEntry::Dir {
                host: c(&host)?,
                target,
            }
        } else {
            TopEntry::File {
                host: c(&host)?,
                target,
            }
        });
    }
    Ok(Some(SyntheticRoot { entries, points }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_mapped_root_are_named_by_host_path() {
        let mapped = [MappedRoot {
            inside: "/data".into(),
            host: "/w/doc.data".into(),
        }];
        assert_eq!(
            to_host(Path::new("/data/a/b.tif"), &mapped),
            Path::new("/w/doc.data/a/b.tif")
        );
        assert_eq!(
            to_host(Path::new("/data"), &mapped),
            Path::new("/w/doc.data")
        );
        assert_eq!(
            to_host(Path::new("/database/x"), &mapped),
            Path::new("/database/x")
        );
        assert_eq!(
            to_host(Path::new("/usr/bin/ls"), &mapped),
            Path::new("/usr/bin/ls")
        );
    }
}
