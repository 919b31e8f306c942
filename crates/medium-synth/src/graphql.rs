//! The synthetic Medium's GraphQL door (`POST /_/graphql`), on async-graphql: the SDL subset of
//! `MEDIUM-GRAPHQL.md`, typed, so a query with a misspelled field or argument is refused with
//! the error a GraphQL server gives ("Unknown field ... Did you mean ..."), exactly as Medium
//! refuses it. The world is the one the JSON API serves ([`SyntheticMedium`]): the same
//! authors, stories, counts and followings, so a harvest through either door must give the
//! same numbers.
//!
//! Medium's rules, as the file records them:
//! - `PagingOptions` refuses `null` fields; `followingUserConnection` refuses `limit` over 25.
//! - `homepagePostsConnection` without `from` lists the pinned posts first (cursor `P<ms>`),
//!   then every post newest first (cursor `L<ms>`), pins included again; `from: "L<now>"`
//!   skips the pins. `next.source` is `""`. A collection's connection ends with an empty page;
//!   a user's and a following list end with `next: null`.
//! - A user's connection includes their responses unless `includeDistributedResponses: false`.
//! - Unknown users are `NotFound`; unknown publications and posts are `null`.
//! - `post(id).content.bodyModel` has a markup of type `A` with an `href` per link of the
//!   story (plus other markups and image paragraphs that are not links).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, InputObject, MaybeUndefined, Object, Schema,
    SimpleObject, Union, ID,
};
use serde_json::Value;

use crate::{SyntheticMedium, SYNTHETIC_COLLECTION};

/// Where the door is.
pub const PATH: &str = medium_api::graphql::PATH;

/// The largest `limit` a following list accepts.
pub const MAX_LIMIT: i32 = 25;

/// The schema served.
pub type MediumSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the schema over a synthetic Medium.
pub fn schema(medium: Arc<SyntheticMedium>) -> MediumSchema {
    let world = World::new(medium);
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(Arc::new(world))
        .limit_depth(32)
        .finish()
}

/// The SDL the synthetic server speaks (for docs and tests).
pub fn sdl(medium: Arc<SyntheticMedium>) -> String {
    schema(medium).sdl()
}

/// Lookups over the synthetic world.
struct World {
    medium: Arc<SyntheticMedium>,
    /// Post id → (author, story).
    posts: HashMap<String, (usize, usize)>,
    /// User id → index (authors and the users they follow).
    users: HashMap<String, usize>,
}

impl World {
    fn new(medium: Arc<SyntheticMedium>) -> Self {
        let s = medium.spec;
        let mut posts = HashMap::new();
        for a in 0..s.authors {
            for st in 0..s.stories_per_author {
                posts.insert(medium.post_id(a, st), (a, st));
            }
        }
        let users = (0..s.authors + s.followings_per_author)
            .map(|i| (medium.user_id(i), i))
            .collect();
        World {
            medium,
            posts,
            users,
        }
    }

    fn post(&self, a: usize, s: usize) -> Post {
        Post {
            a,
            s,
            json: self.medium.post(a, s),
        }
    }
}

fn world<'a>(ctx: &Context<'a>) -> &'a Arc<World> {
    ctx.data_unchecked::<Arc<World>>()
}

/// `PagingOptions`: every field optional, none of them null.
#[derive(InputObject, Default)]
pub struct PagingOptions {
    from: MaybeUndefined<String>,
    to: MaybeUndefined<String>,
    limit: MaybeUndefined<i32>,
    page: MaybeUndefined<i32>,
    source: MaybeUndefined<String>,
}

impl PagingOptions {
    fn check(&self) -> async_graphql::Result<()> {
        for (name, null) in [
            ("from", self.from.is_null()),
            ("to", self.to.is_null()),
            ("limit", self.limit.is_null()),
            ("page", self.page.is_null()),
            ("source", self.source.is_null()),
        ] {
            if null {
                return Err(format!("PagingOptions.{name} must not be null").into());
            }
        }
        Ok(())
    }

    fn limit(&self, page_size: usize) -> usize {
        let asked = self.limit.value().copied().unwrap_or(10).max(1) as usize;
        asked.min(page_size.max(1)).min(MAX_LIMIT as usize)
    }

    fn from(&self) -> Option<&str> {
        self.from.value().map(String::as_str)
    }
}

