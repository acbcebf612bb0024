//! Admission for expensive work (argon2 checks, image decodes): at most `permits` run
//! at once, at most `queue` more wait, and anything beyond is answered 503 with
//! `Retry-After` at once, so a burst costs a bounded amount of memory instead of one
//! buffer per request.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;

pub struct WorkGate {
    what: &'static str,
    permits: Arc<Semaphore>,
    queue: usize,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// The right to run one piece of work; released when dropped.
pub struct Pass {
    gate: Arc<WorkGate>,
    _permit: OwnedSemaphorePermit,
}

impl WorkGate {
    pub fn new(what: &'static str, permits: usize, queue: usize) -> Arc<Self> {
        Arc::new(WorkGate {
            what,
            permits: Arc::new(Semaphore::new(permits.max(1))),
            queue,
            waiting: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// Waits for a turn, or answers 503 `busy` when the queue is full.
    pub async fn enter(self: &Arc<Self>) -> Result<Pass, Error> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(self.pass(permit));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(work = self.what, "work queue full; request refused");
            return Err(Error::busy(self.what));
        }
        // Counted as waiting until the permit comes or the request is dropped.
        let _waiting = Waiting(&self.waiting);
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        Ok(self.pass(permit))
    }

    fn pass(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Pass {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        Pass {
            gate: Arc::clone(self),
            _permit: permit,
        }
    }

    /// Work running right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The most work that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Requests waiting for a turn.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_at_most_permits_queues_at_most_queue_and_refuses_the_rest() {
        let gate = WorkGate::new("test work", 2, 1);
        let a = gate.enter().await.unwrap();
        let _b = gate.enter().await.unwrap();
        // The third waits in the queue...
        let g = Arc::clone(&gate);
        let third = tokio::spawn(async move { g.enter().await.map(|_| ()) });
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // ...and the fourth is refused at once.
        let refused = gate.enter().await.err().expect("queue full");
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(gate.in_flight(), 2);
        drop(a);
        third.await.unwrap().unwrap();
        assert_eq!(gate.peak(), 2);
        assert_eq!(gate.waiting(), 0);
    }
}
