//! What a story's HTML (an RSS item's `content:encoded`) says about it: words, links, images.
//!
//! Definitions, chosen to match what Medium's JSON counts for the same story:
//! - words: maximal runs of non-White_Space characters in the story's text, where block
//!   elements (paragraphs, headings, list items, figures, line breaks...) separate words and
//!   inline ones (`<a>`, `<strong>`, `<em>`, `<code>`) do not;
//! - links: `<a>` elements with an `href`;
//! - images: `<img>` elements;
//!
//! not counting what Medium adds to every feed item: the 1×1 view-counting pixel
//! (`/_/stat?...`) and the closing "was originally published in ... on Medium" paragraph.
//! `<script>` and `<style>` contents are not text.

use scraper::{ElementRef, Html, Node};

/// The counts of one story.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoryCounts {
    pub words: usize,
    pub links: usize,
    pub images: usize,
}

/// Elements that end a word: text on either side of them is not joined.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "iframe",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Counts the words, links and images of a story's HTML. Never fails: HTML is parsed the way a
/// browser would, whatever it holds.
pub fn count_story(html: &str) -> StoryCounts {
    let fragment = Html::parse_fragment(html);
    let mut walk = Walk::default();
    walk.element(fragment.root_element());
    walk.end_word();
    walk.counts
}

#[derive(Default)]
struct Walk {
    counts: StoryCounts,
    in_word: bool,
}

impl Walk {
    fn end_word(&mut self) {
        self.in_word = false;
    }

    fn text(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.in_word = false;
            } else if !self.in_word {
                self.in_word = true;
                self.counts.words += 1;
            }
        }
    }

    fn element(&mut self, el: ElementRef<'_>) {
        let name = el.value().name();
        match name {
            "script" | "style" | "template" => return,
            "img" if is_stat_pixel(el) => return,
            "p" if is_feed_footer(el) => return,
            "img" => self.counts.images += 1,
            "a" if el.value().attr("href").is_some() => self.counts.links += 1,
            _ => {}
        }
        let block = BLOCKS.contains(&name);
        if block {
            self.end_word();
        }
        for child in el.children() {
            match child.value() {
                Node::Text(t) => self.text(t),
                Node::Element(_) => {
                    if let Some(child) = ElementRef::wrap(child) {
                        self.element(child);
                    }
                }
                _ => {}
            }
        }
        if block {
            self.end_word();
        }
    }
}

fn is_stat_pixel(img: ElementRef<'_>) -> bool {
    img.value()
        .attr("src")
        .is_some_and(|s| s.contains("/_/stat?"))
}

fn is_feed_footer(p: ElementRef<'_>) -> bool {
    let text: String = p.text().collect();
    text.contains("was originally published in") && text.contains("on Medium")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(html: &str) -> (usize, usize, usize) {
        let s = count_story(html);
        (s.words, s.links, s.images)
    }

    #[test]
    fn blocks_separate_words_and_inline_elements_do_not() {
        assert_eq!(c("<p>one two</p><p>three</p>"), (3, 0, 0));
        assert_eq!(c("<p>end</p><p>start</p>"), (2, 0, 0));
        assert_eq!(c("<p>hel<strong>lo</strong> world</p>"), (2, 0, 0));
        assert_eq!(c("<h3>A title</h3><p>a<br>b</p>"), (4, 0, 0));
        assert_eq!(c("<p>hair\u{200A}space</p>"), (2, 0, 0));
        assert_eq!(c("<p>  </p>"), (0, 0, 0));
        assert_eq!(c(""), (0, 0, 0));
    }

    #[test]
    fn counts_links_and_images_but_not_medium_boilerplate() {
        let html = concat!(
            "<figure><img alt=\"\" src=\"https://cdn-images-1.medium.com/max/1024/1.png\">",
            "<figcaption>A chart</figcaption></figure>",
            "<p>See <a href=\"https://example.com\">this</a> and <a name=\"x\">not this</a>.</p>",
            "<script>var words = 'not counted';</script>",
            "<img src=\"https://medium.com/_/stat?event=post.clientViewed&postId=1\" width=\"1\" height=\"1\" alt=\"\">",
            "<hr><p><a href=\"https://x/p\">T</a> was originally published in ",
            "<a href=\"https://x\">Pub</a> on Medium, where people are continuing the conversation.</p>"
        );
        // words: "A chart" (2) + "See this and not this." (5)
        assert_eq!(c(html), (7, 1, 1));
    }

    #[test]
    fn broken_html_is_counted_as_a_browser_reads_it() {
        assert_eq!(c("<p>unclosed <a href=x>link"), (2, 1, 0));
        assert_eq!(c("</p></div>stray"), (1, 0, 0));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One piece of a generated story: a word, maybe inside inline markup, and what follows it.
    #[derive(Debug, Clone)]
    struct Piece {
        word: String,
        wrap: u8,
        after: u8,
    }

    fn piece() -> impl Strategy<Value = Piece> {
        (
            "[a-zA-Z0-9é’]{1,8}|[\u{4e00}-\u{4e10}]{1,3}",
            0u8..5,
            0u8..7,
        )
            .prop_map(|(word, wrap, after)| Piece { word, wrap, after })
    }

    proptest! {
        /// The counter against the generator's own tally: every generated word, link and image
        /// is counted once, whatever the markup between them.
        #[test]
        fn counts_what_was_written(pieces in proptest::collection::vec(piece(), 0..60)) {
            let (mut html, mut links, mut images) = (String::from("<p>"), 0, 0);
            for p in &pieces {
                match p.wrap {
                    0 => { html += &format!("<a href=\"https://x/{}\">{}</a>", links, p.word); links += 1 }
                    1 => html += &format!("<strong>{}</strong>", p.word),
                    2 => html += &format!("<em><code>{}</code></em>", p.word),
                    _ => html += &p.word,
                }
                html += match p.after {
                    0 => " ",
                    1 => "\n  ",
                    2 => "\u{200A}",
                    3 => "</p><p>",
                    4 => "<br>",
                    5 => { images += 1; "</p><figure><img src=\"https://cdn/i.png\"></figure><p>" }
                    _ => "</p><h3>",
                };
                if p.after == 6 {
                    html += "x</h3><p>";
                }
            }
            html += "</p>";
            let extra_words = pieces.iter().filter(|p| p.after == 6).count();
            let c = count_story(&html);
            prop_assert_eq!(c.words, pieces.len() + extra_words, "{}", html);
            prop_assert_eq!(c.links, links);
            prop_assert_eq!(c.images, images);
        }
    }
}
