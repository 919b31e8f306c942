//! Any bytes through the guard stripping and every payload parser: no panic, and a body parses
//! the same with and without the XSSI guard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medium_api::guard::{parse_payload, strip_guard, XSSI_GUARD};
use medium_api::models::{FollowingPayload, PageItems, StreamPayload};

fuzz_target!(|data: &[u8]| {
    let stripped = strip_guard(data);
    assert!(stripped.len() <= data.len());
    let stream = parse_payload::<StreamPayload>(data);
    let following = parse_payload::<FollowingPayload>(data);
    if let Ok(page) = &stream {
        let _ = page.item_ids();
        let _ = page.paging();
    }
    if let Ok(page) = &following {
        let _ = page.item_ids();
    }
    // the guard is optional: guarding the stripped body changes nothing
    let mut guarded = XSSI_GUARD.to_vec();
    guarded.extend_from_slice(stripped);
    assert_eq!(
        parse_payload::<StreamPayload>(&guarded).is_ok(),
        stream.is_ok(),
        "guarded and unguarded disagree"
    );
});
