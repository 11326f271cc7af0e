//! The world every stand-in and test agrees on: one AWS account, one
//! cluster with its OIDC issuer, one pod (`payments/app`) and the role it
//! should act as. Each fixed value is declared here once, so that a
//! stand-in needs no other stand-in to know who the pod is, and the kit's
//! modules import this one instead of each other.
//!
//! Invariant: this module imports nothing from the kit.

/// The account the role, the OIDC provider and the sessions belong to.
pub const ACCOUNT: &str = "111122223333";
/// The role the pod should act as; its trust policy admits `payments/app`
/// (IRSA) and, in the healthy account, EKS Pod Identity.
pub const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/team/payments/app";
/// The pod's namespace and service account.
pub const NAMESPACE: &str = "payments";
pub const SERVICE_ACCOUNT: &str = "app";
/// The cluster's OIDC issuer, the `iss` of every token the kit builds.
pub const ISSUER: &str =
    "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
/// The IRSA token's audience, which the OIDC provider lists as a client ID.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// The EKS Pod Identity token's audience.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The cluster the Pod Identity agent runs in: part of each session name.
pub const CLUSTER: &str = "payments-prod";
/// The node's instance-profile role: what IMDS serves, and what the Pod
/// Identity agent calls EKS Auth as.
pub const NODE_ROLE: &str = "eks-node-group-role";
