//! Redaction on the way to every sink: log lines at every level and in
//! both formats, the report on stdout, the termination message, and every
//! HTTP answer of `serve`.
//!
//! irsa-doctor's own code never prints a secret, but a dependency may: a
//! typo in `AWS_ENDPOINT_URL_STS` once made aws-config log whole requests,
//! `WebIdentityToken=<the JWT>` included, at WARN. So nothing is trusted to
//! be clean. Every sink passes its text through [`redact`], which removes:
//! - every secret this process has seen: the token, each of its segments,
//!   and the secret key and session token of any credentials (registered
//!   with [`register_token`] and [`register`] where they are read);
//! - anything shaped like a JWT (`eyJ...`.`...`), registered or not;
//! - the password of every `user:password@host`, with or without a scheme,
//!   and the userinfo of every URL setting, registered in all its forms
//!   when the setting is read ([`register_url_userinfo`]);
//! - the value after `WebIdentityToken`, `X-Amz-Security-Token`,
//!   `SecretAccessKey`, `SessionToken`, `aws_secret_access_key` or
//!   `aws_session_token` followed by `=`, `:` or `>` (forms, headers, JSON,
//!   XML, INI).
//!
//! The registry is process-wide because a log line can come from any
//! thread and any crate; it keeps the most recent [`MAX_SECRETS`] secrets,
//! so `serve`, which sees new credentials every check, stays bounded.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use base64::Engine as _;

/// What a removed secret is replaced with.
pub const MASK: &str = "** redacted **";

/// Secrets shorter than this are not registered: they would match ordinary
/// words. Real tokens and keys are far longer.
pub const MIN_SECRET_LEN: usize = 8;

/// The most secrets kept; the oldest go first.
pub const MAX_SECRETS: usize = 256;

/// Names whose value is a secret, matched without regard to case.
const SECRET_KEYS: [&str; 6] = [
    "webidentitytoken",
    "x-amz-security-token",
    "secretaccesskey",
    "sessiontoken",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The registered secrets and one automaton over them, rebuilt only when
/// the set has changed (a new token or new credentials), never per line.
pub struct Secrets(RwLock<Registry>);

/// What kind of secret, which decides how long it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Set once in the environment: kept for the process's life.
    Environment,
    /// A token and its segments: the most recent [`MAX_TOKENS`] tokens.
    Token,
    /// Credentials STS or IMDS handed out: the most recent
    /// [`MAX_SECRETS`], since `serve` sees new ones every check.
    Credential,
}

/// How many tokens' worth of secrets are kept (a token and its three
/// segments each); the kubelet rotates the token a few times a day.
pub const MAX_TOKENS: usize = 16;

struct Registry {
    environment: VecDeque<String>,
    tokens: VecDeque<String>,
    credentials: VecDeque<String>,
    /// Built from the lists on the first redaction after they change, so
    /// that registering several secrets in a row costs one build.
    matcher: Option<Arc<Matcher>>,
    stale: bool,
}

impl Registry {
    fn list(&mut self, kind: Kind) -> (&mut VecDeque<String>, usize) {
        match kind {
            Kind::Environment => (&mut self.environment, MAX_SECRETS),
            Kind::Token => (&mut self.tokens, MAX_TOKENS * 4),
            Kind::Credential => (&mut self.credentials, MAX_SECRETS),
        }
    }
}

/// The process's secrets: what every sink redacts.
static GLOBAL: Secrets = Secrets::new();

/// How much of a secret's start finds it. A secret is then masked for as
/// far as the text goes on matching it, so one cut short (a message
/// truncated by whoever printed it) is masked to its cut, not missed.
const PREFIX_LEN: usize = 16;

/// Finds registered secrets, whole or cut short, by their first
/// [`PREFIX_LEN`] bytes.
struct Matcher {
    /// One pattern per distinct prefix.
    prefixes: AhoCorasick,
    /// The secrets that start with each pattern.
    secrets: Vec<Vec<String>>,
}

