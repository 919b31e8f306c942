//! The XSSI guard and the `{"success": true, "payload": ...}` envelope.
//!
//! Medium prefixes every JSON body with `])}while(1);</x>` so that a `<script>` tag cannot
//! execute it. [`strip_guard`] removes that prefix (a body without it is accepted: Medium has
//! served both) and [`parse_payload`] turns the rest into a typed payload, or into a
//! [`BodyError`] that says what the body was instead (HTML, truncated, `success: false`, ...).
//! Nothing here panics on any input; the fuzz targets hold it to that.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::BodyError;

/// The prefix Medium puts before every JSON body.
pub const XSSI_GUARD: &[u8] = b"])}while(1);</x>";

/// The JSON part of a body: the body without the XSSI guard and without leading white space or a
/// UTF-8 byte order mark. A body without the guard is returned as it is (trimmed).
pub fn strip_guard(body: &[u8]) -> &[u8] {
    let body = trim_start(body);
    let body = body.strip_prefix(XSSI_GUARD).unwrap_or(body);
    trim_start(body)
}

fn trim_start(mut bytes: &[u8]) -> &[u8] {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        bytes = rest;
    }
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

#[derive(Deserialize)]
struct Envelope<P> {
    success: bool,
    #[serde(default = "none")]
    payload: Option<P>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn none<P>() -> Option<P> {
    None
}

/// Only the status fields, to tell `success: false` from a payload of the wrong shape.
#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn error_text(error: Option<serde_json::Value>) -> Option<String> {
    match error? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Strips the guard, checks the envelope and deserializes the payload.
pub fn parse_payload<P: DeserializeOwned>(body: &[u8]) -> Result<P, BodyError> {
    let json = strip_guard(body);
    match json.first() {
        None => return Err(BodyError::Empty),
        Some(b'<') => return Err(BodyError::of_html_page(json)),
        _ => {}
    }
    // valid UTF-8 (every answer Medium sends) is checked once for the whole body, so that the
    // parser need not check each string again (#18); anything else is parsed as bytes, for
    // the same errors
    let parsed = match std::str::from_utf8(json) {
        // the fast path first; where it declines, serde_json's value or error stands
        Ok(text) => match crate::json::from_str::<Envelope<P>>(text) {
            Ok(envelope) => Ok(envelope),
            Err(crate::json::Declined) => serde_json::from_str::<Envelope<P>>(text),
        },
        Err(_) => serde_json::from_slice::<Envelope<P>>(json),
    };
    match parsed {
        Ok(envelope) if !envelope.success => {
            Err(BodyError::Unsuccessful(error_text(envelope.error)))
        }
        Ok(envelope) => envelope.payload.ok_or(BodyError::NoPayload),
        Err(e) if e.is_eof() => Err(BodyError::Truncated(e.to_string())),
        Err(e) if e.is_syntax() => Err(BodyError::NotJson(e.to_string())),
        Err(e) => match serde_json::from_slice::<Status>(json) {
            Ok(Status {
                success: Some(false),
                error,
            }) => Err(BodyError::Unsuccessful(error_text(error))),
            Ok(_) => Err(BodyError::Shape(e.to_string())),
            Err(_) => Err(BodyError::NotJson(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct P {
        n: u32,
    }

    #[test]
    fn strips_the_guard_and_keeps_a_body_without_it() {
        assert_eq!(strip_guard(b"])}while(1);</x>{\"a\":1}"), b"{\"a\":1}");
        assert_eq!(strip_guard(b"{\"a\":1}"), b"{\"a\":1}");
        assert_eq!(strip_guard(b"\xEF\xBB\xBF  ])}while(1);</x>\n{}"), b"{}");
        assert_eq!(strip_guard(b""), b"");
        assert_eq!(strip_guard(b"])}while(1);</x>"), b"");
    }

    #[test]
    fn parses_a_guarded_and_an_unguarded_body_alike() {
        let guarded: P =
            parse_payload(b"])}while(1);</x>{\"success\":true,\"payload\":{\"n\":7}}").unwrap();
        let plain: P = parse_payload(b"{\"success\":true,\"payload\":{\"n\":7},\"v\":3}").unwrap();
        assert_eq!(guarded, P { n: 7 });
        assert_eq!(plain, guarded);
    }

    /// A body that is not UTF-8 is parsed as bytes, as before the whole-body check (#18): a
    /// bad byte in a field the models skip does not fail the page.
    #[test]
    fn a_body_that_is_not_utf8_parses_as_it_did() {
        let body = b"{\"success\":true,\"payload\":{\"n\":7,\"skipped\":\"\xff\"}}";
        assert_eq!(parse_payload::<P>(body).unwrap(), P { n: 7 });
    }

    /// What the fast path (`crate::json`) declines, serde_json reads: a surrogate pair in a
    /// string read, a body with an error gives serde_json's error.
    #[test]
    fn what_the_fast_path_declines_serde_json_reads() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Named {
            name: String,
        }
        let body = "{\"success\":true,\"payload\":{\"name\":\"\\ud83d\\ude00 \\u00e9\"}}";
        assert_eq!(
            crate::json::from_str::<serde_json::Value>(body),
            Err(crate::json::Declined)
        );
        let page: Named = parse_payload(body.as_bytes()).unwrap();
        assert_eq!(page.name, "\u{1f600} \u{e9}");
        let err = parse_payload::<Named>(b"{\"success\":true,\"payload\":{\"name\":\"x\",}}")
            .unwrap_err();
        assert_eq!(
            err,
            BodyError::NotJson("trailing comma at line 1 column 39".into())
        );
    }

    #[test]
    fn names_what_a_bad_body_is() {
        type Check = fn(&BodyError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"", |e| *e == BodyError::Empty),
            (b"  \n", |e| *e == BodyError::Empty),
            (b"])}while(1);</x>", |e| *e == BodyError::Empty),
            (b"<!DOCTYPE html><html>Just a moment...</html>", |e| {
                *e == BodyError::Html
            }),
            (
                b"])}while(1);</x>{\"success\":true,\"payload\":{\"n\":",
                |e| matches!(e, BodyError::Truncated(_)),
            ),
            (
                b"])}while(1);</x>{\"success\":false,\"error\":\"Collection not found\"}",
                |e| *e == BodyError::Unsuccessful(Some("Collection not found".into())),
            ),
            (b"{\"success\":false,\"payload\":{\"n\":\"x\"}}", |e| {
                *e == BodyError::Unsuccessful(None)
            }),
            (b"{\"success\":true}", |e| *e == BodyError::NoPayload),
            (b"{\"success\":true,\"payload\":{\"n\":\"seven\"}}", |e| {
                matches!(e, BodyError::Shape(_))
            }),
            (b"while(1);", |e| matches!(e, BodyError::NotJson(_))),
            (b"[1,2]", |e| {
                matches!(e, BodyError::Shape(_) | BodyError::NotJson(_))
            }),
            (b"{\"payload\":{\"n\":1}}", |e| {
                matches!(e, BodyError::Shape(_))
            }),
            // not UTF-8: parsed as bytes, and refused for what is wrong with it
            (b"{\"success\":true,\"payload\":{\"n\":7}}\xff", |e| {
                matches!(e, BodyError::NotJson(_))
            }),
        ];
        for (body, check) in cases {
            let err = parse_payload::<P>(body).unwrap_err();
            assert!(
                check(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
