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

/// The portable form of a shell state blob (`crate::state::encode_blob`'s format): a header,
/// then the step's dump in portable form.
pub(super) fn portable_state(blob: &[u8], locs: &Locations) -> Option<Vec<u8>> {
    let dump = crate::state::blob_dump(blob)?;
    let mut out = PORTABLE_STATE.to_vec();
    out.extend_from_slice(&locs.encode(dump));
    Some(out)
}

/// The shell state blob a portable one stands for on this machine.
pub(super) fn local_state(portable: &[u8], locs: &Locations) -> Option<Vec<u8>> {
    let dump = portable.strip_prefix(PORTABLE_STATE)?;
    Some(crate::state::encode_blob(&locs.decode(dump)?))
}

const PORTABLE_STATE: &[u8] = b"shark-portable-shell-state-v2\n";

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
        let blob = crate::state::encode_blob(
            b"v\0X\0/home/ann/p/x\0e\0HOME\0/home/ann\0c\0\0/home/ann/p\0s\0\x000\0z\0\0\0",
        );
        let portable = portable_state(&blob, &here).unwrap();
        assert!(!portable.windows(9).any(|w| w == b"/home/ann"));
        let back = local_state(&portable, &there).unwrap();
        let state = crate::state::decode_blob(&back).unwrap();
        assert_eq!(state.cwd, Path::new("/u/bob/p"));
        assert_eq!(state.vars[&b"X"[..]], b"/u/bob/p/x");
        assert_eq!(state.env_var("HOME"), Some(std::ffi::OsStr::new("/u/bob")));
        assert_eq!(local_state(&portable, &here).unwrap(), blob);
        assert!(portable_state(b"not a state", &here).is_none());
    }
}
