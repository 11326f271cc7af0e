//! Token builders: kubelet-like JWTs and projected-volume directories
//! (`token -> ..data/token`, `..data -> ..<timestamp>`), swapped the way the
//! kubelet swaps them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::clock::now;
use crate::world::{ISSUER, NAMESPACE, POD_IDENTITY_AUDIENCE, SERVICE_ACCOUNT, STS_AUDIENCE};

/// The signature every built token carries: the secret part, which must
/// never show up in any output.
pub const SIGNATURE: &str = "c2VjcmV0LXNpZ25hdHVyZS1uZXZlci1sb2ctbWU";

/// A JWT shaped like the kubelet's projected service-account token.
#[derive(Clone)]
pub struct Jwt {
    pub claims: Value,
}

impl Jwt {
    /// The IRSA token: audience `sts.amazonaws.com`.
    pub fn for_sa(namespace: &str, sa: &str) -> Self {
        Self::projected(namespace, sa, STS_AUDIENCE)
    }

    /// The EKS Pod Identity token (the volume `eks-pod-identity-token`):
    /// audience `pods.eks.amazonaws.com`, same issuer and claims.
    pub fn for_pod_identity(namespace: &str, sa: &str) -> Self {
        Self::projected(namespace, sa, POD_IDENTITY_AUDIENCE)
    }

    fn projected(namespace: &str, sa: &str, audience: &str) -> Self {
        let now = now();
        Jwt {
            claims: json!({
                "aud": [audience],
                "exp": now + 86_400,
                "iat": now,
                "nbf": now,
                "iss": ISSUER,
                "sub": format!("system:serviceaccount:{namespace}:{sa}"),
                "kubernetes.io": {
                    "namespace": namespace,
                    "pod": {"name": "app-7d9f8c-x2x4q", "uid": "0d4b0f54-1b3c-4d8e-9f6a-1234567890ab"},
                    "serviceaccount": {"name": sa, "uid": "a1b2c3d4-0000-1111-2222-333344445555"},
                    "node": {"name": "ip-10-0-1-23.ec2.internal", "uid": "n"}
                }
            }),
        }
    }

    pub fn set(mut self, claim: &str, value: Value) -> Self {
        self.claims[claim] = value;
        self
    }

    pub fn without(mut self, claim: &str) -> Self {
        self.claims.as_object_mut().unwrap().remove(claim);
        self
    }

    pub fn encode(&self) -> String {
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.{SIGNATURE}",
            b64(&json!({"alg": "RS256", "kid": "test-key"})),
            b64(&self.claims)
        )
    }
}

/// A directory laid out like the kubelet's projected token volume.
pub struct TokenVolume {
    pub dir: tempfile::TempDir,
    /// The token file's name: `token` (IRSA) or `eks-pod-identity-token`.
    name: &'static str,
    generation: u32,
}

impl TokenVolume {
    /// The IRSA volume: the file is `token`.
    pub fn new(contents: &str) -> Self {
        Self::named("token", contents)
    }

    /// The Pod Identity volume: the file is `eks-pod-identity-token`, as
    /// the webhook names it.
    pub fn pod_identity(contents: &str) -> Self {
        Self::named("eks-pod-identity-token", contents)
    }

    fn named(name: &'static str, contents: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vol = TokenVolume {
            dir,
            name,
            generation: 0,
        };
        vol.rotate(contents);
        std::os::unix::fs::symlink(format!("..data/{name}"), vol.path()).unwrap();
        vol
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(self.name)
    }

    /// Writes a new timestamped directory and swaps `..data` to it
    /// atomically (symlink beside, then rename over), as the kubelet does.
    pub fn rotate(&mut self, contents: &str) {
        self.generation += 1;
        let root = self.dir.path();
        let data = format!("..2026_11_28_17_00_00.{:04}", self.generation);
        std::fs::create_dir(root.join(&data)).unwrap();
        std::fs::write(root.join(&data).join(self.name), contents).unwrap();
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(&data, &tmp).unwrap();
        std::fs::rename(&tmp, root.join("..data")).unwrap();
    }

    /// Removes the directory `..data` points to, leaving it dangling.
    pub fn break_data_link(&self) {
        let root = self.dir.path();
        let target = std::fs::read_link(root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join(target)).unwrap();
    }

    pub fn data_file(&self) -> PathBuf {
        let root: &Path = self.dir.path();
        root.join(std::fs::read_link(root.join("..data")).unwrap())
            .join(self.name)
    }
}

/// The token of the stand-in's pod (`payments/app`), which its role trusts.
pub fn good_token() -> String {
    Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode()
}

/// A token of the same namespace's `batch-job`, which the role's trust
/// policy does not admit.
pub fn other_sa_token() -> String {
    Jwt::for_sa(NAMESPACE, "batch-job").encode()
}
