#!/usr/bin/env python3
"""Builds the GraphQL replies of the bundled sample and the GraphQL fixtures from the JSON ones:
the same authors, stories, numbers and followings, in the shapes MEDIUM-GRAPHQL.md records for
Medium's `POST /_/graphql` (the replies of `collection(id)`, `userResult(id)` →
`homepagePostsConnection` / `followingUserConnection`, and batches of `post(id)` bodies).

Written independently of the Rust decoders (which read these files back and must find the JSON
numbers in them), in the shapes Medium uses:

- A user's connection holds the user's own posts (stories and responses; a response has
  `inResponseToPostResult {__typename: "Post", id}`), with the creator, the publication, the
  counts (`clapCount`, `wordCount`, `readingTime`, `postResponses.count`), the tags'
  `normalizedTagSlug` and `pinnedAt: 0`. Each JSON page becomes one GraphQL page; while a next
  page exists, `pagingInfo.next` is `{"from": "L<ms of the page's oldest post>", "limit": 25,
  "to": null, "page": null, "source": ""}` (nulls and the empty source, as Medium sends them),
  and `null` on the last page.
- A publication's connection lists the posts of the JSON publication page, each with its
  creator's profile fields.
- A following list holds the users of the JSON page; its `next.from` is the last user's id.
- Post bodies: a batched reply (an array, in request order) of `post(id)` for at most 25 posts,
  each body with exactly the post's `links.entries` count of markups of type `A` with an `href`,
  beside other markups (`STRONG`, an `A` without href) and an image paragraph per image.

The page files sit beside the JSON ones as `page-NNNN.graphql.json` with
`page-NNNN.graphql.json.meta.json`, whose `query` is the paging query the pipeline builds
(`limit=25`, then `limit=25&from=...`; bodies: `ids=a%2Cb`). They were not posted to Medium,
so their metadata records no `request`.

Outputs:
- `data/sample/`: beside every JSON page of the bundled sample, and
  `users/<id>/post_bodies/page-NNNN.graphql.json`.
- `tests/fixtures/medium/`: `graphql_collection_posts.json` (from `collection_stream.json`),
  `graphql_user_posts.json` (from `user_profile_stream.json`, with `socialStats`),
  `graphql_user_following.json` (from `user_following.json`), `graphql_post_bodies.json` (the
  bodies of the profile fixture's own posts).

Deterministic. Usage: python3 scripts/build_graphql.py  (from the repository root, after
scripts/build_sample.py)
"""
import glob
import json
import os
from urllib.parse import urlencode

from build_sample import BASE, FETCHED_AT, FIXTURES, OUT as SAMPLE

LIMIT = 25
BODY_BATCH = 25
PATH = "/_/graphql"


def load_json(path):
    raw = open(path, "rb").read().decode("utf-8")
    return json.loads(raw[raw.index("{"):])


