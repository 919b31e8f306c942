//! Medium's GraphQL door (`POST /_/graphql`), in one place: the operations medium-etl sends
//! (their names, query texts and variables, built from a stream and its paging query), and the
//! decoders that map the replies onto the same models as the legacy JSON API's
//! ([`StreamPayload`], [`FollowingPayload`]) plus the link counts of post bodies
//! ([`BodiesPayload`]). The SDL subset, transport and paging are `MEDIUM-GRAPHQL.md`'s; when a
//! real capture shows a difference, this module changes.
//!
//! - A publication: `collectionByDomainOrSlug(domainOrSlug)` (by slug) or `collection(id)` →
//!   `homepagePostsConnection`. Its authors are the distinct creators of the posts listed,
//!   first seen first.
//! - An author's stories: `userResult(id)` → `homepagePostsConnection` with the author's
//!   responses (`includeDistributedResponses: true`), told apart by `inResponseToPostResult`, as
//!   the JSON source tells them apart by `inResponseToPostId`; plus the profile fields and
//!   `socialStats`.
//! - An author's followings: `userResult(id)` → `followingUserConnection`.
//! - Link counts: `post(id)` → `content.bodyModel.paragraphs[].markups[]` of type `A` with an
//!   `href`, [`BODY_BATCH`] posts per HTTP request (a batched array of operations). A
//!   member-only post (`isLocked`) has its body truncated for anonymous readers, so its link
//!   count is left null rather than undercounted.
//!
//! Paging: the paging query of a stream (as [`crate::paging::StreamPager`] builds it from
//! `pagingInfo.next`, e.g. `limit=25&from=L1546300377981`) becomes the `paging` variable, with
//! only the fields that have values (`PagingOptions` refuses nulls; `source: ""` is dropped), and
//! `limit` never over [`LIMIT`]. Pinned posts come first and come again at their own date; the
//! tables keep each post once.
//!
//! Errors: a GraphQL error comes with HTTP 200. Any entry in `errors` is a typed error naming
//! the operation, its variables and the message, even beside partial `data` (a partial answer
//! is not used), and is retried like a malformed body. An error in GraphQL's validation wording
//! ("Cannot query field", "Unknown type", ...) says the field or operation does not exist here:
//! it is final and closes the door ([`BodyError::is_closed_door`]: `--via auto` moves the
//! family on); `NotFound` (or a null collection) is that one stream's, as a 404 is. A reply
//! without the connection asked for, or about another user than the one asked for, is a shape
//! error, never an empty page.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::endpoints::{PublicationRef, StreamId};
use crate::models::{
    Collection, CompactString, FollowingPayload, IdMap, Links, Post, References, SocialStats,
    StreamPayload, Tag, User, Virtuals,
};
use crate::paging::Paging;
use crate::via::Via;
use crate::{BodyError, GraphqlError, GraphqlNotFound};

/// The endpoint's path.
pub const PATH: &str = "/_/graphql";

/// The largest `limit` Medium accepts (`followingUserConnection` refuses more), and the page
/// size asked for on every connection.
pub const LIMIT: u32 = 25;

/// Posts whose bodies one HTTP request asks for. One page of a connection holds at most
/// [`LIMIT`] posts, so the bodies of a page cost one request; the bodies are small (only the
/// markups' type and href are selected), so a batch's reply stays around 100 KB, and a batch
/// that fails costs at most this many bodies.
pub const BODY_BATCH: usize = 25;

/// The query key of a post-bodies request: `ids=<id>,<id>,...`.
pub const IDS_KEY: &str = "ids";

const USER_FIELDS: &str = "fragment UserFields on User { id username name bio imageId \
twitterScreenName createdAt mediumMemberAt }";

const POST_FIELDS: &str = "fragment PostFields on Post { id title uniqueSlug creator { \
...UserFields } collection { id name slug domain description creator { id } } firstPublishedAt \
latestPublishedAt clapCount readingTime wordCount isLocked pinnedAt tags { normalizedTagSlug } \
postResponses { count } inResponseToPostResult { __typename ... on Post { id } } }";

