//! Paging through a Medium stream, exactly as SPEC §2 defines it.
//!
//! The next request's query string is built from the scalar fields of `payload.paging.next`, in
//! the order Medium wrote them (arrays such as `ignoredIds` and nulls are left out). A
//! [`StreamPager`] holds one stream's state and decides, after each page, whether there is a
//! next request or why the stream ended ([`StreamEnd`]). It is pure: no I/O, so every end
//! condition is tested on its own below.
//!
//! The GraphQL connections page the same way with other rules ([`PagingRules::CONNECTION`]):
//! `pagingInfo.next` is the cursor, `from` is a position as `to` and `page` are, an empty
//! string (`source: ""`) is left out like a null, and a page of items seen already (pinned
//! posts listed again at their own date) does not end the stream: only an empty page does.

use std::fmt;

use compact_str::CompactString;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::FastHashSet;

/// `payload.paging`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub next: Option<Cursor>,
}

/// `payload.paging.next`: its fields in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    pub fields: Vec<(String, CursorValue)>,
}

/// One field of a cursor. Only scalars go into the query string.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    Text(String),
    /// The number as JSON wrote it (integers stay integers).
    Number(String),
    Bool(bool),
    Null,
    /// An array or object (such as `ignoredIds`): never sent.
    Compound,
}

impl CursorValue {
    fn query_text(&self) -> Option<String> {
        match self {
            CursorValue::Text(s) => Some(s.clone()),
            CursorValue::Number(n) => Some(n.clone()),
            CursorValue::Bool(b) => Some(b.to_string()),
            CursorValue::Null | CursorValue::Compound => None,
        }
    }
}

impl Cursor {
    fn get(&self, key: &str) -> Option<&CursorValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The scalar fields as `key=value` pairs, URL-encoded, in document order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter_map(|(k, v)| v.query_text().map(|t| (k.clone(), t)))
            .collect()
    }
}