impl Matcher {
    fn new(all: Vec<String>) -> Option<Self> {
        let mut index: Vec<(String, Vec<String>)> = vec![];
        for secret in all {
            let mut cut = secret.len().min(PREFIX_LEN);
            while !secret.is_char_boundary(cut) {
                cut -= 1;
            }
            let prefix = secret[..cut].to_owned();
            match index.iter_mut().find(|(p, _)| *p == prefix) {
                Some((_, list)) => list.push(secret),
                None => index.push((prefix, vec![secret])),
            }
        }
        if index.is_empty() {
            return None;
        }
        // A contiguous NFA: cheap to build whenever the set changes.
        let prefixes = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(index.iter().map(|(p, _)| p))
            .ok()?;
        Some(Matcher {
            prefixes,
            secrets: index.into_iter().map(|(_, list)| list).collect(),
        })
    }

    /// `text` with every secret, or the part of one that it holds, masked;
    /// `None` when there is none.
    fn mask(&self, text: &str) -> Option<String> {
        let mut out = Masked::new(text);
        let mut at = 0;
        while let Some(found) = self
            .prefixes
            .find(aho_corasick::Input::new(text).span(at..text.len()))
        {
            let start = found.start();
            // As far as the text goes on matching the longest candidate.
            let len = self.secrets[found.pattern().as_usize()]
                .iter()
                .map(|secret| {
                    secret
                        .bytes()
                        .zip(text[start..].bytes())
                        .take_while(|(a, b)| a == b)
                        .count()
                })
                .max()
                .unwrap_or(found.len());
            let mut end = start + len.max(found.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            out.mask(start, end);
            at = end;
        }
        out.finish()
    }
}

/// The automaton for [`SECRET_KEYS`].
static PATTERNS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(SECRET_KEYS)
        .ok()
});

/// Registers a token with the process's secrets: the whole of it, and
/// each segment of a JWT.
pub fn register_token(token: &str) {
    GLOBAL.register_token(token);
}

/// Registers one secret (a secret key, a session token) of `kind` with the
/// process's secrets. Too short ones are ignored; see [`MIN_SECRET_LEN`].
pub fn register(kind: Kind, secret: &str) {
    GLOBAL.register(kind, secret);
}

/// `text` with every secret removed: the process's registered secrets and
/// everything shaped like one.
pub fn redact(text: &str) -> Cow<'_, str> {
    GLOBAL.redact(text)
}

impl Secrets {
    pub const fn new() -> Self {
        Secrets(RwLock::new(Registry {
            environment: VecDeque::new(),
            tokens: VecDeque::new(),
            credentials: VecDeque::new(),
            matcher: None,
            stale: false,
        }))
    }

    /// The token, and, when it has a JWT's three parts, each of them (a
    /// file of other text is not split: its pieces could be ordinary
    /// words).
    pub fn register_token(&self, token: &str) {
        let token = token.trim();
        let segments: Vec<&str> = token.split('.').collect();
        let mut all = vec![token];
        if segments.len() == 3 {
            all.extend(segments);
        }
        self.register_all(Kind::Token, &all);
    }

    pub fn register(&self, kind: Kind, secret: &str) {
        self.register_all(kind, &[secret]);
    }

    /// Registers several secrets; the automaton is rebuilt at the next
    /// redaction.
    fn register_all(&self, kind: Kind, secrets: &[&str]) {
        let mut registry = self.0.write().unwrap_or_else(|e| e.into_inner());
        let (list, cap) = registry.list(kind);
        let mut changed = false;
        for secret in secrets.iter().map(|s| s.trim()) {
            if secret.len() < MIN_SECRET_LEN || list.iter().any(|s| s == secret) {
                continue;
            }
            if list.len() == cap {
                list.pop_front();
            }
            list.push_back(secret.to_owned());
            changed = true;
        }
        if changed {
            registry.stale = true;
        }
    }

