//! A serde deserializer for the JSON bodies, faster than serde_json over what the models skip.
//!
//! On Medium's pages most bytes belong to fields the models never read (`content`,
//! `previewContent`, `virtuals.topics`, ...): serde_json skips them token by token, and that
//! skipping was about 60 % of `parse_payload`'s time (#18). [`from_str`] reads the fields the
//! models ask for much as serde_json does, and skips the rest with a tighter loop that looks at
//! a string 16 bytes at a time.
//!
//! It is a fast path, never the judge. Wherever it might disagree with serde_json it declines
//! ([`Declined`]) and the caller parses the body again with serde_json, whose value or error
//! stands. So:
//! - it accepts nothing serde_json rejects: a skipped value is checked as serde_json checks one
//!   (the grammar, literals, numbers, escapes, control characters in strings; like serde_json,
//!   no depth limit while skipping), and a value read is parsed by the same rules, with
//!   serde_json's limit of 128 nested arrays and objects;
//! - every number except a plain non-negative integer that fits `u64` is handed to serde_json
//!   itself, so floats round exactly as serde_json rounds them (`-0` is `-0.0`, as there);
//! - a string with a `\u` escape that is a surrogate, an enum, raw values and bytes are
//!   declined outright: the models read none of them.
//!
//! The input is a `&str`: the body's UTF-8 was checked once, so strings need no second check.

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};
use serde::Deserialize;

/// The fast path cannot vouch for the body; parse it with serde_json instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("declined by the fast path")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

type Result<T> = std::result::Result<T, Declined>;

/// serde_json's limit on nested arrays and objects in what is deserialized.
const MAX_DEPTH: u8 = 128;

/// Deserializes `text`, a whole JSON document, or declines (see the module docs).
pub fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: MAX_DEPTH,
        stack: Vec::new(),
        scratch: String::new(),
    };
    let value = T::deserialize(&mut reader)?;
    let end = reader.skip_ws();
    if end < reader.bytes.len() {
        return Err(Declined);
    }
    Ok(value)
}

struct Reader<'de> {
    text: &'de str,
    bytes: &'de [u8],
    at: usize,
    /// How many more arrays and objects may open inside the one being deserialized.
    depth: u8,
    /// The open containers of a value being skipped (`true`: an object).
    stack: Vec<bool>,
    /// An unescaped string.
    scratch: String,
}

#[inline(always)]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The index of the first `"`, `\` or control character at or after `at` (`bytes.len()` if
/// none).
#[inline(always)]
fn find_special(bytes: &[u8], mut at: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
            _mm_set_epi64x,
        };
        while let Some(chunk) = bytes.get(at..at + 16) {
            let (lo, hi) = chunk.split_at(8);
            let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
            let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
            // SAFETY: these intrinsics only compute on registers, and SSE2 is part of every
            // x86_64 target (the compiler enables it by default)
            let mask = unsafe {
                let v = _mm_set_epi64x(hi as i64, lo as i64);
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // unsigned v < 0x20 exactly when max(v, 0x1f) == 0x1f
                let control =
                    _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
            };
            if mask != 0 {
                return at + mask.trailing_zeros() as usize;
            }
            at += 16;
        }
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // a byte is flagged when it is zero (a quote or backslash above) or below 0x20; the
        // lowest flag is always a true one
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let found = found & HIGH;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return at;
        }
        at += 1;
    }
    at
}

/// A string's text: borrowed from the input, or unescaped into the scratch buffer.
enum Text<'de> {
    Borrowed(&'de str),
    Scratch,
}

impl<'de> Reader<'de> {
    #[inline(always)]
    fn skip_ws(&mut self) -> usize {
        while self.bytes.get(self.at).is_some_and(|&b| is_ws(b)) {
            self.at += 1;
        }
        self.at
    }