impl<'de> Deserialize<'de> for CursorValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = CursorValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cursor value")
            }
            fn visit_str<E>(self, v: &str) -> Result<CursorValue, E> {
                Ok(CursorValue::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<CursorValue, E> {
                Ok(CursorValue::Text(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<CursorValue, E> {
                Ok(CursorValue::Number(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<CursorValue, E> {
                Ok(CursorValue::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<CursorValue, E> {
                Ok(CursorValue::Number(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<CursorValue, E> {
                Ok(CursorValue::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<CursorValue, E> {
                Ok(CursorValue::Null)
            }
            fn visit_none<E>(self) -> Result<CursorValue, E> {
                Ok(CursorValue::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CursorValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(CursorValue::Compound)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CursorValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(CursorValue::Compound)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CursorVisitor;
        impl<'de> Visitor<'de> for CursorVisitor {
            type Value = Cursor;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a paging cursor object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cursor, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, CursorValue>()? {
                    fields.push((k, v));
                }
                Ok(Cursor { fields })
            }
        }
        deserializer.deserialize_map(CursorVisitor)
    }
}

/// Why a stream ended (SPEC §2). Every variant but [`StreamEnd::PageCap`] is a normal end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// `paging` or `paging.next` is missing or null.
    NoPaging,
    /// `next.to` is the string `"null"` or JSON null.
    NullCursor,
    /// `next` has neither `to` nor `page`.
    NoPosition,
    /// The page added no item id not already seen in this stream.
    NoNewItems,
    /// The next query equals one already requested in this stream.
    RepeatedQuery,
    /// The configured page cap was reached; the stream may have more pages.
    PageCap,
    /// Every page of a stream whose pages are known beforehand (batches of post bodies) was
    /// read.
    AllListed,
    /// An incremental run stopped here: the rest of the stream is what an earlier date read
    /// (its pages are carried forward).
    Carried,
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamEnd::NoPaging => "no paging.next",
            StreamEnd::NullCursor => "paging.next.to is null",
            StreamEnd::NoPosition => "paging.next has neither to nor page",
            StreamEnd::NoNewItems => "the page added no new item",
            StreamEnd::RepeatedQuery => "the next query was already requested",
            StreamEnd::PageCap => "the page cap was reached",
            StreamEnd::AllListed => "every listed page was read",
            StreamEnd::Carried => "the rest is carried from an earlier date",
        })
    }
}

/// How a format's cursors page (the row of [`crate::via::Format`] names its rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagingRules {
    /// Cursor fields that say where the next page starts; a cursor with none of them ends the
    /// stream ([`StreamEnd::NoPosition`]).
    pub positions: &'static [&'static str],
    /// Leave out text fields that are empty (GraphQL's `PagingOptions` refuses `source: ""`).
    pub drop_empty_text: bool,
    /// End the stream at a page that adds no item not seen before (SPEC §2); otherwise only a
    /// page with no items at all ends it, or more than [`PagingRules::max_stale`] such pages
    /// in a row.
    pub repeats_end: bool,
    /// Pages in a row that add nothing new after which the stream ends anyway (pinned posts
    /// listed again fill at most a page or two; a server that keeps sending new cursors with
    /// the same items does not get to run a stream to its page cap).
    pub max_stale: usize,
    /// The only cursor fields sent back (`None`: every scalar field). GraphQL's
    /// `PagingOptions` has five; anything else in `next` is left out, so a cursor cannot look
    /// new by a field that is never sent.
    pub fields: Option<&'static [&'static str]>,
}

impl PagingRules {
    /// The legacy JSON API's (SPEC §2).
    pub const LEGACY: PagingRules = PagingRules {
        positions: &["to", "page"],
        drop_empty_text: false,
        repeats_end: true,
        max_stale: 0,
        fields: None,
    };
    /// GraphQL connections' (`pagingInfo.next`, MEDIUM-GRAPHQL.md "Paging").
    pub const CONNECTION: PagingRules = PagingRules {
        positions: &["from", "to", "page"],
        drop_empty_text: true,
        repeats_end: false,
        max_stale: 2,
        fields: Some(&["from", "to", "limit", "page", "source"]),
    };
}

/// Builds a query string from pairs, URL-encoded (`a=1&b=x%20y`).
pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// One stream's paging state.
#[derive(Debug)]
pub struct StreamPager {
    base: Vec<(String, String)>,
    seen_items: FastHashSet<CompactString>,
    requested: FastHashSet<String>,
    pages: usize,
    max_pages: usize,
    rules: PagingRules,
    /// Pages in a row that added nothing new.
    stale: usize,
}

impl StreamPager {
    /// `base` pairs go first in every query (such as `format=json` on the human URLs);
    /// `max_pages` is the page cap (at least 1).
    pub fn new(base: Vec<(String, String)>, max_pages: usize) -> Self {
        StreamPager {
            base,
            seen_items: FastHashSet::default(),
            requested: FastHashSet::default(),
            pages: 0,
            max_pages: max_pages.max(1),
            rules: PagingRules::LEGACY,
            stale: 0,
        }
    }

    /// The same pager under other rules (a GraphQL connection's).
    pub fn with_rules(mut self, rules: PagingRules) -> Self {
        self.rules = rules;
        self
    }

    /// The query of the first page (only the base pairs).
    pub fn first_query(&mut self) -> String {
        let q = encode_query(&self.base);
        self.requested.insert(q.clone());
        q
    }

    /// Pages seen so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Records a page and returns the next query, or why the stream ended.
    pub fn after_page<'a>(
        &mut self,
        item_ids: impl IntoIterator<Item = &'a str>,
        paging: Option<&Paging>,
    ) -> Result<String, StreamEnd> {
        self.pages += 1;
        let (mut items, mut new_items) = (0usize, 0usize);
        for id in item_ids {
            items += 1;
            if !self.seen_items.contains(id) {
                self.seen_items.insert(id.into());
                new_items += 1;
            }
        }
        self.stale = if new_items == 0 { self.stale + 1 } else { 0 };
        if new_items == 0
            && (self.rules.repeats_end || items == 0 || self.stale > self.rules.max_stale)
        {
            return Err(StreamEnd::NoNewItems);
        }
        let cursor = paging
            .and_then(|p| p.next.as_ref())
            .ok_or(StreamEnd::NoPaging)?;
        let rules = self.rules;
        if rules.repeats_end {
            // the legacy API ends a stream with `to: "null"` (SPEC §2)
            match cursor.get("to") {
                Some(CursorValue::Null) => return Err(StreamEnd::NullCursor),
                Some(CursorValue::Text(t)) if t == "null" => return Err(StreamEnd::NullCursor),
                _ => {}
            }
        }
        let sent = |k: &str| rules.fields.is_none_or(|fields| fields.contains(&k));
        let kept = |v: &CursorValue| match v {
            CursorValue::Null | CursorValue::Compound => false,
            CursorValue::Text(t) => !(rules.drop_empty_text && t.is_empty()),
            _ => true,
        };
        if !rules.positions.iter().any(|k| {
            cursor
                .get(k)
                .is_some_and(|v| kept(v) || !rules.drop_empty_text)
        }) {
            return Err(StreamEnd::NoPosition);
        }
        let mut pairs = self.base.clone();
        pairs.extend(
            cursor
                .fields
                .iter()
                .filter(|(k, v)| sent(k) && kept(v) && !self.base.iter().any(|(b, _)| b == k))
                .filter_map(|(k, v)| v.query_text().map(|t| (k.clone(), t))),
        );
        let query = encode_query(&pairs);
        if self.requested.contains(&query) {
            return Err(StreamEnd::RepeatedQuery);
        }
        if self.pages >= self.max_pages {
            return Err(StreamEnd::PageCap);
        }
        self.requested.insert(query.clone());
        Ok(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(json: &str) -> Paging {
        serde_json::from_str(json).unwrap()
    }

    fn pager() -> StreamPager {
        let mut p = StreamPager::new(Vec::new(), 1000);
        assert_eq!(p.first_query(), "");
        p
    }

    #[test]
    fn builds_the_query_from_scalar_fields_in_order() {
        let pg = paging(
            r#"{"path":"x","next":{"limit":10,"source":"overview","ignoredIds":["a"],"page":2,"to":"1546 x","flag":true,"gone":null,"ratio":0.5,"obj":{"a":1}}}"#,
        );
        let q = pager().after_page(["p1"], Some(&pg)).unwrap();
        assert_eq!(
            q,
            "limit=10&source=overview&page=2&to=1546+x&flag=true&ratio=0.5"
        );
    }

    #[test]
    fn base_pairs_come_first_and_are_not_repeated() {
        let mut p = StreamPager::new(vec![("format".into(), "json".into())], 10);
        assert_eq!(p.first_query(), "format=json");
        let pg = paging(r#"{"next":{"format":"json","to":"abc","page":2}}"#);
        assert_eq!(
            p.after_page(["x"], Some(&pg)).unwrap(),
            "format=json&to=abc&page=2"
        );
    }

    #[test]
    fn ends_without_paging_or_next() {
        assert_eq!(pager().after_page(["a"], None), Err(StreamEnd::NoPaging));
        let pg = paging(r#"{"path":"/x"}"#);
        assert_eq!(
            pager().after_page(["a"], Some(&pg)),
            Err(StreamEnd::NoPaging)
        );
        let pg = paging(r#"{"next":null}"#);
        assert_eq!(
            pager().after_page(["a"], Some(&pg)),
            Err(StreamEnd::NoPaging)
        );
    }

    #[test]
    fn ends_when_to_is_null_as_string_or_json() {
        // the real publication fixture: {"to":"null","ignoredIds":[],"page":4}
        let pg = paging(r#"{"next":{"to":"null","ignoredIds":[],"page":4}}"#);
        assert_eq!(
            pager().after_page(["a"], Some(&pg)),
            Err(StreamEnd::NullCursor)
        );
        let pg = paging(r#"{"next":{"to":null,"page":4}}"#);
        assert_eq!(
            pager().after_page(["a"], Some(&pg)),
            Err(StreamEnd::NullCursor)
        );
    }

    #[test]
    fn ends_when_next_has_neither_to_nor_page() {
        // the real following fixture: {"limit":8}
        let pg = paging(r#"{"next":{"limit":8}}"#);
        assert_eq!(
            pager().after_page(["a"], Some(&pg)),
            Err(StreamEnd::NoPosition)
        );
        let pg = paging(r#"{"next":{"page":3}}"#);
        assert!(pager().after_page(["a"], Some(&pg)).is_ok());
        let pg = paging(r#"{"next":{"to":"u9"}}"#);
        assert!(pager().after_page(["a"], Some(&pg)).is_ok());
    }

    #[test]
    fn ends_when_a_page_adds_no_new_item() {
        let mut p = pager();
        let pg2 = paging(r#"{"next":{"page":2}}"#);
        let pg3 = paging(r#"{"next":{"page":3}}"#);
        assert_eq!(p.after_page(["a", "b"], Some(&pg2)).unwrap(), "page=2");
        assert_eq!(
            p.after_page(["b", "a"], Some(&pg3)),
            Err(StreamEnd::NoNewItems)
        );
        // an empty first page ends the stream too
        assert_eq!(
            pager().after_page([], Some(&pg2)),
            Err(StreamEnd::NoNewItems)
        );
    }

    #[test]
    fn ends_when_the_next_query_was_already_requested() {
        let mut p = pager();
        let pg2 = paging(r#"{"next":{"page":2}}"#);
        assert_eq!(p.after_page(["a"], Some(&pg2)).unwrap(), "page=2");
        // page 2 points back at itself (a cursor that loops)
        assert_eq!(
            p.after_page(["b"], Some(&pg2)),
            Err(StreamEnd::RepeatedQuery)
        );
        // a cursor pointing back at the first page (empty query)
        let mut p = StreamPager::new(vec![("format".into(), "json".into())], 10);
        p.first_query();
        let back = paging(r#"{"next":{"to":"x"}}"#);
        assert_eq!(
            p.after_page(["a"], Some(&back)).unwrap(),
            "format=json&to=x"
        );
        assert_eq!(
            p.after_page(["b"], Some(&back)),
            Err(StreamEnd::RepeatedQuery)
        );
    }

    #[test]
    fn ends_at_the_page_cap() {
        let mut p = StreamPager::new(Vec::new(), 2);
        p.first_query();
        let pg2 = paging(r#"{"next":{"page":2}}"#);
        let pg3 = paging(r#"{"next":{"page":3}}"#);
        assert_eq!(p.after_page(["a"], Some(&pg2)).unwrap(), "page=2");
        assert_eq!(p.after_page(["b"], Some(&pg3)), Err(StreamEnd::PageCap));
        assert_eq!(p.pages(), 2);
        // a natural end on the cap page is not a cap
        let mut p = StreamPager::new(Vec::new(), 1);
        p.first_query();
        assert_eq!(p.after_page(["a"], None), Err(StreamEnd::NoPaging));
    }

    fn connection() -> StreamPager {
        let mut p = StreamPager::new(vec![("limit".into(), "25".into())], 100)
            .with_rules(PagingRules::CONNECTION);
        assert_eq!(p.first_query(), "limit=25");
        p
    }

    #[test]
    fn a_connection_pages_from_from_and_drops_empty_and_null_fields() {
        let mut p = connection();
        // the pins' cursor, then the latest listing's; `source: ""` and nulls are left out
        let pg = paging(r#"{"next":{"from":"P1700000000000","to":null,"limit":10,"source":""}}"#);
        assert_eq!(
            p.after_page(["pin1", "pin2"], Some(&pg)).unwrap(),
            "limit=25&from=P1700000000000"
        );
        // the pins come again at their own date: not the end while the cursor moves on
        let pg = paging(r#"{"next":{"from":"L1600000000000","limit":25}}"#);
        assert_eq!(
            p.after_page(["pin2", "pin1"], Some(&pg)).unwrap(),
            "limit=25&from=L1600000000000"
        );
        // an empty last page ends it, and so does a cursor without a position
        let pg = paging(r#"{"next":{"from":"L1500000000000"}}"#);
        assert_eq!(p.after_page([], Some(&pg)), Err(StreamEnd::NoNewItems));
        let pg = paging(r#"{"next":{"from":"","source":"","limit":25}}"#);
        assert_eq!(
            connection().after_page(["a"], Some(&pg)),
            Err(StreamEnd::NoPosition)
        );
        assert_eq!(
            connection().after_page(["a"], Some(&paging(r#"{"next":null}"#))),
            Err(StreamEnd::NoPaging)
        );
        // a cursor that points back is still caught
        let mut p = connection();
        let pg = paging(r#"{"next":{"from":"L1"}}"#);
        assert!(p.after_page(["a"], Some(&pg)).is_ok());
        assert_eq!(
            p.after_page(["a"], Some(&pg)),
            Err(StreamEnd::RepeatedQuery)
        );
        // `to: "null"` is the legacy API's end, not a GraphQL one
        let pg = paging(r#"{"next":{"from":"L5","to":"null"}}"#);
        assert_eq!(
            connection().after_page(["a"], Some(&pg)).unwrap(),
            "limit=25&from=L5&to=null"
        );
    }

    /// A hostile server: new cursors forever, the same items on every page; fields that are
    /// never sent cannot make a cursor look new.
    #[test]
    fn a_connection_ends_after_a_few_pages_with_nothing_new() {
        let mut p = connection();
        let pg = |n: u32| paging(&format!(r#"{{"next":{{"from":"L{n}","limit":25}}}}"#));
        assert!(p.after_page(["a", "b"], Some(&pg(9))).is_ok());
        assert!(p.after_page(["a"], Some(&pg(8))).is_ok());
        assert!(p.after_page(["b"], Some(&pg(7))).is_ok());
        assert_eq!(
            p.after_page(["a"], Some(&pg(6))),
            Err(StreamEnd::NoNewItems)
        );
        let mut p = connection();
        let odd = paging(r#"{"next":{"from":"L1","counter":1}}"#);
        assert_eq!(p.after_page(["a"], Some(&odd)).unwrap(), "limit=25&from=L1");
        let odd = paging(r#"{"next":{"from":"L1","counter":2}}"#);
        assert_eq!(
            p.after_page(["b"], Some(&odd)),
            Err(StreamEnd::RepeatedQuery)
        );
    }
}