def dump(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def user_fields(u):
    return {
        "id": u["userId"],
        "username": u.get("username"),
        "name": u.get("name"),
        "bio": u.get("bio"),
        "imageId": u.get("imageId"),
        "twitterScreenName": u.get("twitterScreenName"),
        "createdAt": u.get("createdAt"),
        "mediumMemberAt": u.get("mediumMemberAt"),
    }


def collection_fields(c):
    return {
        "id": c["id"],
        "name": c.get("name"),
        "slug": c.get("slug"),
        "domain": c.get("domain") or None,
        "description": c.get("description"),
        "creator": {"id": c["creatorId"]} if c.get("creatorId") else None,
    }


def post_fields(p, users, collections):
    v = p.get("virtuals") or {}
    creator = users.get(p.get("creatorId"))
    home = p.get("homeCollectionId") or ""
    parent = p.get("inResponseToPostId") or ""
    return {
        "id": p["id"],
        "title": p.get("title"),
        "uniqueSlug": p.get("uniqueSlug"),
        "creator": user_fields(creator) if creator else {"id": p.get("creatorId")},
        "collection": (collection_fields(collections[home]) if home in collections
                       else ({"id": home, "name": None, "slug": None, "domain": None,
                              "description": None, "creator": None} if home else None)),
        "firstPublishedAt": p.get("firstPublishedAt"),
        "latestPublishedAt": p.get("latestPublishedAt"),
        "clapCount": v.get("totalClapCount"),
        "readingTime": v.get("readingTime"),
        "wordCount": v.get("wordCount"),
        "isLocked": bool(p.get("isSubscriptionLocked")),
        "pinnedAt": 0,
        "tags": [{"normalizedTagSlug": t["slug"]} for t in (v.get("tags") or [])],
        "postResponses": {"count": v.get("responsesCreatedCount")},
        "inResponseToPostResult": {"__typename": "Post", "id": parent} if parent else None,
    }


def next_after(posts, more):
    if not more or not posts:
        return None
    oldest = min(p["firstPublishedAt"] for p in posts)
    return {"from": f"L{oldest}", "to": None, "limit": LIMIT, "page": None, "source": ""}


def by_id(refs):
    return {k: v for k, v in (refs or {}).items()}


def user_posts_reply(payload, more, social=True):
    """The reply to UserPosts for one JSON profile page: the user's own posts."""
    refs = payload.get("references") or {}
    users = {u["userId"]: u for u in (refs.get("User") or {}).values()}
    collections = by_id(refs.get("Collection"))
    user = payload["user"]
    own = [p for p in (refs.get("Post") or {}).values() if p.get("creatorId") == user["userId"]]
    posts = [post_fields(p, users, collections) for p in own]
    result = {"__typename": "User", **user_fields(user)}
    stats = (refs.get("SocialStats") or {}).get(user["userId"])
    if social and stats:
        result["socialStats"] = {
            "followerCount": stats.get("usersFollowedByCount"),
            "followingCount": stats.get("usersFollowedCount"),
        }
    elif social:
        result["socialStats"] = None
    result["homepagePostsConnection"] = {
        "posts": posts,
        "pagingInfo": {"next": next_after(own, more)},
    }
    return {"data": {"userResult": result}}, own


def collection_reply(payload, more):
    refs = payload.get("references") or {}
    users = {u["userId"]: u for u in (refs.get("User") or {}).values()}
    collections = by_id(refs.get("Collection"))
    own = list((refs.get("Post") or {}).values())
    c = collection_fields(payload["collection"])
    c["homepagePostsConnection"] = {
        "posts": [post_fields(p, users, collections) for p in own],
        "pagingInfo": {"next": next_after(own, more)},
    }
    return {"data": {"collection": c}}


def following_reply(user_id, payload, more):
    users = payload.get("value") or []
    nxt = None
    if more and users:
        nxt = {"from": users[-1]["userId"], "to": None, "limit": LIMIT, "page": None,
               "source": ""}
    return {"data": {"userResult": {
        "__typename": "User",
        "id": user_id,
        "followingUserConnection": {
            "users": [user_fields(u) for u in users],
            "pagingInfo": {"next": nxt},
        },
    }}}


def body_of(p):
    """`post(id)` with a body of exactly the post's link count."""
    v = p.get("virtuals") or {}
    links = len(((v.get("links") or {}).get("entries")) or [])
    images = v.get("imageCount") or 0
    paragraphs = [{"markups": [{"type": "STRONG", "href": None}, {"type": "A", "href": None}]}]
    paragraphs += [{"markups": [{"type": "EM", "href": None},
                                {"type": "A", "href": f"https://example.com/{p['id']}/{i}"}]}
                   for i in range(links)]
    paragraphs += [{"markups": []} for _ in range(images)]
    return {"data": {"post": {
        "id": p["id"],
        "isLocked": bool(p.get("isSubscriptionLocked")),
        "content": {"bodyModel": {"paragraphs": paragraphs}},
    }}}


def bodies_query(ids):
    return urlencode([("ids", ",".join(ids))])


def paging_query(nxt):
    """The query the pipeline builds: `limit=25` first, then the cursor's fields with values."""
    pairs = [("limit", str(LIMIT))]
    for k, v in (nxt or {}).items():
        if k == "limit" or v is None or v == "":
            continue
        pairs.append((k, str(v)))
    return urlencode(pairs)


def write_page(directory, index, body, query):
    name = f"page-{index:04d}.graphql.json"
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(body)
    meta = {
        "url": BASE + PATH,
        "query": query,
        "status": 200,
        "fetched_at": FETCHED_AT,
        "bytes": len(body),
        "attempts": 1,
    }
    with open(os.path.join(directory, name + ".meta.json"), "w") as f:
        f.write(json.dumps(meta, indent=2) + "\n")


def json_pages(directory):
    return sorted(glob.glob(os.path.join(directory, "page-[0-9][0-9][0-9][0-9].json")))


def build_sample():
    # the publication, by collection id
    for stream in glob.glob(os.path.join(SAMPLE, "collections", "*", "stream")):
        pages = json_pages(stream)
        nxt = None
        for i, path in enumerate(pages, 1):
            reply = collection_reply(load_json(path)["payload"], i < len(pages))
            write_page(stream, i, dump(reply), paging_query(nxt))
            nxt = reply["data"]["collection"]["homepagePostsConnection"]["pagingInfo"]["next"]
    for user_dir in sorted(glob.glob(os.path.join(SAMPLE, "users", "*"))):
        user_id = os.path.basename(user_dir)
        profile = os.path.join(user_dir, "profile_stream")
        pages = json_pages(profile)
        nxt, own_posts = None, []
        for i, path in enumerate(pages, 1):
            reply, own = user_posts_reply(load_json(path)["payload"], i < len(pages), social=i == 1)
            write_page(profile, i, dump(reply), paging_query(nxt))
            nxt = reply["data"]["userResult"]["homepagePostsConnection"]["pagingInfo"]["next"]
            own_posts += [p for p in own if p["id"] not in {q["id"] for q in own_posts}]
        bodies = os.path.join(user_dir, "post_bodies")
        for i in range(0, len(own_posts), BODY_BATCH):
            batch = own_posts[i:i + BODY_BATCH]
            write_page(bodies, i // BODY_BATCH + 1, dump([body_of(p) for p in batch]),
                       bodies_query([p["id"] for p in batch]))
        following = os.path.join(user_dir, "following")
        pages = json_pages(following)
        nxt = None
        for i, path in enumerate(pages, 1):
            reply = following_reply(user_id, load_json(path)["payload"], i < len(pages))
            write_page(following, i, dump(reply), paging_query(nxt))
            conn = reply["data"]["userResult"]["followingUserConnection"]
            nxt = conn["pagingInfo"]["next"]


def build_fixtures():
    def write(name, value):
        with open(os.path.join(FIXTURES, name), "wb") as f:
            f.write(json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8") + b"\n")

    write("graphql_collection_posts.json",
          collection_reply(load_json(os.path.join(FIXTURES, "collection_stream.json"))["payload"],
                           True))
    reply, own = user_posts_reply(
        load_json(os.path.join(FIXTURES, "user_profile_stream.json"))["payload"], True)
    write("graphql_user_posts.json", reply)
    write("graphql_post_bodies.json", [body_of(p) for p in own])
    write("graphql_user_following.json",
          following_reply("b5e0373348ba",
                          load_json(os.path.join(FIXTURES, "user_following.json"))["payload"],
                          True))


if __name__ == "__main__":
    build_sample()
    build_fixtures()
