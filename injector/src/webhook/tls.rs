//! The serving certificate, re-read when its files change. cert-manager
//! rotates a Secret volume by swapping the `..data` symlink the two files
//! point through, so each new handshake compares the files' metadata
//! (device, inode, modification time, length, symlinks resolved) with what
//! was seen last: two `stat` calls, no read, while nothing changes. A
//! failed reload (a key that does not parse, or does not match the
//! certificate: the two files caught mid-rotation) keeps the certificate
//! in use, logs it and counts it; the next change is tried again.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Metrics;

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("{0} holds no PEM private key")]
    NoKey(String),
    #[error("the key in {0} cannot sign")]
    BadKey(String),
    #[error("the key in {key} does not match the certificate in {cert}")]
    Mismatch { cert: String, key: String },
}

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    // metadata() follows symlinks: the stamp is the target's, which is
    // what changes when `..data` is swapped.
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
        len: m.len(),
    })
}

struct Current {
    /// The stamps of the last attempt, successful or not.
    seen: (Option<Stamp>, Option<Stamp>),
    key: Arc<CertifiedKey>,
}

/// A [`ResolvesServerCert`] that follows its files.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    metrics: Arc<Metrics>,
    current: Mutex<Current>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair once; an error here is a startup error.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
        metrics: Arc<Metrics>,
    ) -> Result<ReloadingCert, CertError> {
        let seen = (stamp(cert_path), stamp(key_path));
        let key = load_pair(cert_path, key_path, &provider)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            metrics,
            current: Mutex::new(Current {
                seen,
                key: Arc::new(key),
            }),
        })
    }

    /// The certificate for the next handshake, reloaded first if the files
    /// changed since the last look.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        // A poisoned lock only means a panic elsewhere while holding it;
        // the value inside is still a whole certificate.
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != current.seen {
            current.seen = now;
            match load_pair(&self.cert_path, &self.key_path, &self.provider) {
                Ok(key) => {
                    current.key = Arc::new(key);
                    self.metrics.tls_reload(true);
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                }
                Err(error) => {
                    self.metrics.tls_reload(false);
                    tracing::error!(%error, "serving certificate not reloaded; keeping the previous one");
                }
            }
        }
        current.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let shown = |p: &Path| p.display().to_string();
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| CertError::Read {
            path: shown(p),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate(shown(cert_path)));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| CertError::NoKey(shown(key_path)))?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| CertError::BadKey(shown(key_path)))?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(|_| CertError::Mismatch {
        cert: shown(cert_path),
        key: shown(key_path),
    })?;
    Ok(certified)
}
