//! Medium's endpoints: one definition of each path (SPEC §2).
//!
//! A [`StreamId`] names one paged stream (a publication's, or one author's stories or
//! followings). Ids and slugs are checked before they go into a URL or a file name, so a user id
//! from the network can never point a request or a raw-store file somewhere else.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::via::{Addressing, Via};

/// The kinds of request the client makes; used for the request counts in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    PublicationStream,
    ProfileStream,
    Following,
    /// The bodies of an author's posts, for their link counts (only GraphQL needs them apart).
    PostBodies,
}

impl Endpoint {
    pub const ALL: [Endpoint; 4] = [
        Endpoint::PublicationStream,
        Endpoint::ProfileStream,
        Endpoint::Following,
        Endpoint::PostBodies,
    ];

    /// The position of the family in [`Endpoint::ALL`] (for per-family tables of values).
    pub fn position(self) -> usize {
        Endpoint::ALL
            .iter()
            .position(|e| *e == self)
            .unwrap_or_default()
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::PublicationStream => "publication_stream",
            Endpoint::ProfileStream => "profile_stream",
            Endpoint::Following => "following",
            Endpoint::PostBodies => "post_bodies",
        }
    }
}

/// An endpoint equals its name (`publication_stream`, ...), as the manifest writes it.
impl PartialEq<&str> for Endpoint {
    fn eq(&self, name: &&str) -> bool {
        self.name() == *name
    }
}

/// A publication, as the user names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub enum PublicationRef {
    /// A collection id such as `7f60cf5620c9`.
    Id(String),
    /// A publication slug such as `towards-data-science`.
    Slug(String),
}

impl PublicationRef {
    /// The id or slug, as given.
    pub fn key(&self) -> &str {
        match self {
            PublicationRef::Id(k) | PublicationRef::Slug(k) => k,
        }
    }
}

impl fmt::Display for PublicationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicationRef::Id(id) => write!(f, "collection {id}"),
            PublicationRef::Slug(slug) => write!(f, "publication {slug}"),
        }
    }
}

/// Whether `s` is safe as one path segment: ASCII letters, digits, `-`, `_`, `.`, not
/// starting with a dot (so never `.`, `..`, a hidden file, or a name the raw store's temporary
/// files use: those all start with a dot and are swept at start).
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// One paged stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamId {
    Publication(PublicationRef),
    Profile(String),
    Following(String),
    /// The bodies of an author's posts (by user id), in batches: GraphQL's link counts.
    PostBodies(String),
}

impl StreamId {
    pub fn endpoint(&self) -> Endpoint {
        match self {
            StreamId::Publication(_) => Endpoint::PublicationStream,
            StreamId::Profile(_) => Endpoint::ProfileStream,
            StreamId::Following(_) => Endpoint::Following,
            StreamId::PostBodies(_) => Endpoint::PostBodies,
        }
    }

    /// The identifier inside the stream's path (collection id, slug or user id).
    pub fn key(&self) -> &str {
        match self {
            StreamId::Publication(PublicationRef::Id(k) | PublicationRef::Slug(k))
            | StreamId::Profile(k)
            | StreamId::Following(k)
            | StreamId::PostBodies(k) => k,
        }
    }

    /// Whether the id can be used in a URL and a file name.
    pub fn is_valid(&self) -> bool {
        is_safe_segment(self.key())
    }

    /// The HTTP path of the stream's pages in the legacy API (post bodies, which only GraphQL
    /// serves apart, at GraphQL's).
    pub fn http_path(&self) -> String {
        match self {
            StreamId::Publication(PublicationRef::Id(id)) => {
                format!("/_/api/collections/{id}/stream")
            }
            StreamId::Publication(PublicationRef::Slug(slug)) => format!("/{slug}/latest"),
            StreamId::Profile(id) => format!("/_/api/users/{id}/profile/stream"),
            StreamId::Following(id) => format!("/_/api/users/{id}/following"),
            StreamId::PostBodies(_) => crate::graphql::PATH.to_owned(),
        }
    }

