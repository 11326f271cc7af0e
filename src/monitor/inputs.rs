//! What the default chain reads that can change while the container runs,
//! so that `serve` resolves the chain again only when it could land
//! elsewhere. The environment is fixed for a container's life; files are
//! not: the projected token (a kubelet rotation), the shared config and
//! credentials files, and the token files profiles name.

use std::path::PathBuf;

use super::rotation::Fingerprint;
use crate::peers::sts::Sts;

/// The chain's files as they looked at the last look.
pub(super) struct ChainInputs {
    profiles: Vec<Fingerprint>,
    tokens: Vec<Fingerprint>,
}

/// What changed since the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Changed {
    Nothing,
    /// A token file: the chain must be resolved again.
    Token,
    /// A shared config or credentials file: the configuration must be
    /// loaded again (the SDK got the files' contents at load), and the
    /// chain resolved again.
    Profile,
}

impl ChainInputs {
    /// The files of `sts`'s chain and `token_file` (the mechanism's own).
    pub(super) fn look(sts: &Sts, token_file: Option<&PathBuf>) -> Self {
        let files = sts.chain_files();
        ChainInputs {
            profiles: files.profiles.iter().map(|p| Fingerprint::of(p)).collect(),
            tokens: files
                .tokens
                .iter()
                .chain(token_file)
                .map(|p| Fingerprint::of(p))
                .collect(),
        }
    }

    /// What differs between `self` and `now`.
    pub(super) fn changed(&self, now: &ChainInputs) -> Changed {
        if self.profiles != now.profiles {
            Changed::Profile
        } else if self.tokens != now.tokens {
            Changed::Token
        } else {
            Changed::Nothing
        }
    }
}