/// `pagingInfo.next`.
#[derive(SimpleObject, Clone)]
pub struct PageParams {
    from: Option<String>,
    to: Option<String>,
    limit: Option<i32>,
    page: Option<i32>,
    source: Option<String>,
}

#[derive(SimpleObject)]
pub struct PagingInfo {
    next: Option<PageParams>,
}

fn next(from: String, limit: usize) -> PagingInfo {
    PagingInfo {
        next: Some(PageParams {
            from: Some(from),
            to: None,
            limit: Some(limit as i32),
            page: None,
            source: Some(String::new()),
        }),
    }
}

#[derive(SimpleObject)]
pub struct PostConnection {
    posts: Vec<Post>,
    paging_info: Option<PagingInfo>,
}

#[derive(SimpleObject)]
pub struct UserConnection {
    users: Vec<User>,
    paging_info: Option<PagingInfo>,
}

#[derive(SimpleObject)]
pub struct NotFound {
    message: Option<String>,
}

#[derive(Union)]
pub enum UserResult {
    User(User),
    NotFound(NotFound),
}

#[derive(Union)]
pub enum PostResult {
    Post(Post),
    NotFound(NotFound),
}

pub struct Query;

#[Object]
impl Query {
    async fn user_result(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        username: Option<ID>,
    ) -> UserResult {
        let w = world(ctx);
        let by_id = id.and_then(|id| w.users.get(id.as_str()).copied());
        let by_name = username.and_then(|name| {
            let name = name.trim_start_matches('@').to_owned();
            (0..w.medium.spec.authors).find(|i| format!("author{i}") == name)
        });
        match by_id.or(by_name) {
            Some(index) => UserResult::User(User { index }),
            None => UserResult::NotFound(NotFound {
                message: Some("User not found".into()),
            }),
        }
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> Option<User> {
        world(ctx)
            .users
            .get(id.as_str())
            .map(|&index| User { index })
    }

    async fn collection_by_domain_or_slug(&self, domain_or_slug: ID) -> Option<Collection> {
        let known = [
            crate::synthetic_slug(),
            format!("pub-{SYNTHETIC_COLLECTION}"),
        ];
        known
            .contains(&domain_or_slug.0)
            .then(|| Collection::synthetic(SYNTHETIC_COLLECTION))
    }

    async fn collection(&self, id: ID) -> Option<Collection> {
        Collection::of(id.as_str())
    }

    async fn post(&self, ctx: &Context<'_>, id: ID) -> Option<Post> {
        let w = world(ctx);
        w.posts.get(id.as_str()).map(|&(a, s)| w.post(a, s))
    }
}

/// A user of the synthetic world: an author, or a user an author follows.
pub struct User {
    index: usize,
}

#[derive(SimpleObject)]
pub struct SocialStats {
    follower_count: Option<i32>,
    following_count: Option<i32>,
    collection_following_count: Option<i32>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_owned)
}

#[Object]
impl User {
    async fn id(&self, ctx: &Context<'_>) -> ID {
        ID(world(ctx).medium.user_id(self.index))
    }
    async fn username(&self, ctx: &Context<'_>) -> Option<String> {
        text(&world(ctx).medium.user(self.index), "username")
    }
    async fn name(&self, ctx: &Context<'_>) -> Option<String> {
        text(&world(ctx).medium.user(self.index), "name")
    }
    async fn bio(&self, ctx: &Context<'_>) -> Option<String> {
        text(&world(ctx).medium.user(self.index), "bio")
    }
    async fn image_id(&self, ctx: &Context<'_>) -> Option<String> {
        text(&world(ctx).medium.user(self.index), "imageId")
    }
    async fn twitter_screen_name(&self, ctx: &Context<'_>) -> Option<String> {
        text(&world(ctx).medium.user(self.index), "twitterScreenName")
    }
    async fn created_at(&self, ctx: &Context<'_>) -> Option<f64> {
        world(ctx).medium.user(self.index)["createdAt"].as_f64()
    }
    async fn medium_member_at(&self, ctx: &Context<'_>) -> Option<f64> {
        world(ctx).medium.user(self.index)["mediumMemberAt"].as_f64()
    }
    async fn social_stats(&self, ctx: &Context<'_>) -> SocialStats {
        let (followers, following) = world(ctx).medium.social_stats(self.index);
        SocialStats {
            follower_count: Some(followers as i32),
            following_count: Some(following as i32),
            collection_following_count: Some(0),
        }
    }

