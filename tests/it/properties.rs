//! Property test: random authors' posts pushed through normalize → Parquet → polars aggregate
//! give the same metrics as a naive, obviously-correct computation in plain Rust.

use std::collections::BTreeSet;

use medium_etl::run::{AuthorHarvest, Harvest, PublicationHarvest, StreamHarvest};
use medium_etl::sinks::parquet::write_batch;
use medium_etl::sources::medium::endpoints::{PublicationRef, StreamId};
use medium_etl::sources::medium::models::{FollowingPayload, StreamPayload, User};
use medium_etl::sources::medium::paging::StreamEnd;
use medium_etl::sources::medium::via::Via;
use medium_etl::transforms::{aggregate, normalize};
use polars::prelude::{AnyValue, DataFrame};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct GenPost {
    title: String,
    claps: Option<i64>,
    words: Option<i64>,
    reading: Option<f64>,
    tags: usize,
    links: Option<usize>,
    home: Option<u8>,
    response: bool,
    other_creator: bool,
    page: usize,
    repeat_on_next_page: bool,
    published: i64,
}

#[derive(Debug, Clone)]
struct GenAuthor {
    posts: Vec<GenPost>,
    followees: Vec<u8>,
}

fn title() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("data"),
            Just("x"),
            Just(" "),
            Just("\u{200a}"),
            Just("\t"),
            Just("é"),
            Just("日本"),
            Just("\u{3000}"),
            Just("—"),
            Just("\u{a0}"),
            Just("🚀"),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn gen_post() -> impl Strategy<Value = GenPost> {
    (
        title(),
        prop::option::weighted(0.8, 0i64..5000),
        prop::option::weighted(0.8, 0i64..6000),
        prop::option::weighted(0.8, 0.0f64..30.0),
        0usize..6,
        prop::option::weighted(0.8, 0usize..40),
        prop::option::of(0u8..4),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        0usize..3,
        prop::bool::weighted(0.2),
        1_400_000_000_000i64..1_700_000_000_000,
    )
        .prop_map(
            |(
                title,
                claps,
                words,
                reading,
                tags,
                links,
                home,
                response,
                other_creator,
                page,
                repeat_on_next_page,
                published,
            )| GenPost {
                title,
                claps,
                words,
                reading,
                tags,
                links,
                home,
                response,
                other_creator,
                page,
                repeat_on_next_page,
                published,
            },
        )
}

fn gen_authors() -> impl Strategy<Value = Vec<GenAuthor>> {
    prop::collection::vec(
        (
            prop::collection::vec(gen_post(), 0..9),
            prop::collection::vec(0u8..6, 0..6),
        )
            .prop_map(|(posts, followees)| GenAuthor { posts, followees }),
        1..6,
    )
}

fn post_json(author: usize, i: usize, p: &GenPost) -> Value {
    let mut virtuals =
        json!({"tags": (0..p.tags).map(|t| json!({"slug": format!("t{t}")})).collect::<Vec<_>>()});
    if let Some(c) = p.claps {
        virtuals["totalClapCount"] = json!(c);
    }
    if let Some(w) = p.words {
        virtuals["wordCount"] = json!(w);
    }
    if let Some(r) = p.reading {
        virtuals["readingTime"] = json!(r);
    }
    if let Some(l) = p.links {
        virtuals["links"] = json!({"entries": vec![json!({"url": "u"}); l]});
    }
    json!({
        "id": format!("a{author}p{i}"),
        "creatorId": if p.other_creator { "someone-else".to_owned() } else { format!("u{author}") },
        "title": p.title,
        "homeCollectionId": p.home.map(|h| format!("h{h}")).unwrap_or_default(),
        "inResponseToPostId": if p.response { "x" } else { "" },
        "firstPublishedAt": p.published,
        "virtuals": virtuals,
    })
}

