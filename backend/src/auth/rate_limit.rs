//! Login throttling per account and per client IP (in-process GCRA buckets).
//!
//! Each instance keeps its own buckets, so N instances allow at most N times the
//! configured rate; that is enough to stop online password guessing. Old keys are
//! dropped by [`LoginLimiter::spawn_cleanup`].

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use tokio_util::sync::CancellationToken;

use crate::error::Error;

pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    pub fn new(per_account_per_minute: u32, per_ip_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("positive"));
        LoginLimiter {
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Error> {
        self.per_ip.check_key(&ip).map_err(|not_until| {
            Error::too_many_requests(
                not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs(),
            )
        })
    }

    pub fn check_account(&self, normalized_email: &str) -> Result<(), Error> {
        self.per_account
            .check_key(&normalized_email.to_owned())
            .map_err(|not_until| {
                Error::too_many_requests(
                    not_until
                        .wait_time_from(DefaultClock::default().now())
                        .as_secs(),
                )
            })
    }

    pub fn spawn_cleanup(self: &Arc<Self>, shutdown: CancellationToken) {
        let limiter = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        limiter.per_account.retain_recent();
                        limiter.per_ip.retain_recent();
                    }
                }
            }
        });
    }
}
