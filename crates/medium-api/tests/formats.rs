//! The three formats agree: the HTML and RSS fixtures (built by `scripts/build_feeds.py` from
//! the real JSON fixtures: the same authors and stories) decode to the same values as the JSON
//! on every field both carry, and to `None` on the fields a format does not carry.

use medium_api::endpoints::{PublicationRef, StreamId};
use medium_api::guard::parse_payload;
use medium_api::models::{Post, StreamPayload, User};
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

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A user as the tables see it: `""` is missing.
fn norm(u: &User) -> User {
    let e = |s: &Option<String>| non_empty(s).map(str::to_owned);
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
        Via::Json => unreachable!(),
    }
}

#[test]
fn the_profile_page_and_the_feed_agree_with_the_profile_stream() {
    let stream = StreamId::Profile("e2f299e30cb9".into());
    let json: StreamPayload = parse_payload(&fixture("user_profile_stream.json")).unwrap();
    let html =
        StreamPayload::decode(Via::Html, &stream, &fixture("user_profile_page.html")).unwrap();
    let rss = StreamPayload::decode(Via::Rss, &stream, &fixture("user_feed.xml")).unwrap();

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
    let stream = StreamId::Publication(PublicationRef::Slug(slug.clone()));
    let html = StreamPayload::decode(Via::Html, &stream, &fixture("collection_page.html")).unwrap();
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

    let rss = StreamPayload::decode(Via::Rss, &stream, &fixture("collection_feed.xml")).unwrap();
    let c = rss.collection.unwrap();
    let jc = json.collection.unwrap();
    assert_eq!((&c.id, &c.name, &c.slug), (&jc.id, &jc.name, &Some(slug)));
    assert!(rss.references.users.0.is_empty());
    let mut names: Vec<String> = json
        .references
        .users
        .0
        .iter()
        .filter_map(|u| u.name.clone())
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
        StreamPayload::decode(Via::Html, &profile, &body).unwrap_err(),
        BodyError::Challenge
    );
    // since #13 the feed and JSON decoders name it a challenge too (it was "HTML" before)
    assert_eq!(
        StreamPayload::decode(Via::Rss, &profile, &body).unwrap_err(),
        BodyError::Challenge
    );
    assert_eq!(
        StreamPayload::decode(Via::Json, &profile, &body).unwrap_err(),
        BodyError::Challenge
    );
    for via in Via::ALL {
        let err = StreamPayload::decode(via, &profile, &body).unwrap_err();
        assert!(err.is_closed_door(), "{via}: {err}");
    }
}
