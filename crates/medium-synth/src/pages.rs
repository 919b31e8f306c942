//! The synthetic Medium's HTML pages and RSS feeds: the same authors and stories as its JSON,
//! in the shapes `--via html` and `--via rss` read (see `scripts/build_feeds.py` for the real
//! fixtures' version of the same mapping; this one is independent of the decoders too).
//!
//! - `/pub-<collection id>`: the publication's page, whose `__APOLLO_STATE__` holds the
//!   collection and every author with their first story (Medium's page shows the latest few;
//!   listing all keeps the harvest the same size as the JSON one);
//! - `/@author<i>`: the author's page with the posts of their first profile page;
//! - `/feed/@author<i>`: their latest 10 stories (not responses), bodies written to have each
//!   story's word, link and image counts;
//! - `/feed/pub-<collection id>`: the publication's feed, authors by display name only.
//!
//! Every page and feed is a pure function of the spec, like the JSON answers. Text in markup is
//! XML-escaped (`quick_xml::escape`); titles, names and story bodies in feeds are CDATA.

use serde_json::{json, Value};

use quick_xml::escape::escape;

use crate::{SyntheticMedium, SYNTHETIC_COLLECTION};

/// Words of the generated story bodies (plain, so each is exactly one word).
const BODY_WORDS: &[&str] = &[
    "data",
    "model",
    "learning",
    "results",
    "python",
    "naïve",
    "日本語",
];

/// Items in a feed, as on Medium.
const FEED_ITEMS: usize = 10;

/// The slug of the synthetic publication (its HTML page is `/pub-<id>`).
pub fn synthetic_slug() -> String {
    format!("pub-{SYNTHETIC_COLLECTION}")
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "__ref": format!("{kind}:{id}") })
}

fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

impl SyntheticMedium {
    /// The HTML page or feed at `path`, or `None` for anything it does not know.
    pub fn respond_page(&self, path: &str) -> Option<Vec<u8>> {
        let slug = synthetic_slug();
        let path = path.trim_end_matches('/');
        if path.strip_prefix('/') == Some(slug.as_str()) {
            return Some(self.publication_html());
        }
        if path.strip_prefix("/feed/") == Some(slug.as_str()) {
            return Some(self.publication_feed());
        }
        if let Some(name) = path.strip_prefix("/feed/@") {
            return self.author_of(name).map(|a| self.author_feed(a));
        }
        if let Some(name) = path.strip_prefix("/@") {
            return self.author_of(name).map(|a| self.profile_html(a));
        }
        None
    }

    fn author_of(&self, username: &str) -> Option<usize> {
        let i: usize = username.strip_prefix("author")?.parse().ok()?;
        (i < self.spec.authors).then_some(i)
    }

    /// `user()` as an Apollo `User` entity.
    fn apollo_user(&self, a: usize) -> (String, Value) {
        let u = self.user(a);
        let id = u["userId"].as_str().unwrap_or_default().to_owned();
        let e = json!({
            "__typename": "User", "id": id, "username": u["username"], "name": u["name"],
            "bio": u["bio"], "twitterScreenName": u["twitterScreenName"], "imageId": u["imageId"],
            "mediumMemberAt": u["mediumMemberAt"], "createdAt": u["createdAt"],
        });
        (format!("User:{id}"), e)
    }

