//! Pages a bot wall sends instead of the page asked for, told apart by what they promise.
//!
//! Cloudflare answers a client it distrusts in two ways, and they call for different handling
//! (`MEDIUM-GRAPHQL.md`, "Transport"):
//! - a **block page** ("Sorry, you have been blocked", "Attention Required! | Cloudflare",
//!   about 5 KB) stays blocked: retrying only spends requests, so it is final, and under
//!   `--via auto` the family moves to the next door at once;
//! - a **managed challenge** ("Just a moment...", about 28 KB), or a captcha, often clears when
//!   asked again later: it is retried with backoff, and only then does the family move on.
//!
//! Either may come with status 200 or 403. The markers are read from the first 64 KiB only,
//! case-insensitively, so a huge body costs no more than a small one.

/// A bot wall's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interstitial {
    /// A block page: final.
    Block,
    /// A challenge or captcha: worth asking again later.
    Challenge,
}

/// How far into a body the markers are looked for.
pub const SCAN: usize = 64 * 1024;

/// Said only by a block page.
const BLOCK_MARKERS: &[&str] = &["sorry, you have been blocked"];

/// A Cloudflare error page (a block, unless it also asks to solve something).
const ERROR_PAGE_MARKERS: &[&str] = &[
    "cf-error-details",
    "<title>attention required! | cloudflare",
];

/// Said only by a challenge or captcha page: the managed challenge's title and script, and the
/// widgets and forms a person would solve. (Cloudflare also injects a `challenge-platform`
/// script into ordinary pages, so only its `/h/` challenge path counts.)
const CHALLENGE_MARKERS: &[&str] = &[
    "<title>just a moment",
    "_cf_chl_opt",
    "/cdn-cgi/challenge-platform/h/",
    "challenge-form",
    "g-recaptcha",
    "h-captcha",
    "cf-turnstile",
];

/// What a body is, when it is a bot wall's page; `None` for anything else (a real page, JSON,
/// an ordinary error page). Call it on bodies the expected format refused, not on data.
pub fn classify(body: &[u8]) -> Option<Interstitial> {
    let head = &body[..body.len().min(SCAN)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let has = |markers: &[&str]| markers.iter().any(|m| text.contains(m));
    if has(BLOCK_MARKERS) {
        Some(Interstitial::Block)
    } else if has(CHALLENGE_MARKERS) {
        // includes Cloudflare's older captcha page ("Attention Required!", "One more step")
        Some(Interstitial::Challenge)
    } else if has(ERROR_PAGE_MARKERS) {
        Some(Interstitial::Block)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str =
        "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>\
        <body><div id=\"cf-error-details\"><h1>Sorry, you have been blocked</h1>\
        <h2>You are unable to access medium.com</h2></div></body></html>";
    const CHALLENGE: &str = "<!DOCTYPE html><html><head><title>Just a moment...</title></head>\
        <body><script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1\"></script></body></html>";

    #[test]
    fn tells_a_block_page_from_a_challenge() {
        assert_eq!(classify(BLOCK.as_bytes()), Some(Interstitial::Block));
        assert_eq!(
            classify(CHALLENGE.as_bytes()),
            Some(Interstitial::Challenge)
        );
        assert_eq!(
            classify(b"<html><body><div class=\"g-recaptcha\"></div></body></html>"),
            Some(Interstitial::Challenge)
        );
        // Cloudflare's older captcha page: "Attention Required!", but something to solve
        let captcha = "<html><head><title>Attention Required! | Cloudflare</title></head><body>\
            <h2>One more step</h2><form id=\"challenge-form\"><div class=\"g-recaptcha\"></div></form></body></html>";
        assert_eq!(classify(captcha.as_bytes()), Some(Interstitial::Challenge));
        // ordinary pages that mention the words, or carry Cloudflare's injected script
        for ordinary in [
            "<html><title>Forbidden</title><body>We use a captcha to sign in.</body></html>",
            "<html><title>403</title><script src=\"/cdn-cgi/challenge-platform/scripts/jsd/main.js\"></script></html>",
            "<html><body>You are unable to access this story.</body></html>",
        ] {
            assert_eq!(classify(ordinary.as_bytes()), None, "{ordinary}");
        }
        // a page that shows both: blocked is final
        let both = format!("{CHALLENGE}{BLOCK}");
        assert_eq!(classify(both.as_bytes()), Some(Interstitial::Block));
        for other in [
            &b"<html><title>Forbidden</title></html>"[..],
            b"])}while(1);</x>{\"success\":true}",
            b"",
            &[0xff, 0xfe, 0x00],
        ] {
            assert_eq!(classify(other), None);
        }
    }

    #[test]
    fn reads_only_the_head_of_a_large_body() {
        let mut body = vec![b' '; SCAN];
        body.extend_from_slice(BLOCK.as_bytes());
        assert_eq!(classify(&body), None);
    }
}
