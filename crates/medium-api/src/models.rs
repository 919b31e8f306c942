//! Serde models of the parts of Medium's payloads this project reads.
//!
//! Only the fields the tables need are declared; unknown fields are skipped without being
//! materialised. Every field Medium may leave out is optional or defaulted: a missing count is
//! `None` (null in the tables, never 0), missing `virtuals.tags` / `virtuals.links` are empty.
//! `references.User`, `.Post` and `.Collection` are maps keyed by id; [`IdMap`] keeps their
//! values in document order, which defines "first seen" for authors (SPEC §1).
//!
//! Text fields are [`CompactString`]s: the ids, usernames, slugs and most names fit in its 24
//! bytes, so a page's many short strings cost no allocation (#18: 9 % of a crawl's instructions).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

pub use compact_str::CompactString;

use super::paging::Paging;
use super::via::Via;

/// What a number field holds when the payload sent something that is not a whole number
/// (`12.5`, `"many"`, `true`, or an integer beyond i64): the field reads as this value instead
/// of failing the whole page, and the pipeline turns it (as any value out of range) into null
/// and counts it as rejected, with the post id and the field.
pub const MALFORMED: i64 = i64::MIN;

/// Reads an optional whole number leniently (see [`MALFORMED`]); `12.0` is 12.
pub fn lenient_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    deserializer.deserialize_any(LenientVisitor::<i64>(PhantomData))
}

/// Reads an optional number leniently: anything but a number reads as NaN, which the pipeline
/// rejects as it rejects values out of range.
pub fn lenient_float<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(LenientVisitor::<f64>(PhantomData))
}

/// A number type read leniently: what each kind of JSON number becomes, and what anything
/// that is not a number becomes.
trait Lenient: Sized {
    const MALFORMED: Self;
    fn from_i64(v: i64) -> Self;
    fn from_u64(v: u64) -> Self;
    fn from_f64(v: f64) -> Self;
}

impl Lenient for i64 {
    const MALFORMED: i64 = MALFORMED;
    fn from_i64(v: i64) -> i64 {
        v
    }
    fn from_u64(v: u64) -> i64 {
        i64::try_from(v).unwrap_or(MALFORMED)
    }
    fn from_f64(v: f64) -> i64 {
        let whole = v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18;
        if whole {
            v as i64
        } else {
            MALFORMED
        }
    }
}

impl Lenient for f64 {
    const MALFORMED: f64 = f64::NAN;
    fn from_i64(v: i64) -> f64 {
        v as f64
    }
    fn from_u64(v: u64) -> f64 {
        v as f64
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
}

/// Reads a [`Lenient`] number without building a `serde_json::Value`: null and a missing
/// value are `None`, a string, a bool, an array or an object is `T::MALFORMED`.
struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(T::from_i64(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(T::from_u64(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(T::from_f64(v)))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Some(T::MALFORMED))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some(T::MALFORMED))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(T::MALFORMED))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Some(T::MALFORMED))
    }
}

/// The values of a JSON object keyed by id, in document order (keys are ignored: every entity
/// carries its own id).
#[derive(Debug, Clone, PartialEq)]
pub struct IdMap<T>(pub Vec<T>);

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for IdMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdMapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for IdMapVisitor<T> {
            type Value = IdMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object keyed by id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((_, value)) = map.next_entry::<IgnoredAny, T>()? {
                    values.push(value);
                }
                Ok(IdMap(values))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(IdMap::default())
            }
        }
        deserializer.deserialize_any(IdMapVisitor(PhantomData))
    }
}

/// `payload.references`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct References {
    #[serde(rename = "User", default)]
    pub users: IdMap<User>,
    /// `None` when the page has no `references.Post` key at all (an empty page).
    #[serde(rename = "Post", default)]
    pub posts: Option<IdMap<Post>>,
    #[serde(rename = "Collection", default)]
    pub collections: IdMap<Collection>,
    /// Medium's own follower and following figures per user (profile streams carry the
    /// author's).
    #[serde(rename = "SocialStats", default)]
    pub social_stats: IdMap<SocialStats>,
}

/// `references.SocialStats.<user id>`: Medium's own figures for a user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocialStats {
    pub user_id: CompactString,
    /// How many users the user follows, as Medium counts them (can exceed the list it returns).
    #[serde(default)]
    pub users_followed_count: Option<i64>,
    /// How many users follow the user.
    #[serde(default)]
    pub users_followed_by_count: Option<i64>,
}

/// A Medium user (an author, or someone an author follows).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: CompactString,
    #[serde(default)]
    pub username: Option<CompactString>,
    #[serde(default)]
    pub name: Option<CompactString>,
    #[serde(default)]
    pub bio: Option<CompactString>,
    /// Epoch milliseconds.
    #[serde(default, deserialize_with = "lenient_int")]
    pub created_at: Option<i64>,
    /// Epoch milliseconds; Medium writes 0 for "not a member".
    #[serde(default, deserialize_with = "lenient_int")]
    pub medium_member_at: Option<i64>,
    #[serde(default)]
    pub twitter_screen_name: Option<CompactString>,
    #[serde(default)]
    pub image_id: Option<CompactString>,
}

