#!/usr/bin/env python3
"""Builds the bundled sample raw store in data/sample/ from the real Medium fixtures.

The publication stream page is the real response, byte for byte. Every author's profile-stream
and following pages are derived: built in the exact shapes of the real responses in
tests/fixtures/medium/ (which serve as templates), each author's real story from the publication
page included. Deterministic: running it twice gives the same bytes. See data/sample/README.md.

Usage: python3 scripts/build_sample.py  (from the repository root)
"""
import copy
import hashlib
import json
import os
import shutil
from urllib.parse import urlencode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "medium")
OUT = os.path.join(ROOT, "data", "sample")
GUARD = "])}while(1);</x>"
BASE = "https://medium.com"
FETCHED_AT = "2019-01-02T18:30:00.000Z"
PUB = "7f60cf5620c9"


def load(name):
    raw = open(os.path.join(FIXTURES, name), "rb").read()
    return raw, json.loads(raw.decode("utf-8")[len(GUARD):])


def derived_id(*parts):
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:12]


def query_of(nxt):
    """The query the pipeline builds from paging.next: scalar fields, in order."""
    pairs = []
    for k, v in nxt.items():
        if isinstance(v, bool):
            pairs.append((k, "true" if v else "false"))
        elif isinstance(v, (int, float, str)):
            pairs.append((k, str(v)))
    return urlencode(pairs)


def write_page(rel_dir, index, path, query, body_bytes):
    d = os.path.join(OUT, rel_dir)
    os.makedirs(d, exist_ok=True)
    body_path = os.path.join(d, "page-%04d.json" % index)
    with open(body_path, "wb") as f:
        f.write(body_bytes)
    meta = {
        "url": BASE + path + ("?" + query if query else ""),
        "query": query,
        "status": 200,
        "fetched_at": FETCHED_AT,
        "bytes": len(body_bytes),
        "attempts": 1,
    }
    with open(os.path.join(d, "page-%04d.meta.json" % index), "w") as f:
        f.write(json.dumps(meta, indent=2) + "\n")


def encode(doc):
    return (GUARD + json.dumps(doc, indent=2, ensure_ascii=False)).encode("utf-8")


