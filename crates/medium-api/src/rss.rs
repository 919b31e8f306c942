//! Medium's RSS 2.0 feeds (`/feed/@{username}`, `/feed/{publication_slug}`) mapped onto the
//! JSON models, so the tables are built by one code path whatever the source.
//!
//! What a feed carries, and where it is read from:
//! - the author (author feeds): the user id from the channel link's `source=rss-<userid>-...`
//!   tracking parameter, the username from its `/@username` path, the name from the channel
//!   title `Stories by <name> on Medium`;
//! - the publication (publication feeds): its collection id from `source=rss----<id>---4`, its
//!   name from the channel title (without Medium's ` - Medium` suffix), its description;
//! - each item: the post id from the `guid` (`https://medium.com/p/<id>`), title, slug (the
//!   link's last path segment), `pubDate` (RFC 2822, whole seconds) as first published,
//!   `atom:updated` (RFC 3339) as latest published, `category` as tags, and words, links and
//!   images counted from `content:encoded` ([`crate::story`]).
//!
//! The `rss` crate trims white space (Unicode White_Space) around every element's text, so a
//! title that starts or ends with white space (a hair space, say) loses it: `headline_chars`
//! counts those characters less; `headline_words` is unchanged.
//!
//! Not carried, so left `None` (null in the tables), never guessed: claps, reading time,
//! responses, the home publication, whether a post is a response, followings. A publication
//! feed names authors only by display name (`dc:creator`): its items cannot be attributed to a
//! user id, so they are not posts here; the names are kept in
//! [`StreamPayload::unresolved_creators`]. A feed holds only the latest items (Medium: 10).

use chrono::DateTime;

use crate::models::{
    Collection, CompactString, IdMap, IgnoredEntry, Links, Post, References, StreamPayload, Tag,
    User, Virtuals,
};
use crate::story::count_story;
use crate::via::{PageOf, Via};
use crate::BodyError;

/// Parses a feed body into a stream payload (one page, no paging).
pub fn decode(body: &[u8], page: PageOf<'_>) -> Result<StreamPayload, BodyError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(BodyError::Empty);
    };
    let text = &body[start..];
    if looks_like_html(text) {
        return Err(BodyError::of_html_page(text));
    }
    let channel = rss::Channel::read_from(text).map_err(|e| BodyError::Feed(e.to_string()))?;
    match page {
        PageOf::Publication { slug } => publication(&channel, slug),
        PageOf::Author { user_id } => author(&channel, user_id),
    }
}

fn looks_like_html(text: &[u8]) -> bool {
    let head = &text[..text.len().min(64)];
    let lower = head.to_ascii_lowercase();
    lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html")
}

/// The value of Medium's `source=rss-...` tracking parameter in a channel link.
fn rss_source(link: &str) -> Option<&str> {
    let query = link.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("source="))
        .and_then(|v| v.strip_prefix("rss-"))
}

