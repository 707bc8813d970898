//! The weak key of a command: what must be equal before recorded inputs are even compared.
//!
//! BLAKE3 over a versioned, length-prefixed encoding of: the format version, the argv, the cwd,
//! the environment digest, the sandbox policy (network, writable roots, how stdin was given,
//! which streams are terminals), and who runs it and how files are created: the user and
//! group ids, the umask and (when any) the signals it starts with ignored. Two runs with the
//! same weak key may still differ in what they read; that is the job of the second phase (the
//! recorded inputs, checked against the filesystem).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use shark_store::Digest;

/// Bump when the meaning of a recorded run changes, so old records are never matched.
const KEY_FORMAT: &[u8] = b"shark-weak-key-v2";

/// Environment variables that change between otherwise identical invocations without
/// changing what a command computes; they are passed to the command but not keyed.
const VOLATILE_ENV: &[&str] = &[
    "_",
    "SHLVL",
    "OLDPWD",
    "SHARK_HOME",
    "SHARK_UNDO",
    "SHARK_UNDO_BYTES",
    "SHARK_SNAPSHOTS",
    // How reads are observed (the fast path or a notification per call), not what is.
    "SHARK_FAST_PATH",
    // Where results are shared changes nothing a command computes.
    "SHARK_REMOTE",
    "SHARK_REMOTE_UPLOAD",
    "SHARK_REMOTE_DOWNLOAD",
];

/// Everything that identifies a command before its inputs are looked at.
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    /// The argv run in the sandbox.
    pub argv: &'a [OsString],
    /// The working directory.
    pub cwd: &'a Path,
    /// Digest of the environment (see [`env_digest`]).
    pub env: Digest,
    /// Network allowed.
    pub network: bool,
    /// The writable roots.
    pub writable_roots: &'a [PathBuf],
    /// How stdin was given ("null", "file", "pipe", "tty").
    pub stdin_mode: &'a str,
    /// Whether stdout is a terminal: programs format differently for one (`ls` columns,
    /// colours), so the same command's output differs.
    pub stdout_tty: bool,
    /// Whether stderr is a terminal.
    pub stderr_tty: bool,
    /// Who runs it and how its new files are made: (uid, gid, umask). A file's owner and
    /// mode, `id`'s output, what a shared directory lets it write, all follow from them.
    pub identity: Identity,
}

/// The user, group and file-creation mask a command runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// The umask.
    pub umask: u32,
    /// The signals the command starts with ignored, bit `n - 1` for signal `n` (see
    /// [`shark_sandbox::inherited_ignored_signals`]): under `nohup` a hangup does not end it.
    pub ignored_signals: u64,
}

impl Identity {
    /// This process's (the umask read once, without changing it).
    pub fn current() -> Identity {
        static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let umask = *UMASK.get_or_init(read_umask);
        Identity {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            umask,
            ignored_signals: signal_mask(shark_sandbox::inherited_ignored_signals()),
        }
    }
}

/// `signals` as a bit set, bit `n - 1` for signal `n` (1 to 64).
fn signal_mask(signals: &[i32]) -> u64 {
    signals
        .iter()
        .filter(|&&s| (1..=64).contains(&s))
        .fold(0, |mask, &s| mask | 1 << (s - 1))
}

/// The process's umask from `/proc/self/status` (setting it to read it would race with other
/// threads creating files); 022 if that cannot be read.
fn read_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Hashes one field: its length then its bytes, so no two field lists encode alike.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The weak key of a command.
pub fn weak_key(p: &KeyParts<'_>) -> Digest {
    let mut h = blake3::Hasher::new();
    field(&mut h, KEY_FORMAT);
    field(&mut h, &(p.argv.len() as u64).to_le_bytes());
    for a in p.argv {
        field(&mut h, a.as_bytes());
    }
    field(&mut h, p.cwd.as_os_str().as_bytes());
    field(&mut h, p.env.as_bytes());
    field(&mut h, &[u8::from(p.network)]);
    field(&mut h, &(p.writable_roots.len() as u64).to_le_bytes());
    for r in p.writable_roots {
        field(&mut h, r.as_os_str().as_bytes());
    }
    field(&mut h, p.stdin_mode.as_bytes());
    field(&mut h, &[u8::from(p.stdout_tty), u8::from(p.stderr_tty)]);
    let id = p.identity;
    for n in [id.uid, id.gid, id.umask] {
        field(&mut h, &n.to_le_bytes());
    }
    // Only when some are: keys recorded before signals were part of them stay the same.
    if id.ignored_signals != 0 {
        field(&mut h, b"ignored-signals");
        field(&mut h, &id.ignored_signals.to_le_bytes());
    }
    Digest::from(h.finalize())
}

/// Digest of an environment: every variable but the volatile ones, sorted by name. It is the
/// BLAKE3 of [`env_blob`], which the executor stores so that a run can be replayed.
pub fn env_digest(env: &[(OsString, OsString)]) -> Digest {
    Digest::of_bytes(&env_blob(env))
}