    /// The next byte after white space, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Result<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied().ok_or(Declined)
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek()? == byte {
            self.at += 1;
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// The code of the `\uXXXX` escape at `at` (its backslash): exactly four hex digits, as
    /// serde_json reads them (no sign: `u32::from_str_radix` would take a leading `+`).
    fn escaped_code(&self) -> Result<u32> {
        let hex = self.bytes.get(self.at + 2..self.at + 6).ok_or(Declined)?;
        hex.iter().try_fold(0u32, |code, &b| {
            let digit = char::from(b).to_digit(16).ok_or(Declined)?;
            Ok(code << 4 | digit)
        })
    }

    /// Steps to a container's next member, for the array and the object being deserialized:
    /// false at its `close` byte, else past the comma that must come between two members
    /// (`first` says none has been read yet). A comma right before `close` (`[1,]`,
    /// `{"a":1,}`) is not JSON.
    fn next_member(&mut self, close: u8, first: &mut bool) -> Result<bool> {
        match self.peek()? {
            b if b == close => return Ok(false),
            b',' if !*first => {
                self.at += 1;
                if self.peek()? == close {
                    return Err(Declined);
                }
            }
            _ if *first => {}
            _ => return Err(Declined),
        }
        *first = false;
        Ok(true)
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// Skips the rest of a string whose opening quote is consumed, checking its escapes and
    /// that it has no control character, as serde_json's `ignore_str` does.
    #[inline(always)]
    fn skip_str(&mut self) -> Result<()> {
        loop {
            self.at = find_special(self.bytes, self.at);
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => match self.bytes.get(self.at + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
                    Some(b'u') => {
                        self.escaped_code()?;
                        self.at += 6;
                    }
                    _ => return Err(Declined),
                },
                _ => return Err(Declined),
            }
        }
    }

    /// Reads the rest of a string whose opening quote is consumed.
    fn read_str(&mut self) -> Result<Text<'de>> {
        let start = self.at;
        let end = find_special(self.bytes, start);
        match self.bytes.get(end) {
            Some(b'"') => {
                self.at = end + 1;
                // the quote is ASCII, so both ends are on character boundaries
                self.text
                    .get(start..end)
                    .map(Text::Borrowed)
                    .ok_or(Declined)
            }
            Some(b'\\') => {
                self.scratch.clear();
                self.scratch
                    .push_str(self.text.get(start..end).ok_or(Declined)?);
                self.at = end;
                self.unescape_rest()?;
                Ok(Text::Scratch)
            }
            _ => Err(Declined),
        }
    }

