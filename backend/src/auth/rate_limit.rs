//! In-process request throttling (GCRA buckets keyed by IP, ...) and the login
//! back-off per account and IP.
//!
//! Each instance keeps its own buckets, so N instances allow at most N times the
//! configured rate; that is enough to stop online password guessing and cheap
//! enumeration. Idle keys are dropped by [`spawn_cleanup`].

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

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

    /// `n` per hour for each key, in a burst of at most `n`.
    pub fn per_hour(n: u32) -> Self {
        let quota = Quota::per_hour(NonZeroU32::new(n.max(1)).expect("positive"));
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

/// Failed logins per account **and** client IP, answered with an exponential back-off:
/// the first `free` failures cost nothing, then each one doubles the wait (1 s, 2 s,
/// 4 s, ... up to `max`) before that IP may try that account again; a success clears
/// it. Unlike a lock per account, an attacker cannot lock the owner out: the owner's
/// own IP has its own, clean record.
pub struct LoginBackoff {
    free: u32,
    max: Duration,
    records: Mutex<HashMap<(String, IpAddr), Failures>>,
}

struct Failures {
    count: u32,
    retry_at: Instant,
}

impl LoginBackoff {
    pub fn new(free: u32, max: Duration) -> Self {
        LoginBackoff {
            free,
            max,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Failures>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 429 with the wait in `Retry-After` while this IP must wait for this account.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Error> {
        let now = Instant::now();
        match self.records().get(&(account.to_owned(), ip)) {
            Some(f) if f.retry_at > now => Err(Error::too_many_requests(
                (f.retry_at - now).as_secs_f64().ceil() as u64,
            )),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, account: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut records = self.records();
        let f = records.entry((account.to_owned(), ip)).or_insert(Failures {
            count: 0,
            retry_at: now,
        });
        f.count += 1;
        if f.count > self.free {
            let doublings = (f.count - self.free - 1).min(20);
            f.retry_at = now + Duration::from_secs(1u64 << doublings).min(self.max);
        }
    }

    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        self.records().remove(&(account.to_owned(), ip));
    }

    /// Forgets records whose wait ended more than `max` ago.
    fn retain_recent(&self) {
        let now = Instant::now();
        let max = self.max;
        self.records().retain(|_, f| f.retry_at + max > now);
    }
}

/// All the limiters of one instance.
pub struct Limiters {
    pub login_backoff: LoginBackoff,
    pub login_ip: KeyedLimiter<IpAddr>,
    /// Public reads (page views, invitation lookups) per client IP.
    pub public_read: KeyedLimiter<IpAddr>,
    /// Public writes (RSVPs, guestbook posts and deletions) per client IP, all pages
    /// together: generous, since a venue's guests may share one address.
    pub public_write: KeyedLimiter<IpAddr>,
    /// Editor invitations per page owner (each one could probe an e-mail address).
    pub editor_invites: KeyedLimiter<String>,
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
                    limiters.login_backoff.retain_recent();
                    limiters.login_ip.retain_recent();
                    limiters.public_read.retain_recent();
                    limiters.public_write.retain_recent();
                    limiters.editor_invites.retain_recent();
                    limiters.public_write_page.retain_recent();
                    limiters.public_write_invitation.retain_recent();
                    limiters.guestbook_delete_entry.retain_recent();
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_failures_per_account_and_ip() {
        let b = LoginBackoff::new(2, Duration::from_secs(60));
        let (me, them): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        b.failed("a@x", them);
        b.failed("a@x", them);
        assert!(b.check("a@x", them).is_ok(), "free failures cost nothing");
        b.failed("a@x", them);
        assert!(b.check("a@x", them).is_err());
        assert!(b.check("a@x", me).is_ok(), "another IP is not locked out");
        assert!(
            b.check("b@x", them).is_ok(),
            "another account is not affected"
        );
        b.failed("a@x", them);
        let waits = b.records()[&("a@x".to_owned(), them)].retry_at - Instant::now();
        assert!(
            waits > Duration::from_millis(1500),
            "the wait doubled: {waits:?}"
        );
        b.succeeded("a@x", them);
        assert!(b.check("a@x", them).is_ok());
    }
}