/// A publication.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    pub id: CompactString,
    #[serde(default)]
    pub name: Option<CompactString>,
    #[serde(default)]
    pub slug: Option<CompactString>,
    #[serde(default)]
    pub description: Option<CompactString>,
    #[serde(default)]
    pub creator_id: Option<CompactString>,
    #[serde(default)]
    pub domain: Option<CompactString>,
}

/// A post: a story, or a response when `in_response_to_post_id` is non-empty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    pub id: CompactString,
    #[serde(default)]
    pub creator_id: CompactString,
    #[serde(default)]
    pub title: Option<CompactString>,
    #[serde(default)]
    pub unique_slug: Option<CompactString>,
    /// Empty string (or missing) = published in no publication.
    #[serde(default)]
    pub home_collection_id: Option<CompactString>,
    /// Epoch milliseconds.
    #[serde(default, deserialize_with = "lenient_int")]
    pub first_published_at: Option<i64>,
    /// Epoch milliseconds.
    #[serde(default, deserialize_with = "lenient_int")]
    pub latest_published_at: Option<i64>,
    /// Non-empty = this post is a response, not a story.
    #[serde(default)]
    pub in_response_to_post_id: Option<CompactString>,
    /// A response whose parent's id the source does not give (GraphQL's
    /// `inResponseToPostResult` is a `NotFound`): a response, with `in_response_to_post_id`
    /// null.
    #[serde(skip)]
    pub responds_to_unknown: bool,
    #[serde(default)]
    pub virtuals: Virtuals,
    /// The format the post was read from (set by the decoder, not by the payload).
    #[serde(skip)]
    pub source: Via,
}

impl Post {
    /// The number of links in the story, where the source carries it: JSON counts
    /// `virtuals.links.entries` (0 when `links` is missing, as Medium leaves it out of stories
    /// without links); RSS counts the links of the story's HTML; GraphQL counts the markups of
    /// the post's body (fetched apart, see [`crate::graphql`]); HTML pages do not carry it.
    pub fn link_count(&self) -> Option<usize> {
        let links = self.virtuals.links.as_ref().map(|l| l.entries.len());
        match self.source {
            // the API leaves `links` out of stories without links
            Via::Json => Some(links.unwrap_or(0)),
            // a feed item without a body, or a page (which does not carry links)
            Via::Graphql | Via::Html | Via::Rss => links,
        }
    }

    /// A story by `author`: written by them and not a response (SPEC §4).
    pub fn is_story_by(&self, author: &str) -> bool {
        self.creator_id == author && !self.is_response()
    }

    pub fn is_response(&self) -> bool {
        self.responds_to_unknown
            || self
                .in_response_to_post_id
                .as_deref()
                .is_some_and(|id| !id.is_empty())
    }
}

/// `post.virtuals`: Medium's computed fields.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Virtuals {
    #[serde(default, deserialize_with = "lenient_int")]
    pub word_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub total_clap_count: Option<i64>,
    /// Minutes, fractional.
    #[serde(default, deserialize_with = "lenient_float")]
    pub reading_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub image_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub responses_created_count: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub links: Option<Links>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tag {
    pub slug: CompactString,
}

/// `virtuals.links`: an object whose `entries` are the links in the story.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Links {
    #[serde(default, deserialize_with = "null_as_default")]
    pub entries: Vec<IgnoredEntry>,
}

/// A link entry; only counted, never read.
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoredEntry;

impl<'de> Deserialize<'de> for IgnoredEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(IgnoredEntry)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The payload of a publication stream or an author's profile stream.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamPayload {
    /// The publication itself (publication streams).
    #[serde(default)]
    pub collection: Option<Collection>,
    /// The author (profile streams).
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub references: References,
    #[serde(default)]
    pub paging: Option<Paging>,
    /// Authors a page names only by display name (an RSS publication feed's `dc:creator`):
    /// they cannot be harvested, and the run says so.
    #[serde(skip)]
    pub unresolved_creators: Vec<String>,
}

/// The payload of a following page: `value` is the users followed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FollowingPayload {
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: Vec<User>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// What a page contributes to the end-of-stream test: the ids of its items (SPEC §2).
pub trait PageItems {
    fn item_ids(&self) -> Vec<&str>;
    fn paging(&self) -> Option<&Paging>;
    /// When each item of [`PageItems::item_ids`] was first published, where pages say
    /// (posts); empty for pages of users.
    fn item_published(&self) -> Vec<Option<i64>> {
        Vec::new()
    }
}

