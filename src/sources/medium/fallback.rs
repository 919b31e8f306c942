//! The doors and how a stream moves between them (`--via`, [`ViaMode`]).
//!
//! Every stream is read in one format, whole, the first of the chain that answers. Under
//! `auto` the chain is JSON → GraphQL → HTML → RSS ([`Via::ALL`]): a stream whose first page
//! answers 403, 404, a block or challenge page, an error page, `success: false`, a GraphQL
//! error saying the field or operation is unavailable, or `NotFound`, is read in the next
//! format; all but a 404 and a `NotFound` also move the rest of its request family on
//! ([`FetchError::closes_family_via`]; for GraphQL, whose requests all go to one endpoint, a
//! 404 too), so a closed door is knocked on once, not once per author. While a family's door is unknown, its first stream
//! goes alone (a probe); the others wait for its answer. Every switch is recorded
//! ([`SourceSwitch`]) for the summary and the manifest.
//!
//! What the formats carry comes from the one table, [`medium_api::via::Format`]. A stream is
//! *not carried* (not harvested, and not a failure) when the chain holds formats that cannot
//! carry its family and the stream's own answer says the door is closed to it: no format left
//! to it can address it (followings under `--via html`, or under `auto` once the family moved
//! past JSON), or the carrying format refused the whole family (403, a challenge). Under
//! `--via json` a refusal stays a failure, and so does a 404 anywhere (that one stream is gone).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use medium_api::endpoints::{Endpoint, StreamId};
use medium_api::via::{Via, ViaMode};
use tokio::sync::MutexGuard;

use crate::error::FetchError;
use crate::run::{ByEndpoint, ByVia, SourceSwitch, Unfinished};

/// One request family's door.
#[derive(Debug, Default)]
struct FamilyDoor {
    /// The position in the chain that the family's streams start at (moves on when a door
    /// closes).
    position: AtomicUsize,
    /// Held by the stream that probes a format nobody has had an answer from yet.
    probe: tokio::sync::Mutex<()>,
    /// The formats the family has had an answer from.
    probed: ByVia<AtomicBool>,
}

/// The fallback state of one run: where each family's streams start, and the switches so far.
#[derive(Debug)]
pub struct Fallback {
    mode: ViaMode,
    /// Whether to probe: under `auto` over HTTP (replaying costs nothing to knock).
    probing: bool,
    families: ByEndpoint<FamilyDoor>,
    switches: Mutex<Vec<SourceSwitch>>,
}

/// A stream's turn at a format: holds the family's probe while the format's first answer is
/// unknown.
pub struct Turn<'a> {
    probe: Option<MutexGuard<'a, ()>>,
    probed: &'a AtomicBool,
}

impl Turn<'_> {
    /// The format answered a first page: the door is open, the others may come in. (On an
    /// error the probe stays held until [`Fallback::refused`] has moved the family on, so
    /// nobody else knocks on a closed door.)
    pub fn answered(&mut self) {
        if self.probe.take().is_some() {
            self.probed.store(true, Ordering::Release);
        }
    }

    /// The stream is done with the format, whatever it answered.
    pub fn done(self) {
        self.probed.store(true, Ordering::Release);
    }
}

impl Fallback {
    pub fn new(mode: ViaMode, over_http: bool) -> Self {
        Fallback {
            mode,
            probing: over_http && mode.chain().len() > 1,
            families: ByEndpoint::default(),
            switches: Mutex::default(),
        }
    }

