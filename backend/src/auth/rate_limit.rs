//! In-process request throttling (GCRA buckets keyed by account, IP, ...).
//!
//! Each instance keeps its own buckets, so N instances allow at most N times the
//! configured rate; that is enough to stop online password guessing and cheap
//! enumeration. Idle keys are dropped by [`spawn_cleanup`].

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// A per-minute limit for each key.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn per_minute(n: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(n.max(1)).expect("positive"));
        KeyedLimiter {
            inner: RateLimiter::keyed(quota),
        }
    }

    /// Takes one unit for `key`, or answers 429 with the wait in `Retry-After`.
    pub fn check(&self, key: &K) -> Result<(), Error> {
        self.inner.check_key(key).map_err(|not_until| {
            Error::too_many_requests(
                not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs(),
            )
        })
    }

    fn retain_recent(&self) {
        self.inner.retain_recent();
    }
}

/// All the limiters of one instance.
pub struct Limiters {
    pub login_account: KeyedLimiter<String>,
    pub login_ip: KeyedLimiter<IpAddr>,
    /// Public reads (page views, invitation lookups) per client IP.
    pub public_read: KeyedLimiter<IpAddr>,
    /// Public writes (RSVPs, guestbook posts and deletions) per client IP, all pages
    /// together: generous, since a venue's guests may share one address.
    pub public_write: KeyedLimiter<IpAddr>,
    /// Public writes per client IP on one page (see docs/api.md).
    pub public_write_page: KeyedLimiter<(IpAddr, String)>,
    /// RSVP answers per invitation code: one guest's link, whatever the address.
    pub public_write_invitation: KeyedLimiter<String>,
    /// Guestbook deletion attempts per entry: caps password guessing from many addresses.
    pub guestbook_delete_entry: KeyedLimiter<String>,
}

/// Drops idle keys once a minute until shutdown.
pub fn spawn_cleanup(limiters: &Arc<Limiters>, shutdown: CancellationToken) {
    let limiters = Arc::clone(limiters);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    limiters.login_account.retain_recent();
                    limiters.login_ip.retain_recent();
                    limiters.public_read.retain_recent();
                    limiters.public_write.retain_recent();
                    limiters.public_write_page.retain_recent();
                    limiters.public_write_invitation.retain_recent();
                    limiters.guestbook_delete_entry.retain_recent();
                }
            }
        }
    });
}
