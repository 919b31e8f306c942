//! Any bytes through the RSS feed and HTML page decoders (as a publication's and as an
//! author's) and the story counter: no panic, and what decodes keeps its invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medium_api::models::PageItems;
use medium_api::story::count_story;
use medium_api::via::PageOf;
use medium_api::{html, rss};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let counts = count_story(&text);
    // every word is at least one non-space character
    assert!(counts.words <= text.chars().filter(|c| !c.is_whitespace()).count());
    for payload in [
        rss::decode(data, PageOf::Publication { slug: "pub" }),
        rss::decode(data, PageOf::Author { user_id: "u1" }),
        html::decode(data, PageOf::Publication { slug: "pub" }),
        html::decode(data, PageOf::Author { user_id: "u1" }),
    ]
    .into_iter()
    .flatten()
    {
        let _ = payload.item_ids();
        assert!(payload.paging.is_none(), "pages and feeds have one page");
        if let Some(user) = &payload.user {
            assert_eq!(user.user_id, "u1", "an author's page is that author's");
        }
    }
});
