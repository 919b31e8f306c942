//! Guard stripping + parsing + normalization to Arrow, on the real fixture bodies (bytes/s),
//! and normalization alone on a synthetic harvest of 1,000 authors × 20 stories (rows/s).
//!
//! `cargo bench --bench normalize`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use medium_etl::sources::medium::endpoints::{PublicationRef, StreamId};
use medium_etl::sources::medium::guard::parse_payload;
use medium_etl::sources::medium::harvest::{
    AuthorHarvest, Harvest, PublicationHarvest, StreamHarvest,
};
use medium_etl::sources::medium::models::{FollowingPayload, StreamPayload, User};
use medium_etl::sources::medium::paging::StreamEnd;
use medium_etl::sources::medium::via::Via;
use medium_etl::synthetic::{SyntheticMedium, SyntheticSpec, SYNTHETIC_COLLECTION};
use medium_etl::transforms::normalize::normalize;

fn minified(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/medium/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let guard = b"])}while(1);</x>";
    let json: serde_json::Value =
        serde_json::from_slice(body.strip_prefix(guard).unwrap_or(&body)).expect("fixture JSON");
    let mut out = guard.to_vec();
    out.extend(serde_json::to_vec(&json).expect("serializes"));
    out
}

fn stream<P>(stream: StreamId, pages: Vec<P>) -> StreamHarvest<P> {
    StreamHarvest {
        stream,
        pages,
        end: Ok(StreamEnd::NoPaging),
        via: Some(Via::Json),
    }
}

/// A harvest of one publication page and, for each author, their profile and following pages.
fn harvest(
    publication: Vec<StreamPayload>,
    authors: Vec<(User, Vec<StreamPayload>, Vec<FollowingPayload>)>,
) -> Harvest {
    let pub_ref = PublicationRef::Id(SYNTHETIC_COLLECTION.into());
    let authors = authors
        .into_iter()
        .map(|(user, profile, following)| AuthorHarvest {
            found_in: vec![pub_ref.clone()],
            profile: stream(StreamId::Profile(user.user_id.clone()), profile),
            following: stream(StreamId::Following(user.user_id.clone()), following),
            user,
        })
        .collect::<Vec<_>>();
    Harvest {
        publications: vec![PublicationHarvest {
            publication: pub_ref.clone(),
            collection: None,
            stream: stream(StreamId::Publication(pub_ref), publication),
        }],
        authors_found: authors.len(),
        authors,
        authors_capped_at: None,
        skipped_ids: Vec::new(),
        switches: Vec::new(),
    }
}

fn fixtures(c: &mut Criterion) {
    let collection = minified("collection_stream.json");
    let profile = minified("user_profile_stream.json");
    let following = minified("user_following.json");
    let bytes = (collection.len() + profile.len() + following.len()) as u64;
    let mut group = c.benchmark_group("fixtures");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("guard+parse+normalize", |b| {
        b.iter(|| {
            let publication: StreamPayload = parse_payload(&collection).expect("parses");
            let profile_page: StreamPayload = parse_payload(&profile).expect("parses");
            let following_page: FollowingPayload = parse_payload(&following).expect("parses");
            let user = profile_page.user.clone().expect("the profile's user");
            let h = harvest(
                vec![publication],
                vec![(user, vec![profile_page], vec![following_page])],
            );
            normalize(&h).expect("normalizes")
        })
    });
    group.finish();
}

fn synthetic(c: &mut Criterion) {
    let medium = SyntheticMedium::new(SyntheticSpec {
        authors: 1_000,
        stories_per_author: 20,
        ..SyntheticSpec::default()
    });
    let mut publication = Vec::new();
    let mut authors: Vec<(User, Vec<StreamPayload>, Vec<FollowingPayload>)> = Vec::new();
    for page in medium.pages() {
        match &page.stream {
            StreamId::Publication(_) => {
                publication.push(parse_payload(&page.body).expect("parses"))
            }
            StreamId::Profile(_) => {
                let p: StreamPayload = parse_payload(&page.body).expect("parses");
                if page.index == 1 {
                    authors.push((p.user.clone().expect("a user"), Vec::new(), Vec::new()));
                }
                authors.last_mut().expect("an author").1.push(p);
            }
            StreamId::Following(_) => authors
                .last_mut()
                .expect("an author")
                .2
                .push(parse_payload(&page.body).expect("parses")),
        }
    }
    let h = harvest(publication, authors);
    let rows = normalize(&h).expect("normalizes").posts.num_rows() as u64;
    let bodies: Vec<_> = medium.pages();
    let bytes: u64 = bodies.iter().map(|p| p.body.len() as u64).sum();
    let mut group = c.benchmark_group("synthetic");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(20);
    group.bench_function("normalize 1000 authors x 20 stories (posts/s)", |b| {
        b.iter(|| normalize(&h).expect("normalizes"))
    });
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(
        "guard+parse+normalize 1000 authors x 20 stories (bytes/s)",
        |b| {
            b.iter(|| {
                let mut publication = Vec::new();
                let mut authors: Vec<(User, Vec<StreamPayload>, Vec<FollowingPayload>)> =
                    Vec::new();
                for page in &bodies {
                    match &page.stream {
                        StreamId::Publication(_) => {
                            publication.push(parse_payload(&page.body).expect("parses"))
                        }
                        StreamId::Profile(_) => {
                            let p: StreamPayload = parse_payload(&page.body).expect("parses");
                            if page.index == 1 {
                                authors.push((
                                    p.user.clone().expect("a user"),
                                    Vec::new(),
                                    Vec::new(),
                                ));
                            }
                            authors.last_mut().expect("an author").1.push(p);
                        }
                        StreamId::Following(_) => authors
                            .last_mut()
                            .expect("an author")
                            .2
                            .push(parse_payload(&page.body).expect("parses")),
                    }
                }
                normalize(&harvest(publication, authors)).expect("normalizes")
            })
        },
    );
    group.finish();
}

criterion_group!(benches, fixtures, synthetic);
criterion_main!(benches);
