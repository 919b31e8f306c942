#!/usr/bin/env python3
"""Builds the HTML-page and RSS-feed fixtures from the JSON ones: the same authors, the same
stories, the same numbers, in the two other formats Medium serves them in.

Written independently of the Rust decoders (which read these files back), in the shapes Medium
uses:

- HTML pages (`/@username`, `/{publication_slug}`): a server-rendered page whose data sits in
  `<script>window.__APOLLO_STATE__ = {...}</script>`, a flat map of entities keyed "Type:id"
  (User, Post, Collection, Tag) that refer to each other with {"__ref": "Type:id"}; `<` is
  escaped as \\u003c inside the script, as Medium does. A decoy `window.__PRELOADED_STATE__`
  script comes first.
- RSS 2.0 feeds (`/feed/@username`, `/feed/{slug}`): Medium's channel (title "Stories by NAME on
  Medium", link with `?source=rss-<userid>------2`; a publication's "NAME - Medium" with
  `?source=rss----<collectionid>---4`), items with guid `https://medium.com/p/<id>`, category per
  tag, dc:creator, pubDate (RFC 2822, whole seconds), atom:updated (RFC 3339, ms) and the story
  as content:encoded, ending with Medium's view-counting pixel (and, in publication feeds, the
  "was originally published in" footer).

The JSON payloads do not hold the stories' text, so each story body is written to have exactly
the story's `wordCount` words, its `links.entries` count of links and its `imageCount` images
(what the RSS decoder counts back). A profile page shows the posts of the author's first profile
page; a feed holds the author's latest 10 stories (their own posts, not responses), newest first.

Outputs:
- `data/sample/`: beside every JSON page of the bundled sample, `page-0001.html` and
  `page-0001.xml` (+ `.html.meta.json` / `.xml.meta.json`) for every author and for the
  publication (under `publications/towards-data-science/latest/`).
- `tests/fixtures/medium/`: `collection_page.html`, `collection_feed.xml` (from
  `collection_stream.json`), `user_profile_page.html`, `user_feed.xml` (from
  `user_profile_stream.json`), plus `challenge_page.html` (a Cloudflare challenge).

Deterministic. Usage: python3 scripts/build_feeds.py  (from the repository root, after
scripts/build_sample.py)
"""
import email.utils
import glob
import json
import os
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from build_sample import BASE, FETCHED_AT, FIXTURES, OUT as SAMPLE

FEED_ITEMS = 10

WORDS = (
    "data model training features network results analysis python learning values "
    "approach distribution sample error layer function pipeline metric signal graph"
).split()


def load_json(path):
    raw = open(path, "rb").read().decode("utf-8")
    start = raw.index("{")
    return json.loads(raw[start:])