    /// The automaton over every registered secret, rebuilt if stale.
    fn matcher(&self) -> Option<Arc<Matcher>> {
        {
            let registry = self.0.read().unwrap_or_else(|e| e.into_inner());
            if !registry.stale {
                return registry.matcher.clone();
            }
        }
        let mut registry = self.0.write().unwrap_or_else(|e| e.into_inner());
        if registry.stale {
            let all: Vec<String> = registry
                .environment
                .iter()
                .chain(&registry.tokens)
                .chain(&registry.credentials)
                .cloned()
                .collect();
            registry.matcher = Matcher::new(all).map(Arc::new);
            registry.stale = false;
        }
        registry.matcher.clone()
    }

    /// `text` with every secret removed; borrowed when there was nothing
    /// to remove, which is the usual case and costs one pass per automaton.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        if let Some(masked) = self.matcher().and_then(|m| m.mask(text)) {
            out = Cow::Owned(masked);
        }
        if let Some(masked) = mask_jwts(&out) {
            out = Cow::Owned(masked);
        }
        if let Some(masked) = mask_key_values(&out) {
            out = Cow::Owned(masked);
        }
        if let Some(masked) = mask_url_passwords(&out) {
            out = Cow::Owned(masked);
        }
        out
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let registry = self.0.read().unwrap();
        registry.environment.len() + registry.tokens.len() + registry.credentials.len()
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets::new()
    }
}

/// Owned convenience for fields that are `String`s.
pub fn redact_string(text: String) -> String {
    match redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(masked) => masked,
    }
}

/// The longest message kept for the report and logs: a peer's (STS, the
/// agent, an issuer) or a value quoted from a trust policy.
pub const MAX_MESSAGE_CHARS: usize = 600;

/// Text made fit for a report field, a log line and a termination
/// message: whitespace runs folded to one space, at most
/// [`MAX_MESSAGE_CHARS`] characters.
///
/// Secrets are removed before the text is cut: a secret cut in half no
/// longer matches, and its first half would be left standing.
pub fn one_line(text: String) -> String {
    let text = redact_string(text);
    // Whitespace folded to one space; other control characters (a terminal
    // escape in a peer's message) replaced.
    let folded = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(|c: char| c.is_control(), "\u{fffd}");
    match folded.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}...", &folded[..end]),
        None => folded,
    }
}

/// Text with some spans masked, built only once the first span is.
struct Masked<'t> {
    text: &'t str,
    out: Option<String>,
    /// How much of `text` is in `out` already.
    copied: usize,
}

impl<'t> Masked<'t> {
    fn new(text: &'t str) -> Self {
        Masked {
            text,
            out: None,
            copied: 0,
        }
    }

    /// Masks `text[start..end]`; spans come in order and do not overlap.
    fn mask(&mut self, start: usize, end: usize) {
        let out = self.out.get_or_insert_with(String::new);
        out.push_str(&self.text[self.copied..start]);
        out.push_str(MASK);
        self.copied = end;
    }