/// The first run of id characters (`[0-9a-z]`) in `s`.
fn first_id(s: &str) -> Option<&str> {
    let s = s.trim_start_matches('-');
    let end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

fn publication(channel: &rss::Channel, slug: &str) -> Result<StreamPayload, BodyError> {
    let id = rss_source(channel.link())
        .and_then(first_id)
        .ok_or_else(|| {
            BodyError::Shape(format!(
                "the feed's channel link {:?} names no collection id (source=rss----<id>)",
                channel.link()
            ))
        })?;
    let name = channel.title().trim();
    let name = name.strip_suffix(" - Medium").unwrap_or(name);
    let collection = Collection {
        id: id.into(),
        name: non_empty(name),
        slug: Some(slug.into()),
        description: non_empty(channel.description()),
        creator_id: None,
        domain: None,
    };
    let mut unresolved: Vec<String> = Vec::new();
    for item in channel.items() {
        for name in item
            .dublin_core_ext()
            .map(|dc| dc.creators())
            .unwrap_or_default()
        {
            let name = name.trim();
            if !name.is_empty() && !unresolved.iter().any(|n| n == name) {
                unresolved.push(name.to_owned());
            }
        }
    }
    Ok(StreamPayload {
        collection: Some(collection.clone()),
        user: None,
        references: References {
            users: IdMap::default(),
            posts: Some(IdMap::default()),
            collections: IdMap(vec![collection]),
            social_stats: IdMap::default(),
        },
        paging: None,
        unresolved_creators: unresolved,
    })
}

fn author(channel: &rss::Channel, expected: &str) -> Result<StreamPayload, BodyError> {
    let link = channel.link();
    let user_id = rss_source(link).and_then(first_id).ok_or_else(|| {
        BodyError::Shape(format!(
            "the feed's channel link {link:?} names no user id (source=rss-<id>)"
        ))
    })?;
    if user_id != expected {
        return Err(BodyError::Shape(format!(
            "the feed is user {user_id}'s, not user {expected}'s"
        )));
    }
    let username = link
        .split_once("/@")
        .map(|(_, rest)| rest.split(['?', '/', '#']).next().unwrap_or(""))
        .and_then(non_empty);
    let title = channel.title().trim();
    let name = title
        .strip_prefix("Stories by ")
        .and_then(|t| t.strip_suffix(" on Medium"))
        .and_then(non_empty);
    let user = User {
        user_id: user_id.into(),
        username,
        name,
        bio: None,
        created_at: None,
        medium_member_at: None,
        twitter_screen_name: None,
        image_id: None,
    };
    let posts = channel
        .items()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            post(item, user_id).map_err(|e| BodyError::Shape(format!("item {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StreamPayload {
        collection: None,
        user: Some(user.clone()),
        references: References {
            users: IdMap(vec![user]),
            posts: Some(IdMap(posts)),
            collections: IdMap::default(),
            social_stats: IdMap::default(),
        },
        paging: None,
        unresolved_creators: Vec::new(),
    })
}

fn post(item: &rss::Item, creator: &str) -> Result<Post, String> {
    let guid = item.guid().map(|g| g.value()).unwrap_or("");
    let id = guid
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| format!("no post id in its guid {guid:?}"))?;
    let slug = item
        .link()
        .map(|l| l.split(['?', '#']).next().unwrap_or(l))
        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
        .and_then(non_empty);
    let first_published_at = match item.pub_date() {
        Some(d) => Some(
            DateTime::parse_from_rfc2822(d.trim())
                .map_err(|e| format!("pubDate {d:?}: {e}"))?
                .timestamp_millis(),
        ),
        None => None,
    };
    let updated = item
        .extensions()
        .get("atom")
        .and_then(|m| m.get("updated"))
        .and_then(|v| v.first())
        .and_then(|e| e.value());
    let latest_published_at = match updated {
        Some(d) => Some(
            DateTime::parse_from_rfc3339(d.trim())
                .map_err(|e| format!("atom:updated {d:?}: {e}"))?
                .timestamp_millis(),
        ),
        None => None,
    };
    // a story nested too deep to measure leaves its counts null, not the feed unread
    let counts = item.content().and_then(count_story);
    let tags = item
        .categories()
        .iter()
        .map(|c| c.name().trim())
        .filter(|c| !c.is_empty())
        .map(|slug| Tag { slug: slug.into() })
        .collect();
    Ok(Post {
        id: id.into(),
        creator_id: creator.into(),
        // an empty <title> comes back as no title; Medium's JSON has "" for it
        title: Some(item.title().unwrap_or_default().into()),
        unique_slug: slug,
        home_collection_id: None,
        first_published_at,
        latest_published_at,
        in_response_to_post_id: None,
        responds_to_unknown: false,
        virtuals: Virtuals {
            word_count: counts.map(|c| c.words as i64),
            total_clap_count: None,
            reading_time: None,
            image_count: counts.map(|c| c.images as i64),
            responses_created_count: None,
            tags,
            links: counts.map(|c| Links {
                entries: vec![IgnoredEntry; c.links],
            }),
        },
        source: Via::Rss,
    })
}

fn non_empty(s: &str) -> Option<CompactString> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: &str = r#"<?xml version="1.0" encoding="UTF-8"?><rss xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:atom="http://www.w3.org/2005/Atom" version="2.0" xmlns:cc="http://cyber.law.harvard.edu/rss/creativeCommonsRssModule.html">
<channel><title><![CDATA[Stories by Ann Lee on Medium]]></title><description><![CDATA[Stories by Ann Lee on Medium]]></description>
<link>https://medium.com/@annlee?source=rss-e2f299e30cb9------2</link>
<item><title><![CDATA[A “quoted” title]]></title><link>https://medium.com/@annlee/a-quoted-title-6c68789e5a53?source=rss-e2f299e30cb9------2</link>
<guid isPermaLink="false">https://medium.com/p/6c68789e5a53</guid><category><![CDATA[data-science]]></category><category><![CDATA[python]]></category>
<dc:creator><![CDATA[Ann Lee]]></dc:creator><pubDate>Wed, 02 Jan 2019 18:30:00 GMT</pubDate><atom:updated>2019-01-03T10:00:00.250Z</atom:updated>
<content:encoded><![CDATA[<p>Three <a href="https://x">short</a> words.</p><figure><img src="https://cdn/x.png"></figure><img src="https://medium.com/_/stat?event=post.clientViewed" width="1" height="1">]]></content:encoded></item>
</channel></rss>"#;

    #[test]
    fn reads_an_author_feed() {
        let p = decode(
            AUTHOR.as_bytes(),
            PageOf::Author {
                user_id: "e2f299e30cb9",
            },
        )
        .unwrap();
        let u = p.user.unwrap();
        assert_eq!(u.username.as_deref(), Some("annlee"));
        assert_eq!(u.name.as_deref(), Some("Ann Lee"));
        let posts = p.references.posts.unwrap().0;
        assert_eq!(posts.len(), 1);
        let post = &posts[0];
        assert_eq!(post.id, "6c68789e5a53");
        assert_eq!(post.creator_id, "e2f299e30cb9");
        assert_eq!(post.title.as_deref(), Some("A “quoted” title"));
        assert_eq!(
            post.unique_slug.as_deref(),
            Some("a-quoted-title-6c68789e5a53")
        );
        assert_eq!(post.first_published_at, Some(1_546_453_800_000));
        assert_eq!(post.latest_published_at, Some(1_546_509_600_250));
        assert_eq!(post.virtuals.word_count, Some(3));
        assert_eq!(post.virtuals.image_count, Some(1));
        assert_eq!(post.link_count(), Some(1));
        assert_eq!(post.virtuals.total_clap_count, None);
        assert_eq!(post.virtuals.reading_time, None);
        let tags: Vec<_> = post.virtuals.tags.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(tags, ["data-science", "python"]);
        assert!(p.paging.is_none());
    }

    #[test]
    fn refuses_another_authors_feed_and_html() {
        let e = decode(
            AUTHOR.as_bytes(),
            PageOf::Author {
                user_id: "bb3521dac22f",
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("not user bb3521dac22f"), "{e}");
        // Cloudflare's managed challenge, told apart from other HTML since #13
        let e = decode(
            b"<!DOCTYPE html><title>Just a moment...</title>",
            PageOf::Author { user_id: "u" },
        );
        assert_eq!(e.unwrap_err(), BodyError::Challenge);
        let e = decode(
            b"<!DOCTYPE html><title>Not found</title>",
            PageOf::Author { user_id: "u" },
        );
        assert_eq!(e.unwrap_err(), BodyError::Html);
        assert_eq!(
            decode(b"  ", PageOf::Author { user_id: "u" }).unwrap_err(),
            BodyError::Empty
        );
        let e = decode(b"<rss><channel><title>x", PageOf::Author { user_id: "u" }).unwrap_err();
        assert!(matches!(e, BodyError::Feed(_)), "{e:?}");
    }

    #[test]
    fn a_publication_feed_names_its_collection_and_unresolved_authors() {
        let body = r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title><![CDATA[Towards Data Science - Medium]]></title><description><![CDATA[Data science stories]]></description>
<link>https://towardsdatascience.com?source=rss----7f60cf5620c9---4</link>
<item><title>a</title><guid isPermaLink="false">https://medium.com/p/1</guid><dc:creator><![CDATA[Ann Lee]]></dc:creator></item>
<item><title>b</title><guid isPermaLink="false">https://medium.com/p/2</guid><dc:creator><![CDATA[Bo]]></dc:creator></item>
<item><title>c</title><guid isPermaLink="false">https://medium.com/p/3</guid><dc:creator><![CDATA[Ann Lee]]></dc:creator></item>
</channel></rss>"#;
        let p = decode(
            body.as_bytes(),
            PageOf::Publication {
                slug: "towards-data-science",
            },
        )
        .unwrap();
        let c = p.collection.unwrap();
        assert_eq!(c.id, "7f60cf5620c9");
        assert_eq!(c.name.as_deref(), Some("Towards Data Science"));
        assert_eq!(c.slug.as_deref(), Some("towards-data-science"));
        assert_eq!(p.unresolved_creators, ["Ann Lee", "Bo"]);
        assert!(p.references.users.0.is_empty());
        assert!(p.references.posts.unwrap().0.is_empty());
    }
}