    async fn homepage_posts_connection(
        &self,
        ctx: &Context<'_>,
        paging: Option<PagingOptions>,
        include_distributed_responses: Option<bool>,
    ) -> async_graphql::Result<PostConnection> {
        let w = world(ctx);
        let paging = paging.unwrap_or_default();
        paging.check()?;
        let a = self.index;
        if a >= w.medium.spec.authors {
            return Ok(PostConnection {
                posts: Vec::new(),
                paging_info: Some(PagingInfo { next: None }),
            });
        }
        let with_responses = include_distributed_responses.unwrap_or(true);
        // newest first: the stories' dates grow with their number
        let latest: Vec<(usize, usize)> = (0..w.medium.spec.stories_per_author)
            .rev()
            .filter(|s| with_responses || !SyntheticMedium::is_response(*s))
            .map(|s| (a, s))
            .collect();
        let pins: Vec<(usize, usize)> = w
            .medium
            .pinned(a)
            .into_iter()
            .filter(|(a, s)| latest.contains(&(*a, *s)))
            .collect();
        let size = paging.limit(w.medium.spec.profile_page_size);
        Ok(listing(w, &pins, &latest, &paging, size, false))
    }

    async fn following_user_connection(
        &self,
        ctx: &Context<'_>,
        paging: Option<PagingOptions>,
    ) -> async_graphql::Result<UserConnection> {
        let w = world(ctx);
        let paging = paging.unwrap_or_default();
        paging.check()?;
        if let MaybeUndefined::Value(limit) = paging.limit {
            if limit > MAX_LIMIT {
                return Err(format!("limit must be at most {MAX_LIMIT}, got {limit}").into());
            }
        }
        let followed = if self.index < w.medium.spec.authors {
            w.medium.followed(self.index)
        } else {
            Vec::new()
        };
        let start = match paging.from() {
            None => 0,
            Some(from) => followed
                .iter()
                .position(|u| w.medium.user_id(*u) == from)
                .map_or(followed.len(), |p| p + 1),
        };
        let size = paging.limit(w.medium.spec.following_page_size);
        let page: Vec<usize> = followed.iter().copied().skip(start).take(size).collect();
        let more = start + page.len() < followed.len();
        let next_page = match (more, page.last()) {
            (true, Some(last)) => next(w.medium.user_id(*last), size),
            _ => PagingInfo { next: None },
        };
        Ok(UserConnection {
            users: page.into_iter().map(|index| User { index }).collect(),
            paging_info: Some(next_page),
        })
    }

    async fn followers_user_connection(
        &self,
        paging: Option<PagingOptions>,
    ) -> async_graphql::Result<UserConnection> {
        paging.unwrap_or_default().check()?;
        Ok(UserConnection {
            users: Vec::new(),
            paging_info: Some(PagingInfo { next: None }),
        })
    }
}

/// One page of a post listing: the pins (cursor `P<pinnedAt>`), then the latest posts (cursor
/// `L<firstPublishedAt>`). `empty_last`: the listing's last page still has a `next`, and the
/// page after it is empty (as a collection's is).
fn listing(
    w: &World,
    pins: &[(usize, usize)],
    latest: &[(usize, usize)],
    paging: &PagingOptions,
    size: usize,
    empty_last: bool,
) -> PostConnection {
    let published = |(a, s): (usize, usize)| w.medium.published_at(a, s);
    let pinned = |(a, s): (usize, usize)| w.medium.pinned_at(a, s).unwrap_or(0);
    // the items as (zone, key) in listing order
    let items: Vec<(bool, (usize, usize))> = pins
        .iter()
        .map(|p| (true, *p))
        .chain(latest.iter().map(|p| (false, *p)))
        .collect();
    let start = match paging.from() {
        None => 0,
        Some(from) => {
            let split = from.char_indices().nth(1).map_or(from.len(), |(i, _)| i);
            let (zone, ms) = from.split_at(split);
            let ms: i64 = ms.parse().unwrap_or(i64::MAX);
            match zone {
                "P" => items
                    .iter()
                    .position(|(pin, p)| *pin && pinned(*p) == ms)
                    .map_or(pins.len(), |i| i + 1),
                _ => {
                    let exact = items
                        .iter()
                        .position(|(pin, p)| !*pin && published(*p) == ms)
                        .map(|i| i + 1);
                    exact.unwrap_or_else(|| {
                        items
                            .iter()
                            .position(|(pin, p)| !*pin && published(*p) < ms)
                            .unwrap_or(items.len())
                    })
                }
            }
        }
    };
    let page: Vec<(bool, (usize, usize))> = items.iter().copied().skip(start).take(size).collect();
    let more = start + page.len() < items.len();
    let paging_info = match page.last() {
        Some((true, p)) if more => next(format!("P{}", pinned(*p)), size),
        Some((false, p)) if more || empty_last => next(format!("L{}", published(*p)), size),
        _ => PagingInfo { next: None },
    };
    PostConnection {
        posts: page.into_iter().map(|(_, (a, s))| w.post(a, s)).collect(),
        paging_info: Some(paging_info),
    }
}

