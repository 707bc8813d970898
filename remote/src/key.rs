//! The two keys of the two-phase lookup, as REAPI Action digests.
//!
//! - The **weak key** names the command: its portable argv and environment and the
//!   conditions it ran under (network, how stdin and the terminal were given, uid, gid,
//!   umask, writable roots, how the machine's locations nest). It is the digest of an
//!   `Action` whose `Command` carries the arguments and environment variables and whose
//!   `platform` properties carry the conditions, with the salt `shark-weak-v1`. Its Action Cache entry lists the
//!   path-sets recorded for the command ([`crate::PathSets`]).
//! - The **strong key** names one path-set with the state of its paths: the digest of an
//!   `Action` with the same `Command` whose input root digest is the hash of the path-set
//!   and of the observed values of its paths, salt `shark-strong-v1`. Its entry holds the
//!   result: outputs, streams, exit status, and the run's description.
//!
//! Neither Action nor Command is uploaded: the Action Cache only needs their digests, and
//! the command's description travels in the result.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;

use crate::digest::{DigestKind, RemoteDigest};

/// Bumped when the meaning of a shared entry changes, so old entries are never matched.
const WEAK_SALT: &[u8] = b"shark-weak-v1";
const STRONG_SALT: &[u8] = b"shark-strong-v1";

/// A command in portable form (see [`crate::portable`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WeakKey {
    /// The argv.
    pub argv: Vec<String>,
    /// The environment, volatile variables left out, sorted by name.
    pub env: Vec<(String, String)>,
    /// The conditions, sorted by name: `network`, `stdin`, `stdout-tty`, `uid`, ...
    pub properties: Vec<(String, String)>,
}

impl WeakKey {
    /// The `Command` message this key stands for.
    pub fn command(&self) -> re::Command {
        re::Command {
            arguments: self.argv.clone(),
            environment_variables: self
                .env
                .iter()
                .map(|(name, value)| re::command::EnvironmentVariable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The `Platform` message of the conditions (carried by the `Action`).
    pub fn platform(&self) -> re::Platform {
        re::Platform {
            properties: self
                .properties
                .iter()
                .map(|(name, value)| re::platform::Property {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }

    /// The weak key's Action digest under `kind`.
    pub fn action(&self, kind: DigestKind) -> RemoteDigest {
        action_digest(kind, self, &kind.of_bytes(b""), WEAK_SALT)
    }

    /// The strong key: this command with `observed`, the hash of a path-set and the values
    /// its paths hold (see [`crate::PathSet::observed`]).
    pub fn strong_action(&self, kind: DigestKind, observed: &RemoteDigest) -> RemoteDigest {
        action_digest(kind, self, observed, STRONG_SALT)
    }
}

fn action_digest(
    kind: DigestKind,
    key: &WeakKey,
    root: &RemoteDigest,
    salt: &[u8],
) -> RemoteDigest {
    let command_digest = kind.of_bytes(&key.command().encode_to_vec());
    let action = re::Action {
        command_digest: Some(command_digest.proto()),
        input_root_digest: Some(root.proto()),
        salt: salt.to_vec(),
        platform: Some(key.platform()),
        ..Default::default()
    };
    kind.of_bytes(&action.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> WeakKey {
        WeakKey {
            argv: vec!["bash".into(), "-c".into(), "wc -l \u{1}c/in".into()],
            env: vec![
                ("HOME".into(), "\u{1}h".into()),
                ("LANG".into(), "C".into()),
            ],
            properties: vec![
                ("network".into(), "off".into()),
                ("uid".into(), "1000".into()),
            ],
        }
    }

    #[test]
    fn every_part_of_the_command_changes_the_keys() {
        let k = key();
        let weak = k.action(DigestKind::Sha256);
        let observed = DigestKind::Sha256.of_bytes(b"values");
        let strong = k.strong_action(DigestKind::Sha256, &observed);
        assert_ne!(weak, strong);
        assert_eq!(k.action(DigestKind::Sha256), weak, "deterministic");
        let mut other = k.clone();
        other.argv[2].push(' ');
        assert_ne!(other.action(DigestKind::Sha256), weak);
        let mut other = k.clone();
        other.env[1].1 = "C.UTF-8".into();
        assert_ne!(other.action(DigestKind::Sha256), weak);
        let mut other = k.clone();
        other.properties[1].1 = "1001".into();
        assert_ne!(other.action(DigestKind::Sha256), weak);
        let other_values = DigestKind::Sha256.of_bytes(b"other values");
        assert_ne!(k.strong_action(DigestKind::Sha256, &other_values), strong);
        assert_ne!(k.action(DigestKind::Blake3).hash, weak.hash);
    }
}