fn harvest_of(authors: &[GenAuthor]) -> Harvest {
    let stream_done = |stream: StreamId| StreamHarvest::<StreamPayload> {
        stream,
        pages: Vec::new(),
        end: Ok(StreamEnd::NoPaging),
        via: Some(Via::Json),
        carried: Vec::new(),
    };
    let mut harvested = Vec::new();
    for (a, g) in authors.iter().enumerate() {
        let mut pages: Vec<serde_json::Map<String, Value>> = vec![serde_json::Map::new(); 4];
        for (i, p) in g.posts.iter().enumerate() {
            let j = post_json(a, i, p);
            pages[p.page].insert(j["id"].as_str().unwrap().to_owned(), j.clone());
            if p.repeat_on_next_page {
                pages[p.page + 1].insert(j["id"].as_str().unwrap().to_owned(), j);
            }
        }
        let profile_pages: Vec<StreamPayload> = pages
            .into_iter()
            .map(|posts| serde_json::from_value(json!({
                "references": {"Post": posts, "Collection": {"h0": {"id": "h0", "name": "Home Zero"}}}
            })).unwrap())
            .collect();
        let following_pages: Vec<FollowingPayload> = vec![serde_json::from_value(json!({
            "value": g.followees.iter().map(|f| json!({"userId": format!("f{f}")})).collect::<Vec<_>>()
        })).unwrap()];
        let user: User = serde_json::from_value(
            json!({"userId": format!("u{a}"), "username": format!("user{a}")}),
        )
        .unwrap();
        harvested.push(AuthorHarvest {
            user,
            found_in: vec![PublicationRef::Id("pub".into())],
            profile: StreamHarvest {
                stream: StreamId::Profile(format!("u{a}")),
                pages: profile_pages,
                end: Ok(StreamEnd::NoNewItems),
                via: Some(Via::Json),
                carried: Vec::new(),
            },
            following: StreamHarvest {
                stream: StreamId::Following(format!("u{a}")),
                pages: following_pages,
                end: Ok(StreamEnd::NoPosition),
                via: Some(Via::Json),
                carried: Vec::new(),
            },
        });
    }
    Harvest {
        date: "2026-11-27".into(),
        publications: vec![PublicationHarvest {
            publication: PublicationRef::Id("pub".into()),
            collection: None,
            stream: stream_done(StreamId::Publication(PublicationRef::Id("pub".into()))),
        }],
        authors: harvested,
        authors_found: authors.len(),
        authors_capped_at: None,
        switches: Vec::new(),
        skipped_ids: Vec::new(),
    }
}

/// The naive metrics of one author, straight from the definitions of SPEC §4.
#[derive(Debug, PartialEq)]
struct Naive {
    story_count: i64,
    total_claps: Option<i64>,
    mean_claps: Option<f64>,
    median_claps: Option<f64>,
    max_claps: Option<i64>,
    mean_headline_words: Option<f64>,
    mean_headline_chars: Option<f64>,
    mean_word_count: Option<f64>,
    mean_reading_time_min: Option<f64>,
    mean_tag_count: Option<f64>,
    mean_link_count: Option<f64>,
    publications: Vec<String>,
    publication_names: Vec<String>,
    following_count: i64,
    first_published_at: Option<i64>,
    last_published_at: Option<i64>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn naive(g: &GenAuthor) -> Naive {
    let stories: Vec<&GenPost> = g
        .posts
        .iter()
        .filter(|p| !p.other_creator && !p.response)
        .collect();
    let claps: Vec<i64> = stories.iter().filter_map(|p| p.claps).collect();
    let mut sorted = claps.clone();
    sorted.sort();
    let median = match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2] as f64),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    };
    let words_in = |t: &str| {
        // maximal runs of non-White_Space characters, counted by hand
        let mut count = 0;
        let mut in_word = false;
        for c in t.chars() {
            let ws = matches!(
                c,
                ' ' | '\t'
                    | '\n'
                    | '\u{a0}'
                    | '\u{200a}'
                    | '\u{3000}'
                    | '\u{2028}'
                    | '\u{85}'
                    | '\u{b}'
                    | '\u{c}'
                    | '\r'
            );
            if !ws && !in_word {
                count += 1;
            }
            in_word = !ws;
        }
        count as f64
    };
    let pubs: BTreeSet<String> = stories
        .iter()
        .filter_map(|p| p.home.map(|h| format!("h{h}")))
        .collect();
    let publications: Vec<String> = pubs.into_iter().collect();
    let publication_names = publications
        .iter()
        .map(|p| {
            if p == "h0" {
                "Home Zero".to_owned()
            } else {
                p.clone()
            }
        })
        .collect();
    Naive {
        story_count: stories.len() as i64,
        total_claps: (!claps.is_empty()).then(|| claps.iter().sum()),
        mean_claps: mean(&claps.iter().map(|c| *c as f64).collect::<Vec<_>>()),
        median_claps: median,
        max_claps: claps.iter().copied().max(),
        mean_headline_words: mean(
            &stories
                .iter()
                .map(|p| words_in(&p.title))
                .collect::<Vec<_>>(),
        ),
        mean_headline_chars: mean(
            &stories
                .iter()
                .map(|p| p.title.chars().count() as f64)
                .collect::<Vec<_>>(),
        ),
        mean_word_count: mean(
            &stories
                .iter()
                .filter_map(|p| p.words.map(|w| w as f64))
                .collect::<Vec<_>>(),
        ),
        mean_reading_time_min: mean(&stories.iter().filter_map(|p| p.reading).collect::<Vec<_>>()),
        mean_tag_count: mean(&stories.iter().map(|p| p.tags as f64).collect::<Vec<_>>()),
        mean_link_count: mean(
            &stories
                .iter()
                .map(|p| p.links.unwrap_or(0) as f64)
                .collect::<Vec<_>>(),
        ),
        publications,
        publication_names,
        following_count: g.followees.iter().collect::<BTreeSet<_>>().len() as i64,
        first_published_at: stories.iter().map(|p| p.published).min(),
        last_published_at: stories.iter().map(|p| p.published).max(),
    }
}

