//! Inputs of the benches, built by the product's own code: a synthetic Medium's pages
//! (`medium-synth`), decoded by `medium-api`, gathered into the run's [`Harvest`] the way a
//! crawl leaves it; the tables then come from `normalize`, never by hand, so a bench cannot
//! fall behind the schema.

#![allow(dead_code)]

use medium_api::endpoints::{PublicationRef, StreamId};
use medium_api::guard::parse_payload;
use medium_api::models::{FollowingPayload, StreamPayload, User};
use medium_api::paging::StreamEnd;
use medium_api::via::Via;
use medium_etl::run::{AuthorHarvest, Harvest, PublicationHarvest, StreamHarvest};
use medium_synth::{SyntheticPage, SYNTHETIC_COLLECTION};

/// Whether the bench runs for real (`cargo bench`) rather than once as a test
/// (`cargo test --benches`, which CI runs): tests use small inputs.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn stream<P>(stream: StreamId, pages: Vec<P>) -> StreamHarvest<P> {
    StreamHarvest {
        stream,
        pages,
        end: Ok(StreamEnd::NoPaging),
        via: Some(Via::Json),
        carried: Vec::new(),
    }
}

/// A harvest of one publication's pages and, for each author, their profile and following
/// pages, every stream read to its end as JSON.
pub fn harvest(
    publication: Vec<StreamPayload>,
    authors: Vec<(User, Vec<StreamPayload>, Vec<FollowingPayload>)>,
) -> Harvest {
    let pub_ref = PublicationRef::Id(SYNTHETIC_COLLECTION.into());
    let authors: Vec<AuthorHarvest> = authors
        .into_iter()
        .map(|(user, profile, following)| AuthorHarvest {
            found_in: vec![pub_ref.clone()],
            profile: stream(StreamId::Profile(user.user_id.to_string()), profile),
            following: stream(StreamId::Following(user.user_id.to_string()), following),
            user,
        })
        .collect();
    Harvest {
        date: "2026-11-27".into(),
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

/// Decodes a synthetic harvest's pages (publication pages, then each author's profile and
/// following pages, as `SyntheticMedium::pages` lists them) into a [`Harvest`].
pub fn decode(pages: &[SyntheticPage]) -> Harvest {
    let mut publication = Vec::new();
    let mut authors: Vec<(User, Vec<StreamPayload>, Vec<FollowingPayload>)> = Vec::new();
    for page in pages {
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
            StreamId::Following(_) => {
                let f = parse_payload(&page.body).expect("parses");
                authors.last_mut().expect("an author").2.push(f);
            }
            // the synthetic JSON harvest has no bodies apart (links are in the posts)
            StreamId::PostBodies(_) => {}
        }
    }
    harvest(publication, authors)
}