def ms_to_rfc2822(ms):
    return email.utils.formatdate(ms // 1000, usegmt=True)


def ms_to_rfc3339(ms):
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def cdata(text):
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# --- story bodies -------------------------------------------------------------------------

def story_html(post, footer=None):
    """A story body with exactly the post's word, link and image counts."""
    v = post.get("virtuals", {})
    words = v.get("wordCount") or 0
    links = len(((v.get("links") or {}).get("entries")) or [])
    images = v.get("imageCount") or 0
    tokens = [WORDS[(i * 7 + len(post["id"])) % len(WORDS)] for i in range(words)]
    # the first `links` words become link texts; links beyond the words are empty anchors
    rendered = []
    for i, t in enumerate(tokens):
        if i < links:
            rendered.append('<a href="https://example.com/%s/ref-%d">%s</a>' % (post["id"], i, t))
        else:
            rendered.append(t)
    extra_links = "".join(
        '<a href="https://example.com/%s/ref-%d"></a>' % (post["id"], i)
        for i in range(words, links)
    )
    paragraphs = [" ".join(rendered[i:i + 40]) for i in range(0, len(rendered), 40)] or [""]
    out = []
    for n, para in enumerate(paragraphs):
        if n < images:
            out.append(
                '<figure><img alt="" src="https://cdn-images-1.medium.com/max/1024/1*%s-%d.png" /></figure>'
                % (post["id"], n)
            )
        out.append("<p>%s</p>" % para)
    for n in range(len(paragraphs), images):
        out.append(
            '<figure><img alt="" src="https://cdn-images-1.medium.com/max/1024/1*%s-%d.png" /></figure>'
            % (post["id"], n)
        )
    if extra_links:
        out.append("<p>%s</p>" % extra_links)
    if footer:
        out.append(footer)
    out.append(
        '<img src="https://medium.com/_/stat?event=post.clientViewed&referrerSource=full_rss&postId=%s" '
        'width="1" height="1" alt="">' % post["id"]
    )
    return "".join(out)


# --- RSS ----------------------------------------------------------------------------------

def rss_head(title, description, link, self_url, image=None):
    img = ""
    if image:
        img = "<image><url>%s</url><title>%s</title><link>%s</link></image>" % (
            escape(image), escape(title), escape(link))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0" '
        'xmlns:cc="http://cyber.law.harvard.edu/rss/creativeCommonsRssModule.html">'
        "<channel><title>%s</title><description>%s</description><link>%s</link>%s"
        "<generator>Medium</generator><lastBuildDate>Wed, 02 Jan 2019 18:30:00 GMT</lastBuildDate>"
        '<atom:link href="%s" rel="self" type="application/rss+xml"/>'
        "<webMaster>%s</webMaster>"
        '<atom:link href="http://medium.superfeedr.com" rel="hub"/>'
        % (cdata(title), cdata(description), escape(link), img, escape(self_url),
           cdata("yourfriends@medium.com"))
    )


def rss_item(post, link, creator_name, footer=None):
    tags = "".join("<category>%s</category>" % cdata(t["slug"])
                   for t in post.get("virtuals", {}).get("tags") or [])
    parts = [
        "<item><title>%s</title>" % cdata(post.get("title") or ""),
        "<link>%s</link>" % escape(link),
        '<guid isPermaLink="false">https://medium.com/p/%s</guid>' % post["id"],
        tags,
        "<dc:creator>%s</dc:creator>" % cdata(creator_name),
    ]
    if post.get("firstPublishedAt"):
        parts.append("<pubDate>%s</pubDate>" % ms_to_rfc2822(post["firstPublishedAt"]))
    if post.get("latestPublishedAt"):
        parts.append("<atom:updated>%s</atom:updated>" % ms_to_rfc3339(post["latestPublishedAt"]))
    parts.append("<content:encoded>%s</content:encoded></item>" % cdata(story_html(post, footer)))
    return "".join(parts)


def author_feed(user, posts):
    uid, username, name = user["userId"], user["username"], user.get("name") or ""
    src = "?source=rss-%s------2" % uid
    link = "%s/@%s%s" % (BASE, username, src)
    stories = [p for p in posts
               if p.get("creatorId") == uid and not p.get("inResponseToPostId")]
    stories.sort(key=lambda p: -(p.get("firstPublishedAt") or 0))
    head = rss_head("Stories by %s on Medium" % name, "Stories by %s on Medium" % name, link,
                    "%s/@%s/feed" % (BASE, username),
                    "https://cdn-images-1.medium.com/fit/c/150/150/" + (user.get("imageId") or ""))
    items = "".join(
        rss_item(p, "%s/@%s/%s%s" % (BASE, username, p.get("uniqueSlug") or p["id"], src), name)
        for p in stories[:FEED_ITEMS]
    )
    return (head + items + "</channel></rss>").encode("utf-8")


def publication_feed(collection, users, posts):
    cid, slug, name = collection["id"], collection["slug"], collection.get("name") or ""
    src = "?source=rss----%s---4" % cid
    home = "https://%s" % collection["domain"] if collection.get("domain") else "%s/%s" % (BASE, slug)
    names = {u["userId"]: u.get("name") or "" for u in users}
    head = rss_head("%s - Medium" % name, collection.get("description") or "", home + src,
                    "%s/feed/%s" % (BASE, slug))
    items = []
    for p in sorted(posts, key=lambda p: -(p.get("firstPublishedAt") or 0))[:FEED_ITEMS]:
        url = "%s/%s%s" % (home, p.get("uniqueSlug") or p["id"], src)
        footer = ('<hr><p><a href="%s">%s</a> was originally published in <a href="%s">%s</a> '
                  "on Medium, where people are continuing the conversation by highlighting and "
                  "responding to this story.</p>" % (escape(url), escape(p.get("title") or ""),
                                                      escape(home), escape(name)))
        items.append(rss_item(p, url, names.get(p.get("creatorId"), ""), footer))
    return (head + "".join(items) + "</channel></rss>").encode("utf-8")