const PAGING: &str = "pagingInfo { next { from to limit page source } }";

/// One operation, as sent (and as the raw store's metadata records it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub operation_name: String,
    pub variables: Value,
    pub query: Cow<'static, str>,
}

/// What one HTTP request sends: one operation, or a batch (an array, answered in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    One(Operation),
    Batch(Vec<Operation>),
}

impl Request {
    /// The request body.
    pub fn body(&self) -> Vec<u8> {
        // serializing strings and JSON values into a Vec cannot fail
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The operations, in order.
    pub fn operations(&self) -> &[Operation] {
        match self {
            Request::One(op) => std::slice::from_ref(op),
            Request::Batch(ops) => ops,
        }
    }

    /// `UserPosts {"id":"…","paging":{…}}`, or `PostLinks ×3 {…}` for a batch, for messages.
    pub fn describe(&self) -> String {
        match self.operations() {
            [] => "an empty batch".to_owned(),
            [op] => format!("{} {}", op.operation_name, op.variables),
            [first, ..] => format!(
                "{} ×{} (first {})",
                first.operation_name,
                self.operations().len(),
                first.variables
            ),
        }
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The `paging` variable of a paging query: only `PagingOptions`' fields, only with values;
/// `limit` at most [`LIMIT`].
pub fn paging_variable(query: &str) -> Value {
    let mut paging = Map::new();
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "from" | "to" | "source" if !value.is_empty() => {
                paging.insert(key, Value::String(value));
            }
            "limit" | "page" => {
                if let Ok(n) = value.parse::<u32>() {
                    let n = if key == "limit" { n.min(LIMIT) } else { n };
                    paging.insert(key, json!(n));
                }
            }
            _ => {}
        }
    }
    Value::Object(paging)
}

/// The post ids of a post-bodies query (`ids=a,b,c`).
pub fn body_ids(query: &str) -> Vec<String> {
    query_pairs(query)
        .into_iter()
        .filter(|(k, _)| k == IDS_KEY)
        .flat_map(|(_, v)| {
            v.split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The query of a post-bodies request for `ids`.
pub fn bodies_query(ids: &[&str]) -> String {
    crate::paging::encode_query(&[(IDS_KEY.to_owned(), ids.join(","))])
}

/// The query texts, built once (a request is built for every page fetched and decoded).
static PUBLICATION_POSTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "query PublicationPosts($slug: ID!, $paging: PagingOptions) {{ \
         collectionByDomainOrSlug(domainOrSlug: $slug) {{ ...CollectionPosts }} }} \
         {COLLECTION_POSTS} {POST_FIELDS} {USER_FIELDS}"
    )
});
static COLLECTION_POSTS_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "query CollectionPosts($id: ID!, $paging: PagingOptions) {{ \
         collection(id: $id) {{ ...CollectionPosts }} }} \
         {COLLECTION_POSTS} {POST_FIELDS} {USER_FIELDS}"
    )
});
static USER_POSTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "query UserPosts($id: ID, $paging: PagingOptions) {{ userResult(id: $id) {{ \
         __typename ... on NotFound {{ message }} ... on User {{ ...UserFields \
         socialStats {{ followerCount followingCount }} \
         homepagePostsConnection(paging: $paging, includeDistributedResponses: true) {{ \
         posts {{ ...PostFields }} {PAGING} }} }} }} }} {POST_FIELDS} {USER_FIELDS}"
    )
});
static USER_FOLLOWING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "query UserFollowing($id: ID, $paging: PagingOptions) {{ userResult(id: $id) {{ \
         __typename ... on NotFound {{ message }} ... on User {{ id \
         followingUserConnection(paging: $paging) {{ users {{ ...UserFields }} {PAGING} \
         }} }} }} }} {USER_FIELDS}"
    )
});