    /// Reads the rest of a string whose opening quote is consumed and hands it to `visitor`:
    /// borrowed from the input when it has no escape, as serde_json does.
    fn visit_str_rest<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.read_str()? {
            Text::Borrowed(s) => visitor.visit_borrowed_str(s),
            Text::Scratch => visitor.visit_str(&self.scratch),
        }
    }

    /// Unescapes a string into the scratch buffer from an escape at `self.at` to its quote.
    fn unescape_rest(&mut self) -> Result<()> {
        loop {
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let unescaped = match self.bytes.get(self.at + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let code = self.escaped_code()?;
                            // a surrogate (half of a pair, or a lone one): serde_json's rules
                            // for those are its own, so it decides
                            let c = char::from_u32(code).ok_or(Declined)?;
                            self.at += 4;
                            c
                        }
                        _ => return Err(Declined),
                    };
                    self.scratch.push(unescaped);
                    self.at += 2;
                }
                Some(_) => {
                    let start = self.at;
                    let end = find_special(self.bytes, start);
                    if end == start {
                        // a control character
                        return Err(Declined);
                    }
                    self.scratch
                        .push_str(self.text.get(start..end).ok_or(Declined)?);
                    self.at = end;
                }
                None => return Err(Declined),
            }
        }
    }

    /// The end of the number that starts at `self.at`, checked against JSON's grammar (as
    /// serde_json checks it), and whether it is a plain non-negative integer.
    #[inline(always)]
    fn number_end(&self) -> Result<(usize, bool)> {
        let b = self.bytes;
        let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        let mut i = self.at;
        let mut plain = true;
        if b.get(i) == Some(&b'-') {
            plain = false;
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                i += 1;
                while digit(i) {
                    i += 1;
                }
            }
            _ => return Err(Declined),
        }
        if b.get(i) == Some(&b'.') {
            plain = false;
            i += 1;
            if !digit(i) {
                return Err(Declined);
            }
            while digit(i) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            plain = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digit(i) {
                return Err(Declined);
            }
            while digit(i) {
                i += 1;
            }
        }
        Ok((i, plain))
    }

    fn read_number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let (end, plain) = self.number_end()?;
        let token = self.text.get(self.at..end).ok_or(Declined)?;
        self.at = end;
        if plain {
            if let Ok(n) = token.parse::<u64>() {
                return visitor.visit_u64(n);
            }
        }
        // serde_json's own number, so that it rounds and overflows as serde_json does
        match serde_json::from_str::<serde_json::Number>(token).map_err(|_| Declined)? {
            n if n.is_u64() => visitor.visit_u64(n.as_u64().ok_or(Declined)?),
            n if n.is_i64() => visitor.visit_i64(n.as_i64().ok_or(Declined)?),
            n => visitor.visit_f64(n.as_f64().ok_or(Declined)?),
        }
    }

    /// Skips one value (after white space), validating it as serde_json's `ignore_value`
    /// does, without recursion.
    fn skip_value(&mut self) -> Result<()> {
        self.stack.clear();
        'value: loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    self.skip_str()?;
                }
                b'{' => {
                    self.at += 1;
                    if self.peek()? == b'}' {
                        self.at += 1;
                    } else {
                        self.stack.push(true);
                        self.skip_key()?;
                        continue 'value;
                    }
                }
                b'[' => {
                    self.at += 1;
                    if self.peek()? == b']' {
                        self.at += 1;
                    } else {
                        self.stack.push(false);
                        continue 'value;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => self.at = self.number_end()?.0,
            }
            // after a value: close containers until one goes on
            while let Some(&in_object) = self.stack.last() {
                match (self.peek()?, in_object) {
                    (b',', true) => {
                        self.at += 1;
                        self.skip_key()?;
                        continue 'value;
                    }
                    (b',', false) => {
                        self.at += 1;
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        self.stack.pop();
                        self.at += 1;
                    }
                    _ => return Err(Declined),
                }
            }
            return Ok(());
        }
    }

    /// Skips `"key":` (after white space).
    #[inline(always)]
    fn skip_key(&mut self) -> Result<()> {
        self.expect(b'"')?;
        self.skip_str()?;
        self.expect(b':')
    }

    fn enter(&mut self) -> Result<u8> {
        let outer = self.depth;
        self.depth = outer.checked_sub(1).filter(|d| *d > 0).ok_or(Declined)?;
        Ok(outer)
    }
}

