//! Standard streams of a recorded command.
//!
//! stdout and stderr pass through pipes: a thread per stream copies the bytes live to shark's
//! own stream and into a temporary file that becomes a blob. Standard input is an input like
//! any file: a regular file is hashed, a pipe is read to the end first (its content is what the
//! command may read, so it must be known before a reuse is allowed), a terminal is handed over
//! as it is.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use shark_store::{Digest, StatCache};

/// How standard input reaches the command.
#[derive(Debug)]
pub enum StdinPlan {
    /// `/dev/null` or closed: nothing to read.
    Null,
    /// A terminal, handed over as it is.
    Tty,
    /// A regular file (`shark -c ... < file`), with its content digest.
    File(Digest),
    /// A pipe read to the end into a temporary file, with its digest.
    Captured {
        /// The file holding what was piped in.
        file: File,
        /// Its digest.
        digest: Digest,
    },
}

impl StdinPlan {
    /// Looks at shark's own stdin and decides; a pipe is read to the end into `scratch`.
    pub fn detect(scratch: &Path, cache: &StatCache) -> io::Result<StdinPlan> {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            return Ok(StdinPlan::Tty);
        }
        let Ok(meta) = File::from(stdin.as_fd().try_clone_to_owned()?).metadata() else {
            return Ok(StdinPlan::Null);
        };
        let ft = meta.file_type();
        if ft.is_char_device() {
            return Ok(StdinPlan::Null);
        }
        if ft.is_file() {
            let digest = cache
                .digest_file(Path::new("/proc/self/fd/0"))
                .map_err(io::Error::other)?;
            return Ok(StdinPlan::File(digest));
        }
        capture_stdin(scratch)
    }

    /// The name of this mode in the weak key.
    pub fn mode(&self) -> &'static str {
        match self {
            StdinPlan::Null => "null",
            StdinPlan::Tty => "tty",
            StdinPlan::File(_) => "file",
            StdinPlan::Captured { .. } => "pipe",
        }
    }

    /// The digest of what the command can read on stdin, if it is content.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            StdinPlan::File(d) | StdinPlan::Captured { digest: d, .. } => Some(*d),
            _ => None,
        }
    }
}

fn capture_stdin(scratch: &Path) -> io::Result<StdinPlan> {
    let mut file = tempfile::tempfile_in(scratch)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut input = io::stdin().lock();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
    }
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    Ok(StdinPlan::Captured {
        file,
        digest: Digest::from(hasher.finalize()),
    })
}

/// Which of shark's own streams a captured stream is copied to.
#[derive(Debug, Clone, Copy)]
pub enum Live {
    /// shark's stdout.
    Stdout,
    /// shark's stderr.
    Stderr,
}

/// A stream being copied live and into a file.
#[derive(Debug)]
pub struct Tee {
    thread: JoinHandle<io::Result<PathBuf>>,
}

impl Tee {
    /// Makes a pipe; returns the write end for the command and the copier of the read end.
    pub fn start(live: Live, scratch: &Path) -> io::Result<(OwnedFd, Tee)> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (file, path) = tempfile::NamedTempFile::new_in(scratch)?
            .keep()
            .map_err(|e| e.error)?;
        let thread = std::thread::spawn(move || copy(File::from(read), file, live).map(|()| path));
        Ok((write, Tee { thread }))
    }

    /// Waits for the end of the stream; returns the file holding every byte.
    pub fn finish(self) -> io::Result<PathBuf> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("output copier panicked")))
    }
}

fn copy(mut from: File, mut to: File, live: Live) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut live_ok = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        // A reader that went away (`shark -c ... | head`) stops the live copy, not the record.
        if live_ok {
            live_ok = write_live(live, &buf[..n]).is_ok();
        }
    }
    to.flush()
}

/// Writes to shark's own stdout or stderr, unbuffered.
pub fn write_live(live: Live, bytes: &[u8]) -> io::Result<()> {
    match live {
        Live::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        Live::Stderr => io::stderr().lock().write_all(bytes),
    }
}