    /// The masked text, or `None` when nothing was masked.
    fn finish(self) -> Option<String> {
        self.out.map(|mut out| {
            out.push_str(&self.text[self.copied..]);
            out
        })
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The shortest `eyJ...` run taken for a base64url-encoded JSON object.
const MIN_JWT_RUN: usize = 20;

/// Masks every JWT, whole or cut: any run of 20 or more base64url
/// characters that starts with `eyJ` (a JSON object, `{"`, encoded: a JWT's
/// header and payload both start so), with the dot-separated segments that
/// follow it. A JWT cut short by a length limit is still masked.
fn mask_jwts(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let run = |from: usize| from + bytes[from..].iter().take_while(|&&b| is_b64url(b)).count();
    let mut out = Masked::new(text);
    let mut search = 0;
    while let Some(found) = text[search..].find("eyJ") {
        let start = search + found;
        let mut end = run(start);
        // A shorter header still counts when a segment follows it.
        let dotted = bytes.get(end) == Some(&b'.') && end + 1 < run(end + 1);
        let long_enough = end - start >= MIN_JWT_RUN || (end - start >= 11 && dotted);
        // At a boundary: after a non-base64url byte, or after a
        // percent-encoded `=` or `:` (a form body, a query string).
        // Compared as bytes: the three bytes before may end a multi-byte
        // character, where a `str` slice would panic.
        let after_escape = start >= 3 && {
            let before = &bytes[start - 3..start];
            before.eq_ignore_ascii_case(b"%3D") || before.eq_ignore_ascii_case(b"%3A")
        };
        if !long_enough || (start > 0 && is_b64url(bytes[start - 1]) && !after_escape) {
            search = start + 3;
            continue;
        }
        // The payload and signature segments that follow.
        for _ in 0..2 {
            if bytes.get(end) == Some(&b'.') && run(end + 1) > end + 1 {
                end = run(end + 1);
            }
        }
        out.mask(start, end);
        search = end;
    }
    out.finish()
}

/// Masks the value after a [`SECRET_KEYS`] name and `=`, `:` or `>`, with
/// quotes, backslashes (JSON escapes) and blanks allowed around the
/// separator. A name not followed by a separator is prose ("AWS_SESSION_TOKEN
/// set in this container") and is left alone.
fn mask_key_values(text: &str) -> Option<String> {
    let patterns = PATTERNS.as_ref()?;
    let bytes = text.as_bytes();
    let is_quote = |b: u8| matches!(b, b'"' | b'\'' | b'\\' | b' ' | b'\t');
    let ends_value = |b: u8| {
        b.is_ascii_whitespace()
            || matches!(
                b,
                b'&' | b'"' | b'\'' | b'<' | b',' | b';' | b'}' | b'\\' | b')'
            )
    };
    let mut out = Masked::new(text);
    for m in patterns.find_iter(text) {
        if m.start() < out.copied {
            continue;
        }
        let mut i = m.end();
        while i < bytes.len() && is_quote(bytes[i]) {
            i += 1;
        }
        let escaped = text
            .get(i..i + 3)
            .is_some_and(|e| e.eq_ignore_ascii_case("%3D") || e.eq_ignore_ascii_case("%3A"));
        if escaped {
            i += 3;
        } else if matches!(bytes.get(i), Some(b'=' | b':' | b'>')) {
            i += 1;
        } else {
            continue;
        }
        while i < bytes.len() && is_quote(bytes[i]) {
            i += 1;
        }
        let value_start = i;
        while i < bytes.len() && !ends_value(bytes[i]) {
            i += 1;
        }
        if i == value_start || text[value_start..].starts_with(MASK) {
            continue;
        }
        out.mask(value_start, i);
    }
    out.finish()
}

/// What ends a word that may hold `user:password@host`.
fn ends_authority(c: char) -> bool {
    c.is_whitespace() || "/\\\"'<>()[]{},;=|`".contains(c)
}

/// Masks the password of every `user:password@host`, with a scheme
/// (`scheme://user:password@host`, an endpoint or proxy URL an SDK logs
/// whole) or without one: hyper-util's connection pool logs its key as
/// `("http", user:password@host:port)`. In each word, from the first `:`
/// before its last `@` to that `@`.
fn mask_url_passwords(text: &str) -> Option<String> {
    let mut out = Masked::new(text);
    let mut start = 0;
    while start < text.len() {
        let len = text[start..]
            .find(ends_authority)
            .unwrap_or(text.len() - start);
        let word = &text[start..start + len];
        // Without `//` before it, the word must end in a host and port, so
        // that `s3:GetObject@arn:aws:s3:::bucket` (a `--require` entry) is
        // not taken for a password.
        let after_slashes = text[..start].ends_with("//");
        if let Some(at) = word
            .rfind('@')
            .filter(|&at| after_slashes || is_host_port(&word[at + 1..]))
        {
            if let Some(colon) = word[..at].find(':') {
                let (from, to) = (start + colon + 1, start + at);
                if from < to && text[from..to] != *MASK {
                    out.mask(from, to);
                }
            }
        }
        // Past the word and the character that ended it.
        start += len;
        start += text[start..].chars().next().map_or(1, char::len_utf8);
    }
    out.finish()
}

/// Whether `text` is `host` or `host:port`: a name or IPv4 address, or an
/// IPv6 address in brackets (whose `[` ends a word, so it is empty here).
fn is_host_port(text: &str) -> bool {
    // Prose may follow straight on: "...@127.0.0.1:4566: closed".
    let text = text.trim_end_matches([':', '.']);
    let (host, port) = text.rsplit_once(':').unwrap_or((text, ""));
    port.bytes().all(|b| b.is_ascii_digit())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// Registers the userinfo of `url` (`scheme://user:password@host...`, or
/// `user:password@host` as proxy variables are written) with the process's
/// secrets, in every form a dependency may print it: as written, percent-
/// decoded, and as the `Basic` credentials hyper-util sends a proxy. The
/// password; or, without one, the user, which is then a token
/// (`https://TOKEN@host`). Called where a setting holding a URL is read.
pub fn register_url_userinfo(url: &str) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return;
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let secret = password.unwrap_or(user);
    let decoded = percent_decode(secret);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        percent_decode(user),
        password.map(percent_decode).unwrap_or_default()
    ));
    for form in [secret, decoded.as_str(), basic.as_str()] {
        GLOBAL.register(Kind::Environment, form);
    }
}

