//! Medium's data without I/O: the legacy JSON API's XSSI guard and envelope ([`guard`]), serde
//! models of its payloads ([`models`]), paging exactly as the contract defines it ([`paging`]),
//! the endpoint paths ([`endpoints`]); and the three other doors ([`via`]): the GraphQL API
//! ([`graphql`]: operations and decoders), RSS feeds ([`rss`], story bodies measured by
//! [`story`]) and HTML pages' embedded state ([`html`]), all mapped onto the same models. [`StreamPage::decode`] reads a body of any format. What each format
//! carries (families, addressing, paging, columns left null) is one table, [`via::Format`].
//!
//! A crate of its own so that the parsers can be fuzzed (`fuzz/`) and reused without building
//! the pipeline's heavy dependencies (polars, arrow); `medium-etl` re-exports it as
//! `medium_etl::sources::medium`.

pub mod endpoints;
pub mod graphql;
pub mod guard;
pub mod html;
pub mod interstitial;
pub mod json;
pub mod models;
pub mod paging;
pub mod rss;
pub mod story;
pub mod via;

use thiserror::Error;

/// What is wrong with a response body (see [`guard::parse_payload`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BodyError {
    #[error("empty body")]
    Empty,
    #[error("an HTML page, not JSON (a challenge or error page?)")]
    Html,
    #[error("truncated JSON: {0}")]
    Truncated(String),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the server said success: false{}", .0.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Unsuccessful(Option<String>),
    #[error("no payload in the response")]
    NoPayload,
    #[error("unexpected payload shape: {0}")]
    Shape(String),
    #[error("a challenge page (Cloudflare / captcha), not the page asked for")]
    Challenge,
    /// A block page: the server will not serve this client; asking again does not help.
    #[error("a block page (Cloudflare: \"Sorry, you have been blocked\"), not the page asked for")]
    Blocked,
    #[error("an HTML page without the embedded state (window.__APOLLO_STATE__)")]
    NoState,
    #[error("not an RSS feed: {0}")]
    Feed(String),
    /// An error in a GraphQL reply (HTTP 200): the operation, its variables and the message.
    #[error("GraphQL {} {}: {}", .0.operation, .0.variables, .0.message)]
    Graphql(Box<GraphqlError>),
    /// GraphQL's `NotFound` (or a null collection): the user, publication or post is not there.
    #[error("GraphQL {} {}: not found{}", .0.operation, .0.variables, .0.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    NotFound(Box<GraphqlNotFound>),
}

/// What a GraphQL reply's `errors` said, and about which operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlError {
    pub operation: String,
    /// The variables, as JSON.
    pub variables: String,
    pub message: String,
    /// The error says the field, type or operation does not exist: the door is closed.
    pub unavailable: bool,
}

/// A GraphQL `NotFound`, and the operation that met it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlNotFound {
    pub operation: String,
    /// The variables, as JSON.
    pub variables: String,
    pub message: Option<String>,
}

impl BodyError {
    /// Whether the body says this door is closed (a challenge or error page instead of data),
    /// so that another format may answer (`--via auto`).
    pub fn is_closed_door(&self) -> bool {
        matches!(
            self,
            BodyError::Html
                | BodyError::Challenge
                | BodyError::Blocked
                | BodyError::NoState
                | BodyError::Unsuccessful(_)
                | BodyError::NotFound(_)
        ) || matches!(self, BodyError::Graphql(e) if e.unavailable)
    }

    /// Whether the door is closed for the whole request family, not just for this stream (a
    /// `NotFound` is that one user's or publication's, as a 404 is).
    pub fn closes_family(&self) -> bool {
        self.is_closed_door() && !matches!(self, BodyError::NotFound(_))
    }

    /// Whether asking again cannot help (a block page, a GraphQL error saying the field or
    /// operation does not exist, `NotFound`): the client does not retry it. Other GraphQL
    /// errors are retried like a malformed body.
    pub fn is_final(&self) -> bool {
        matches!(self, BodyError::Blocked | BodyError::NotFound(_))
            || matches!(self, BodyError::Graphql(e) if e.unavailable)
    }

    /// A page that is not the format's: a block page, a challenge, or just HTML.
    pub fn of_html_page(body: &[u8]) -> BodyError {
        match interstitial::classify(body) {
            Some(interstitial::Interstitial::Block) => BodyError::Blocked,
            Some(interstitial::Interstitial::Challenge) => BodyError::Challenge,
            None => BodyError::Html,
        }
    }
}

/// A page of a stream, readable from any format that carries the stream.
pub trait StreamPage: Sized + models::PageItems {
    /// Reads a body fetched `via` a format for page `query` of `stream` (GraphQL's errors name
    /// the operation and variables the query stands for).
    fn decode(
        via: via::Via,
        stream: &endpoints::StreamId,
        query: &str,
        body: &[u8],
    ) -> Result<Self, BodyError>;
}

impl StreamPage for models::StreamPayload {
    fn decode(
        via: via::Via,
        stream: &endpoints::StreamId,
        query: &str,
        body: &[u8],
    ) -> Result<Self, BodyError> {
        let page = || {
            via::PageOf::of(stream)
                .ok_or_else(|| BodyError::Shape(format!("{stream} cannot be read from {via}")))
        };
        match via {
            via::Via::Json => guard::parse_payload(body),
            via::Via::Graphql => graphql::decode_stream(stream, query, body),
            via::Via::Html => html::decode(body, page()?),
            via::Via::Rss => rss::decode(body, page()?),
        }
    }
}

impl StreamPage for models::FollowingPayload {
    fn decode(
        via: via::Via,
        stream: &endpoints::StreamId,
        query: &str,
        body: &[u8],
    ) -> Result<Self, BodyError> {
        match via {
            via::Via::Json => guard::parse_payload(body),
            via::Via::Graphql => graphql::decode_following(stream, query, body),
            // the table says no other format carries followings
            _ => Err(BodyError::Shape(format!(
                "{stream} cannot be read from {via}"
            ))),
        }
    }
}

impl StreamPage for graphql::BodiesPayload {
    fn decode(
        via: via::Via,
        stream: &endpoints::StreamId,
        query: &str,
        body: &[u8],
    ) -> Result<Self, BodyError> {
        match via {
            via::Via::Graphql => graphql::decode_bodies(stream, query, body),
            // the table says only GraphQL serves bodies apart
            _ => Err(BodyError::Shape(format!(
                "{stream} cannot be read from {via}"
            ))),
        }
    }
}

/// A hash set with foldhash's randomly seeded hasher: the id sets of paging and normalizing,
/// which SipHash made 4 % of a crawl's instructions (#18).
pub type FastHashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// A hash map with the hasher of [`FastHashSet`].
pub type FastHashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
