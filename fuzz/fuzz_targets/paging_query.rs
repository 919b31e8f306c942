//! Any `paging` object through the pager: no panic, and every query it builds decodes back to
//! exactly the scalar fields of `paging.next` (base pairs first), so no cursor can smuggle an
//! extra parameter into a request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medium_api::paging::{Paging, StreamEnd, StreamPager};

fuzz_target!(|data: &[u8]| {
    let Ok(paging) = serde_json::from_slice::<Paging>(data) else {
        return;
    };
    let mut pager = StreamPager::new(vec![("format".into(), "json".into())], 3);
    let first = pager.first_query();
    assert_eq!(first, "format=json");
    match pager.after_page(["item"], Some(&paging)) {
        Ok(query) => {
            let decoded: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let cursor = paging.next.as_ref().expect("a next query needs a cursor");
            let mut expected = vec![("format".to_owned(), "json".to_owned())];
            expected.extend(cursor.query_pairs().into_iter().filter(|(k, _)| k != "format"));
            assert_eq!(decoded, expected);
            // asking again after a page with nothing new always ends the stream
            assert_eq!(pager.after_page(["item"], Some(&paging)), Err(StreamEnd::NoNewItems));
        }
        Err(end) => assert_ne!(end, StreamEnd::PageCap),
    }
});
