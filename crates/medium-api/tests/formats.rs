//! The four formats agree: the HTML and RSS fixtures (built by `scripts/build_feeds.py` from
//! the real JSON fixtures: the same authors and stories) decode to the same values as the JSON
//! on every field both carry, and to `None` on the fields a format does not carry.

use medium_api::endpoints::{PublicationRef, StreamId};
use medium_api::guard::parse_payload;
use medium_api::models::{CompactString, Post, StreamPayload, User};
use medium_api::via::Via;
use medium_api::{BodyError, StreamPage};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/medium/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn posts(p: &StreamPayload) -> &[Post] {
    &p.references.posts.as_ref().expect("posts").0
}

fn non_empty(s: &Option<CompactString>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A user as the tables see it: `""` is missing.
fn norm(u: &User) -> User {
    let e = |s: &Option<CompactString>| non_empty(s).map(CompactString::from);
    User {
        username: e(&u.username),
        name: e(&u.name),
        bio: e(&u.bio),
        twitter_screen_name: e(&u.twitter_screen_name),
        image_id: e(&u.image_id),
        ..u.clone()
    }
}

fn tags(p: &Post) -> Vec<&str> {
    p.virtuals.tags.iter().map(|t| t.slug.as_str()).collect()
}

/// Every field both formats carry is equal; those `via` does not carry are `None`.
fn assert_agrees(json: &Post, other: &Post, via: Via) {
    let id = &json.id;
    assert_eq!(other.source, via);
    assert_eq!(other.id, json.id);
    assert_eq!(other.creator_id, json.creator_id, "{id}");
    assert_eq!(other.title, json.title, "{id}");
    assert_eq!(other.unique_slug, json.unique_slug, "{id}");
    assert_eq!(other.latest_published_at, json.latest_published_at, "{id}");
    assert_eq!(tags(other), tags(json), "{id}");
    match via {
        Via::Html => {
            assert_eq!(other.first_published_at, json.first_published_at, "{id}");
            assert_eq!(
                non_empty(&other.home_collection_id),
                non_empty(&json.home_collection_id)
            );
            assert_eq!(other.is_response(), json.is_response(), "{id}");
            let (o, j) = (&other.virtuals, &json.virtuals);
            assert_eq!(o.word_count, j.word_count, "{id}");
            assert_eq!(o.total_clap_count, j.total_clap_count, "{id}");
            assert_eq!(o.reading_time, j.reading_time, "{id}");
            assert_eq!(o.responses_created_count, j.responses_created_count, "{id}");
            assert_eq!(o.image_count, None, "{id}");
            assert_eq!(other.link_count(), None, "{id}");
        }
        Via::Rss => {
            // pubDate has whole seconds
            assert_eq!(
                other.first_published_at,
                json.first_published_at.map(|t| t - t.rem_euclid(1000)),
                "{id}"
            );
            let (o, j) = (&other.virtuals, &json.virtuals);
            assert_eq!(
                o.word_count, j.word_count,
                "{id}: words counted from the story HTML"
            );
            assert_eq!(o.image_count, j.image_count, "{id}");
            assert_eq!(other.link_count(), json.link_count(), "{id}");
            assert_eq!(other.home_collection_id, None, "{id}");
            assert_eq!(other.in_response_to_post_id, None, "{id}");
            assert_eq!(o.total_clap_count, None, "{id}");
            assert_eq!(o.reading_time, None, "{id}");
            assert_eq!(o.responses_created_count, None, "{id}");
        }
        Via::Graphql => {
            assert_eq!(other.first_published_at, json.first_published_at, "{id}");
            assert_eq!(
                non_empty(&other.home_collection_id),
                non_empty(&json.home_collection_id)
            );
            assert_eq!(other.is_response(), json.is_response(), "{id}");
            assert_eq!(
                non_empty(&other.in_response_to_post_id),
                non_empty(&json.in_response_to_post_id)
            );
            let (o, j) = (&other.virtuals, &json.virtuals);
            assert_eq!(o.word_count, j.word_count, "{id}");
            assert_eq!(o.total_clap_count, j.total_clap_count, "{id}");
            assert_eq!(o.reading_time, j.reading_time, "{id}");
            assert_eq!(o.responses_created_count, j.responses_created_count, "{id}");
            assert_eq!(o.image_count, None, "{id}");
            // links come from the bodies, fetched apart
            assert_eq!(other.link_count(), None, "{id}");
        }
        Via::Json => unreachable!(),
    }
}

#[test]
fn the_profile_page_and_the_feed_agree_with_the_profile_stream() {
    let stream = StreamId::Profile("e2f299e30cb9".into());
    let json: StreamPayload = parse_payload(&fixture("user_profile_stream.json")).unwrap();
    let html =
        StreamPayload::decode(Via::Html, &stream, "", &fixture("user_profile_page.html")).unwrap();
    let rss = StreamPayload::decode(Via::Rss, &stream, "", &fixture("user_feed.xml")).unwrap();

    let (ju, hu, ru) = (
        json.user.clone().unwrap(),
        html.user.clone().unwrap(),
        rss.user.clone().unwrap(),
    );
    assert_eq!(hu, norm(&ju), "HTML carries every user field the JSON has");
    assert_eq!(ru.user_id, ju.user_id);
    assert_eq!(ru.username, ju.username);
    assert_eq!(ru.name, ju.name);
    assert_eq!((ru.bio, ru.created_at), (None, None), "not in a feed");

    assert_eq!(posts(&html).len(), posts(&json).len());
    for (j, h) in posts(&json).iter().zip(posts(&html)) {
        assert_agrees(j, h, Via::Html);
    }
    // The feed: the author's own stories, newest first
    let mut stories: Vec<&Post> = posts(&json)
        .iter()
        .filter(|p| p.is_story_by(&ju.user_id))
        .collect();
    stories.sort_by_key(|p| std::cmp::Reverse(p.first_published_at));
    assert_eq!(posts(&rss).len(), stories.len());
    assert!(!stories.is_empty());
    for (j, r) in stories.iter().zip(posts(&rss)) {
        assert_agrees(j, r, Via::Rss);
    }
    let cols: Vec<_> = html
        .references
        .collections
        .0
        .iter()
        .map(|c| &c.id)
        .collect();
    let json_cols: Vec<_> = json
        .references
        .collections
        .0
        .iter()
        .map(|c| &c.id)
        .collect();
    assert_eq!(cols, json_cols);
}

#[test]
fn the_publication_page_agrees_and_the_feed_names_authors_only() {
    let json: StreamPayload = parse_payload(&fixture("collection_stream.json")).unwrap();
    let slug = json.collection.as_ref().unwrap().slug.clone().unwrap();
    let stream = StreamId::Publication(PublicationRef::Slug(slug.to_string()));
    let html =
        StreamPayload::decode(Via::Html, &stream, "", &fixture("collection_page.html")).unwrap();
    assert_eq!(
        html.collection,
        json.collection.clone().map(|mut c| {
            c.creator_id = c.creator_id.filter(|s| !s.is_empty());
            c
        })
    );
    let users = |p: &StreamPayload| p.references.users.0.iter().map(norm).collect::<Vec<_>>();
    assert_eq!(users(&html), users(&json), "same authors, same order");
    for (j, h) in posts(&json).iter().zip(posts(&html)) {
        assert_agrees(j, h, Via::Html);
    }

    let rss =
        StreamPayload::decode(Via::Rss, &stream, "", &fixture("collection_feed.xml")).unwrap();
    let c = rss.collection.unwrap();
    let jc = json.collection.unwrap();
    assert_eq!((&c.id, &c.name, &c.slug), (&jc.id, &jc.name, &Some(slug)));
    assert!(rss.references.users.0.is_empty());
    let mut names: Vec<String> = json
        .references
        .users
        .0
        .iter()
        .filter_map(|u| u.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    let mut got = rss.unresolved_creators.clone();
    got.sort();
    assert_eq!(got, names, "every author, by display name only");
}

#[test]
fn a_challenge_page_is_named_as_one_in_every_format() {
    let body = fixture("challenge_page.html");
    let profile = StreamId::Profile("e2f299e30cb9".into());
    assert_eq!(
        StreamPayload::decode(Via::Html, &profile, "", &body).unwrap_err(),
        BodyError::Challenge
    );
    // since #13 the feed and JSON decoders name it a challenge too (it was "HTML" before)
    assert_eq!(
        StreamPayload::decode(Via::Rss, &profile, "", &body).unwrap_err(),
        BodyError::Challenge
    );
    assert_eq!(
        StreamPayload::decode(Via::Json, &profile, "", &body).unwrap_err(),
        BodyError::Challenge
    );
    for via in Via::ALL {
        let err = StreamPayload::decode(via, &profile, "", &body).unwrap_err();
        assert!(err.is_closed_door(), "{via}: {err}");
    }
}

/// GraphQL (`scripts/build_graphql.py` rewrites the real JSON fixtures in the shapes
/// MEDIUM-GRAPHQL.md records): the same user, stories, counts, social stats, followings and
/// link counts as the JSON.
#[test]
fn the_graphql_replies_agree_with_the_json() {
    use medium_api::graphql::{self, BodiesPayload};
    use medium_api::models::{FollowingPayload, PageItems};

    let stream = StreamId::Profile("e2f299e30cb9".into());
    let json: StreamPayload = parse_payload(&fixture("user_profile_stream.json")).unwrap();
    let query = "limit=25&from=L1546300377981";
    let mut gq = StreamPayload::decode(
        Via::Graphql,
        &stream,
        query,
        &fixture("graphql_user_posts.json"),
    )
    .unwrap();
    let ju = json.user.clone().unwrap();
    assert_eq!(gq.user.clone().unwrap(), ju, "every user field");
    let stats = &gq.references.social_stats.0[0];
    assert_eq!(
        (stats.users_followed_by_count, stats.users_followed_count),
        (Some(17_573), Some(15))
    );
    // the user's own posts, with the JSON numbers
    let own: Vec<&Post> = posts(&json)
        .iter()
        .filter(|p| p.creator_id == ju.user_id)
        .collect();
    assert_eq!(posts(&gq).len(), own.len());
    for (j, g) in own.iter().zip(posts(&gq)) {
        assert_agrees(j, g, Via::Graphql);
    }
    // the next page: `from` kept, the nulls and the empty source left out
    let mut pager = medium_api::paging::StreamPager::new(vec![("limit".into(), "25".into())], 9)
        .with_rules(Via::Graphql.format().paging);
    pager.first_query();
    let next = pager.after_page(gq.item_ids(), gq.paging()).unwrap();
    assert!(next.starts_with("limit=25&from=L"), "{next}");

    // link counts from the bodies, batched
    let ids: Vec<&str> = own.iter().map(|p| p.id.as_str()).collect();
    let bodies_stream = StreamId::PostBodies("e2f299e30cb9".into());
    let bodies = BodiesPayload::decode(
        Via::Graphql,
        &bodies_stream,
        &graphql::bodies_query(&ids),
        &fixture("graphql_post_bodies.json"),
    )
    .unwrap();
    assert_eq!(bodies.item_ids(), ids);
    let page_posts = &mut gq.references.posts.as_mut().unwrap().0;
    graphql::merge_link_counts(page_posts.iter_mut(), &[bodies]);
    for (j, g) in own.iter().zip(page_posts.iter()) {
        assert_eq!(g.link_count(), j.link_count(), "{}", j.id);
    }

    // followings: the same users, the last one's id as the cursor
    let following = StreamId::Following("b5e0373348ba".into());
    let jf: FollowingPayload = parse_payload(&fixture("user_following.json")).unwrap();
    let gf = FollowingPayload::decode(
        Via::Graphql,
        &following,
        "limit=25",
        &fixture("graphql_user_following.json"),
    )
    .unwrap();
    assert_eq!(
        gf.value.iter().map(norm).collect::<Vec<_>>(),
        jf.value.iter().map(norm).collect::<Vec<_>>()
    );
}

#[test]
fn the_graphql_publication_lists_the_authors_of_its_posts() {
    let json: StreamPayload = parse_payload(&fixture("collection_stream.json")).unwrap();
    let stream = StreamId::Publication(PublicationRef::Id("7f60cf5620c9".into()));
    let gq = StreamPayload::decode(
        Via::Graphql,
        &stream,
        "limit=25",
        &fixture("graphql_collection_posts.json"),
    )
    .unwrap();
    let (jc, gc) = (
        json.collection.clone().unwrap(),
        gq.collection.clone().unwrap(),
    );
    assert_eq!((&gc.id, &gc.name, &gc.slug), (&jc.id, &jc.name, &jc.slug));
    // the creators of the posts, first seen first
    let mut creators: Vec<&str> = Vec::new();
    for p in posts(&json) {
        if !creators.contains(&p.creator_id.as_str()) {
            creators.push(&p.creator_id);
        }
    }
    let authors: Vec<&str> = gq
        .references
        .users
        .0
        .iter()
        .map(|u| u.user_id.as_str())
        .collect();
    assert_eq!(authors, creators);
    for (j, g) in posts(&json).iter().zip(posts(&gq)) {
        assert_agrees(j, g, Via::Graphql);
    }
}

/// Errors come with HTTP 200 and name the operation, its variables and the message; a
/// partial answer beside an error is not used; `NotFound` and a null publication are their
/// own errors; a field the server does not know closes the door.
#[test]
fn graphql_errors_are_typed() {
    let stream = StreamId::Profile("u1".into());
    let decode =
        |body: &str| StreamPayload::decode(Via::Graphql, &stream, "limit=25", body.as_bytes());
    let err = decode(r#"{"errors":[{"message":"boom","path":["userResult"]}],"data":{"userResult":{"__typename":"User","id":"u1"}}}"#).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("UserPosts")
            && text.contains("\"u1\"")
            && text.contains("boom (at userResult)"),
        "{text}"
    );
    assert!(
        !err.is_final() && !err.is_closed_door(),
        "retried, and not a closed door"
    );
    let err = decode(r#"{"errors":[{"message":"This user is unavailable"}]}"#).unwrap_err();
    assert!(!err.is_closed_door(), "one user's, not the door's");
    let err = decode(r#"{"errors":[{"message":"Cannot query field \"homepagePostsConnection\" on type \"User\"."}]}"#).unwrap_err();
    assert!(
        err.is_closed_door() && err.closes_family() && err.is_final(),
        "{err}"
    );
    let err =
        decode(r#"{"data":{"userResult":{"__typename":"NotFound","message":"User not found"}}}"#)
            .unwrap_err();
    assert!(matches!(err, BodyError::NotFound(_)));
    assert!(err.is_closed_door() && !err.closes_family());
    assert!(matches!(
        decode(r#"{"data":null}"#).unwrap_err(),
        BodyError::Shape(_)
    ));
    // the legacy API's `success: false` closes its door too (the fallback reads it only on a
    // first page)
    assert!(BodyError::Unsuccessful(None).closes_family());
    // a connection that is not there is not an empty page, nor a reply about another user
    let err = decode(
        r#"{"data":{"userResult":{"__typename":"User","id":"u1","homepagePostsConnection":null}}}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no homepagePostsConnection"),
        "{err}"
    );
    let err = decode(r#"{"data":{"userResult":{"__typename":"User","id":"u2","homepagePostsConnection":{"posts":[]}}}}"#).unwrap_err();
    assert!(err.to_string().contains("about user \"u2\""), "{err}");
    assert!(matches!(
        decode(r#"{"data":{"userResult":"#).unwrap_err(),
        BodyError::Truncated(_)
    ));
    assert_eq!(
        decode("<html><title>Just a moment...</title></html>").unwrap_err(),
        BodyError::Challenge
    );
    let coll = StreamId::Publication(PublicationRef::Slug("nope".into()));
    let err = StreamPayload::decode(
        Via::Graphql,
        &coll,
        "limit=25",
        br#"{"data":{"collectionByDomainOrSlug":null}}"#,
    )
    .unwrap_err();
    assert!(matches!(err, BodyError::NotFound(_)), "{err}");
    // a batch answered with the wrong number of replies
    let bodies = StreamId::PostBodies("u1".into());
    let q = medium_api::graphql::bodies_query(&["a", "b"]);
    let err = medium_api::graphql::decode_bodies(&bodies, &q, br#"[{"data":{"post":{"id":"a"}}}]"#)
        .unwrap_err();
    assert!(
        err.to_string().contains("1 replies to 2 operations"),
        "{err}"
    );
    // a member-only post's body is cut short for anonymous readers: no count rather than a low one
    let ok = medium_api::graphql::decode_bodies(&bodies, &q, br#"[{"data":{"post":{"id":"a","isLocked":true,"content":{"bodyModel":{"paragraphs":[{"markups":[{"type":"A","href":"x"}]}]}}}}},{"data":{"post":{"id":"b","content":{"bodyModel":{"paragraphs":[{"markups":[{"type":"A","href":"x"},{"type":"A"},{"type":"STRONG","href":"y"}]},null]}}}}}]"#).unwrap();
    assert_eq!(ok.posts[0].link_count, None);
    assert_eq!(ok.posts[1].link_count, Some(1));
}

/// The operations: paging without nulls, `limit` never over 25, `source: ""` dropped.
#[test]
fn graphql_requests_page_as_medium_requires() {
    use medium_api::graphql::{paging_variable, request, Request};
    assert_eq!(
        paging_variable("limit=100&from=L5&source=&to=&page=2&ignored=1"),
        serde_json::json!({"limit": 25, "from": "L5", "page": 2})
    );
    let Request::One(op) = request(&StreamId::Following("u1".into()), "limit=25&from=u9") else {
        panic!("one operation")
    };
    assert_eq!(op.operation_name, "UserFollowing");
    assert_eq!(
        op.variables,
        serde_json::json!({"id": "u1", "paging": {"limit": 25, "from": "u9"}})
    );
    let Request::Batch(ops) = request(&StreamId::PostBodies("u1".into()), "ids=a%2Cb%2Cc") else {
        panic!("a batch")
    };
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[2].variables, serde_json::json!({"id": "c"}));
}