/// `%XX` escapes decoded, lossily; anything else as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Control characters in a log line, escaped: a dependency's message
/// that holds a line break or a terminal escape cannot forge a log line
/// or repaint a terminal. The event's own final line break stays.
fn escape_controls(text: &str) -> Cow<'_, str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if !body.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out: String = body
        .chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            c if c.is_control() && c != '\t' => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect();
    if body.len() < text.len() {
        out.push('\n');
    }
    Cow::Owned(out)
}

/// A `tracing_subscriber` writer that buffers one event and writes it,
/// redacted, to stderr when the event is done: the formatter hands over
/// a whole line, so a secret is never split across two writes.
pub struct RedactingStderr {
    buf: Vec<u8>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeRedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr { buf: Vec::new() }
    }
}

/// Makes one [`RedactingStderr`] per event.
pub struct MakeRedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        use std::io::Write as _;
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let text = redact(&text);
        let _ = std::io::stderr()
            .lock()
            .write_all(escape_controls(&text).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_token_cut_short_is_masked_to_its_cut() {
        let secrets = Secrets::new();
        let token =
            "aGVhZGVyLXNlZ21lbnQ.cGF5bG9hZC1zZWdtZW50.SIGNATURESEGMENTabcdefghijklmnop0123456789";
        secrets.register_token(token);
        let cut = &token[..token.len() - 5];
        assert_eq!(
            secrets.redact(&format!("echo: {cut}")),
            format!("echo: {MASK}")
        );
        let signature_cut = "SIGNATURESEGMENTabcdefghij";
        assert_eq!(
            secrets.redact(&format!("sig {signature_cut}!")),
            format!("sig {MASK}!")
        );
    }

    #[test]
    fn a_jwt_two_bytes_into_a_multibyte_character_is_masked_without_a_panic() {
        // Found by the agent_answer fuzz target
        // (fuzz/regressions/agent_answer/): the check for a percent-escape
        // before `eyJ` sliced the text inside the euro sign.
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let secrets = Secrets::new();
        assert_eq!(
            secrets.redact(&format!("\u{20ac}:{jwt}")),
            format!("\u{20ac}:{MASK}")
        );
        let found = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/regressions/agent_answer/redact-multibyte-before-jwt"
        ))
        .unwrap();
        // As the agent's module quoted it: lossily decoded, so `ceyJ` follows
        // a U+FFFD. Too short and glued to `c`, it is no JWT: left as it is.
        let text = String::from_utf8_lossy(&found);
        assert!(secrets.redact(&text).contains("ceyJ.s"));
    }

    #[test]
    fn only_a_jwt_is_split_into_segments() {
        let secrets = Secrets::new();
        secrets.register_token("sts.us-west-2.amazonaws.com");
        assert_eq!(secrets.redact("region us-west-2"), "region us-west-2");
        assert_eq!(secrets.redact("sts.us-west-2.amazonaws.com"), MASK);
    }

    #[test]
    fn a_registered_token_and_each_segment_are_masked() {
        let secrets = Secrets::new();
        secrets.register_token("aGVhZGVyLXNlZ21lbnQ.cGF5bG9hZC1zZWdtZW50.c2lnbmF0dXJlLXNlZ21lbnQ");
        let text = "a aGVhZGVyLXNlZ21lbnQ.cGF5bG9hZC1zZWdtZW50.c2lnbmF0dXJlLXNlZ21lbnQ b \
                    c2lnbmF0dXJlLXNlZ21lbnQ c cGF5bG9hZC1zZWdtZW50";
        let out = secrets.redact(text);
        for secret in [
            "aGVhZGVyLXNlZ21lbnQ",
            "cGF5bG9hZC1zZWdtZW50",
            "c2lnbmF0dXJlLXNlZ21lbnQ",
        ] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.starts_with("a ** redacted ** b"), "masked whole: {out}");
    }

    #[test]
    fn jwt_shapes_are_masked_even_unregistered_or_cut() {
        let out = redact("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.U0lHTkFUVVJF end");
        assert_eq!(out, "token ** redacted ** end");
        let unsigned = redact("x=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        assert_eq!(unsigned, "x=** redacted **.");
        let cut = redact("... .eyJhdWQiOlsic3RzLmFtYXpvbmF3cy5jb20...");
        assert_eq!(cut, "... .** redacted **...");
        assert_eq!(
            redact("eyJ alone, and eyJshort.x"),
            "eyJ alone, and eyJshort.x"
        );
        let escaped = redact("t%3DeyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.U0lHTkFUVVJF");
        assert_eq!(escaped, "t%3D** redacted **");
    }

    #[test]
    fn values_after_secret_names_are_masked_in_every_syntax() {
        let cases = [
            (
                "Action=AssumeRoleWithWebIdentity&WebIdentityToken=abc.def&Version=1",
                "WebIdentityToken=** redacted **&Version",
            ),
            (
                "x-amz-security-token: FQoGZXIvYXdzEJr",
                "x-amz-security-token: ** redacted **",
            ),
            (
                "X-Amz-Security-Token:FQoGZXIvYXdzEJr\n",
                "X-Amz-Security-Token:** redacted **\n",
            ),
            (
                r#"{"SecretAccessKey":"wJalrXUtnFEMI/K7MDENG"}"#,
                r#"{"SecretAccessKey":"** redacted **"}"#,
            ),
            (
                r#"{\"SessionToken\":\"FQoGZXIv\"}"#,
                r#"{\"SessionToken\":\"** redacted **\"}"#,
            ),
            (
                "<SessionToken>FQoGZXIvYXdz</SessionToken>",
                "<SessionToken>** redacted **</SessionToken>",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI",
                "aws_secret_access_key = ** redacted **",
            ),
            (
                "q=WebIdentityToken%3Dabcdefgh.ijk&x",
                "WebIdentityToken%3D** redacted **&x",
            ),
        ];
        for (text, want) in cases {
            let out = redact(text);
            assert!(out.contains(want), "{text} gave {out}");
        }
    }

    #[test]
    fn url_passwords_are_masked_and_controls_escaped() {
        assert_eq!(
            redact("endpoint: Some(\"http://user:hunter22@127.0.0.1:18080\")"),
            format!("endpoint: Some(\"http://user:{MASK}@127.0.0.1:18080\")")
        );
        assert_eq!(redact("http://127.0.0.1:9/a@b"), "http://127.0.0.1:9/a@b");
        assert_eq!(
            escape_controls("msg one\nfake INFO line \u{1b}[31m\n"),
            "msg one\\nfake INFO line \\u{1b}[31m\n"
        );
        assert_eq!(escape_controls("plain\n"), "plain\n");
    }

    #[test]
    fn userinfo_is_masked_in_every_form_a_dependency_prints() {
        // hyper-util's pool key at debug and trace: no `://` in it.
        assert_eq!(
            redact("pooling idle connection for (\"http\", u:s3cr3tpassw0rd@127.0.0.1:4566)"),
            format!("pooling idle connection for (\"http\", u:{MASK}@127.0.0.1:4566)")
        );
        assert_eq!(
            redact("{\"message\":\"key (\\\"http\\\", u:pw@127.0.0.1:9)\"}"),
            format!("{{\"message\":\"key (\\\"http\\\", u:{MASK}@127.0.0.1:9)\"}}")
        );
        assert_eq!(redact("mail me@example.com"), "mail me@example.com");
        for text in [
            "s3:GetObject@arn:aws:s3:::orders/*",
            "[\"sqs:SendMessage@arn:aws:sqs:eu-west-1:111122223333:orders\"]",
            "iam:PassRole@*",
        ] {
            assert_eq!(redact(text), text, "a --require entry");
        }
        assert_eq!(
            redact("pool key u:pw@127.0.0.1:4566: closed."),
            format!("pool key u:{MASK}@127.0.0.1:4566: closed.")
        );
        assert_eq!(
            redact("connecting to u:pw@[::1]:8080"),
            format!("connecting to u:{MASK}@[::1]:8080")
        );
        let secrets = Secrets::new();
        secrets.register(Kind::Environment, "p@ss/w0rd-registered");
        assert_eq!(secrets.redact("p@ss/w0rd-registered"), MASK);
    }

    #[test]
    fn a_url_settings_userinfo_is_registered_in_every_form() {
        register_url_userinfo("http://proxyuser:pr0xy%40pass-word@127.0.0.1:3128");
        register_url_userinfo("https://ghp_0123456789tokenasuser@issuer.invalid/id");
        let basic = base64::engine::general_purpose::STANDARD.encode("proxyuser:pr0xy@pass-word");
        for form in [
            "pr0xy%40pass-word",
            "pr0xy@pass-word",
            basic.as_str(),
            "ghp_0123456789tokenasuser",
        ] {
            let said = format!("said {form} here");
            let shown = redact(&said);
            assert!(!shown.contains(form), "{form}: {shown}");
        }
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn prose_that_names_a_variable_is_left_alone() {
        for text in [
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN set in this container",
            "no AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN",
            "ready: irsa-doctor: pass: acting as arn:aws:sts::111122223333:assumed-role/app/s",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn short_values_are_not_registered_and_the_registry_is_bounded() {
        let secrets = Secrets::new();
        secrets.register(Kind::Credential, "short");
        assert_eq!(secrets.redact("a short word"), "a short word");
        secrets.register(Kind::Environment, "environment-secret");
        for i in 0..MAX_SECRETS + 10 {
            secrets.register(Kind::Credential, &format!("{i:04}-bounded-secret"));
        }
        assert_eq!(secrets.len(), MAX_SECRETS + 1);
        assert_eq!(
            secrets.redact("environment-secret"),
            MASK,
            "secrets from the environment are never evicted by new credentials"
        );
        assert_eq!(
            secrets.redact("0000-bounded-secret"),
            "0000-bounded-secret",
            "evicted"
        );
        assert_eq!(secrets.redact("0265-bounded-secret"), MASK);
    }
}
