//! Shark's home: the directory that holds the store and the lineage database.
//!
//! Chosen by `--home DIR`, else `$SHARK_HOME` (clap reads both into one option), else
//! `$XDG_DATA_HOME/shark`, else `~/.local/share/shark`. It is created on first use; a home that
//! cannot be created or written is an error naming the path.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// A usable shark home.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    remote: Option<shark_remote::Settings>,
}

impl Home {
    /// Resolves and creates the home directory, checking that it is writable.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, CliError> {
        let root = match explicit {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(CliError::usage(
                    "--home/SHARK_HOME is empty",
                    Some("give a directory, or unset SHARK_HOME for the default".into()),
                ))
            }
            Some(p) => absolute(p),
            None => default_home()?,
        };
        let home_err = |source: std::io::Error| {
            let hint = match source.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    Some("choose a directory you can write with --home or SHARK_HOME".to_string())
                }
                _ => None,
            };
            CliError::Home {
                path: root.clone(),
                source,
                hint,
            }
        };
        fs::create_dir_all(&root).map_err(home_err)?;
        if !root.is_dir() {
            return Err(home_err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        // Find out now that we cannot write here, rather than halfway through recording a run.
        // access(2) answers from the mode, the owner and the mount (a read-only filesystem is
        // EROFS) without creating anything.
        writable(&root).map_err(home_err)?;
        // The home's real place: it is bound read-only into the sandbox and kept out of every
        // restore by path, so a home reached through a symlink must be named where it is.
        let root = fs::canonicalize(&root).map_err(home_err)?;
        Ok(Home { root, remote: None })
    }

    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This home with the remote cache `remote` (see `shark_remote::Settings`).
    pub fn with_remote(self, remote: Option<shark_remote::Settings>) -> Home {
        Home { remote, ..self }
    }

    /// The remote cache commands run against, if one is configured.
    pub fn remote(&self) -> Option<&shark_remote::Settings> {
        self.remote.as_ref()
    }

    /// The content-addressed store.
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The lineage database file.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("lineage.db")
    }

    /// Takes the home's lock: shared for anything that records runs (many at once), exclusive
    /// for garbage collection, which must not delete a blob a run is about to record. The
    /// lock is released when the returned guard is dropped (or the process dies).
    pub fn lock(&self, exclusive: bool) -> Result<HomeLock, CliError> {
        use nix::fcntl::{Flock, FlockArg};
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::failed(format!("cannot open {}", path.display()), e))?;
        let arg = match exclusive {
            true => FlockArg::LockExclusiveNonblock,
            false => FlockArg::LockShared,
        };
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(HomeLock { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(CliError::Usage {
                message: format!("another shark is using {}", self.root.display()),
                hint: Some("try again when the other shark processes have finished".into()),
            }),
            Err((_, errno)) => Err(CliError::failed(
                format!("cannot lock {}", path.display()),
                std::io::Error::from(errno),
            )),
        }
    }
}

/// A held lock on a shark home (see [`Home::lock`]).
#[derive(Debug)]
pub struct HomeLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

fn writable(dir: &Path) -> std::io::Result<()> {
    use nix::unistd::{access, AccessFlags};
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(std::io::Error::from)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn default_home() -> Result<PathBuf, CliError> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        let xdg = PathBuf::from(xdg);
        // The XDG spec says relative values are invalid and must be ignored.
        if xdg.is_absolute() {
            return Ok(xdg.join("shark"));
        }
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/shark")),
        None => Err(CliError::usage(
            "cannot choose a shark home: neither HOME nor XDG_DATA_HOME is set",
            Some("pass --home DIR or set SHARK_HOME".into()),
        )),
    }
}