/// The request that asks for page `query` of `stream`.
pub fn request(stream: &StreamId, query: &str) -> Request {
    let paging = paging_variable(query);
    let op = |name: &str, variables: Value, text: &'static str| Operation {
        operation_name: name.to_owned(),
        variables,
        query: Cow::Borrowed(text),
    };
    match stream {
        StreamId::Publication(PublicationRef::Slug(slug)) => Request::One(op(
            "PublicationPosts",
            json!({"slug": slug, "paging": paging}),
            &PUBLICATION_POSTS,
        )),
        StreamId::Publication(PublicationRef::Id(id)) => Request::One(op(
            "CollectionPosts",
            json!({"id": id, "paging": paging}),
            &COLLECTION_POSTS_BY_ID,
        )),
        StreamId::Profile(id) => Request::One(op(
            "UserPosts",
            json!({"id": id, "paging": paging}),
            &USER_POSTS,
        )),
        StreamId::Following(id) => Request::One(op(
            "UserFollowing",
            json!({"id": id, "paging": paging}),
            &USER_FOLLOWING,
        )),
        StreamId::PostBodies(_) => Request::Batch(
            body_ids(query)
                .into_iter()
                .map(|id| op("PostLinks", json!({ "id": id }), POST_LINKS))
                .collect(),
        ),
    }
}

const COLLECTION_POSTS: &str = "fragment CollectionPosts on Collection { id name slug domain \
description creator { id } homepagePostsConnection(paging: $paging) { posts { ...PostFields } \
pagingInfo { next { from to limit page source } } } }";

const POST_LINKS: &str = "query PostLinks($id: ID!) { post(id: $id) { id isLocked content { \
bodyModel { paragraphs { markups { type href } } } } } }";

// ---- replies ----

/// One entry of `errors`.
#[derive(Debug, Clone, Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    path: Option<Vec<Value>>,
}