# --- HTML ---------------------------------------------------------------------------------

def ref(kind, ident):
    return {"__ref": "%s:%s" % (kind, ident)}


def apollo_state(users, posts, collections):
    state = {"ROOT_QUERY": {"__typename": "Query", "viewer": None}}
    for u in users:
        e = {"__typename": "User", "id": u["userId"]}
        for src, dst in (("username", "username"), ("name", "name"), ("bio", "bio"),
                         ("twitterScreenName", "twitterScreenName"), ("imageId", "imageId"),
                         ("mediumMemberAt", "mediumMemberAt"), ("createdAt", "createdAt")):
            if src in u:
                e[dst] = u[src]
        state["User:" + u["userId"]] = e
    for c in collections:
        e = {"__typename": "Collection", "id": c["id"]}
        for k in ("name", "slug", "description", "domain"):
            if k in c:
                e[k] = c[k]
        if c.get("creatorId"):
            e["creator"] = ref("User", c["creatorId"])
        state["Collection:" + c["id"]] = e
    for p in posts:
        v = p.get("virtuals", {})
        for t in v.get("tags") or []:
            state["Tag:" + t["slug"]] = {"__typename": "Tag", "id": t["slug"],
                                         "displayTitle": t.get("name") or t["slug"]}
        e = {"__typename": "Post", "id": p["id"], "title": p.get("title"),
             "uniqueSlug": p.get("uniqueSlug"),
             "mediumUrl": "%s/p/%s" % (BASE, p["id"]),
             "creator": ref("User", p["creatorId"]),
             "collection": ref("Collection", p["homeCollectionId"]) if p.get("homeCollectionId") else None,
             "inResponseToPostResult": ref("Post", p["inResponseToPostId"]) if p.get("inResponseToPostId") else None}
        for src, dst in (("firstPublishedAt", "firstPublishedAt"), ("latestPublishedAt", "latestPublishedAt")):
            if src in p:
                e[dst] = p[src]
        for src, dst in (("totalClapCount", "clapCount"), ("wordCount", "wordCount"),
                         ("readingTime", "readingTime")):
            if src in v:
                e[dst] = v[src]
        if "responsesCreatedCount" in v:
            e["postResponses"] = {"__typename": "PostResponses", "count": v["responsesCreatedCount"]}
        e["tags"] = [ref("Tag", t["slug"]) for t in v.get("tags") or []]
        state["Post:" + p["id"]] = e
    return state


def html_page(title, canonical, state, listing):
    text = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    items = "".join('<article><h2><a href="%s/p/%s">%s</a></h2></article>'
                    % (BASE, p["id"], escape(p.get("title") or "")) for p in listing)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>%s</title>"
        '<link rel="canonical" href="%s"><meta name="viewport" content="width=device-width,initial-scale=1">'
        '<script>!function(){var e=document.documentElement;e.className+=" js"}();</script>'
        "</head><body><div id=\"root\"><main>%s</main></div>"
        "<script>window.__BUILD_ID__=\"main-20190102-183000-0000000000\"</script>"
        "<script>window.__PRELOADED_STATE__ = {\"config\":{\"nodeEnv\":\"production\"}}</script>"
        "<script>window.__APOLLO_STATE__ = %s</script>"
        '<script src="https://cdn-client.medium.com/lite/static/js/main.js" async></script>'
        "</body></html>" % (escape(title), escape(canonical), items, text)
    ).encode("utf-8")


