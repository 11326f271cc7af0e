//! `AWS_CA_BUNDLE`: the extra CA certificates that botocore (boto3, the AWS
//! CLI) and the AWS SDKs for Go, Java and JavaScript trust for their calls
//! to AWS. The AWS SDK for Rust ignores the variable
//! (awslabs/aws-sdk-rust#1362); irsa-doctor honours it, adding the bundle to
//! the system's roots, so that a pod behind a TLS-inspecting proxy is
//! judged as its app reaches AWS.
//!
//! The bundle is read here within bounds and parsed the way the HTTPS
//! client will parse it: aws-smithy-http-client's rustls provider panics on
//! a PEM block it cannot decode or a certificate rustls refuses, and the
//! release build aborts on a panic. A [`CaBundle`] exists only for a bundle
//! that passed, and the TLS context it holds is the only one irsa-doctor
//! gives the client with certificates of its own.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_smithy_http_client::tls::{TlsContext, TrustStore};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::guard::files::{read_bounded, ReadProblem};
use crate::report::{Code, Finding};

/// The variable, as the other SDKs spell it.
pub const VAR: &str = "AWS_CA_BUNDLE";

/// The most of the bundle read. Debian's whole system bundle, some 140
/// CAs, is about 220 KiB; a corporate bundle adds a few. 4 MiB is many
/// times any real one, and still a bounded cost.
pub const MAX_CA_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

/// A bundle that was read and whose every certificate rustls accepted.
#[derive(Clone)]
pub struct CaBundle {
    path: PathBuf,
    certificates: usize,
    context: TlsContext,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("path", &self.path)
            .field("certificates", &self.certificates)
            .finish()
    }
}

/// Why a bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Missing, unreadable, not a regular file, or too large.
    Unreadable(ReadProblem),
    /// A `CERTIFICATE` block that is not valid PEM (1-based).
    NotPem { index: usize, reason: String },
    /// A certificate rustls does not accept as a trust anchor (1-based).
    Refused { index: usize, reason: String },
    /// No `CERTIFICATE` block at all.
    Empty,
}

impl Invalid {
    /// One lowercase phrase, for messages.
    pub fn describe(&self) -> String {
        match self {
            Invalid::Unreadable(problem) => problem.describe(),
            Invalid::NotPem { index, reason } => {
                format!("certificate {index} is not valid PEM ({reason})")
            }
            Invalid::Refused { index, reason } => {
                format!("certificate {index} is not a certificate rustls can trust ({reason})")
            }
            Invalid::Empty => {
                "it holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)".to_owned()
            }
        }
    }
}

impl CaBundle {
    /// Reads the bundle at `path` within [`MAX_CA_BUNDLE_BYTES`], without
    /// blocking on what the path names, and proves that the HTTPS client
    /// can load every certificate in it.
    pub fn read(path: &Path) -> Result<Self, Invalid> {
        let pem = read_bounded(path, MAX_CA_BUNDLE_BYTES).map_err(Invalid::Unreadable)?;
        let certificates = parse(&pem)?;
        // The system's roots stay: the bundle is added to them.
        let store = TrustStore::default().with_pem_certificate(pem);
        let context = TlsContext::builder()
            .with_trust_store(store)
            .build()
            .map_err(|e| Invalid::Refused {
                index: 0,
                reason: e.to_string(),
            })?;
        Ok(CaBundle {
            path: path.to_owned(),
            certificates,
            context,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many certificates the bundle adds.
    pub fn certificates(&self) -> usize {
        self.certificates
    }

    /// The TLS context for the HTTPS client: the system's roots and the
    /// bundle's certificates.
    pub fn tls_context(&self) -> TlsContext {
        self.context.clone()
    }
}

/// Counts the bundle's certificates, parsing each exactly as
/// aws-smithy-http-client's rustls provider will (`rustls_root_certs`):
/// every `CERTIFICATE` block decoded, and each added to a root store.
fn parse(pem: &[u8]) -> Result<usize, Invalid> {
    let mut roots = rustls::RootCertStore::empty();
    for (at, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let index = at + 1;
        let cert = cert.map_err(|e| Invalid::NotPem {
            index,
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| Invalid::Refused {
            index,
            reason: e.to_string(),
        })?;
    }
    match roots.len() {
        0 => Err(Invalid::Empty),
        n => Ok(n),
    }
}

/// `CA_BUNDLE_INVALID`: `AWS_CA_BUNDLE` names `path`, which cannot be used.
pub fn invalid(path: &str, problem: &Invalid) -> Finding {
    let problem = problem.describe();
    Finding::error(
        Code::CaBundleInvalid,
        format!(
            "{VAR} names {path}, which cannot be used: {problem}; botocore, the AWS CLI and \
             the AWS SDKs for Go, Java and JavaScript fail their calls to AWS with it"
        ),
        format!(
            "Point {VAR} at a readable PEM file of CA certificates (-----BEGIN CERTIFICATE----- \
             blocks, at most {MAX_CA_BUNDLE_BYTES} bytes), such as the TLS-inspecting proxy's \
             CA, or unset it. `openssl x509 -in <file> -noout -subject` shows the first \
             certificate. irsa-doctor sent nothing."
        ),
    )
    .expected("a readable PEM file of at least one CA certificate")
    .found(format!("{path}: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A throwaway CA's certificate, in PEM.
    fn ca() -> String {
        testkit::test_ca_and_acceptor().0
    }

    #[test]
    fn a_bundle_of_certificates_is_read_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let two = format!("{}\n# text between blocks is skipped\n{}", ca(), ca());
        let bundle = CaBundle::read(&write(&dir, "bundle.pem", two.as_bytes())).unwrap();
        assert_eq!(bundle.certificates(), 2);
        assert!(format!("{bundle:?}").contains("bundle.pem"));
    }

    #[test]
    fn every_unusable_bundle_is_refused_before_the_client_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        // A FIFO without a writer: opening it to read would block.
        let fifo = dir.path().join("fifo");
        testkit::mkfifo(&fifo);
        let cases: [(PathBuf, &str); 7] = [
            (dir.path().join("missing.pem"), "does not exist"),
            (write(&dir, "empty.pem", b""), "no PEM certificate"),
            (
                write(&dir, "text.pem", b"not a certificate\n"),
                "no PEM certificate",
            ),
            (
                write(&dir, "garbage.pem", garbage.as_bytes()),
                "certificate 1 is not a certificate rustls can trust",
            ),
            (
                write(&dir, "cut.pem", format!("{ca}{unterminated}").as_bytes()),
                "certificate 2 is not valid PEM",
            ),
            (PathBuf::from("/dev/zero"), "character device"),
            (fifo, "FIFO"),
        ];
        for (path, want) in cases {
            let problem = CaBundle::read(&path).unwrap_err().describe();
            assert!(problem.contains(want), "{}: {problem}", path.display());
        }
    }

    #[test]
    fn the_finding_names_the_variable_the_file_and_the_problem() {
        let f = invalid("/etc/proxy-ca.pem", &Invalid::Empty);
        assert_eq!(f.code, Code::CaBundleInvalid);
        assert!(
            f.message
                .starts_with("AWS_CA_BUNDLE names /etc/proxy-ca.pem, which cannot be used"),
            "{}",
            f.message
        );
        assert!(
            f.remedy.contains("irsa-doctor sent nothing"),
            "{}",
            f.remedy
        );
        assert_eq!(
            f.found.as_deref(),
            Some("/etc/proxy-ca.pem: it holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)")
        );
    }
}
