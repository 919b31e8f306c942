//! Any bytes through the GraphQL decoders, as the reply to each operation medium-etl sends: no
//! panic, and whatever decodes keeps its promises (the item ids are the page's; a batch of
//! bodies answers exactly the ids asked for, in their order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medium_api::endpoints::{PublicationRef, StreamId};
use medium_api::graphql::{bodies_query, decode_bodies, decode_following, decode_stream};
use medium_api::models::PageItems;
use medium_api::paging::{PagingRules, StreamPager};

fuzz_target!(|data: &[u8]| {
    let streams = [
        StreamId::Publication(PublicationRef::Id("7f60cf5620c9".into())),
        StreamId::Publication(PublicationRef::Slug("towards-data-science".into())),
        StreamId::Profile("e2f299e30cb9".into()),
    ];
    for stream in &streams {
        if let Ok(page) = decode_stream(stream, "limit=25&from=L1546300377981", data) {
            let ids = page.item_ids();
            let mut pager = StreamPager::new(vec![("limit".into(), "25".into())], 10)
                .with_rules(PagingRules::CONNECTION);
            pager.first_query();
            let _ = pager.after_page(ids, page.paging());
        }
    }
    let following = StreamId::Following("e2f299e30cb9".into());
    if let Ok(page) = decode_following(&following, "limit=25", data) {
        let _ = page.item_ids();
    }
    let ids = ["6c68789e5a53", "e16cc71abb64", "24c6491a8ff0"];
    let bodies = StreamId::PostBodies("e2f299e30cb9".into());
    if let Ok(batch) = decode_bodies(&bodies, &bodies_query(&ids), data) {
        assert_eq!(batch.item_ids(), ids);
    }
});