def challenge_page():
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
        '<meta name="robots" content="noindex,nofollow"></head><body>'
        '<div class="main-wrapper" role="main"><div class="main-content">'
        '<h1 class="zone-name-title h1">medium.com</h1>'
        '<h2 class="h2">Checking if the site connection is secure</h2></div></div>'
        '<script>(function(){window._cf_chl_opt={cvId: "3",cZone: "medium.com",cType: "managed"};'
        "var a = document.createElement('script');"
        "a.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=7f0000000000';"
        "document.getElementsByTagName('head')[0].appendChild(a);})();</script>"
        "</body></html>"
    ).encode("utf-8")


def publication_page(payload):
    refs = payload["references"]
    c = payload["collection"]
    users = list(refs["User"].values())
    posts = list(refs["Post"].values())
    collections = [c] + [x for x in refs.get("Collection", {}).values() if x["id"] != c["id"]]
    state = apollo_state(users, posts, collections)
    return html_page("%s – Medium" % c.get("name"), "%s/%s" % (BASE, c["slug"]), state, posts)


def profile_page(user, refs):
    posts = list((refs.get("Post") or {}).values())
    users = [user] + [u for u in (refs.get("User") or {}).values() if u["userId"] != user["userId"]]
    collections = list((refs.get("Collection") or {}).values())
    state = apollo_state(users, posts, collections)
    return html_page("%s – Medium" % user.get("name"), "%s/@%s" % (BASE, user["username"]),
                     state, posts)


# --- writing ------------------------------------------------------------------------------

def write_page(directory, ext, url, body):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "page-0001.%s" % ext), "wb") as f:
        f.write(body)
    meta = {"url": url, "query": "", "status": 200, "fetched_at": FETCHED_AT,
            "bytes": len(body), "attempts": 1}
    with open(os.path.join(directory, "page-0001.%s.meta.json" % ext), "w") as f:
        f.write(json.dumps(meta, indent=2) + "\n")


def write(path, body):
    with open(path, "wb") as f:
        f.write(body)


def build_sample():
    pubs = glob.glob(os.path.join(SAMPLE, "collections", "*", "stream", "page-0001.json"))
    for path in sorted(pubs):
        payload = load_json(path)["payload"]
        c = payload["collection"]
        refs = payload["references"]
        d = os.path.join(SAMPLE, "publications", c["slug"], "latest")
        write_page(d, "html", "%s/%s" % (BASE, c["slug"]), publication_page(payload))
        write_page(d, "xml", "%s/feed/%s" % (BASE, c["slug"]),
                   publication_feed(c, list(refs["User"].values()), list(refs["Post"].values())))
    for user_dir in sorted(glob.glob(os.path.join(SAMPLE, "users", "*"))):
        pages = sorted(glob.glob(os.path.join(user_dir, "profile_stream", "page-*[0-9].json")))
        payloads = [load_json(p)["payload"] for p in pages]
        user = payloads[0]["user"]
        posts, seen = [], set()
        for pl in payloads:
            for p in ((pl.get("references") or {}).get("Post") or {}).values():
                if p["id"] not in seen:
                    seen.add(p["id"])
                    posts.append(p)
        d = os.path.join(user_dir, "profile_stream")
        write_page(d, "html", "%s/@%s" % (BASE, user["username"]),
                   profile_page(user, payloads[0]["references"]))
        write_page(d, "xml", "%s/feed/@%s" % (BASE, user["username"]), author_feed(user, posts))


def build_fixtures():
    pub = load_json(os.path.join(FIXTURES, "collection_stream.json"))["payload"]
    refs = pub["references"]
    write(os.path.join(FIXTURES, "collection_page.html"), publication_page(pub))
    write(os.path.join(FIXTURES, "collection_feed.xml"),
          publication_feed(pub["collection"], list(refs["User"].values()), list(refs["Post"].values())))
    prof = load_json(os.path.join(FIXTURES, "user_profile_stream.json"))["payload"]
    user = prof["user"]
    write(os.path.join(FIXTURES, "user_profile_page.html"), profile_page(user, prof["references"]))
    write(os.path.join(FIXTURES, "user_feed.xml"),
          author_feed(user, list(prof["references"]["Post"].values())))
    write(os.path.join(FIXTURES, "challenge_page.html"), challenge_page())


if __name__ == "__main__":
    build_fixtures()
    build_sample()
