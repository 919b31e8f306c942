//! The doors into Medium's data, and **the one table of what each carries** ([`Format`]):
//! which request families a format answers, how it addresses them, its name and title, where
//! its bodies are stored, and which table columns its rows leave null. The paths
//! ([`StreamId::http_path_via`]), the fallback's "not carried" rule, the manifest's
//! `sources.columns` and the metrics left null read this table; a new format is a row here,
//! a variant of [`Via`] and its decoder (`StreamPage::decode`).
//!
//! | family | JSON | GraphQL (`POST /_/graphql`) | HTML | RSS |
//! |---|---|---|---|---|
//! | publication | `/_/api/collections/{id}/stream`, `/{slug}/latest?format=json` | `collection(id)`, `collectionByDomainOrSlug` | `/{slug}` | `/feed/{slug}` |
//! | author's stories | `/_/api/users/{id}/profile/stream` | `userResult(id)` → `homepagePostsConnection` | `/@{username}` | `/feed/@{username}` |
//! | followings | `/_/api/users/{id}/following` | `userResult(id)` → `followingUserConnection` | — | — |
//! | post bodies (links) | inside the posts | `post(id)`, batched | — | — |
//!
//! HTML and RSS address publications by slug and authors by username; followings exist only in
//! JSON and GraphQL. Each HTML page and each feed is one page (no paging): RSS holds only the
//! latest items. GraphQL pages its connections with `pagingInfo.next` ([`PagingRules`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::endpoints::{Endpoint, PublicationRef, StreamId};
use crate::paging::PagingRules;

/// Table names, as the pipeline's files name them (`tables/date=…/<table>.parquet`).
pub mod tables {
    pub const AUTHORS: &str = "authors";
    pub const POSTS: &str = "posts";
    pub const FOLLOWINGS: &str = "followings";
    pub const PUBLICATIONS: &str = "publications";
}

/// How a format addresses a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// The legacy API's paths by id (`/_/api/...`), and the human URLs of a publication by
    /// slug with `?format=json` ([`StreamId::http_path`]).
    Api,
    /// `{prefix}/{slug}` for a publication, `{prefix}/@{username}` for an author.
    ByName { prefix: &'static str },
    /// `POST /_/graphql`, the operation named by the stream and its paging query
    /// ([`crate::graphql::request`]).
    Graphql,
}

/// What one format carries. See the module docs; [`Via::format`] gives a format's row.
#[derive(Debug)]
pub struct Format {
    pub via: Via,
    /// As `--via` and the manifest name it.
    pub name: &'static str,
    /// As messages name it ("exists only in the JSON API").
    pub title: &'static str,
    /// The file extension of a stored body.
    pub ext: &'static str,
    /// The request families it answers.
    pub families: &'static [Endpoint],
    /// How a stream's requests are addressed.
    pub addressing: Addressing,
    /// Per table, the columns its rows leave null (never guessed).
    pub null_columns: &'static [(&'static str, &'static [&'static str])],
    /// How its cursors page.
    pub paging: PagingRules,
}

const JSON: Format = Format {
    via: Via::Json,
    name: "json",
    title: "the JSON API",
    ext: "json",
    // links come inside the posts (`virtuals.links`): no bodies apart
    families: &[
        Endpoint::PublicationStream,
        Endpoint::ProfileStream,
        Endpoint::Following,
    ],
    addressing: Addressing::Api,
    null_columns: &[],
    paging: PagingRules::LEGACY,
};

const GRAPHQL: Format = Format {
    via: Via::Graphql,
    name: "graphql",
    title: "the GraphQL API",
    ext: "graphql.json",
    families: &Endpoint::ALL,
    addressing: Addressing::Graphql,
    // no image count in the subset read (MEDIUM-GRAPHQL.md)
    null_columns: &[(tables::POSTS, &["image_count"])],
    paging: PagingRules::CONNECTION,
};

/// Medium's own follower figures: only the API's profile streams carry them.
const SOCIAL_STATS: &[&str] = &["follower_count", "following_count_reported"];

/// The families pages and feeds answer: no followings.
const PAGES_AND_FEEDS: &[Endpoint] = &[Endpoint::PublicationStream, Endpoint::ProfileStream];

const HTML: Format = Format {
    via: Via::Html,
    name: "html",
    title: "HTML pages",
    ext: "html",
    families: PAGES_AND_FEEDS,
    addressing: Addressing::ByName { prefix: "" },
    paging: PagingRules::LEGACY,
    null_columns: &[
        (tables::AUTHORS, SOCIAL_STATS),
        (tables::POSTS, &["image_count", "link_count"]),
    ],
};

