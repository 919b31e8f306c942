//! Medium's HTML pages (`/@{username}`, `/{publication_slug}`): the data a page is rendered
//! from is embedded in a `<script>` as `window.__APOLLO_STATE__ = {...}`, a flat map of
//! entities keyed `"<Type>:<id>"` that point at each other with `{"__ref": "<Type>:<id>"}`.
//! Its `User`, `Post` and `Collection` entities are mapped onto the JSON models.
//!
//! Carried: user id, username, name, bio, Twitter name, creation and membership times; post id,
//! creator, title, slug, home publication, first/latest published, the post it responds to,
//! claps, word count, reading time, responses, tags; the collection's id, name, slug,
//! description, creator, domain. Not carried (left `None`): image and link counts, followings.
//!
//! A page without the state is refused: as a block page ([`BodyError::Blocked`]) or a challenge
//! ([`BodyError::Challenge`]) when it looks like one ([`crate::interstitial`]), else
//! [`BodyError::NoState`].
//! One page, no paging: a profile page shows the author's latest stories.

use scraper::{Html, Selector};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::models::{
    Collection, CompactString, IdMap, Post, References, StreamPayload, Tag, User, Virtuals,
};
use crate::via::{PageOf, Via};
use crate::BodyError;

/// The assignment that holds the state.
pub const STATE_MARKER: &str = "window.__APOLLO_STATE__";

/// Parses a page into a stream payload (one page, no paging).
pub fn decode(body: &[u8], page: PageOf<'_>) -> Result<StreamPayload, BodyError> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    // an HTML parser's time grows with the square of the nesting: refuse what no page needs
    let depth = crate::story::markup_depth(&text);
    if depth > crate::story::MAX_DEPTH {
        return Err(BodyError::Shape(format!(
            "the page's markup nests {depth} deep (more than {})",
            crate::story::MAX_DEPTH
        )));
    }
    let state = state_json(&text)?;
    let entities = parse_state(&state)?;
    map(entities, page)
}

/// The state's JSON text, found in the page's scripts.
fn state_json(text: &str) -> Result<String, BodyError> {
    let doc = Html::parse_document(text);
    let scripts = Selector::parse("script").map_err(|e| BodyError::Shape(e.to_string()))?;
    for script in doc.select(&scripts) {
        let code: String = script.text().collect();
        let Some(rest) = code.trim_start().strip_prefix(STATE_MARKER) else {
            continue;
        };
        let Some(json) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        return Ok(json.trim().trim_end_matches(';').trim_end().to_owned());
    }
    Err(match BodyError::of_html_page(text.as_bytes()) {
        BodyError::Html => BodyError::NoState,
        interstitial => interstitial,
    })
}

#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "__ref")]
    reference: String,
}