def main():
    for sub in ("collections", "users", "publications"):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)

    pub_raw, pub = load("collection_stream.json")
    _, profile_tpl = load("user_profile_stream.json")
    _, following_tpl = load("user_following.json")

    write_page("collections/%s/stream" % PUB, 1, "/_/api/collections/%s/stream" % PUB, "", pub_raw)

    refs = pub["payload"]["references"]
    users = list(refs["User"].values())
    posts_by_creator = {p["creatorId"]: p for p in refs["Post"].values()}
    collection = refs["Collection"][PUB]
    template_posts = list(profile_tpl["payload"]["references"]["Post"].values())
    template_collections = profile_tpl["payload"]["references"]["Collection"]
    followed_real = following_tpl["payload"]["value"]

    for i, user in enumerate(users):
        uid = user["userId"]
        real = posts_by_creator[uid]

        # --- profile stream -------------------------------------------------------------
        def profile_page(posts, nxt):
            doc = copy.deepcopy(profile_tpl)
            pl = doc["payload"]
            pl["user"] = copy.deepcopy(user)
            pl["userMeta"]["userId"] = uid
            pl["userMeta"]["numberOfPostsPublished"] = len(posts)
            item_tpl = pl["streamItems"][1]
            pl["streamItems"] = pl["streamItems"][:1]
            for p in posts:
                item = copy.deepcopy(item_tpl)
                item["postPreview"]["postId"] = p["id"]
                item["randomId"] = derived_id(uid, "item", p["id"])
                pl["streamItems"].append(item)
            references = {"User": {uid: copy.deepcopy(user)}}
            if posts:
                references["Post"] = {p["id"]: p for p in posts}
                cols = {}
                for p in posts:
                    cid = p.get("homeCollectionId") or ""
                    if cid == PUB:
                        cols[PUB] = collection
                    elif cid in template_collections:
                        cols[cid] = template_collections[cid]
                references["Collection"] = cols
            pl["references"] = references
            path = "https://medium.com/_/api/users/%s/profile/stream" % uid
            pl["paging"] = {"path": path}
            if nxt is not None:
                pl["paging"]["next"] = nxt
            return doc

        page1 = [copy.deepcopy(real)]
        if i % 2 == 0:
            # a response by the author: a post, not a story
            resp = copy.deepcopy(template_posts[0])
            resp.update(
                id=derived_id(uid, "response"),
                creatorId=uid,
                title="",
                homeCollectionId="",
                inResponseToPostId=posts_by_creator[users[(i + 1) % len(users)]["userId"]]["id"],
                uniqueSlug="response-" + derived_id(uid, "response"),
            )
            resp["virtuals"]["wordCount"] = 37 + i
            resp["virtuals"]["totalClapCount"] = i
            resp["virtuals"]["readingTime"] = (37 + i) / 265.0
            resp["virtuals"]["tags"] = []
            page1.append(resp)
        if i == 1:
            # another creator's post shown on this profile: not this author's story
            page1.append(copy.deepcopy(posts_by_creator[users[2]["userId"]]))
        nxt1 = {"limit": 10, "source": "overview", "ignoredIds": [], "page": 2}
        pages = [(page1, nxt1)]
        if i % 3 == 0:
            # a second, derived story (from the real template stories) and the real story again
            tpl = template_posts[(i // 3) % len(template_posts)]
            story = copy.deepcopy(tpl)
            sid = derived_id(uid, "story", "2")
            story.update(
                id=sid,
                creatorId=uid,
                uniqueSlug=story["uniqueSlug"].rsplit("-", 1)[0] + "-" + sid,
                firstPublishedAt=real["firstPublishedAt"] - 86400000 * (7 + i),
                latestPublishedAt=real["firstPublishedAt"] - 86400000 * (7 + i),
            )
            if i == 9:
                # a story in another real publication (Feature Labs, from the template's references)
                story["homeCollectionId"] = "f0528c112f39"
            if i == 3:
                # real data sometimes lacks counts: null in the tables, not 0
                del story["virtuals"]["wordCount"]
                del story["virtuals"]["totalClapCount"]
            pages.append(([story, copy.deepcopy(real)], {"limit": 10, "source": "overview", "ignoredIds": [], "page": 3}))
            pages.append(([], {"limit": 10, "source": "overview", "ignoredIds": [], "page": 4}))
        else:
            pages.append(([], {"limit": 10, "source": "overview", "ignoredIds": [], "page": 3}))

        query = ""
        for n, (posts, nxt) in enumerate(pages, start=1):
            doc = profile_page(posts, nxt)
            write_page("users/%s/profile_stream" % uid, n,
                       "/_/api/users/%s/profile/stream" % uid, query, encode(doc))
            query = query_of(nxt)

        # --- following ------------------------------------------------------------------
        def following_page(followed, nxt):
            doc = copy.deepcopy(following_tpl)
            pl = doc["payload"]
            value = []
            for f in followed:
                f = copy.deepcopy(f)
                f["social"] = {"userId": uid, "targetUserId": f["userId"], "type": "Social"}
                value.append(f)
            pl["value"] = value
            pl["references"] = {
                "User": {f["userId"]: {k: v for k, v in f.items() if k != "social"} for f in value},
                "Social": {f["userId"]: f["social"] for f in value},
            }
            pl["paging"] = {"path": "/_/api/users/%s/following" % uid, "next": nxt}
            return doc

        def as_followed(u):
            f = copy.deepcopy(u)
            f.setdefault("social", {})
            return f

        others = [users[(i + k) % len(users)] for k in (1, 3)]
        first = [as_followed(u) for u in others] + followed_real[: 1 + i % 3]
        fpages = []
        if i % 2 == 0:
            fpages.append((first, {"limit": 8, "to": first[-1]["userId"]}))
            fpages.append(([as_followed(users[(i + 5) % len(users)])], {"limit": 8}))
        else:
            fpages.append((first, {"limit": 8}))
        query = ""
        for n, (followed, nxt) in enumerate(fpages, start=1):
            write_page("users/%s/following" % uid, n,
                       "/_/api/users/%s/following" % uid, query, encode(following_page(followed, nxt)))
            query = query_of(nxt)


if __name__ == "__main__":
    main()
    # the same authors and stories as HTML pages and RSS feeds, beside the JSON pages
    import build_feeds

    build_feeds.build_sample()
    # and as GraphQL replies (with the post bodies' link counts)
    import build_graphql

    build_graphql.build_sample()
