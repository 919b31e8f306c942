//! One writer a date across machines: a lease object, `locks/date=D.json`, created only if
//! absent (`If-None-Match: *` on S3), renewed while the run lasts, deleted when it ends.
//!
//! A local run's date lock ([`crate::lock`]) keeps two runs of a date on one machine apart; a
//! lake is written from many (pods, an operator's laptop, a schedule). A run that finds a live
//! lease ends at once with exit 9, naming the holder and when its lease runs out. A lease not
//! renewed for its time to live (`--lease-secs`, [`TTL`] by default: its holder was killed) is taken over. The Delta commits stay safe
//! without it (create-only, retried), but two runs of one date at once could each win some of
//! its tables; with the lease they do not run at once. A run that finds its lease taken over
//! (it was not renewed in time: the run stalled, or lost the store) stops before it publishes.
//!
//! What the lease cannot rule out: the store offers no conditional delete here (and a local
//! lake no conditional replace), so a takeover is a re-read, a delete and a create-only put;
//! two writers taking over one dead lease in the same instant can both believe they won, and
//! expiry is judged by the readers' clocks. The Delta commits stay whole either way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Lake;
use crate::error::LakeError;
use crate::layout::date_dir_name;

/// A lease not renewed for this long is dead (`--lease-secs`; renewed every quarter of it).
pub const TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    /// Epoch ms after which the lease is dead.
    expires_ms: i64,
}

fn key(date: &str) -> String {
    format!("locks/{}.json", date_dir_name(date))
}

fn holder(run_id: &str, ttl: Duration) -> Holder {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    Holder {
        run_id: run_id.to_owned(),
        host,
        expires_ms: chrono::Utc::now().timestamp_millis()
            + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2),
    }
}

fn body(h: &Holder) -> Bytes {
    Bytes::from(serde_json::to_vec(h).unwrap_or_default())
}

/// A held lease: renewed in the background until released (or dropped).
pub struct Lease {
    lake: Lake,
    key: String,
    run_id: String,
    renewer: tokio::task::JoinHandle<()>,
    lost: Arc<std::sync::atomic::AtomicBool>,
}

impl Lease {
    /// Takes the lease of `date` for `run_id`, or says who holds it.
    pub async fn acquire(
        lake: &Lake,
        date: &str,
        run_id: &str,
        ttl: Duration,
    ) -> Result<Lease, LakeError> {
        let key = key(date);
        for _ in 0..3 {
            if lake.put_new(&key, body(&holder(run_id, ttl))).await? {
                return Ok(Lease::held(lake, key, run_id, ttl));
            }
            let Some(current_bytes) = lake.get(&key).await? else {
                continue; // released in between
            };
            let current: Option<Holder> = serde_json::from_slice(&current_bytes).ok();
            let now = chrono::Utc::now().timestamp_millis();
            match current {
                Some(h) if h.expires_ms > now && h.run_id != run_id => {
                    let until = chrono::DateTime::from_timestamp_millis(h.expires_ms)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default();
                    return Err(LakeError::Leased {
                        url: lake.url_of(&key),
                        holder: format!("run {} on {}", h.run_id, h.host),
                        until,
                    });
                }
                // dead (or unreadable): take it over, unless it changed since it was read
                // (another writer taking it over first: then it is that writer's)
                _ => {
                    let again = lake.get(&key).await?;
                    let unchanged = again.as_deref() == Some(&current_bytes[..]);
                    if unchanged {
                        tracing::warn!(lease = %lake.url_of(&key), "LakeLeaseTakenOver");
                        lake.delete(&key).await?;
                    }
                }
            }
        }
        Err(LakeError::Leased {
            url: lake.url_of(&key),
            holder: "writers that keep taking it".into(),
            until: String::new(),
        })
    }

    fn held(lake: &Lake, key: String, run_id: &str, ttl: Duration) -> Lease {
        let every = (ttl / 4).max(Duration::from_millis(250));
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (renew_lake, renew_key, renew_id, renew_lost) =
            (lake.clone(), key.clone(), run_id.to_owned(), lost.clone());
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // renew only a lease that is still ours
                let ours = match renew_lake.get(&renew_key).await {
                    Ok(Some(b)) => {
                        serde_json::from_slice::<Holder>(&b).is_ok_and(|h| h.run_id == renew_id)
                    }
                    _ => false,
                };
                if !ours {
                    tracing::error!(lease = %renew_lake.url_of(&renew_key), "LakeLeaseLost");
                    renew_lost.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                if let Err(e) = renew_lake
                    .put(&renew_key, body(&holder(&renew_id, ttl)))
                    .await
                {
                    tracing::warn!(error = %e, "LakeLeaseRenewFailed");
                }
            }
        });
        Lease {
            lake: lake.clone(),
            key,
            run_id: run_id.to_owned(),
            renewer,
            lost,
        }
    }

    /// Whether another writer took the lease over (it was not renewed in time).
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops renewing and deletes the lease, if it is still ours.
    pub async fn release(mut self) -> Result<(), LakeError> {
        // stop the renewer and wait for it: a renewal landing after the delete would keep
        // other writers out for a lease's length
        self.renewer.abort();
        let _ = (&mut self.renewer).await;
        let ours = match self.lake.get(&self.key).await? {
            Some(b) => serde_json::from_slice::<Holder>(&b).is_ok_and(|h| h.run_id == self.run_id),
            None => false,
        };
        if ours {
            self.lake.delete(&self.key).await?;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // a lease dropped without release (an error on the way) runs out after TTL
        self.renewer.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LakeSettings;

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_dead_lease_is_taken_over() {
        let lake = Lake::open(&LakeSettings {
            url: url::Url::parse("memory:///lake").unwrap(),
            options: vec![],
            upload_every: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(120),
        })
        .unwrap();
        let a = Lease::acquire(&lake, "2026-12-01", "run-a", TTL)
            .await
            .unwrap();
        let err = Lease::acquire(&lake, "2026-12-01", "run-b", TTL)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("run run-a"), "{err}");
        // another date is free
        let other = Lease::acquire(&lake, "2026-12-02", "run-b", TTL)
            .await
            .unwrap();
        a.release().await.unwrap();
        let b = Lease::acquire(&lake, "2026-12-01", "run-b", TTL)
            .await
            .unwrap();
        // a lease that ran out (its holder killed) is taken over
        let dead = Holder {
            run_id: "run-b".into(),
            host: String::new(),
            expires_ms: 0,
        };
        lake.put(&key("2026-12-01"), body(&dead)).await.unwrap();
        let c = Lease::acquire(&lake, "2026-12-01", "run-c", TTL)
            .await
            .unwrap();
        // b's release does not delete c's lease
        b.release().await.unwrap();
        assert!(lake.get(&key("2026-12-01")).await.unwrap().is_some());
        c.release().await.unwrap();
        other.release().await.unwrap();
        assert!(lake.get(&key("2026-12-01")).await.unwrap().is_none());
    }
}