fn get_i64(df: &DataFrame, c: &str, row: usize) -> Option<i64> {
    match df.column(c).unwrap().get(row).unwrap() {
        AnyValue::Null => None,
        AnyValue::Int64(v) => Some(v),
        AnyValue::Datetime(v, _, _) | AnyValue::DatetimeOwned(v, _, _) => Some(v),
        other => panic!("{c}: {other:?}"),
    }
}

fn get_f64(df: &DataFrame, c: &str, row: usize) -> Option<f64> {
    match df.column(c).unwrap().get(row).unwrap() {
        AnyValue::Null => None,
        AnyValue::Float64(v) => Some(v),
        other => panic!("{c}: {other:?}"),
    }
}

fn get_list(df: &DataFrame, c: &str, row: usize) -> Vec<String> {
    match df.column(c).unwrap().get(row).unwrap() {
        AnyValue::List(s) => (0..s.len())
            .map(|i| match s.get(i).unwrap() {
                AnyValue::String(v) => v.to_owned(),
                AnyValue::StringOwned(v) => v.to_string(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{c}: {other:?}"),
    }
}

fn from_report(df: &DataFrame, row: usize) -> Naive {
    Naive {
        story_count: get_i64(df, "story_count", row).unwrap(),
        total_claps: get_i64(df, "total_claps", row),
        mean_claps: get_f64(df, "mean_claps", row),
        median_claps: get_f64(df, "median_claps", row),
        max_claps: get_i64(df, "max_claps", row),
        mean_headline_words: get_f64(df, "mean_headline_words", row),
        mean_headline_chars: get_f64(df, "mean_headline_chars", row),
        mean_word_count: get_f64(df, "mean_word_count", row),
        mean_reading_time_min: get_f64(df, "mean_reading_time_min", row),
        mean_tag_count: get_f64(df, "mean_tag_count", row),
        mean_link_count: get_f64(df, "mean_link_count", row),
        publications: get_list(df, "publications", row),
        publication_names: get_list(df, "publication_names", row),
        following_count: get_i64(df, "following_count", row).unwrap(),
        first_published_at: get_i64(df, "first_published_at", row),
        last_published_at: get_i64(df, "last_published_at", row),
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

fn same(a: &Naive, b: &Naive) -> bool {
    a.story_count == b.story_count
        && a.total_claps == b.total_claps
        && close(a.mean_claps, b.mean_claps)
        && close(a.median_claps, b.median_claps)
        && a.max_claps == b.max_claps
        && close(a.mean_headline_words, b.mean_headline_words)
        && close(a.mean_headline_chars, b.mean_headline_chars)
        && close(a.mean_word_count, b.mean_word_count)
        && close(a.mean_reading_time_min, b.mean_reading_time_min)
        && close(a.mean_tag_count, b.mean_tag_count)
        && close(a.mean_link_count, b.mean_link_count)
        && a.publications == b.publications
        && a.publication_names == b.publication_names
        && a.following_count == b.following_count
        && a.first_published_at == b.first_published_at
        && a.last_published_at == b.last_published_at
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn aggregates_equal_a_naive_computation(authors in gen_authors()) {
        let harvest = harvest_of(&authors);
        let tables = normalize::normalize(&harvest).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, batch) in tables.named() {
            write_batch(&dir.path().join(format!("{name}.parquet")), batch, None).unwrap();
        }
        let df = aggregate::author_metrics(dir.path()).unwrap();
        prop_assert_eq!(df.height(), authors.len());
        for (a, g) in authors.iter().enumerate() {
            prop_assert_eq!(df.column("user_id").unwrap().get(a).unwrap(), AnyValue::String(&format!("u{a}")));
            let expected = naive(g);
            let actual = from_report(&df, a);
            prop_assert!(same(&actual, &expected), "author {}:\n actual   {:?}\n expected {:?}", a, actual, expected);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// #16: the normalizer cuts `posts` and `followings` into batches as authors arrive; any
    /// batch size gives the same tables, row for row, as one batch.
    #[test]
    fn batched_normalization_equals_one_batch(authors in gen_authors(), rows in 1usize..9) {
        let harvest = harvest_of(&authors);
        let whole = normalize::normalize(&harvest).unwrap();
        let batched = normalize::normalize_in_batches(&harvest, rows).unwrap();
        for ((name, a), (_, b)) in whole.named().into_iter().zip(batched.named()) {
            prop_assert_eq!(a, b, "table {}", name);
        }
        prop_assert_eq!(whole.rejected, batched.rejected);
    }
}

/// #16: which copy of a post is kept, and where its row goes: the creator's own copy wins
/// wherever it was read, and the posts seen only outside their creators' streams come after
/// the creators' own, publication streams first.
#[test]
fn a_posts_row_is_its_creators_copy_and_posts_seen_only_elsewhere_come_last() {
    let post = |id: &str, creator: &str, claps: i64| {
        json!({"id": id, "creatorId": creator, "title": id, "firstPublishedAt": 1_500_000_000_000i64,
               "virtuals": {"totalClapCount": claps}})
    };
    let page = |posts: Vec<Value>| -> StreamPayload {
        let map: serde_json::Map<String, Value> = posts
            .into_iter()
            .map(|p| (p["id"].as_str().unwrap().to_owned(), p))
            .collect();
        serde_json::from_value(json!({"references": {"Post": map}})).unwrap()
    };
    let mut harvest = harvest_of(&[
        GenAuthor {
            posts: Vec::new(),
            followees: Vec::new(),
        },
        GenAuthor {
            posts: Vec::new(),
            followees: Vec::new(),
        },
    ]);
    // the publication lists u1's post (an older copy), and a post by nobody harvested
    harvest.publications[0].stream.pages =
        vec![page(vec![post("p1", "u1", 1), post("lone", "zz", 5)])];
    // u0's stream shows u1's p2 (another author's copy), then their own p0
    harvest.authors[0].profile.pages = vec![
        page(vec![post("p2", "u1", 2)]),
        page(vec![post("p0", "u0", 3)]),
    ];
    // u1's own copies, with today's counts
    harvest.authors[1].profile.pages = vec![page(vec![post("p1", "u1", 10), post("p2", "u1", 20)])];
    // u0 also shows a post whose creator's stream was not read
    harvest.authors[0]
        .profile
        .pages
        .push(page(vec![post("elsewhere", "yy", 7)]));
    let tables = normalize::normalize(&harvest).unwrap();
    let df = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("posts.parquet");
        write_batch(&path, &tables.posts, None).unwrap();
        polars::prelude::ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap()
    };
    use polars::prelude::SerReader;
    let ids: Vec<String> = (0..df.height())
        .map(|i| {
            df.column("post_id")
                .unwrap()
                .get(i)
                .unwrap()
                .get_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["p0", "p1", "p2", "lone", "elsewhere"]);
    let claps: Vec<Option<i64>> = (0..df.height())
        .map(|i| get_i64(&df, "total_clap_count", i))
        .collect();
    assert_eq!(
        claps,
        [Some(3), Some(10), Some(20), Some(5), Some(7)],
        "the creators' copies win"
    );
    let own: Vec<bool> = (0..df.height())
        .map(|i| {
            matches!(
                df.column("in_creator_profile").unwrap().get(i).unwrap(),
                AnyValue::Boolean(true)
            )
        })
        .collect();
    assert_eq!(own, [true, true, true, false, false]);
}
