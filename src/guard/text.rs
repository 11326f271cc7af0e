//! Peers' error text made fit to quote: an error's chain of sources, each
//! level once, with any dump of the request cut out. Used by every peer
//! (`sts`, `iam`, `agent`, `issuer`), so it lives below them.

/// An error and its sources, each level once. Unlike the SDK's
/// `DisplayErrorContext`, it never prints the `Debug` of a raw response
/// (whose body could hold credentials), and where an SDK error quotes the
/// whole request (`failed to apply endpoint ... to request Request { body:
/// ... }`), the request is cut out: findings quote what went wrong, never
/// the request.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![];
    let mut next = Some(err);
    while let Some(e) = next {
        let text = without_request_dump(e.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// `text` cut before any `Debug` dump of a request it quotes.
fn without_request_dump(text: String) -> String {
    match text.find("Request {") {
        Some(at) => {
            let cut = text[..at].trim_end_matches(['`', '"', ' ']);
            format!("{cut} (the request is not shown)")
        }
        None => text,
    }
}
