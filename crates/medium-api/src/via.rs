//! The three doors into Medium's data: the legacy JSON API, the HTML pages (their embedded
//! Apollo state), and the RSS feeds.
//!
//! | family | JSON | HTML | RSS |
//! |---|---|---|---|
//! | publication | `/_/api/collections/{id}/stream`, `/{slug}/latest?format=json` | `/{slug}` | `/feed/{slug}` |
//! | author's stories | `/_/api/users/{id}/profile/stream` | `/@{username}` | `/feed/@{username}` |
//! | followings | `/_/api/users/{id}/following` | — | — |
//!
//! HTML and RSS address publications by slug and authors by username; followings exist only in
//! JSON. Each HTML page and each feed is one page (no paging): RSS holds only the latest items.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::endpoints::{PublicationRef, StreamId};

/// One source format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    #[default]
    Json,
    Html,
    Rss,
}

impl Via {
    /// Every format, in `auto`'s order of preference.
    pub const ALL: [Via; 3] = [Via::Json, Via::Html, Via::Rss];

    pub fn name(self) -> &'static str {
        match self {
            Via::Json => "json",
            Via::Html => "html",
            Via::Rss => "rss",
        }
    }

    /// The file extension of a stored body.
    pub fn ext(self) -> &'static str {
        match self {
            Via::Json => "json",
            Via::Html => "html",
            Via::Rss => "xml",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Via {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Via::Json),
            "html" => Ok(Via::Html),
            "rss" => Ok(Via::Rss),
            other => Err(format!("unknown source {other:?} (json, html or rss)")),
        }
    }
}

/// What `--via` asks for: one format, or `auto` (JSON first, then HTML, then RSS, per request
/// family, falling back on a challenge page, 403 or 404).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViaMode {
    #[default]
    Auto,
    Only(Via),
}

impl ViaMode {
    /// The formats to try, in order.
    pub fn chain(self) -> &'static [Via] {
        match self {
            ViaMode::Auto => &Via::ALL,
            ViaMode::Only(Via::Json) => &[Via::Json],
            ViaMode::Only(Via::Html) => &[Via::Html],
            ViaMode::Only(Via::Rss) => &[Via::Rss],
        }
    }
}

impl fmt::Display for ViaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViaMode::Auto => f.write_str("auto"),
            ViaMode::Only(v) => v.fmt(f),
        }
    }
}

impl FromStr for ViaMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ViaMode::Auto),
            other => other
                .parse()
                .map(ViaMode::Only)
                .map_err(|_| format!("unknown source {other:?} (json, html, rss or auto)")),
        }
    }
}

/// Whose HTML page or feed a body should be: a publication (addressed by slug) or an author
/// (addressed by username; the decoder checks the body is the page of this user id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOf<'a> {
    /// `/{slug}`, `/feed/{slug}`.
    Publication { slug: &'a str },
    /// `/@{username}`, `/feed/@{username}`, of the author with this user id.
    Author { user_id: &'a str },
}

impl<'a> PageOf<'a> {
    /// The page of a stream that HTML and RSS carry; `None` for a publication by collection id
    /// and for followings.
    pub fn of(stream: &'a StreamId) -> Option<Self> {
        match stream {
            StreamId::Publication(PublicationRef::Slug(slug)) => Some(PageOf::Publication { slug }),
            StreamId::Profile(user_id) => Some(PageOf::Author { user_id }),
            StreamId::Publication(PublicationRef::Id(_)) | StreamId::Following(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_every_mode() {
        for m in ["json", "html", "rss", "auto"] {
            assert_eq!(m.parse::<ViaMode>().unwrap().to_string(), m);
        }
        assert!("xml".parse::<ViaMode>().unwrap_err().contains("\"xml\""));
        assert_eq!(ViaMode::Auto.chain(), &[Via::Json, Via::Html, Via::Rss]);
        assert_eq!(ViaMode::Only(Via::Rss).chain(), &[Via::Rss]);
    }
}