    /// The formats to try, in order.
    pub fn chain(&self) -> &'static [Via] {
        self.mode.chain()
    }

    /// Where a stream starts: the first format it has stored (a re-run requests nothing it
    /// has), else where its family is.
    pub fn first_position(&self, family: Endpoint, stored: &[bool]) -> usize {
        stored.iter().position(|s| *s).unwrap_or_else(|| {
            self.families
                .get(family)
                .position
                .load(Ordering::Relaxed)
                .min(self.chain().len() - 1)
        })
    }

    /// A stream's turn at the format at `position`; `None` when the family moved past it while
    /// the stream waited for the probe (then the stream goes on to the next format).
    pub async fn turn(&self, family: Endpoint, position: usize, stored: bool) -> Option<Turn<'_>> {
        let door = self.families.get(family);
        let via = self.chain()[position];
        let probed = door.probed.get(via);
        let mut probe = match self.probing && !stored && !probed.load(Ordering::Acquire) {
            true => Some(door.probe.lock().await),
            false => None,
        };
        if probed.load(Ordering::Acquire) {
            // answered while we waited: no need to go alone
            probe = None;
        }
        if !stored && position < door.position.load(Ordering::Acquire) {
            return None;
        }
        Some(Turn { probe, probed })
    }

    /// Records that `stream` could not be read in the format at `position` of the chain (a
    /// switch, when another format follows), moves its family on when the door is closed for
    /// all of it, and only then ends the stream's `turn`: a stream waiting for the probe never
    /// sees the door answered before the family has moved past it.
    pub fn refused(
        &self,
        turn: Turn<'_>,
        stream: &StreamId,
        username: Option<&str>,
        position: usize,
        error: &FetchError,
    ) {
        if position + 1 < self.chain().len() {
            self.switched(stream, username, position, error);
        }
        turn.done();
    }

    fn switched(
        &self,
        stream: &StreamId,
        username: Option<&str>,
        position: usize,
        error: &FetchError,
    ) {
        let chain = self.chain();
        let via = chain[position];
        // Replaying, or a format that cannot address the stream: nothing was refused.
        if matches!(
            error,
            FetchError::NotInSource { .. } | FetchError::Unaddressable { .. }
        ) {
            return;
        }
        let closes = error.closes_family_via(via);
        if closes {
            self.families
                .get(stream.endpoint())
                .position
                .fetch_max(position + 1, Ordering::Relaxed);
        }
        let to = chain[position + 1..]
            .iter()
            .copied()
            .find(|v| stream.http_path_via(*v, username).is_ok());
        tracing::warn!(
            stream = %stream,
            from = %via,
            to = to.map_or("none", Via::name),
            family = closes,
            error = %error,
            "SourceSwitched"
        );
        let switch = SourceSwitch {
            endpoint: stream.endpoint(),
            stream: stream.to_string(),
            from: via,
            to,
            url: error.url(),
            reason: error.to_string(),
            family: closes,
        };
        self.switches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(switch);
    }

    /// Why a stream that no format of the chain answered ends: not carried (see the module
    /// docs), or the first real refusal (`closed`).
    pub fn not_answered(&self, stream: &StreamId, closed: Option<(FetchError, Via)>) -> Unfinished {
        let chain = self.chain();
        let family = stream.endpoint();
        let carriers = chain.iter().filter(|v| v.format().carries(family)).count();
        // This stream's own answer decides: its family's door was closed (403, a challenge), or
        // no format left to it could address the stream. A 404 is that stream's alone.
        let door_closed = closed.as_ref().is_none_or(|(e, via)| {
            e.closes_family_via(*via) || matches!(e, FetchError::Unaddressable { .. })
        });
        let closed = closed.map(|(e, _)| e);
        if carriers == chain.len() || !door_closed {
            return Unfinished::Failed(closed.unwrap_or_else(|| FetchError::Unaddressable {
                stream: stream.to_string(),
                reason: format!("no format of --via {} carries {stream}", self.mode),
            }));
        }
        let reason = match closed {
            Some(FetchError::Unaddressable { reason, .. }) => reason,
            Some(e) => format!(
                "{stream} exists only in {}, which refused: {e}",
                Via::only_in(family)
            ),
            None => format!("{stream} exists only in {}", Via::only_in(family)),
        };
        Unfinished::NotCarried {
            stream: stream.to_string(),
            reason,
        }
    }

    /// The switches so far, in the order they happened.
    pub fn take_switches(&self) -> Vec<SourceSwitch> {
        std::mem::take(
            &mut *self
                .switches
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medium_api::via::Via;

    fn status(code: u16) -> FetchError {
        FetchError::Status {
            url: "http://127.0.0.1/x".into(),
            status: code,
            attempts: 1,
        }
    }

    fn unaddressable() -> FetchError {
        FetchError::Unaddressable {
            stream: "s".into(),
            reason: "following of user u3 exists only in the JSON API".into(),
        }
    }

    /// Regression: a stream's own 404 stays a failure even after another stream of its family
    /// found the door closed (403) and moved the family on.
    #[test]
    fn a_stream_is_not_carried_only_by_its_own_answer() {
        let auto = Fallback::new(ViaMode::Auto, true);
        let (a2, a3) = (
            StreamId::Following("a2".into()),
            StreamId::Following("a3".into()),
        );
        auto.switched(&a2, None, 0, &status(403));
        assert_eq!(auto.first_position(Endpoint::Following, &[false; 4]), 1);
        assert!(matches!(
            auto.not_answered(&a3, Some((status(404), Via::Json))),
            Unfinished::Failed(FetchError::Status { status: 404, .. })
        ));
        assert!(matches!(
            auto.not_answered(&a2, Some((status(403), Via::Json))),
            Unfinished::NotCarried { .. }
        ));
        // skipped the closed JSON door; pages and feeds cannot address followings
        assert!(matches!(
            auto.not_answered(&a3, Some((unaddressable(), Via::Json))),
            Unfinished::NotCarried { .. }
        ));
        // a profile is carried by every format of the chain: a refusal in all is a failure
        let p = StreamId::Profile("a3".into());
        assert!(matches!(
            auto.not_answered(&p, Some((status(403), Via::Json))),
            Unfinished::Failed(_)
        ));
        // under --via json a refused following is a failure; under --via html it is not carried
        let json = Fallback::new(ViaMode::Only(Via::Json), true);
        assert!(matches!(
            json.not_answered(&a2, Some((status(403), Via::Json))),
            Unfinished::Failed(_)
        ));
        let html = Fallback::new(ViaMode::Only(Via::Html), true);
        assert!(matches!(
            html.not_answered(&a2, Some((unaddressable(), Via::Json))),
            Unfinished::NotCarried { .. }
        ));
        assert_eq!(auto.take_switches().len(), 1);
    }
}