/// The canonical encoding of an environment: a header, then each variable (volatile ones
/// left out, sorted by name) as length-prefixed name and value.
pub fn env_blob(env: &[(OsString, OsString)]) -> Vec<u8> {
    let mut vars: Vec<&(OsString, OsString)> = env
        .iter()
        .filter(|(k, _)| !VOLATILE_ENV.iter().any(|v| k.as_bytes() == v.as_bytes()))
        .collect();
    vars.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::new();
    push_field(&mut out, ENV_FORMAT);
    for (k, v) in vars {
        push_field(&mut out, k.as_bytes());
        push_field(&mut out, v.as_bytes());
    }
    out
}

/// Decodes [`env_blob`]; `None` if `blob` is not one.
pub fn decode_env(blob: &[u8]) -> Option<Vec<(OsString, OsString)>> {
    use std::os::unix::ffi::OsStringExt;
    let mut rest = blob;
    let mut next = || -> Option<Vec<u8>> {
        let (len, tail) = rest.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        if len > tail.len() {
            return None;
        }
        let (field, tail) = tail.split_at(len);
        rest = tail;
        Some(field.to_vec())
    };
    if next()? != ENV_FORMAT {
        return None;
    }
    let mut env = Vec::new();
    while let Some(k) = next() {
        let v = next()?;
        env.push((OsString::from_vec(k), OsString::from_vec(v)));
    }
    Some(env)
}

const ENV_FORMAT: &[u8] = b"shark-env-v1";

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_blob_round_trips_without_volatile_variables() {
        let env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), "/bin".into()),
            ("SHLVL".into(), "3".into()),
            ("A".into(), "x=y\0z".into()),
        ];
        let back = decode_env(&env_blob(&env)).unwrap();
        assert_eq!(
            back,
            vec![
                ("A".into(), "x=y\0z".into()),
                ("PATH".into(), "/bin".into())
            ]
        );
        assert_eq!(env_digest(&env), Digest::of_bytes(&env_blob(&env)));
        assert!(decode_env(b"garbage").is_none());
    }

    use super::*;

    fn parts<'a>(argv: &'a [OsString], roots: &'a [PathBuf]) -> KeyParts<'a> {
        KeyParts {
            argv,
            cwd: Path::new("/w"),
            env: env_digest(&[]),
            network: false,
            writable_roots: roots,
            stdin_mode: "null",
            stdout_tty: false,
            stderr_tty: false,
            identity: Identity {
                uid: 1000,
                gid: 1000,
                umask: 0o022,
                ignored_signals: 0,
            },
        }
    }

    #[test]
    fn argv_boundaries_matter() {
        let roots = [PathBuf::from("/tmp")];
        let a = [OsString::from("echo"), OsString::from("a b")];
        let b = [
            OsString::from("echo"),
            OsString::from("a"),
            OsString::from("b"),
        ];
        assert_ne!(weak_key(&parts(&a, &roots)), weak_key(&parts(&b, &roots)));
        assert_eq!(weak_key(&parts(&a, &roots)), weak_key(&parts(&a, &roots)));
    }

    #[test]
    fn every_part_changes_the_key() {
        let roots = [PathBuf::from("/tmp")];
        let argv = [OsString::from("true")];
        let base = parts(&argv, &roots);
        let k = weak_key(&base);
        let mut p = base.clone();
        p.cwd = Path::new("/x");
        assert_ne!(weak_key(&p), k);
        let mut p = base.clone();
        p.network = true;
        assert_ne!(weak_key(&p), k);
        let mut p = base.clone();
        p.stdin_mode = "tty";
        assert_ne!(weak_key(&p), k);
        let mut p = base.clone();
        p.stdout_tty = true;
        assert_ne!(weak_key(&p), k);
        let mut p = base.clone();
        p.stderr_tty = true;
        assert_ne!(weak_key(&p), k);
        let mut p = base.clone();
        p.env = env_digest(&[("A".into(), "1".into())]);
        assert_ne!(weak_key(&p), k);
        for change in [
            |i: &mut Identity| i.uid = 0,
            |i: &mut Identity| i.gid = 0,
            |i: &mut Identity| i.umask = 0o077,
            |i: &mut Identity| i.ignored_signals = 1,
        ] {
            let mut p = base.clone();
            change(&mut p.identity);
            assert_ne!(weak_key(&p), k);
        }
        let other_roots = [PathBuf::from("/var/tmp")];
        let mut p = base.clone();
        p.writable_roots = &other_roots;
        assert_ne!(weak_key(&p), k);
    }

    #[test]
    fn env_digest_ignores_order_and_volatile_vars() {
        let a = [("A".into(), "1".into()), ("B".into(), "2".into())];
        let b = [
            ("B".into(), "2".into()),
            ("_".into(), "/bin/x".into()),
            ("A".into(), "1".into()),
        ];
        assert_eq!(env_digest(&a), env_digest(&b));
        let c = [("A".into(), "1".into()), ("B".into(), "3".into())];
        assert_ne!(env_digest(&a), env_digest(&c));
    }
}

#[cfg(test)]
mod identity_tests {
    #[test]
    fn the_umask_is_read_without_changing_it() {
        let read = super::read_umask();
        let set = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(read));
        assert_eq!(set.bits(), read, "/proc/self/status agrees with umask(2)");
    }
}