    /// The HTTP path of the stream's page in a format, as the format's row of [`crate::via`]
    /// addresses it: by id through the API, or by slug and `username`. `Err` says why the stream
    /// cannot be requested that way (the format does not carry the family, or lacks a name).
    pub fn http_path_via(&self, via: Via, username: Option<&str>) -> Result<String, String> {
        let format = via.format();
        let family = self.endpoint();
        if !format.carries(family) {
            return Err(format!(
                "{self} exists only in {} ({} do not carry it)",
                Via::only_in(family),
                format.title
            ));
        }
        let prefix = match format.addressing {
            Addressing::Api => return Ok(self.http_path()),
            Addressing::Graphql => return Ok(crate::graphql::PATH.to_owned()),
            Addressing::ByName { prefix } => prefix,
        };
        match self {
            StreamId::Publication(PublicationRef::Slug(slug)) => Ok(format!("{prefix}/{slug}")),
            StreamId::Publication(PublicationRef::Id(id)) => Err(format!(
                "collection {id} cannot be requested from {via}: {} address a publication by slug (give --publication SLUG)",
                format.title
            )),
            StreamId::Profile(_) | StreamId::Following(_) | StreamId::PostBodies(_) => username
                .filter(|u| is_safe_segment(u))
                .map(|u| format!("{prefix}/@{u}"))
                .ok_or_else(|| {
                    format!(
                        "{self} cannot be requested from {via}: the author has no usable username"
                    )
                }),
        }
    }

    /// The query pairs every request of the stream carries in a format (the human URLs of the
    /// API need `format=json`; pages and feeds take none).
    pub fn base_query_via(&self, via: Via) -> Vec<(String, String)> {
        match via.format().addressing {
            Addressing::Api => self.base_query(),
            // every connection is asked for pages of the largest size Medium accepts; a batch of
            // bodies is named by its ids alone
            Addressing::Graphql if !matches!(self, StreamId::PostBodies(_)) => {
                vec![("limit".into(), crate::graphql::LIMIT.to_string())]
            }
            Addressing::Graphql | Addressing::ByName { .. } => Vec::new(),
        }
    }

    /// Query pairs every request of the stream carries (the human URLs need `format=json`).
    pub fn base_query(&self) -> Vec<(String, String)> {
        match self {
            StreamId::Publication(PublicationRef::Slug(_)) => {
                vec![("format".into(), "json".into())]
            }
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamId::Publication(p) => write!(f, "{p} stream"),
            StreamId::Profile(id) => write!(f, "profile stream of user {id}"),
            StreamId::Following(id) => write!(f, "following of user {id}"),
            StreamId::PostBodies(id) => write!(f, "post bodies of user {id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_the_spec() {
        let s = StreamId::Publication(PublicationRef::Id("7f60cf5620c9".into()));
        assert_eq!(s.http_path(), "/_/api/collections/7f60cf5620c9/stream");
        assert!(s.base_query().is_empty());
        let s = StreamId::Publication(PublicationRef::Slug("towards-data-science".into()));
        assert_eq!(s.http_path(), "/towards-data-science/latest");
        assert_eq!(s.base_query(), vec![("format".into(), "json".into())]);
        assert_eq!(
            StreamId::Profile("e2f299e30cb9".into()).http_path(),
            "/_/api/users/e2f299e30cb9/profile/stream"
        );
        assert_eq!(
            StreamId::Following("b5e0373348ba".into()).http_path(),
            "/_/api/users/b5e0373348ba/following"
        );
    }

    #[test]
    fn paths_in_other_formats() {
        let slug = StreamId::Publication(PublicationRef::Slug("tds".into()));
        assert_eq!(slug.http_path_via(Via::Html, None).unwrap(), "/tds");
        assert_eq!(slug.http_path_via(Via::Rss, None).unwrap(), "/feed/tds");
        assert_eq!(slug.http_path_via(Via::Json, None).unwrap(), "/tds/latest");
        let by_id = StreamId::Publication(PublicationRef::Id("7f60cf5620c9".into()));
        assert!(by_id
            .http_path_via(Via::Rss, None)
            .unwrap_err()
            .contains("by slug"));
        let p = StreamId::Profile("u1".into());
        assert_eq!(p.http_path_via(Via::Html, Some("ann")).unwrap(), "/@ann");
        assert_eq!(
            p.http_path_via(Via::Rss, Some("ann")).unwrap(),
            "/feed/@ann"
        );
        assert!(p.http_path_via(Via::Rss, None).is_err());
        assert!(p.http_path_via(Via::Rss, Some("../x")).is_err());
        let f = StreamId::Following("u1".into());
        assert!(f
            .http_path_via(Via::Html, Some("ann"))
            .unwrap_err()
            .contains("only in the JSON"));
    }

    #[test]
    fn unsafe_ids_are_refused() {
        // `.x.tmp-1` passed before #14, and the temp sweep deleted its folder at every start
        for bad in [
            "", "..", ".", "a/b", "../x", "a b", "%2e%2e", "a\\b", ".x.tmp-1", ".hidden",
        ] {
            assert!(!StreamId::Profile(bad.into()).is_valid(), "{bad:?}");
        }
        assert!(StreamId::Profile("17ff8967433".into()).is_valid());
        assert!(StreamId::Publication(PublicationRef::Slug("chintan.t93".into())).is_valid());
    }
}
