//! Standard streams of a recorded command.
//!
//! stdout and stderr pass through pipes: a thread per stream copies the bytes live to shark's
//! own stream and captures them for a blob, in memory up to a MiB and in a temporary file
//! past that ([`Captured`]), so a run with little or no output creates no file for it.
//! Standard input is an input like any file: a regular file is hashed from its current offset
//! (what is left to read) and shared with the command, so what one command reads the next
//! does not read again, as in a shell; a pipe is read to the end first into a file that then
//! becomes shark's own standard input (its content is what the commands may read, so it must
//! be known before a reuse is allowed); a terminal or another device is handed over as it is.
//!
//! On a terminal, commands get a pseudo-terminal, so that programs that look at `isatty`
//! (`ls` columns and colours, `less`, `vim`, `top`, a Python REPL) behave as in any shell while
//! their output is still recorded ([`Outputs`]):
//!
//! - stdin and stdout both terminals: the command's three streams are one pty with the real
//!   terminal's settings and size. The real terminal is put in raw mode (but keeps generating
//!   signals, so Ctrl-C still interrupts the command, which shares shark's process group) and a
//!   relay thread forwards keys to the pty; what the pty prints is copied live to shark's stdout
//!   and recorded as stdout (stderr is merged into it, as on a screen);
//! - only stdout or stderr a terminal: that stream alone is a raw pty (no output processing, the
//!   real terminal does that) of the real terminal's size, copied and recorded as a pipe is.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use shark_store::{Digest, StatCache, Store, StoreError};

/// How standard input reaches the command.
#[derive(Debug)]
pub enum StdinPlan {
    /// `/dev/null` or closed: nothing to read.
    Null,
    /// A terminal, handed over as it is.
    Tty,
    /// A regular file (`shark -c ... < file`, or a pipe read into one): the digest of its
    /// content from the offset shark's standard input is at (what the command can read), and
    /// that offset.
    File {
        /// The digest of the bytes from `offset` to the end.
        digest: Digest,
        /// Where the shared file offset stood when the command started.
        offset: u64,
    },
    /// A device other than `/dev/null` (`< /dev/zero`), handed over as it is; what the
    /// command reads from it is not known, so the run is never reused.
    Device,
}

impl StdinPlan {
    /// Looks at shark's own stdin and decides; a pipe is read to the end into a file in
    /// `scratch`, which replaces it as shark's stdin ([`capture_stdin`]).
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
            let null = std::fs::metadata("/dev/null").map(|m| m.rdev()).ok();
            return Ok(match Some(meta.rdev()) == null {
                true => StdinPlan::Null,
                false => StdinPlan::Device,
            });
        }
        if !ft.is_file() {
            capture_stdin(scratch)?;
        }
        let offset = stdin_offset()?;
        let digest = match offset {
            0 => cache
                .digest_file(Path::new("/proc/self/fd/0"))
                .map_err(io::Error::other)?,
            _ => digest_from(offset)?,
        };
        Ok(StdinPlan::File { digest, offset })
    }

    /// The name of this mode in the weak key.
    pub fn mode(&self) -> &'static str {
        match self {
            StdinPlan::Null => "null",
            StdinPlan::Tty => "tty",
            StdinPlan::File { .. } => "file",
            StdinPlan::Device => "device",
        }
    }

    /// The digest of what the command can read on stdin, if it is content.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            StdinPlan::File { digest, .. } => Some(*digest),
            _ => None,
        }
    }
}

/// Where the file offset of shark's standard input stands (shared with the command, which
/// inherits the open file).
pub fn stdin_offset() -> io::Result<u64> {
    let pos = nix::unistd::lseek(io::stdin().as_fd(), 0, nix::unistd::Whence::SeekCur)?;
    Ok(u64::try_from(pos).unwrap_or(0))
}

/// Where shark's stdin is, when it is a regular file (it is shared with the commands, which
/// move it as they read); a pipe is first read into a file ([`capture_stdin`]). `None` for
/// a terminal, a device or a closed stdin.
pub fn shared_stdin_offset(scratch: &Path) -> io::Result<Option<u64>> {
    let stdin = io::stdin();
    let Ok(meta) = File::from(stdin.as_fd().try_clone_to_owned()?).metadata() else {
        return Ok(None);
    };
    let ft = meta.file_type();
    if stdin.is_terminal() || ft.is_char_device() {
        return Ok(None);
    }
    if !ft.is_file() {
        capture_stdin(scratch)?;
    }
    stdin_offset().map(Some)
}

/// Moves the offset of shark's standard input (a regular file) to `offset`: where a reused
/// run had left it.
pub fn seek_stdin(offset: u64) -> io::Result<()> {
    let pos = i64::try_from(offset).map_err(io::Error::other)?;
    nix::unistd::lseek(io::stdin().as_fd(), pos, nix::unistd::Whence::SeekSet)?;
    Ok(())
}