impl ErrorEntry {
    fn text(&self) -> String {
        let message = self.message.as_deref().unwrap_or("(no message)");
        match self.path.as_deref() {
            Some(path) if !path.is_empty() => {
                let path: Vec<String> = path
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                format!("{message} (at {})", path.join("."))
            }
            _ => message.to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Reply<D> {
    #[serde(default = "none")]
    data: Option<D>,
    #[serde(default)]
    errors: Option<Vec<ErrorEntry>>,
}

fn none<T>() -> Option<T> {
    None
}

/// Whether an error says the field, type or operation does not exist here: the door is closed
/// (Medium changed or withdrew it), not this one request wrong.
fn says_unavailable(message: &str) -> bool {
    // GraphQL's validation wording (graphql-js, async-graphql): not a transient failure, nor
    // one user's ("This user is unavailable")
    let m = message.to_ascii_lowercase();
    [
        "cannot query field",
        "unknown field",
        "unknown type",
        "unknown argument",
        "unknown operation",
    ]
    .iter()
    .any(|marker| m.contains(marker))
}

/// Reads a reply of `n` operations (one object, or an array in the request's order).
fn replies<D: DeserializeOwned>(
    body: &[u8],
    request: &Request,
) -> Result<Vec<Option<D>>, BodyError> {
    let json = crate::guard::strip_guard(body);
    let parsed: Result<Vec<Reply<D>>, serde_json::Error> = match json.first() {
        None => return Err(BodyError::Empty),
        Some(b'<') => return Err(BodyError::of_html_page(json)),
        Some(b'[') => serde_json::from_slice(json),
        Some(_) => serde_json::from_slice::<Reply<D>>(json).map(|r| vec![r]),
    };
    let replies = parsed.map_err(|e| {
        if e.is_eof() {
            BodyError::Truncated(e.to_string())
        } else if e.is_syntax() {
            BodyError::NotJson(e.to_string())
        } else {
            BodyError::Shape(format!("{}: {e}", request.describe()))
        }
    })?;
    let ops = request.operations();
    if replies.len() != ops.len() {
        return Err(BodyError::Shape(format!(
            "{}: {} replies to {} operations",
            request.describe(),
            replies.len(),
            ops.len()
        )));
    }
    let mut out = Vec::with_capacity(replies.len());
    for (reply, op) in replies.into_iter().zip(ops) {
        let errors = reply.errors.unwrap_or_default();
        if !errors.is_empty() {
            let message = errors
                .iter()
                .map(ErrorEntry::text)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(BodyError::Graphql(Box::new(GraphqlError {
                operation: op.operation_name.clone(),
                variables: op.variables.to_string(),
                unavailable: errors
                    .iter()
                    .any(|e| e.message.as_deref().is_some_and(says_unavailable)),
                message,
            })));
        }
        out.push(reply.data);
    }
    Ok(out)
}

fn not_found(op: &Operation, message: Option<String>) -> BodyError {
    BodyError::NotFound(Box::new(GraphqlNotFound {
        operation: op.operation_name.clone(),
        variables: op.variables.to_string(),
        message,
    }))
}

/// Epoch milliseconds, written as a Float.
fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<f64>::deserialize(d)?;
    Ok(v.filter(|x| x.is_finite() && x.abs() < 9.0e15)
        .map(|x| x as i64))
}

#[derive(Debug, Deserialize)]
struct Id {
    id: CompactString,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GUser {
    id: CompactString,
    #[serde(default)]
    username: Option<CompactString>,
    #[serde(default)]
    name: Option<CompactString>,
    #[serde(default)]
    bio: Option<CompactString>,
    #[serde(default)]
    image_id: Option<CompactString>,
    #[serde(default)]
    twitter_screen_name: Option<CompactString>,
    #[serde(default, deserialize_with = "ms")]
    created_at: Option<i64>,
    #[serde(default, deserialize_with = "ms")]
    medium_member_at: Option<i64>,
}

impl From<GUser> for User {
    fn from(u: GUser) -> User {
        User {
            user_id: u.id,
            username: u.username,
            name: u.name,
            bio: u.bio,
            created_at: u.created_at,
            medium_member_at: u.medium_member_at,
            twitter_screen_name: u.twitter_screen_name,
            image_id: u.image_id,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GSocialStats {
    #[serde(default)]
    follower_count: Option<i64>,
    #[serde(default)]
    following_count: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct GCollection {
    id: CompactString,
    #[serde(default)]
    name: Option<CompactString>,
    #[serde(default)]
    slug: Option<CompactString>,
    #[serde(default)]
    domain: Option<CompactString>,
    #[serde(default)]
    description: Option<CompactString>,
    #[serde(default)]
    creator: Option<Id>,
}

impl From<GCollection> for Collection {
    fn from(c: GCollection) -> Collection {
        Collection {
            id: c.id,
            name: c.name,
            slug: c.slug,
            description: c.description,
            creator_id: c.creator.map(|u| u.id),
            domain: c.domain,
        }
    }
}

#[derive(Debug, Deserialize)]
struct GTag {
    #[serde(rename = "normalizedTagSlug", default)]
    slug: Option<CompactString>,
}

#[derive(Debug, Deserialize)]
struct GCount {
    #[serde(default)]
    count: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct GPostResult {
    #[serde(rename = "__typename", default)]
    typename: Option<String>,
    #[serde(default)]
    id: Option<CompactString>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GPost {
    id: CompactString,
    #[serde(default)]
    title: Option<CompactString>,
    #[serde(default)]
    unique_slug: Option<CompactString>,
    #[serde(default)]
    creator: Option<GUser>,
    #[serde(default)]
    collection: Option<GCollection>,
    #[serde(default, deserialize_with = "ms")]
    first_published_at: Option<i64>,
    #[serde(default, deserialize_with = "ms")]
    latest_published_at: Option<i64>,
    #[serde(default)]
    clap_count: Option<i64>,
    #[serde(default)]
    reading_time: Option<f64>,
    #[serde(default)]
    word_count: Option<i64>,
    #[serde(default)]
    tags: Option<Vec<Option<GTag>>>,
    #[serde(default)]
    post_responses: Option<GCount>,
    #[serde(default)]
    in_response_to_post_result: Option<GPostResult>,
}

impl GPost {
    /// The post, and its creator and publication for the page's references.
    fn into_parts(self) -> Result<(Post, Option<User>, Option<Collection>), BodyError> {
        let (in_response_to, responds_to_unknown) = match self.in_response_to_post_result {
            None => (None, false),
            Some(GPostResult {
                typename: Some(t),
                id: Some(id),
            }) if t == "Post" && !id.is_empty() => (Some(id), false),
            // a response to a post that is gone (NotFound), or without its id
            Some(_) => (None, true),
        };
        let creator = self.creator.map(User::from);
        let collection = self.collection.map(Collection::from);
        let post = Post {
            id: self.id,
            creator_id: creator
                .as_ref()
                .map(|u| u.user_id.clone())
                .unwrap_or_default(),
            title: self.title,
            unique_slug: self.unique_slug,
            home_collection_id: Some(
                collection
                    .as_ref()
                    .map(|c| c.id.clone())
                    .unwrap_or_default(),
            ),
            first_published_at: self.first_published_at,
            latest_published_at: self.latest_published_at,
            in_response_to_post_id: in_response_to,
            responds_to_unknown,
            virtuals: Virtuals {
                word_count: self.word_count,
                total_clap_count: self.clap_count,
                reading_time: self.reading_time,
                image_count: None,
                responses_created_count: self.post_responses.and_then(|r| r.count),
                tags: self
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.slug.filter(|s| !s.is_empty()))
                    .map(|slug| Tag { slug })
                    .collect(),
                // counted from the bodies (`BodiesPayload`), merged in by the harvest
                links: None,
            },
            source: Via::Graphql,
        };
        Ok((post, creator, collection))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GPostConnection {
    #[serde(default)]
    posts: Option<Vec<GPost>>,
    #[serde(default)]
    paging_info: Option<Paging>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GUserConnection {
    #[serde(default)]
    users: Option<Vec<GUser>>,
    #[serde(default)]
    paging_info: Option<Paging>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GCollectionPosts {
    #[serde(flatten)]
    collection: GCollection,
    #[serde(default)]
    homepage_posts_connection: Option<GPostConnection>,
}

/// `userResult`: a `User` or a `NotFound`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GUserResult {
    #[serde(rename = "__typename", default)]
    typename: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    id: Option<CompactString>,
    #[serde(default)]
    username: Option<CompactString>,
    #[serde(default)]
    name: Option<CompactString>,
    #[serde(default)]
    bio: Option<CompactString>,
    #[serde(default)]
    image_id: Option<CompactString>,
    #[serde(default)]
    twitter_screen_name: Option<CompactString>,
    #[serde(default, deserialize_with = "ms")]
    created_at: Option<i64>,
    #[serde(default, deserialize_with = "ms")]
    medium_member_at: Option<i64>,
    #[serde(default)]
    social_stats: Option<GSocialStats>,
    #[serde(default)]
    homepage_posts_connection: Option<GPostConnection>,
    #[serde(default)]
    following_user_connection: Option<GUserConnection>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserData {
    #[serde(default)]
    user_result: Option<GUserResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionData {
    #[serde(default, alias = "collection")]
    collection_by_domain_or_slug: Option<GCollectionPosts>,
}

/// The single operation's data, or why there is none.
fn one<D: DeserializeOwned>(body: &[u8], request: &Request) -> Result<D, BodyError> {
    let op = &request.operations()[0];
    replies::<D>(body, request)?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| BodyError::Shape(format!("{}: no data", request.describe())))
        .map_err(|e| match e {
            BodyError::Shape(_) => BodyError::Shape(format!(
                "{} {}: the reply has neither data nor errors",
                op.operation_name, op.variables
            )),
            other => other,
        })
}

/// The `User` of a `userResult` (the one asked for, `user_id`), or `NotFound`.
fn user_result(body: &[u8], request: &Request, user_id: &str) -> Result<GUserResult, BodyError> {
    let op = &request.operations()[0];
    let data: UserData = one(body, request)?;
    match data.user_result {
        None => Err(not_found(op, None)),
        Some(r) if r.typename.as_deref() == Some("NotFound") => Err(not_found(op, r.message)),
        Some(r) if r.id.is_none() => Err(BodyError::Shape(format!(
            "{} {}: userResult is a {} without an id",
            op.operation_name,
            op.variables,
            r.typename.as_deref().unwrap_or("value")
        ))),
        Some(r) if r.id.as_deref() != Some(user_id) => Err(BodyError::Shape(format!(
            "{} {}: the reply is about user {:?}",
            op.operation_name,
            op.variables,
            r.id.as_deref().unwrap_or_default()
        ))),
        Some(r) => Ok(r),
    }
}

/// A reply that lacks what was asked for (and says no error): a shape error, not an empty page.
fn missing(op: &Operation, what: &str) -> BodyError {
    BodyError::Shape(format!(
        "{} {}: the reply has no {what}",
        op.operation_name, op.variables
    ))
}

/// A page of a publication's posts or of an author's stories.
pub fn decode_stream(
    stream: &StreamId,
    query: &str,
    body: &[u8],
) -> Result<StreamPayload, BodyError> {
    let request = request(stream, query);
    match stream {
        StreamId::Publication(_) => {
            let op = &request.operations()[0];
            let data: CollectionData = one(body, &request)?;
            let c = data
                .collection_by_domain_or_slug
                .ok_or_else(|| not_found(op, None))?;
            let mut page = posts_page(c.homepage_posts_connection, None, op)?;
            page.collection = Some(Collection::from(c.collection));
            Ok(page)
        }
        StreamId::Profile(_) => {
            let op = &request.operations()[0];
            let r = user_result(body, &request, stream.key())?;
            let user = User {
                user_id: r.id.clone().unwrap_or_default(),
                username: r.username,
                name: r.name,
                bio: r.bio,
                created_at: r.created_at,
                medium_member_at: r.medium_member_at,
                twitter_screen_name: r.twitter_screen_name,
                image_id: r.image_id,
            };
            let mut page = posts_page(r.homepage_posts_connection, Some(&user), op)?;
            if let Some(s) = r.social_stats {
                page.references.social_stats = IdMap(vec![SocialStats {
                    user_id: user.user_id.clone(),
                    users_followed_count: s.following_count,
                    users_followed_by_count: s.follower_count,
                }]);
            }
            page.user = Some(user);
            Ok(page)
        }
        StreamId::Following(_) | StreamId::PostBodies(_) => Err(BodyError::Shape(format!(
            "{stream} is not a stream of posts"
        ))),
    }
}

/// The posts of a connection as a stream page: the posts, their creators (first seen first;
/// `author` first on a profile page) and publications.
fn posts_page(
    connection: Option<GPostConnection>,
    author: Option<&User>,
    op: &Operation,
) -> Result<StreamPayload, BodyError> {
    let connection = connection.ok_or_else(|| missing(op, "homepagePostsConnection"))?;
    let mut users: Vec<User> = author.cloned().into_iter().collect();
    let mut collections: Vec<Collection> = Vec::new();
    let mut posts = Vec::new();
    let (mut seen_users, mut seen_collections) = (HashSet::new(), HashSet::new());
    if let Some(a) = author {
        seen_users.insert(a.user_id.clone());
    }
    for p in connection
        .posts
        .ok_or_else(|| missing(op, "homepagePostsConnection.posts"))?
    {
        let (post, creator, collection) = p.into_parts()?;
        if let Some(u) = creator {
            if seen_users.insert(u.user_id.clone()) {
                users.push(u);
            }
        }
        if let Some(c) = collection {
            if !c.id.is_empty() && seen_collections.insert(c.id.clone()) {
                collections.push(c);
            }
        }
        posts.push(post);
    }
    Ok(StreamPayload {
        collection: None,
        user: None,
        references: References {
            users: IdMap(users),
            posts: Some(IdMap(posts)),
            collections: IdMap(collections),
            social_stats: IdMap::default(),
        },
        paging: connection.paging_info,
        unresolved_creators: Vec::new(),
    })
}

/// A page of an author's followings.
pub fn decode_following(
    stream: &StreamId,
    query: &str,
    body: &[u8],
) -> Result<FollowingPayload, BodyError> {
    let request = request(stream, query);
    if !matches!(stream, StreamId::Following(_)) {
        return Err(BodyError::Shape(format!(
            "{stream} is not a following list"
        )));
    }
    let op = &request.operations()[0];
    let r = user_result(body, &request, stream.key())?;
    let connection = r
        .following_user_connection
        .ok_or_else(|| missing(op, "followingUserConnection"))?;
    Ok(FollowingPayload {
        value: connection
            .users
            .ok_or_else(|| missing(op, "followingUserConnection.users"))?
            .into_iter()
            .map(User::from)
            .collect(),
        paging: connection.paging_info,
    })
}

/// The link count of one post, from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostLinks {
    pub post_id: String,
    /// `None` when the body is not whole (a member-only post read anonymously) or the post is
    /// gone.
    pub link_count: Option<usize>,
}

/// A batch of post bodies, reduced to link counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodiesPayload {
    pub posts: Vec<PostLinks>,
}

impl crate::models::PageItems for BodiesPayload {
    fn item_ids(&self) -> Vec<&str> {
        self.posts.iter().map(|p| p.post_id.as_str()).collect()
    }
    fn paging(&self) -> Option<&Paging> {
        None
    }
}

#[derive(Debug, Deserialize)]
struct GMarkup {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    href: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GParagraph {
    #[serde(default)]
    markups: Option<Vec<Option<GMarkup>>>,
}

#[derive(Debug, Deserialize)]
struct GBodyModel {
    #[serde(default)]
    paragraphs: Option<Vec<Option<GParagraph>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GContent {
    #[serde(default)]
    body_model: Option<GBodyModel>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GBody {
    id: String,
    #[serde(default)]
    is_locked: Option<bool>,
    #[serde(default)]
    content: Option<GContent>,
}

#[derive(Debug, Deserialize)]
struct BodyData {
    #[serde(default)]
    post: Option<GBody>,
}

/// The links of a body: its markups of type `A` with an `href`.
fn links_in(content: Option<GContent>) -> Option<usize> {
    let paragraphs = content?.body_model?.paragraphs?;
    Some(
        paragraphs
            .into_iter()
            .flatten()
            .flat_map(|p| p.markups.unwrap_or_default())
            .flatten()
            .filter(|m| {
                m.kind.as_deref() == Some("A") && m.href.as_deref().is_some_and(|h| !h.is_empty())
            })
            .count(),
    )
}

/// A batch of post bodies.
pub fn decode_bodies(
    stream: &StreamId,
    query: &str,
    body: &[u8],
) -> Result<BodiesPayload, BodyError> {
    let request = request(stream, query);
    if !matches!(stream, StreamId::PostBodies(_)) || request.operations().is_empty() {
        return Err(BodyError::Shape(format!(
            "{stream} ?{query} is not a batch of post bodies"
        )));
    }
    let data = replies::<BodyData>(body, &request)?;
    let ids = body_ids(query);
    let mut posts = Vec::with_capacity(ids.len());
    for (id, data) in ids.into_iter().zip(data) {
        let link_count = match data.and_then(|d| d.post) {
            // gone since it was listed: its count is unknown, not 0
            None => None,
            Some(b) if b.id != id => {
                return Err(BodyError::Shape(format!(
                    "PostLinks {{\"id\":{id:?}}}: the reply is the body of post {:?}",
                    b.id
                )))
            }
            Some(b) if b.is_locked == Some(true) => None,
            Some(b) => links_in(b.content),
        };
        posts.push(PostLinks {
            post_id: id,
            link_count,
        });
    }
    Ok(BodiesPayload { posts })
}

/// Sets each post's link count from the bodies (the posts a body does not cover keep theirs).
pub fn merge_link_counts<'a>(
    posts: impl IntoIterator<Item = &'a mut Post>,
    bodies: &[BodiesPayload],
) {
    let counts: std::collections::HashMap<&str, Option<usize>> = bodies
        .iter()
        .flat_map(|b| &b.posts)
        .map(|p| (p.post_id.as_str(), p.link_count))
        .collect();
    for post in posts {
        if let Some(count) = counts.get(post.id.as_str()) {
            post.virtuals.links = count.map(|n| Links {
                entries: vec![crate::models::IgnoredEntry; n],
            });
        }
    }
}