const RSS: Format = Format {
    via: Via::Rss,
    name: "rss",
    title: "RSS feeds",
    ext: "xml",
    families: PAGES_AND_FEEDS,
    addressing: Addressing::ByName { prefix: "/feed" },
    paging: PagingRules::LEGACY,
    null_columns: &[
        (tables::AUTHORS, SOCIAL_STATS),
        (
            tables::POSTS,
            &[
                "home_collection_id",
                "in_response_to_post_id",
                "total_clap_count",
                "reading_time_min",
                "responses_created_count",
            ],
        ),
        (tables::PUBLICATIONS, &["creator_id", "domain"]),
    ],
};

impl Format {
    /// Whether the format answers a request family.
    pub fn carries(&self, family: Endpoint) -> bool {
        self.families.contains(&family)
    }

    /// The columns of `table` its rows leave null.
    pub fn null_columns(&self, table: &str) -> &'static [&'static str] {
        self.null_columns
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(&[], |(_, cols)| cols)
    }

    /// Whether its rows fill `table.column`.
    pub fn fills(&self, table: &str, column: &str) -> bool {
        !self.null_columns(table).contains(&column)
    }
}

/// One source format.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    #[default]
    Json,
    Graphql,
    Html,
    Rss,
}

impl Via {
    /// Every format, in `auto`'s order of preference.
    pub const ALL: [Via; 4] = [Via::Json, Via::Graphql, Via::Html, Via::Rss];

    /// The format's row of the table.
    pub fn format(self) -> &'static Format {
        match self {
            Via::Json => &JSON,
            Via::Graphql => &GRAPHQL,
            Via::Html => &HTML,
            Via::Rss => &RSS,
        }
    }

    pub fn name(self) -> &'static str {
        self.format().name
    }

    /// The file extension of a stored body.
    pub fn ext(self) -> &'static str {
        self.format().ext
    }

    /// The formats that carry a request family, in `auto`'s order.
    pub fn carrying(family: Endpoint) -> impl Iterator<Item = Via> {
        Via::ALL
            .into_iter()
            .filter(move |v| v.format().carries(family))
    }

    /// Where a family exists, for messages: "the JSON API", "HTML pages and RSS feeds".
    pub fn only_in(family: Endpoint) -> String {
        let titles: Vec<&str> = Via::carrying(family).map(|v| v.format().title).collect();
        titles.join(" and ")
    }

    /// The position of the format in [`Via::ALL`] (for per-format tables of values).
    pub fn position(self) -> usize {
        Via::ALL.iter().position(|v| *v == self).unwrap_or_default()
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
        Via::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown source {s:?} ({})", ViaMode::names().join(", ")))
    }
}

/// What `--via` asks for: one format, or `auto` (JSON first, then GraphQL, then HTML, then
/// RSS, per request family, falling back when a door is closed).
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
            ViaMode::Only(via) => std::slice::from_ref(&via.format().via),
        }
    }

    /// Every mode's name, as `--via` takes it: the formats, then `auto`.
    pub fn names() -> Vec<&'static str> {
        Via::ALL.iter().map(|v| v.name()).chain(["auto"]).collect()
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
            other => other.parse().map(ViaMode::Only),
        }
    }
}

impl<'de> Deserialize<'de> for ViaMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
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
            StreamId::Publication(PublicationRef::Id(_))
            | StreamId::Following(_)
            | StreamId::PostBodies(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_every_mode() {
        for m in ["json", "graphql", "html", "rss", "auto"] {
            assert_eq!(m.parse::<ViaMode>().unwrap().to_string(), m);
        }
        assert!("xml".parse::<ViaMode>().unwrap_err().contains("\"xml\""));
        assert_eq!(
            ViaMode::Auto.chain(),
            &[Via::Json, Via::Graphql, Via::Html, Via::Rss]
        );
        assert_eq!(ViaMode::Only(Via::Rss).chain(), &[Via::Rss]);
    }

    #[test]
    fn every_row_of_the_table_is_its_own_format() {
        for via in Via::ALL {
            assert_eq!(via.format().via, via);
        }
        assert!(Via::Json.format().carries(Endpoint::Following));
        assert_eq!(
            Via::carrying(Endpoint::Following).collect::<Vec<_>>(),
            [Via::Json, Via::Graphql]
        );
        assert_eq!(
            Via::carrying(Endpoint::PostBodies).collect::<Vec<_>>(),
            [Via::Graphql]
        );
        assert_eq!(
            Via::Html.format().null_columns(tables::POSTS),
            ["image_count", "link_count"]
        );
        assert!(Via::Json.format().fills(tables::POSTS, "link_count"));
        assert!(!Via::Rss.format().fills(tables::PUBLICATIONS, "domain"));
    }
}