/// The methods both deserializers decline: an enum and bytes, which the models never read and
/// whose rules are serde_json's own.
macro_rules! declined_enum_and_bytes {
    () => {
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            _: V,
        ) -> Result<V::Value> {
            Err(Declined)
        }

        fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
            Err(Declined)
        }

        fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
            Err(Declined)
        }
    };
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            b'n' => {
                self.literal(b"null")?;
                visitor.visit_unit()
            }
            b't' => {
                self.literal(b"true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                visitor.visit_bool(false)
            }
            b'"' => {
                self.at += 1;
                self.visit_str_rest(visitor)
            }
            b'[' => {
                self.at += 1;
                let outer = self.enter()?;
                let value = visitor.visit_seq(Seq {
                    reader: &mut *self,
                    first: true,
                })?;
                self.depth = outer;
                self.expect(b']')?;
                Ok(value)
            }
            b'{' => {
                self.at += 1;
                let outer = self.enter()?;
                let value = visitor.visit_map(Map {
                    reader: &mut *self,
                    first: true,
                })?;
                self.depth = outer;
                self.expect(b'}')?;
                Ok(value)
            }
            _ => self.read_number(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_value()?;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        // serde_json reads its `RawValue` through a newtype of this name
        if name.starts_with("$serde_json") {
            return Err(Declined);
        }
        visitor.visit_newtype_struct(self)
    }

    declined_enum_and_bytes!();

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// The elements of an array being deserialized.
struct Seq<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.reader.next_member(b']', &mut self.first)? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

/// The entries of an object being deserialized.
struct Map<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl<'de> de::MapAccess<'de> for Map<'_, 'de> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.reader.next_member(b'}', &mut self.first)? {
            return Ok(None);
        }
        if self.reader.bytes.get(self.reader.at) != Some(&b'"') {
            return Err(Declined);
        }
        self.reader.at += 1;
        seed.deserialize(Key {
            reader: &mut *self.reader,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.reader.expect(b':')?;
        seed.deserialize(&mut *self.reader)
    }
}

/// An object's key, its opening quote consumed: always a string.
struct Key<'a, 'de> {
    reader: &'a mut Reader<'de>,
}

impl<'de> de::Deserializer<'de> for Key<'_, 'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_str_rest(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.skip_str()?;
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    declined_enum_and_bytes!();

    // serde_json also reads a number or a bool from a key's text; here such a key is a
    // string, which the number's visitor refuses, and so declines (the models have none)
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{FollowingPayload, StreamPayload};
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/medium/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        body.trim_start_matches("])}while(1);</x>").to_owned()
    }

    /// `text` as the fast path reads it into `T`, or `None` where it declines; when it reads
    /// it, serde_json must read the same (by `Debug`, which tells `-0.0` from `0.0`).
    fn agrees<T: serde::de::DeserializeOwned + fmt::Debug>(text: &str) -> Option<String> {
        let fast = from_str::<T>(text).ok().map(|v| format!("{v:?}"));
        if let Some(fast) = &fast {
            match serde_json::from_str::<T>(text) {
                Ok(v) => assert_eq!(fast, &format!("{v:?}"), "on {text:?}"),
                Err(e) => panic!("the fast path read what serde_json refuses ({e}): {text:?}"),
            }
        }
        fast
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Some_ {
        #[serde(default)]
        a: Option<Value>,
        #[serde(default)]
        b: Vec<i64>,
    }

    /// Every type the tests read a document as.
    fn agrees_all(text: &str) {
        agrees::<Value>(text);
        agrees::<IgnoredAny>(text);
        agrees::<Some_>(text);
        agrees::<Option<StreamPayload>>(text);
        agrees::<Vec<String>>(text);
    }

    #[test]
    fn reads_the_real_pages_as_serde_json_does() {
        for name in ["collection_stream.json", "user_profile_stream.json"] {
            let text = fixture(name);
            assert!(agrees::<Value>(&text).is_some(), "{name}");
            assert!(agrees::<IgnoredAny>(&text).is_some(), "{name}");
            let page = format!(
                r#"{{"payload":{}}}"#,
                serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()["payload"])
                    .unwrap()
            );
            #[derive(Debug, serde::Deserialize)]
            #[allow(dead_code)]
            struct Env {
                payload: StreamPayload,
            }
            assert!(agrees::<Env>(&page).is_some(), "{name}");
        }
        let text = fixture("user_following.json");
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Env {
            payload: FollowingPayload,
        }
        assert!(agrees::<Env>(&text).is_some());
        for name in [
            "graphql_collection_posts.json",
            "graphql_post_bodies.json",
            "graphql_user_following.json",
            "graphql_user_posts.json",
        ] {
            assert!(agrees::<Value>(&fixture(name)).is_some(), "{name}");
        }
    }

    #[test]
    fn numbers_are_serde_jsons() {
        for n in [
            "0",
            "-0",
            "7",
            "-7",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "0.1",
            "1e3",
            "1E-3",
            "-1.5e+2",
            "12.0",
            "4.2471698113207545",
            "1e400",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "--1",
        ] {
            agrees_all(n);
            agrees_all(&format!("[{n}]"));
            agrees_all(&format!(r#"{{"a":{n},"b":[{n}]}}"#));
            agrees_all(&format!(r#"{{"x":{n},"a":1}}"#));
        }
        assert_eq!(from_str::<Value>("-0").unwrap().to_string(), "-0.0");
        let text = "4.2471698113207545";
        assert_eq!(
            from_str::<f64>(text).ok(),
            serde_json::from_str::<f64>(text).ok()
        );
    }

    #[test]
    fn strings_and_escapes_are_serde_jsons() {
        for s in [
            r#""""#,
            r#""plain""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u00e9t\u00E9""#,
            r#""caf\u00e9 \u2014 ok""#,
            "\"naïve — ünïcode\"",
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\ude00x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            // a sign is no hex digit (`from_str_radix` takes a leading `+`)
            r#""\u+012""#,
            r#""\u-012""#,
            r#""a\u+0018b""#,
            r#""\x""#,
            "\"tab\there\"",
            "\"nl\nhere\"",
            "\"\u{1}\"",
            r#""unterminated"#,
            r#""\"#,
            r#""a\u0000b""#,
            r#""a very long string with nothing to escape in it at all, 16 bytes at a time""#,
            r#""a very long string with an escape \n late, and a second \" one""#,
        ] {
            agrees_all(s);
            agrees_all(&format!("[{s},{s}]"));
            agrees_all(&format!(r#"{{"a":{s},"x":{s}}}"#));
            agrees_all(&format!(r#"{{{s}:1}}"#));
        }
        // a read string with a surrogate pair is left to serde_json
        assert_eq!(from_str::<String>(r#""\ud83d\ude00""#), Err(Declined));
        // a skipped one is checked as serde_json checks it
        assert!(from_str::<IgnoredAny>(r#""\ud83d\ude00""#).is_ok());
    }

    #[test]
    fn every_byte_of_a_long_string_is_checked() {
        // each special byte at each offset, so that the 16- and 8-byte scans and the tail
        // all see one
        let plain = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP";
        for at in 0..plain.len() {
            for special in [
                "\u{1}", "\u{1f}", "\n", "\\\"", "\\n", "\\u00e9", "\\", "\"", "é",
            ] {
                let inner = format!("{}{}{}", &plain[..at], special, &plain[at..]);
                let doc = format!("\"{inner}\"");
                agrees_all(&doc);
                agrees_all(&format!(r#"{{"x":"{inner}","a":"{inner}"}}"#));
                let valid = serde_json::from_str::<IgnoredAny>(&doc).is_ok();
                assert_eq!(from_str::<IgnoredAny>(&doc).is_ok(), valid, "{doc:?}");
                assert_eq!(from_str::<String>(&doc).is_ok(), valid, "{doc:?}");
            }
        }
    }

    #[test]
    fn grammar_is_serde_jsons() {
        for doc in [
            "",
            " ",
            "null",
            "true",
            "false",
            "nul",
            "tru",
            "falsey",
            "[]",
            "{}",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\" 1}",
            "{1:2}",
            "[1]]",
            "{\"a\":1}}",
            "[1] x",
            " [ 1 , { \"a\" : [ ] } ] ",
            "[\n\t1\r]",
            "[1}",
            "{\"a\":1]",
            "{\"a\":[1,{\"b\":[{}]}],\"b\":[2]}",
            "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
            "[\"a\",]",
            "{\"b\":[1,2,\"x\"]}",
            "{\"b\":null}",
            "{\"b\":[1,2],\"b\":[3]}",
        ] {
            agrees_all(doc);
        }
    }

    #[test]
    fn depth_is_limited_as_serde_json_limits_it() {
        for depth in [126, 127, 128, 129, 1000] {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            agrees_all(&doc);
            // skipped values have no limit, in serde_json as here
            let doc = format!(r#"{{"x":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            assert!(agrees::<Some_>(&doc).is_some(), "depth {depth}");
        }
        let doc = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(from_str::<Value>(&doc), Err(Declined));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            "[a-z\"\\\\/\u{0}-\u{1f}é—😀 ]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec(("[a-z]{0,6}", inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_any_document_as_serde_json_does(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            // serde_json writes control characters and surrogates escaped; a read string
            // with an escaped surrogate is declined, anything else must be read
            let read = agrees::<Value>(&text);
            prop_assert!(read.is_some() || text.contains("\\ud"), "declined {}", text);
            prop_assert!(agrees::<IgnoredAny>(&text).is_some());
            agrees::<Some_>(&text);
        }

        #[test]
        fn accepts_nothing_serde_json_refuses(
            v in json_value(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
                b"{}[]\",:\\ 0123456789-+.eEtrufalsn\n\x01".to_vec())), 1..4),
        ) {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            for (at, kind, byte) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => { bytes.remove(i); }
                    1 => bytes.insert(i, byte),
                    _ => bytes[i] = byte,
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                agrees_all(text);
            }
        }
    }
}