impl PageItems for StreamPayload {
    fn item_ids(&self) -> Vec<&str> {
        self.references
            .posts
            .as_ref()
            .map(|posts| posts.0.iter().map(|p| p.id.as_str()).collect())
            .unwrap_or_default()
    }
    fn paging(&self) -> Option<&Paging> {
        self.paging.as_ref()
    }
    fn item_published(&self) -> Vec<Option<i64>> {
        self.references
            .posts
            .as_ref()
            .map(|posts| posts.0.iter().map(|p| p.first_published_at).collect())
            .unwrap_or_default()
    }
}

impl PageItems for FollowingPayload {
    fn item_ids(&self) -> Vec<&str> {
        self.value.iter().map(|u| u.user_id.as_str()).collect()
    }
    fn paging(&self) -> Option<&Paging> {
        self.paging.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::parse_payload;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/medium/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_the_real_publication_stream() {
        let page: StreamPayload = parse_payload(&fixture("collection_stream.json")).unwrap();
        assert_eq!(page.collection.as_ref().unwrap().id, "7f60cf5620c9");
        let users = &page.references.users.0;
        assert_eq!(users.len(), 10);
        // document order, not key order
        assert_eq!(users[0].user_id, "cba121ffc3f5");
        assert_eq!(users[9].user_id, "bb3521dac22f");
        let posts = page.references.posts.as_ref().unwrap();
        assert_eq!(posts.0.len(), 10);
        let first = &posts.0[0];
        assert_eq!(first.id, "71cfbe428bd1");
        assert_eq!(first.virtuals.word_count, Some(927));
        assert_eq!(first.virtuals.total_clap_count, Some(111));
        assert_eq!(first.link_count(), Some(6));
        assert_eq!(first.virtuals.tags.len(), 5);
        assert!(page.paging.is_some());
    }

    #[test]
    fn reads_the_real_profile_stream_and_following_page() {
        let page: StreamPayload = parse_payload(&fixture("user_profile_stream.json")).unwrap();
        assert_eq!(page.user.as_ref().unwrap().user_id, "e2f299e30cb9");
        assert_eq!(
            page.item_ids(),
            ["6c68789e5a53", "e16cc71abb64", "24c6491a8ff0"]
        );
        assert_eq!(page.references.collections.0.len(), 2);
        let following: FollowingPayload = parse_payload(&fixture("user_following.json")).unwrap();
        assert_eq!(
            following.item_ids(),
            ["48dfcde4c4fd", "7053de462a28", "a32c340ea342"]
        );
    }

    #[test]
    fn missing_fields_are_none_not_zero() {
        let body = br#"{"success":true,"payload":{"references":{"Post":{"p1":{"id":"p1","creatorId":"u","virtuals":{"tags":null}}}}}}"#;
        let page: StreamPayload = parse_payload(body).unwrap();
        let post = &page.references.posts.unwrap().0[0];
        assert_eq!(post.virtuals.word_count, None);
        assert_eq!(post.virtuals.total_clap_count, None);
        assert_eq!(post.virtuals.reading_time, None);
        assert_eq!(post.link_count(), Some(0));
        assert!(post.virtuals.tags.is_empty());
        assert!(!post.is_response());
    }

    /// Every kind of JSON value a count or a reading time may hold, read leniently.
    #[test]
    fn reads_numbers_leniently() {
        #[derive(Deserialize)]
        struct N {
            #[serde(default, deserialize_with = "lenient_int")]
            i: Option<i64>,
            #[serde(default, deserialize_with = "lenient_float")]
            f: Option<f64>,
        }
        let read =
            |v: &str| -> N { serde_json::from_str(&format!("{{\"i\":{v},\"f\":{v}}}")).unwrap() };
        for (v, i, f) in [
            ("12", Some(12), Some(12.0)),
            ("-3", Some(-3), Some(-3.0)),
            ("12.0", Some(12), Some(12.0)),
            ("12.5", Some(MALFORMED), Some(12.5)),
            (
                "18446744073709551615",
                Some(MALFORMED),
                Some(18446744073709551615.0),
            ),
            ("1e30", Some(MALFORMED), Some(1e30)),
            ("null", None, None),
        ] {
            let n = read(v);
            assert_eq!((n.i, n.f), (i, f), "{v}");
        }
        for v in ["\"many\"", "true", "[1,[2]]", "{\"a\":{}}"] {
            let n = read(v);
            assert_eq!(n.i, Some(MALFORMED), "{v}");
            assert!(n.f.is_some_and(f64::is_nan), "{v}");
        }
        let missing: N = serde_json::from_str("{}").unwrap();
        assert_eq!((missing.i, missing.f), (None, None));
    }

    #[test]
    fn an_empty_page_has_no_post_references() {
        let page: StreamPayload =
            parse_payload(br#"{"success":true,"payload":{"references":{}}}"#).unwrap();
        assert!(page.references.posts.is_none());
        assert!(page.item_ids().is_empty());
    }
}