/// The digest of standard input (a regular file) from `offset` to its end, read without
/// moving the shared offset.
fn digest_from(offset: u64) -> io::Result<Digest> {
    use std::os::unix::fs::FileExt;
    let file = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut at = offset;
    loop {
        let n = match file.read_at(&mut buf, at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(Digest::from(hasher.finalize()))
}

/// Reads shark's stdin (a pipe) to the end into an unnamed file in `scratch`, and makes that
/// file shark's stdin, at its start: from then on it is a regular file shared with every
/// command, as a file redirected to a shell is.
pub fn capture_stdin(scratch: &Path) -> io::Result<()> {
    let mut file = tempfile::tempfile_in(scratch)?;
    io::copy(&mut io::stdin().lock(), &mut file)?;
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    nix::unistd::dup2_stdin(&file)?;
    Ok(())
}

/// Which of shark's own streams a captured stream is copied to.
#[derive(Debug, Clone, Copy)]
pub enum Live {
    /// shark's stdout.
    Stdout,
    /// shark's stderr.
    Stderr,
}

/// Output up to this size is kept in memory; past it, the capture moves to a file.
const MEMORY_MAX: usize = 1 << 20;

/// Everything a command wrote to one stream: in memory when small (most output, and every
/// empty stream, costs no file), else in a file in the scratch directory, removed on drop.
#[derive(Debug)]
pub enum Captured {
    /// The bytes themselves.
    Memory(Vec<u8>),
    /// A capture file holding them.
    File(PathBuf),
}

impl Captured {
    /// Puts the captured bytes into `store`.
    pub fn put(&self, store: &Store) -> Result<Digest, StoreError> {
        // Most commands print nothing on one stream or both: an empty stream is named but not
        // stored (readers treat the empty digest as nothing to replay).
        if matches!(self, Captured::Memory(bytes) if bytes.is_empty()) {
            return Ok(Digest::of_bytes(b""));
        }
        match self {
            Captured::Memory(bytes) => store.put_bytes(bytes),
            Captured::File(path) => store.put_file(path),
        }
        .map(|put| put.digest)
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if let Captured::File(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A capture being written: memory first, a file once it outgrows [`MEMORY_MAX`].
struct Capture {
    scratch: PathBuf,
    memory: Vec<u8>,
    file: Option<(File, PathBuf)>,
}

impl Capture {
    fn new(scratch: &Path) -> Capture {
        Capture {
            scratch: scratch.to_owned(),
            memory: Vec::new(),
            file: None,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + bytes.len() > MEMORY_MAX {
            let (mut file, path) = stream_file(&self.scratch)?.keep().map_err(|e| e.error)?;
            file.write_all(&std::mem::take(&mut self.memory))?;
            self.file = Some((file, path));
        }
        match &mut self.file {
            Some((file, _)) => file.write_all(bytes),
            None => {
                self.memory.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn finish(self) -> io::Result<Captured> {
        match self.file {
            Some((mut file, path)) => {
                // Named before the flush, so that a failed flush still removes the file.
                let captured = Captured::File(path);
                file.flush()?;
                Ok(captured)
            }
            None => Ok(Captured::Memory(self.memory)),
        }
    }
}

/// A stream being copied live and captured.
#[derive(Debug)]
pub struct Tee {
    thread: JoinHandle<io::Result<Captured>>,
}

impl Tee {
    /// Makes a pipe (or a pty, when `live` is a terminal); returns the end for the command and
    /// the copier of the other end.
    pub fn start(live: Live, scratch: &Path) -> io::Result<(OwnedFd, Tee)> {
        let (read, write) = match terminal_pair(live)? {
            Some(pair) => pair,
            None => nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?,
        };
        let capture = Capture::new(scratch);
        let thread = std::thread::spawn(move || copy(File::from(read), capture, live));
        Ok((write, Tee { thread }))
    }

    /// Waits for the end of the stream; returns every byte it carried.
    pub fn finish(self) -> io::Result<Captured> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("output copier panicked")))
    }
}

/// A new pseudo-terminal pair, both ends close-on-exec.
fn open_pty() -> io::Result<nix::pty::OpenptyResult> {
    let pty = nix::pty::openpty(None, None)?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    Ok(pty)
}

/// A raw pty the size of shark's terminal, `(master, slave)`, when `live` is a terminal and
/// `SHARK_NO_PTY` is not set.
fn terminal_pair(live: Live) -> io::Result<Option<(OwnedFd, OwnedFd)>> {
    let size = match live {
        Live::Stdout if io::stdout().is_terminal() => rustix::termios::tcgetwinsize(io::stdout()),
        Live::Stderr if io::stderr().is_terminal() => rustix::termios::tcgetwinsize(io::stderr()),
        _ => return Ok(None),
    };
    if std::env::var_os("SHARK_NO_PTY").is_some() {
        return Ok(None);
    }
    let pty = open_pty()?;
    let mut termios = rustix::termios::tcgetattr(&pty.slave)?;
    termios.make_raw();
    rustix::termios::tcsetattr(&pty.slave, rustix::termios::OptionalActions::Now, &termios)?;
    if let Ok(size) = size {
        rustix::termios::tcsetwinsize(&pty.slave, size)?;
    }
    Ok(Some((pty.master, pty.slave)))
}

fn copy(mut from: File, mut to: Capture, live: Live) -> io::Result<Captured> {
    let mut buf = vec![0u8; 1 << 16];
    let mut live_ok = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A pty master reads EIO once every slave descriptor is closed: the end.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => return Err(e),
        };
        to.write(&buf[..n])?;
        // A reader that went away (`shark -c ... | head`) stops the live copy, not the record.
        if live_ok {
            live_ok = write_live(live, &buf[..n]).is_ok();
        }
    }
    to.finish()
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

/// The command's output streams (and, on a terminal, its stdin) with their copiers.
#[derive(Debug)]
pub struct Outputs {
    /// The command's stdin, when it is a pty; `None` to decide from the [`StdinPlan`].
    pub stdin: Option<OwnedFd>,
    /// The command's stdout.
    pub stdout: OwnedFd,
    /// The command's stderr.
    pub stderr: OwnedFd,
    /// What copies and records the streams; finish it after the command.
    pub copiers: Copiers,
}

/// The threads that copy the command's streams, and the terminal relay if there is one.
#[derive(Debug)]
pub struct Copiers {
    out: Tee,
    err: Tee,
    relay: Option<Relay>,
    /// The path of the command's pty, to read back what was typed and not read.
    pty: Option<PathBuf>,
}

/// What was typed on the terminal while the last command ran and that it did not read: the
/// interactive shell's next input, as a shell reads keys typed ahead.
static TYPED_AHEAD: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Takes what was typed ahead during the last command (see [`TYPED_AHEAD`]).
pub fn take_typed_ahead() -> Vec<u8> {
    TYPED_AHEAD
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .unwrap_or_default()
}

/// Reads what is waiting in the input of the pty at `path` (opened again once the command has
/// closed it), partial line included.
fn drain_pty(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let pty = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let mut termios = rustix::termios::tcgetattr(&pty)?;
    termios.local_modes -= rustix::termios::LocalModes::ICANON;
    rustix::termios::tcsetattr(&pty, rustix::termios::OptionalActions::Now, &termios)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(pty.as_fd(), &mut buf) {
            Ok(0) | Err(_) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

impl Outputs {
    /// Sets up the streams; `tty_stdin` when the command is to read shark's terminal.
    pub fn start(tty_stdin: bool, scratch: &Path) -> io::Result<Outputs> {
        if tty_stdin && io::stdout().is_terminal() && std::env::var_os("SHARK_NO_PTY").is_none() {
            if let Some(outputs) = Self::terminal(scratch)? {
                return Ok(outputs);
            }
        }
        let (stdout, out) = Tee::start(Live::Stdout, scratch)?;
        let (stderr, err) = Tee::start(Live::Stderr, scratch)?;
        Ok(Outputs {
            stdin: None,
            stdout,
            stderr,
            copiers: Copiers {
                out,
                err,
                relay: None,
                pty: None,
            },
        })
    }

    /// One pty for all three streams, relayed to and from the real terminal.
    fn terminal(scratch: &Path) -> io::Result<Option<Outputs>> {
        let stdin = io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return Ok(None);
        };
        let pty = open_pty()?;
        rustix::termios::tcsetattr(&pty.slave, rustix::termios::OptionalActions::Now, &saved)?;
        if let Ok(size) = rustix::termios::tcgetwinsize(io::stdout()) {
            rustix::termios::tcsetwinsize(&pty.slave, size)?;
        }
        let (stderr_pipe, err) = Tee::start(Live::Stderr, scratch)?;
        drop(stderr_pipe); // stderr goes to the pty: the recorded stderr is empty.
        let out = Tee::from_fd(pty.master.try_clone()?, Live::Stdout, scratch)?;
        let path = nix::unistd::ttyname(&pty.slave).ok();
        let relay = Relay::start(pty.master, saved)?;
        Ok(Some(Outputs {
            stdin: Some(pty.slave.try_clone()?),
            stdout: pty.slave.try_clone()?,
            stderr: pty.slave,
            copiers: Copiers {
                out,
                err,
                relay: Some(relay),
                pty: path,
            },
        }))
    }
}

impl Copiers {
    /// Waits for the end of both streams, stops the relay and gives the terminal back; returns
    /// what was captured of stdout and stderr. What was typed and not read is kept for
    /// [`take_typed_ahead`].
    pub fn finish(self) -> io::Result<(Captured, Captured)> {
        let out = self.out.finish();
        // Before the relay goes: its end of the pty keeps the pty, and what waits in it, alive.
        if let Some(path) = &self.pty {
            let typed = drain_pty(path).unwrap_or_default();
            if let Ok(mut t) = TYPED_AHEAD.lock() {
                *t = typed;
            }
        }
        if let Some(relay) = self.relay {
            relay.stop();
        }
        Ok((out?, self.err.finish()?))
    }
}

impl Tee {
    /// Copies an existing descriptor (a pty master) live and captures it.
    fn from_fd(read: OwnedFd, live: Live, scratch: &Path) -> io::Result<Tee> {
        let capture = Capture::new(scratch);
        let thread = std::thread::spawn(move || copy(File::from(read), capture, live));
        Ok(Tee { thread })
    }
}

/// Forwards the real terminal's keys to a pty while a command runs, and its size changes.
#[derive(Debug)]
struct Relay {
    stop: OwnedFd,
    thread: JoinHandle<()>,
    saved: rustix::termios::Termios,
}

impl Relay {
    /// Puts the real terminal in raw mode, keeping signal keys, and starts forwarding.
    fn start(master: OwnedFd, saved: rustix::termios::Termios) -> io::Result<Relay> {
        let mut raw = saved.clone();
        raw.make_raw();
        raw.local_modes |= rustix::termios::LocalModes::ISIG;
        rustix::termios::tcsetattr(io::stdin(), rustix::termios::OptionalActions::Drain, &raw)?;
        let (stop_read, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let thread = std::thread::spawn(move || forward(&master, &stop_read));
        Ok(Relay {
            stop,
            thread,
            saved,
        })
    }

    fn stop(self) {
        let _ = nix::unistd::write(&self.stop, b"x");
        let _ = self.thread.join();
        let _ = rustix::termios::tcsetattr(
            io::stdin(),
            rustix::termios::OptionalActions::Drain,
            &self.saved,
        );
    }
}

/// The relay loop: keys to the pty (dropped when the command does not take them), and the
/// terminal's size to the pty, with a SIGWINCH to the foreground group so the command notices.
fn forward(master: &OwnedFd, stop: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let stdin = io::stdin();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        if poll(&mut fds, PollTimeout::from(200u16)).is_err() {
            continue;
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if ready(&fds[1]) {
            return;
        }
        resize(master);
        if !ready(&fds[0]) {
            continue;
        }
        let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = [PollFd::new(master.as_fd(), PollFlags::POLLOUT)];
        if poll(&mut out, PollTimeout::ZERO).is_ok_and(|n| n > 0) {
            let _ = nix::unistd::write(master, &buf[..n]);
        }
    }
}

/// Gives the pty the real terminal's size when it changed.
fn resize(master: &OwnedFd) {
    let (Ok(real), Ok(pty)) = (
        rustix::termios::tcgetwinsize(io::stdout()),
        rustix::termios::tcgetwinsize(master),
    ) else {
        return;
    };
    if (real.ws_row, real.ws_col) != (pty.ws_row, pty.ws_col)
        && rustix::termios::tcsetwinsize(master, real).is_ok()
    {
        // The pty is nobody's controlling terminal, so the kernel signals no one.
        let _ = nix::sys::signal::killpg(nix::unistd::getpgrp(), nix::sys::signal::SIGWINCH);
    }
}

/// A capture file in the scratch directory, named after this process so that files left by
/// a killed shark can be recognised and swept (see `Executor::open`).
fn stream_file(scratch: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".shark-stream-{}-", std::process::id()))
        .tempfile_in(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_stays_in_memory_and_large_output_spills_to_a_removed_file() {
        let scratch = tempfile::tempdir().unwrap();
        let mut small = Capture::new(scratch.path());
        small.write(b"hello\n").unwrap();
        assert!(matches!(&small.finish().unwrap(), Captured::Memory(b) if b == b"hello\n"));
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);

        let chunk = vec![7u8; 300_000];
        let mut large = Capture::new(scratch.path());
        for _ in 0..4 {
            large.write(&chunk).unwrap();
        }
        let captured = large.finish().unwrap();
        let Captured::File(path) = &captured else {
            panic!("1.2 MB kept in memory");
        };
        assert_eq!(std::fs::read(path).unwrap(), chunk.repeat(4));
        let path = path.clone();
        drop(captured);
        assert!(!path.exists(), "the capture file outlived its capture");
    }
}