    /// A JSON post as an Apollo `Post` entity, with its `Tag` and `Collection` entities.
    fn apollo_post(&self, p: &Value, out: &mut Vec<(String, Value)>) {
        let v = &p["virtuals"];
        let home = p["homeCollectionId"].as_str().unwrap_or_default();
        if !home.is_empty() {
            let mut c = self.collection(home);
            if let Some(c) = c.as_object_mut() {
                c.remove("type");
                c.insert("__typename".into(), json!("Collection"));
            }
            out.push((format!("Collection:{home}"), c));
        }
        let tags: Vec<Value> = v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["slug"].as_str())
            .map(|slug| {
                out.push((
                    format!("Tag:{slug}"),
                    json!({"__typename": "Tag", "id": slug}),
                ));
                reference("Tag", slug)
            })
            .collect();
        let responds_to = p["inResponseToPostId"].as_str().unwrap_or_default();
        let mut e = json!({
            "__typename": "Post",
            "id": p["id"], "title": p["title"], "uniqueSlug": p["uniqueSlug"],
            "creator": reference("User", p["creatorId"].as_str().unwrap_or_default()),
            "collection": if home.is_empty() { Value::Null } else { reference("Collection", home) },
            "inResponseToPostResult": if responds_to.is_empty() { Value::Null } else { reference("Post", responds_to) },
            "firstPublishedAt": p["firstPublishedAt"], "latestPublishedAt": p["latestPublishedAt"],
            "readingTime": v["readingTime"], "tags": tags,
            "postResponses": {"__typename": "PostResponses", "count": v["responsesCreatedCount"]},
        });
        // counts Medium left out stay out
        for (from, to) in [("wordCount", "wordCount"), ("totalClapCount", "clapCount")] {
            if !v[from].is_null() {
                e[to] = v[from].clone();
            }
        }
        out.push((format!("Post:{}", p["id"].as_str().unwrap_or_default()), e));
    }

    /// A page embedding `entities` (in this order) as its Apollo state.
    fn html_page(title: &str, entities: &[(String, Value)]) -> Vec<u8> {
        let mut state = String::from("{\"ROOT_QUERY\":{\"__typename\":\"Query\"}");
        for (key, value) in entities {
            state.push(',');
            state.push_str(&Value::String(key.clone()).to_string());
            state.push(':');
            state.push_str(&value.to_string());
        }
        state.push('}');
        // inside <script>, `<` must not start a tag
        let state = state.replace('<', "\\u003c");
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
             <body><div id=\"root\"></div><script>window.__APOLLO_STATE__ = {state}</script></body></html>",
            escape(title)
        )
        .into_bytes()
    }

    fn publication_html(&self) -> Vec<u8> {
        let mut entities = Vec::new();
        let mut c = self.collection(SYNTHETIC_COLLECTION);
        c["__typename"] = json!("Collection");
        entities.push((format!("Collection:{SYNTHETIC_COLLECTION}"), c));
        for a in 0..self.spec.authors {
            entities.push(self.apollo_user(a));
        }
        if self.spec.stories_per_author > 0 {
            for a in 0..self.spec.authors {
                self.apollo_post(&self.post(a, 0), &mut entities);
            }
        }
        Self::html_page(&format!("Publication {SYNTHETIC_COLLECTION}"), &entities)
    }

    fn profile_html(&self, a: usize) -> Vec<u8> {
        let mut entities = vec![self.apollo_user(a)];
        let first_page = self
            .spec
            .profile_page_size
            .max(1)
            .min(self.spec.stories_per_author);
        for s in 0..first_page {
            self.apollo_post(&self.post(a, s), &mut entities);
        }
        Self::html_page(&format!("Author {a} – Medium"), &entities)
    }

    /// A story body with the post's word, link and image counts.
    fn story_body(p: &Value, footer: Option<&str>) -> String {
        let v = &p["virtuals"];
        let words = v["wordCount"].as_u64().unwrap_or(0) as usize;
        let links = v["links"]["entries"].as_array().map_or(0, Vec::len);
        let images = v["imageCount"].as_u64().unwrap_or(0) as usize;
        let mut out = String::new();
        for i in 0..images {
            out.push_str(&format!(
                "<figure><img src=\"https://cdn/{i}.png\"></figure>"
            ));
        }
        out.push_str("<p>");
        for i in 0..words {
            let w = BODY_WORDS[i % BODY_WORDS.len()];
            if i > 0 {
                out.push_str(if i % 50 == 0 { "</p><p>" } else { " " });
            }
            if i < links {
                out.push_str(&format!("<a href=\"https://example.com/{i}\">{w}</a>"));
            } else {
                out.push_str(w);
            }
        }
        for i in words..links {
            out.push_str(&format!("<a href=\"https://example.com/{i}\"></a>"));
        }
        out.push_str("</p>");
        if let Some(f) = footer {
            out.push_str(f);
        }
        out.push_str("<img src=\"https://medium.com/_/stat?event=post.clientViewed\" width=\"1\" height=\"1\">");
        out
    }

    fn feed(title: &str, link: &str, items: &[String]) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
             xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" xmlns:atom=\"http://www.w3.org/2005/Atom\" \
             version=\"2.0\"><channel><title>{}</title><description>{}</description><link>{}</link>{}</channel></rss>",
            cdata(title),
            cdata(title),
            escape(link),
            items.concat()
        )
        .into_bytes()
    }

    fn feed_item(p: &Value, link: &str, creator: &str, footer: Option<&str>) -> String {
        let ms = |k: &str| p[k].as_i64().unwrap_or(0);
        let pub_date = chrono::DateTime::from_timestamp_millis(ms("firstPublishedAt"))
            .map(|t| t.to_rfc2822())
            .unwrap_or_default();
        let updated = chrono::DateTime::from_timestamp_millis(ms("latestPublishedAt"))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let tags: String = p["virtuals"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["slug"].as_str())
            .map(|t| format!("<category>{}</category>", cdata(t)))
            .collect();
        format!(
            "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">https://medium.com/p/{}</guid>{tags}\
             <dc:creator>{}</dc:creator><pubDate>{pub_date}</pubDate><atom:updated>{updated}</atom:updated>\
             <content:encoded>{}</content:encoded></item>",
            cdata(p["title"].as_str().unwrap_or_default()),
            escape(link),
            p["id"].as_str().unwrap_or_default(),
            cdata(creator),
            cdata(&Self::story_body(p, footer)),
        )
    }

    fn author_feed(&self, a: usize) -> Vec<u8> {
        let u = self.user(a);
        let (uid, username) = (self.user_id(a), format!("author{a}"));
        let name = u["name"].as_str().unwrap_or_default();
        let link = format!("https://medium.com/@{username}?source=rss-{uid}------2");
        let items: Vec<String> = (0..self.spec.stories_per_author)
            .rev()
            .map(|s| self.post(a, s))
            .filter(|p| p["inResponseToPostId"].as_str().is_none_or(str::is_empty))
            .take(FEED_ITEMS)
            .map(|p| {
                let slug = p["uniqueSlug"].as_str().unwrap_or_default().to_owned();
                let link = format!("https://medium.com/@{username}/{slug}?source=rss-{uid}------2");
                Self::feed_item(&p, &link, name, None)
            })
            .collect();
        Self::feed(&format!("Stories by {name} on Medium"), &link, &items)
    }

    fn publication_feed(&self) -> Vec<u8> {
        let c = self.collection(SYNTHETIC_COLLECTION);
        let name = c["name"].as_str().unwrap_or_default();
        let src = format!("?source=rss----{SYNTHETIC_COLLECTION}---4");
        let footer = format!(
            "<p>was originally published in {} on Medium</p>",
            escape(name)
        );
        let items: Vec<String> = (0..self.spec.authors.min(FEED_ITEMS))
            .filter(|_| self.spec.stories_per_author > 0)
            .map(|a| {
                let p = self.post(a, 0);
                let creator = self.user(a)["name"].as_str().unwrap_or_default().to_owned();
                let link = format!(
                    "https://medium.com/{}/{}{src}",
                    synthetic_slug(),
                    p["uniqueSlug"].as_str().unwrap_or_default()
                );
                Self::feed_item(&p, &link, &creator, Some(&footer))
            })
            .collect();
        Self::feed(
            &format!("{name} - Medium"),
            &format!("https://medium.com/{}{src}", synthetic_slug()),
            &items,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyntheticSpec;
    use medium_api::endpoints::{PublicationRef, StreamId};
    use medium_api::guard::parse_payload;
    use medium_api::models::{Post, StreamPayload};
    use medium_api::via::Via;
    use medium_api::StreamPage;

    fn medium() -> SyntheticMedium {
        SyntheticMedium::new(SyntheticSpec {
            authors: 12,
            stories_per_author: 25,
            ..Default::default()
        })
    }

    fn by_id(posts: &[Post]) -> std::collections::HashMap<&str, &Post> {
        posts.iter().map(|p| (p.id.as_str(), p)).collect()
    }

    #[test]
    fn pages_and_feeds_carry_the_json_stories() {
        let m = medium();
        for a in 0..m.spec.authors {
            let stream = StreamId::Profile(m.user_id(a));
            let json: StreamPayload =
                parse_payload(&m.respond(&stream.http_path(), "").unwrap()).unwrap();
            let json_posts = json.references.posts.unwrap().0;
            let json_by_id = by_id(&json_posts);
            let html = StreamPayload::decode(
                Via::Html,
                &stream,
                "",
                &m.respond_page(&format!("/@author{a}")).unwrap(),
            )
            .unwrap();
            let html_posts = html.references.posts.unwrap().0;
            assert_eq!(html_posts.len(), json_posts.len());
            for h in &html_posts {
                let j = json_by_id[h.id.as_str()];
                assert_eq!(
                    (&h.title, &h.creator_id, h.first_published_at),
                    (&j.title, &j.creator_id, j.first_published_at)
                );
                assert_eq!(h.virtuals.total_clap_count, j.virtuals.total_clap_count);
                assert_eq!(h.virtuals.word_count, j.virtuals.word_count);
                assert_eq!(h.is_response(), j.is_response());
            }
            let rss = StreamPayload::decode(
                Via::Rss,
                &stream,
                "",
                &m.respond_page(&format!("/feed/@author{a}")).unwrap(),
            )
            .unwrap();
            let items = rss.references.posts.unwrap().0;
            assert_eq!(items.len(), FEED_ITEMS);
            for r in &items {
                let s: usize = (0..m.spec.stories_per_author)
                    .find(|s| m.post(a, *s)["id"] == r.id.as_str())
                    .unwrap();
                let j: Post = serde_json::from_value(m.post(a, s)).unwrap();
                assert!(!j.is_response());
                // the feed crate trims element text (see crates/medium-api/src/rss.rs)
                assert_eq!(r.title.as_deref(), j.title.as_deref().map(str::trim));
                assert_eq!(
                    r.virtuals.word_count,
                    Some(j.virtuals.word_count.unwrap_or(0))
                );
                assert_eq!(r.link_count(), j.link_count());
                assert_eq!(r.virtuals.image_count, j.virtuals.image_count);
                assert_eq!(
                    r.first_published_at,
                    j.first_published_at.map(|t| t - t % 1000)
                );
            }
        }
        let publication = StreamId::Publication(PublicationRef::Slug(synthetic_slug()));
        let page = StreamPayload::decode(
            Via::Html,
            &publication,
            "",
            &m.respond_page(&format!("/{}", synthetic_slug())).unwrap(),
        )
        .unwrap();
        assert_eq!(page.references.users.0.len(), m.spec.authors);
        assert_eq!(page.collection.unwrap().id, SYNTHETIC_COLLECTION);
        let feed = StreamPayload::decode(
            Via::Rss,
            &publication,
            "",
            &m.respond_page(&format!("/feed/{}", synthetic_slug()))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(feed.unresolved_creators.len(), 10);
        assert!(m.respond_page("/@author99").is_none());
        assert!(m.respond_page("/@nobody").is_none());
    }
}
