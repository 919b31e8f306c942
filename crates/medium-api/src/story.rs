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

use ego_tree::iter::Edge;
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

/// How deep markup may nest before it is not measured. Real stories nest a few dozen levels;
/// an HTML parser spends time that grows with the square of the depth (each new element checks
/// the open ones), so 200,000 levels would take minutes.
pub const MAX_DEPTH: usize = 1_000;

/// Elements that never have children (they do not nest).
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// How deep `html`'s tags nest, from a scan of its tags (no parse; void elements and `/>` do
/// not nest, closing tags unnest). An overestimate for sloppy HTML, never an underestimate.
pub fn markup_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|b| *b == b'<') {
        i += off + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = i + usize::from(closing);
        let name_len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !bytes[start].is_ascii_alphabetic() {
            continue;
        }
        let name = html[start..start + name_len].to_ascii_lowercase();
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'>')
            .map_or(bytes.len(), |p| start + p);
        let self_closing = end > 0 && bytes.get(end - 1) == Some(&b'/');
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing && !VOID.contains(&name.as_str()) {
            depth += 1;
            max = max.max(depth);
        }
        i = end.min(bytes.len());
    }
    max
}

/// Counts the words, links and images of a story's HTML, parsed the way a browser would,
/// whatever it holds; `None` when it nests deeper than [`MAX_DEPTH`] (not measured, so that no
/// story can stall the decoder). The walk keeps its own stack: no recursion on the depth.
pub fn count_story(html: &str) -> Option<StoryCounts> {
    if markup_depth(html) > MAX_DEPTH {
        return None;
    }
    let fragment = Html::parse_fragment(html);
    let mut walk = Walk::default();
    walk.walk(fragment.root_element());
    walk.end_word();
    Some(walk.counts)
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

    /// Visits `root` and everything below it in document order: the tree's own traversal (an
    /// open and a close edge per node), so no recursion on the depth.
    fn walk(&mut self, root: ElementRef<'_>) {
        // the element whose subtree is not counted (a script, the view pixel, the footer)
        let mut skipping: Option<ego_tree::NodeId> = None;
        for edge in root.traverse() {
            match edge {
                Edge::Open(node) => {
                    if skipping.is_some() {
                        continue;
                    }
                    if let Node::Text(t) = node.value() {
                        self.text(t);
                        continue;
                    }
                    let Some(el) = ElementRef::wrap(node) else {
                        continue;
                    };
                    let name = el.value().name();
                    match name {
                        "script" | "style" | "template" => {
                            skipping = Some(node.id());
                            continue;
                        }
                        "img" if is_stat_pixel(el) => {
                            skipping = Some(node.id());
                            continue;
                        }
                        "p" if is_feed_footer(el) => {
                            skipping = Some(node.id());
                            continue;
                        }
                        "img" => self.counts.images += 1,
                        "a" if el.value().attr("href").is_some() => self.counts.links += 1,
                        _ => {}
                    }
                    if BLOCKS.contains(&name) {
                        self.end_word();
                    }
                }
                Edge::Close(node) => {
                    if skipping.is_some() {
                        if skipping == Some(node.id()) {
                            skipping = None;
                        }
                        continue;
                    }
                    if ElementRef::wrap(node).is_some_and(|el| BLOCKS.contains(&el.value().name()))
                    {
                        self.end_word();
                    }
                }
            }
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
        let s = count_story(html).expect("measured");
        (s.words, s.links, s.images)
    }

    /// #14: 20,000 levels overflowed the stack of the old recursive walk; 200,000 kept the
    /// parser busy for minutes. Up to the cap the walk is measured without recursion; beyond
    /// it the story is not measured, at once.
    #[test]
    fn deep_nesting_neither_overflows_nor_stalls() {
        let deep = |n: usize, tag: &str| {
            format!(
                "{}deep words{}",
                format!("<{tag}>").repeat(n),
                format!("</{tag}>").repeat(n)
            )
        };
        assert_eq!(c(&deep(MAX_DEPTH - 10, "span")), (2, 0, 0));
        assert_eq!(c(&deep(MAX_DEPTH - 10, "div")), (2, 0, 0));
        assert_eq!(count_story(&deep(200_000, "div")), None);
        assert_eq!(count_story(&deep(20_000, "b")), None);
        // void elements and self-closing tags do not nest
        assert_eq!(markup_depth(&"<br><img src=x><p/>".repeat(5_000)), 0);
        assert_eq!(markup_depth("<p>a <b>b</b></p><p>c</p>"), 2);
        assert_eq!(markup_depth("a < b and 1<2 </ x"), 0);
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
            let c = count_story(&html).expect("measured");
            prop_assert_eq!(c.words, pieces.len() + extra_words, "{}", html);
            prop_assert_eq!(c.links, links);
            prop_assert_eq!(c.images, images);
        }
    }
}
