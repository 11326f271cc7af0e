//! STS's `AssumeRole`, as a profile's role chain calls it: SigV4-signed for
//! `sts` with a session the stand-in issued (the previous hop's, token and
//! signature checked), and admitted only when the target role's trust
//! names the caller's role as `Principal` `AWS` (and, when the trust says
//! so, the `sts:ExternalId`). Refusals carry STS's verbatim message.

use std::collections::HashMap;

use super::{error, FakeAws, SECRET_PREFIX, SESSION_TOKEN_PREFIX};
use crate::clock::{now, rfc3339};
use crate::http::{response, Req, Resp};

/// Who a role's trust admits for `sts:AssumeRole`: role ARNs, each with
/// the external ID its statement requires, if any.
pub(super) type RoleTrust = HashMap<String, Vec<(String, Option<String>)>>;

impl FakeAws {
    /// `role_arn`'s trust policy admits `principal_role_arn` (`Principal`
    /// `AWS`) for `sts:AssumeRole`, with `sts:ExternalId` equal to
    /// `external_id` when given.
    pub fn trust_role(&self, role_arn: &str, principal_role_arn: &str, external_id: Option<&str>) {
        self.state
            .lock()
            .unwrap()
            .role_trust
            .entry(role_arn.into())
            .or_default()
            .push((principal_role_arn.into(), external_id.map(str::to_owned)));
    }

    /// Every AssumeRole call is throttled (`Throttling`, "Rate exceeded"),
    /// as STS throttles a busy account.
    pub fn throttle_assume_role(&self) {
        self.state.lock().unwrap().assume_role_throttled = true;
    }

    /// AssumeRole calls, irsa-doctor's and the default chain's together.
    pub fn assume_role_calls(&self) -> u64 {
        self.state.lock().unwrap().assume_role_calls
    }

    pub(super) fn assume_role(&self, req: &Req, form: &HashMap<String, String>) -> Resp {
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let (role_arn, session) = (get("RoleArn"), get("RoleSessionName"));
        {
            let mut s = self.state.lock().unwrap();
            s.assume_role_calls += 1;
            if s.assume_role_throttled {
                return error(400, "Throttling", "Rate exceeded");
            }
        }
        let caller = match self.signed_by_a_session(req, "sts") {
            Ok(caller) => caller,
            Err(resp) => return *resp,
        };
        let Some(account) = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.get(..12))
            .map(str::to_owned)
        else {
            return error(400, "ValidationError", "Request ARN is invalid");
        };
        // An assumed-role session acts for its role, which a trust policy
        // names by its ARN (path included); the session's ARN has no path,
        // so the account and the role's name decide, as IAM's unique role
        // ID would.
        let caller_role = caller
            .strip_prefix("arn:aws:sts::")
            .and_then(|rest| rest.split_once(":assumed-role/"))
            .and_then(|(acct, rest)| Some((acct.to_owned(), rest.split('/').next()?.to_owned())))
            .unwrap_or_default();
        let names_caller = |principal: &str| {
            principal.split(':').nth(4) == Some(caller_role.0.as_str())
                && principal.rsplit('/').next() == Some(caller_role.1.as_str())
                && principal.contains(":role/")
        };
        let external_id = form.get("ExternalId").cloned();
        let admitted = self
            .state
            .lock()
            .unwrap()
            .role_trust
            .get(&role_arn)
            .is_some_and(|trust| {
                trust.iter().any(|(principal, wanted)| {
                    names_caller(principal) && (wanted.is_none() || *wanted == external_id)
                })
            });
        if !admitted {
            return error(
                403,
                "AccessDenied",
                &format!(
                    "User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                ),
            );
        }
        let name = role_arn.rsplit('/').next().unwrap_or_default();
        let assumed = format!("arn:aws:sts::{account}:assumed-role/{name}/{session}");
        let key = self.issue_key(&assumed);
        self.state
            .lock()
            .unwrap()
            .session_names
            .push(session.clone());
        let expiration = rfc3339(now() + 3600);
        let body = format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>{assumed}</Arn>
      <AssumedRoleId>AROAEXAMPLEHOP:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{SESSION_TOKEN_PREFIX}{key}</SessionToken>
      <SecretAccessKey>{SECRET_PREFIX}{key}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{key}</AccessKeyId>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>req-assume-role-0001</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
        );
        response(200, "text/xml", body)
    }

    /// The principal of a request signed for `service` (`sts`, `iam`) with
    /// a session the stand-in issued: its key, its session token and its
    /// signature must agree; else the service's refusal.
    pub(super) fn signed_by_a_session(
        &self,
        req: &Req,
        service: &str,
    ) -> Result<String, Box<Resp>> {
        let invalid = || {
            error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        };
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !auth.contains(&format!("/{service}/aws4_request")) {
            return Err(Box::new(invalid()));
        }
        let key = crate::sigv4::access_key_id(req).unwrap_or("").to_owned();
        let caller = self.state.lock().unwrap().keys.get(&key).cloned();
        let Some(caller) = caller else {
            return Err(Box::new(invalid()));
        };
        let token = req.headers.get("x-amz-security-token");
        let want = format!("{SESSION_TOKEN_PREFIX}{key}");
        if token.is_none_or(|t| t.as_bytes() != want.as_bytes()) {
            return Err(Box::new(invalid()));
        }
        if !crate::sigv4::verify(req, &format!("{SECRET_PREFIX}{key}")) {
            return Err(Box::new(error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )));
        }
        Ok(caller)
    }
}
