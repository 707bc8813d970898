//! This machine's side of the remote cache: observing a path-set's paths, the portable form
//! of a shell state, and progress on the terminal.

use std::io::IsTerminal;

use shark_lineage::{AsLeft, Input, InputKind};
use shark_remote::shared::Look;
use shark_remote::{Locations, PathEntry, Probe};
use shark_store::{Digest, StatCache};

use crate::exec::inputs;

/// Observes a path-set's paths as `inputs::check` compares them.
pub(super) struct LocalProbe<'a> {
    pub(super) cache: &'a StatCache,
    pub(super) stdin: Option<Digest>,
}

impl Probe for LocalProbe<'_> {
    fn observe(&mut self, entry: &PathEntry, path: &str) -> Input {
        let kind = match entry.look {
            Look::Stdin => InputKind::Stdin,
            Look::Symlink => InputKind::Symlink,
            Look::NotDir => InputKind::NotDir,
            Look::Xattrs => InputKind::Xattrs,
            Look::Listing => InputKind::Dir,
            // What is there, whatever it is: `inputs::now_as` looks.
            Look::Path => InputKind::File,
        };
        let template = Input {
            path: path.to_owned(),
            kind,
            // A listing is asked for by a digest being present.
            digest: (entry.look == Look::Listing).then(|| Digest::of_bytes(b"")),
            mode: entry.mode.then_some(0),
            exclude: entry.exclude.clone(),
            as_left: AsLeft::No,
        };
        inputs::now_as(&template, self.cache, self.stdin.as_ref())
    }
}

/// The portable form of a shell state blob (`crate::exec::encode_state`'s format): its script and
/// environment each in portable form. Format: a header, the portable script's length (8
/// bytes, little-endian), the portable script, the portable environment.
pub(super) fn portable_state(blob: &[u8], locs: &Locations) -> Option<Vec<u8>> {
    let (script, env) = split_state(blob)?;
    let (script, env) = (locs.encode(script), locs.encode(env));
    let mut out = PORTABLE_STATE.to_vec();
    out.extend_from_slice(&(script.len() as u64).to_le_bytes());
    out.extend_from_slice(&script);
    out.extend_from_slice(&env);
    Some(out)
}

/// The shell state blob a portable one stands for on this machine.
pub(super) fn local_state(portable: &[u8], locs: &Locations) -> Option<Vec<u8>> {
    let rest = portable.strip_prefix(PORTABLE_STATE)?;
    let (script, env) = split_len(rest)?;
    Some(crate::exec::encode_state(
        &locs.decode(script)?,
        &locs.decode(env)?,
    ))
}

const PORTABLE_STATE: &[u8] = b"shark-portable-shell-state-v1\n";

fn split_state(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    split_len(blob.strip_prefix(crate::exec::STATE_MAGIC)?)
}

fn split_len(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// Shows how a large transfer advances, on a terminal only.
pub(super) fn progress(what: &str, size: u64) -> Box<dyn shark_remote::Progress> {
    const SHOW_FROM: u64 = 16 << 20;
    if size < SHOW_FROM || !std::io::stderr().is_terminal() {
        return Box::new(shark_remote::Quiet);
    }
    Box::new(Meter {
        what: what.to_owned(),
        shown: u64::MAX,
    })
}

struct Meter {
    what: String,
    shown: u64,
}

impl shark_remote::Progress for Meter {
    fn advance(&mut self, done: u64, total: u64) {
        let percent = done * 100 / total.max(1);
        if percent == self.shown {
            return;
        }
        self.shown = percent;
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        eprint!(
            "\rshark: {} {:.0} of {:.0} MiB ({percent}%)",
            self.what,
            mib(done),
            mib(total)
        );
        if done >= total {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn shell_states_travel_in_portable_form() {
        let here = Locations::new(
            Path::new("/home/ann/p"),
            Some(Path::new("/home/ann")),
            None,
            None,
        );
        let there = Locations::new(Path::new("/u/bob/p"), Some(Path::new("/u/bob")), None, None);
        let blob = crate::exec::encode_state(
            b"declare -- X=\"/home/ann/p/x\"\n#cwd /home/ann/p\n",
            b"HOME=/home/ann\0",
        );
        let portable = portable_state(&blob, &here).unwrap();
        assert!(!portable.windows(9).any(|w| w == b"/home/ann"));
        let back = local_state(&portable, &there).unwrap();
        let state = crate::exec::decode_state(&back).unwrap();
        assert_eq!(state.cwd, Path::new("/u/bob/p"));
        assert!(state.script.contains("X=\"/u/bob/p/x\""));
        assert_eq!(local_state(&portable, &here).unwrap(), blob);
        assert!(portable_state(b"not a state", &here).is_none());
    }
}