/// A publication.
pub struct Collection {
    id: String,
}

impl Collection {
    fn synthetic(id: &str) -> Self {
        Collection { id: id.to_owned() }
    }

    /// The synthetic publication, or one of the others stories are published in.
    fn of(id: &str) -> Option<Self> {
        let known = id == SYNTHETIC_COLLECTION
            || (id.len() == 12
                && id.starts_with("c01")
                && id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
        known.then(|| Collection::synthetic(id))
    }
}

#[Object]
impl Collection {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    async fn name(&self) -> Option<String> {
        Some(format!("Publication {}", self.id))
    }
    async fn slug(&self) -> Option<String> {
        Some(format!("pub-{}", self.id))
    }
    async fn domain(&self) -> Option<String> {
        None
    }
    async fn description(&self) -> Option<String> {
        None
    }
    async fn subscriber_count(&self) -> Option<i32> {
        Some(0)
    }
    async fn creator(&self) -> Option<User> {
        None
    }

    async fn homepage_posts_connection(
        &self,
        ctx: &Context<'_>,
        paging: Option<PagingOptions>,
    ) -> async_graphql::Result<PostConnection> {
        let w = world(ctx);
        let paging = paging.unwrap_or_default();
        paging.check()?;
        if self.id != SYNTHETIC_COLLECTION || w.medium.spec.stories_per_author == 0 {
            return Ok(PostConnection {
                posts: Vec::new(),
                paging_info: Some(PagingInfo { next: None }),
            });
        }
        // every author's first story, in the order the JSON stream lists its authors
        let latest: Vec<(usize, usize)> = (0..w.medium.spec.authors).map(|a| (a, 0)).collect();
        let pins = w.medium.collection_pins();
        let size = paging.limit(w.medium.spec.publication_page_size);
        Ok(listing(w, &pins, &latest, &paging, size, true))
    }
}

/// A post of the synthetic world (its JSON is the legacy API's).
#[derive(Clone)]
pub struct Post {
    a: usize,
    s: usize,
    json: Value,
}

#[derive(SimpleObject)]
pub struct Tag {
    id: ID,
    normalized_tag_slug: Option<String>,
    display_title: Option<String>,
}

#[derive(SimpleObject)]
pub struct PostResponses {
    count: Option<i32>,
}

#[derive(SimpleObject)]
pub struct ImageMetadata {
    id: ID,
}

#[derive(SimpleObject)]
pub struct PostContent {
    body_model: Option<BodyModel>,
}

#[derive(SimpleObject)]
pub struct BodyModel {
    paragraphs: Option<Vec<Paragraph>>,
}

#[derive(SimpleObject)]
pub struct Paragraph {
    name: Option<String>,
    #[graphql(name = "type")]
    kind: Option<String>,
    text: Option<String>,
    href: Option<String>,
    markups: Option<Vec<Markup>>,
}

#[derive(SimpleObject)]
pub struct Markup {
    #[graphql(name = "type")]
    kind: Option<String>,
    start: Option<i32>,
    end: Option<i32>,
    href: Option<String>,
    anchor_type: Option<String>,
}

fn int(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|n| i32::try_from(n).ok())
}