impl Ref {
    /// The id part of `Type:id`.
    fn id(&self) -> &str {
        self.reference.split_once(':').map_or("", |(_, id)| id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApolloUser {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    bio: Option<String>,
    #[serde(default)]
    twitter_screen_name: Option<String>,
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    medium_member_at: Option<i64>,
}

#[derive(Deserialize)]
struct Count {
    #[serde(default)]
    count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApolloPost {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    unique_slug: Option<String>,
    #[serde(default)]
    creator: Option<Ref>,
    #[serde(default)]
    collection: Option<Ref>,
    #[serde(default)]
    first_published_at: Option<i64>,
    #[serde(default)]
    latest_published_at: Option<i64>,
    #[serde(default)]
    in_response_to_post_result: Option<Ref>,
    #[serde(default)]
    clap_count: Option<i64>,
    #[serde(default)]
    word_count: Option<i64>,
    #[serde(default)]
    reading_time: Option<f64>,
    #[serde(default)]
    post_responses: Option<Count>,
    #[serde(default)]
    tags: Option<Vec<Ref>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApolloCollection {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    creator: Option<Ref>,
}

#[derive(Deserialize)]
#[serde(tag = "__typename")]
enum Entity {
    User(ApolloUser),
    Post(ApolloPost),
    Collection(ApolloCollection),
    #[serde(other)]
    Other,
}

/// The entities in document order (the order defines "first seen" for authors).
struct Entities(Vec<(String, Entity)>);

impl<'de> Deserialize<'de> for Entities {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entities;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of entities keyed \"Type:id\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entities, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key.contains(':') {
                        out.push((key, map.next_value::<Entity>()?));
                    } else {
                        // ROOT_QUERY and friends: not entities
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Entities(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn parse_state(json: &str) -> Result<Entities, BodyError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let entities = Entities::deserialize(&mut de).map_err(|e| {
        if e.is_eof() {
            BodyError::Truncated(format!("{STATE_MARKER}: {e}"))
        } else {
            BodyError::Shape(format!("{STATE_MARKER}: {e}"))
        }
    })?;
    Ok(entities)
}

fn non_empty(s: Option<String>) -> Option<CompactString> {
    s.filter(|s| !s.trim().is_empty()).map(Into::into)
}

fn map(entities: Entities, page: PageOf<'_>) -> Result<StreamPayload, BodyError> {
    let mut users = Vec::new();
    let mut posts = Vec::new();
    let mut collections = Vec::new();
    for (_, entity) in entities.0 {
        match entity {
            Entity::User(u) => users.push(User {
                user_id: u.id.into(),
                username: non_empty(u.username),
                name: non_empty(u.name),
                bio: non_empty(u.bio),
                created_at: u.created_at,
                medium_member_at: u.medium_member_at,
                twitter_screen_name: non_empty(u.twitter_screen_name),
                image_id: non_empty(u.image_id),
            }),
            Entity::Post(p) => posts.push(Post {
                id: p.id.into(),
                creator_id: p
                    .creator
                    .as_ref()
                    .map(|r| r.id().into())
                    .unwrap_or_default(),
                title: p.title.map(Into::into),
                unique_slug: p.unique_slug.map(Into::into),
                home_collection_id: p.collection.as_ref().map(|r| r.id().into()),
                first_published_at: p.first_published_at,
                latest_published_at: p.latest_published_at,
                in_response_to_post_id: p
                    .in_response_to_post_result
                    .as_ref()
                    .map(|r| r.id().into()),
                responds_to_unknown: false,
                virtuals: Virtuals {
                    word_count: p.word_count,
                    total_clap_count: p.clap_count,
                    reading_time: p.reading_time,
                    image_count: None,
                    responses_created_count: p.post_responses.and_then(|c| c.count),
                    tags: p
                        .tags
                        .unwrap_or_default()
                        .iter()
                        .map(|t| Tag {
                            slug: t.id().into(),
                        })
                        .filter(|t| !t.slug.is_empty())
                        .collect(),
                    links: None,
                },
                source: Via::Html,
            }),
            Entity::Collection(c) => collections.push(Collection {
                id: c.id.into(),
                name: non_empty(c.name),
                slug: non_empty(c.slug),
                description: non_empty(c.description),
                creator_id: c.creator.as_ref().map(|r| r.id().into()),
                domain: non_empty(c.domain),
            }),
            Entity::Other => {}
        }
    }
    let (collection, user) = match page {
        PageOf::Publication { slug } => {
            let c = collections
                .iter()
                .find(|c| c.slug.as_deref() == Some(slug))
                .cloned()
                .ok_or_else(|| {
                    BodyError::Shape(format!(
                        "the page's state has no publication with slug {slug:?}"
                    ))
                })?;
            // The publication's authors: the users who wrote a post on the page.
            users.retain(|u| posts.iter().any(|p| p.creator_id == u.user_id));
            (Some(c), None)
        }
        PageOf::Author { user_id } => {
            let u = users
                .iter()
                .find(|u| u.user_id == user_id)
                .cloned()
                .ok_or_else(|| {
                    BodyError::Shape(format!("the page's state has no user {user_id}"))
                })?;
            (None, Some(u))
        }
    };
    Ok(StreamPayload {
        collection,
        user,
        references: References {
            users: IdMap(users),
            posts: Some(IdMap(posts)),
            collections: IdMap(collections),
            social_stats: IdMap::default(),
        },
        paging: None,
        unresolved_creators: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(state: &str) -> String {
        format!(
            "<!doctype html><html><head><title>Ann Lee – Medium</title></head><body><div id=\"root\"></div>\
             <script>window.__BUILD_ID__ = \"x\"</script>\
             <script>window.__APOLLO_STATE__ = {state}</script></body></html>"
        )
    }

    const STATE: &str = r#"{"ROOT_QUERY":{"__typename":"Query"},
"User:e2f299e30cb9":{"__typename":"User","id":"e2f299e30cb9","username":"annlee","name":"Ann Lee","bio":"","mediumMemberAt":0,"createdAt":1500000000000},
"Tag:python":{"__typename":"Tag","id":"python"},
"Collection:7f60cf5620c9":{"__typename":"Collection","id":"7f60cf5620c9","name":"Towards Data Science","slug":"towards-data-science","creator":{"__ref":"User:x"}},
"Post:6c68789e5a53":{"__typename":"Post","id":"6c68789e5a53","title":"A \u002Fslash","creator":{"__ref":"User:e2f299e30cb9"},"collection":{"__ref":"Collection:7f60cf5620c9"},"firstPublishedAt":1546453800123,"clapCount":12,"wordCount":900,"readingTime":3.5,"postResponses":{"__typename":"PostResponses","count":2},"tags":[{"__ref":"Tag:python"}],"inResponseToPostResult":null},
"Post:r1":{"__typename":"Post","id":"r1","title":"reply","creator":{"__ref":"User:e2f299e30cb9"},"inResponseToPostResult":{"__ref":"Post:6c68789e5a53"}}}"#;

    #[test]
    fn maps_the_apollo_state_of_a_profile_page() {
        let p = decode(
            page(STATE).as_bytes(),
            PageOf::Author {
                user_id: "e2f299e30cb9",
            },
        )
        .unwrap();
        let u = p.user.unwrap();
        assert_eq!(u.username.as_deref(), Some("annlee"));
        assert_eq!(u.bio, None, "empty strings are missing");
        let posts = p.references.posts.unwrap().0;
        let s = &posts[0];
        assert_eq!(s.title.as_deref(), Some("A /slash"));
        assert_eq!(s.home_collection_id.as_deref(), Some("7f60cf5620c9"));
        assert_eq!(s.virtuals.total_clap_count, Some(12));
        assert_eq!(s.virtuals.word_count, Some(900));
        assert_eq!(s.virtuals.responses_created_count, Some(2));
        assert_eq!(s.virtuals.image_count, None);
        assert_eq!(s.link_count(), None);
        assert_eq!(s.virtuals.tags[0].slug, "python");
        assert!(!s.is_response());
        assert!(posts[1].is_response());
        assert_eq!(
            p.references.collections.0[0].creator_id.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn a_publication_page_lists_the_authors_of_its_posts() {
        let p = decode(
            page(STATE).as_bytes(),
            PageOf::Publication {
                slug: "towards-data-science",
            },
        )
        .unwrap();
        assert_eq!(p.collection.unwrap().id, "7f60cf5620c9");
        assert_eq!(p.references.users.0.len(), 1);
        let e = decode(
            page(STATE).as_bytes(),
            PageOf::Publication { slug: "other" },
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"other\""), "{e}");
    }

    #[test]
    fn tells_a_challenge_from_a_page_without_state() {
        let challenge = "<!DOCTYPE html><html><head><title>Just a moment...</title></head>\
                         <body><script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1\"></script></body></html>";
        let e = decode(challenge.as_bytes(), PageOf::Author { user_id: "u" }).unwrap_err();
        assert_eq!(e, BodyError::Challenge);
        let plain = "<html><body><p>Hello</p><script>var x = 1;</script></body></html>";
        let e = decode(plain.as_bytes(), PageOf::Author { user_id: "u" }).unwrap_err();
        assert_eq!(e, BodyError::NoState);
        let cut = page(&STATE[..200]);
        let e = decode(cut.as_bytes(), PageOf::Author { user_id: "u" }).unwrap_err();
        assert!(matches!(e, BodyError::Truncated(_)), "{e:?}");
        assert_eq!(
            decode(b"", PageOf::Author { user_id: "u" }).unwrap_err(),
            BodyError::Empty
        );
    }
}