#[Object]
impl Post {
    async fn id(&self) -> ID {
        ID(text(&self.json, "id").unwrap_or_default())
    }
    async fn title(&self) -> Option<String> {
        text(&self.json, "title")
    }
    async fn unique_slug(&self) -> Option<String> {
        text(&self.json, "uniqueSlug")
    }
    async fn medium_url(&self) -> Option<String> {
        text(&self.json, "uniqueSlug").map(|s| format!("https://medium.com/p/{s}"))
    }
    async fn creator(&self) -> User {
        User { index: self.a }
    }
    async fn collection(&self) -> Option<Collection> {
        text(&self.json, "homeCollectionId")
            .filter(|id| !id.is_empty())
            .map(|id| Collection::synthetic(&id))
    }
    async fn first_published_at(&self) -> Option<f64> {
        self.json["firstPublishedAt"].as_f64()
    }
    async fn latest_published_at(&self) -> Option<f64> {
        self.json["latestPublishedAt"].as_f64()
    }
    async fn clap_count(&self) -> Option<i32> {
        int(&self.json["virtuals"]["totalClapCount"])
    }
    async fn reading_time(&self) -> Option<f64> {
        self.json["virtuals"]["readingTime"].as_f64()
    }
    async fn word_count(&self) -> Option<i32> {
        int(&self.json["virtuals"]["wordCount"])
    }
    async fn is_locked(&self) -> Option<bool> {
        Some(false)
    }
    async fn pinned_at(&self, ctx: &Context<'_>) -> Option<f64> {
        let w = world(ctx);
        Some(w.medium.pinned_at(self.a, self.s).unwrap_or(0) as f64)
    }
    async fn tags(&self) -> Option<Vec<Tag>> {
        let tags = self.json["virtuals"]["tags"].as_array()?;
        Some(
            tags.iter()
                .filter_map(|t| t["slug"].as_str())
                .map(|slug| Tag {
                    id: ID(slug.to_owned()),
                    normalized_tag_slug: Some(slug.to_owned()),
                    display_title: Some(slug.replace('-', " ")),
                })
                .collect(),
        )
    }
    async fn post_responses(&self) -> PostResponses {
        PostResponses {
            count: int(&self.json["virtuals"]["responsesCreatedCount"]),
        }
    }
    async fn in_response_to_post_result(&self, ctx: &Context<'_>) -> Option<PostResult> {
        let parent = text(&self.json, "inResponseToPostId").filter(|p| !p.is_empty())?;
        let w = world(ctx);
        Some(match w.posts.get(&parent) {
            Some(&(a, s)) => PostResult::Post(w.post(a, s)),
            None => PostResult::NotFound(NotFound {
                message: Some("Post not found".into()),
            }),
        })
    }
    async fn preview_image(&self) -> Option<ImageMetadata> {
        None
    }

    /// The body: a paragraph per link (a markup of type `A` with an `href`), with bold and
    /// italic markups that are not links, and an image paragraph per image.
    async fn content(&self) -> PostContent {
        let v = &self.json["virtuals"];
        let links = v["links"]["entries"].as_array().map_or(0, Vec::len);
        let images = v["imageCount"].as_u64().unwrap_or(0) as usize;
        let mut paragraphs = vec![Paragraph {
            name: Some("t0".into()),
            kind: Some("H3".into()),
            text: text(&self.json, "title"),
            href: None,
            markups: Some(vec![Markup {
                kind: Some("STRONG".into()),
                start: Some(0),
                end: Some(4),
                href: None,
                anchor_type: None,
            }]),
        }];
        for l in 0..links {
            paragraphs.push(Paragraph {
                name: Some(format!("p{l}")),
                kind: Some("P".into()),
                text: Some(format!("See source {l} for more.")),
                href: None,
                markups: Some(vec![
                    Markup {
                        kind: Some("EM".into()),
                        start: Some(0),
                        end: Some(3),
                        href: None,
                        anchor_type: None,
                    },
                    Markup {
                        kind: Some("A".into()),
                        start: Some(4),
                        end: Some(12),
                        href: Some(format!("https://example.com/{l}")),
                        anchor_type: Some("LINK".into()),
                    },
                ]),
            });
        }
        for i in 0..images.min(50) {
            paragraphs.push(Paragraph {
                name: Some(format!("i{i}")),
                kind: Some("IMG".into()),
                text: None,
                href: None,
                markups: Some(Vec::new()),
            });
        }
        PostContent {
            body_model: Some(BodyModel {
                paragraphs: Some(paragraphs),
            }),
        }
    }
}
