//! A bounded multi-producer, single-consumer queue with the subset of the API of
//! [`tokio::sync::mpsc`] that a socket uses, whose buffer is allocated lazily.
//!
//! Patched in (not part of engineioxide 0.17.9): tokio's bounded channel allocates a
//! block of 32 slots when it is created, whatever its capacity — 32 × 168 bytes of
//! [`PacketBuf`](engineioxide_core::PacketBuf) plus a cache-padded channel of ~512
//! bytes, for every socket, idle or not. Here an idle socket's queue holds no buffer;
//! one grows on the first packet and is given back once the queue is drained.

use std::{
    collections::VecDeque,
    fmt,
    future::poll_fn,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use tokio::sync::{Notify, mpsc::error::TrySendError};

struct State<T> {
    queue: VecDeque<T>,
    /// Slots taken by [`Permit`]s not yet used.
    reserved: usize,
    rx_closed: bool,
    senders: usize,
    rx_waker: Option<Waker>,
    /// Whether a [`Sender::send`] waits for room.
    send_waiting: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Signalled when the receiver closes (for [`Sender::closed`]) and when room is made
    /// for a waiting [`Sender::send`].
    notify: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves the queue consistent: every critical
        // section is a few plain field updates.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `value` (room was checked or reserved) and wakes the receiver.
    fn push(&self, mut state: MutexGuard<'_, State<T>>, value: T) {
        state.queue.push_back(value);
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Creates a queue that holds at most `capacity` values.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "queue capacity must be at least 1");
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            reserved: 0,
            rx_closed: false,
            senders: 1,
            rx_waker: None,
            send_waiting: false,
        }),
        capacity,
        notify: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending half; see [`tokio::sync::mpsc::Sender`].
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    fn has_room(&self, state: &State<T>) -> bool {
        state.queue.len() + state.reserved < self.shared.capacity
    }

    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let state = self.shared.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(value));
        }
        if !self.has_room(&state) {
            return Err(TrySendError::Full(value));
        }
        self.shared.push(state, value);
        Ok(())
    }

    pub(crate) fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        let mut state = self.shared.lock();
        if state.rx_closed {
            return Err(TrySendError::Closed(()));
        }
        if !self.has_room(&state) {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit {
            shared: &self.shared,
        })
    }

    /// Waits for room, then queues `value`; gives it back if the receiver is closed.
    pub(crate) async fn send(&self, value: T) -> Result<(), T> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake-up between the two is not lost.
            notified.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if state.rx_closed {
                    return Err(value);
                }
                if self.has_room(&state) {
                    self.shared.push(state, value);
                    return Ok(());
                }
                state.send_waiting = true;
            }
            notified.await;
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().rx_closed
    }

    /// Wakes the receiver's task without queuing anything, for a signal it checks when
    /// woken (a volatile packet, the session's end).
    pub(crate) fn wake_receiver(&self) {
        let waker = self.shared.lock().rx_waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Refuses new values from every sender, as [`Receiver::close`] does; those already
    /// queued can still be received. Returns whether this call closed the queue.
    pub(crate) fn close(&self) -> bool {
        {
            let mut state = self.shared.lock();
            if state.rx_closed {
                return false;
            }
            state.rx_closed = true;
        }
        self.shared.notify.notify_waiters();
        self.wake_receiver();
        true
    }

    /// Resolves once the receiver is closed or dropped.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.rx_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

/// A reserved slot; see [`tokio::sync::mpsc::Permit`].
pub(crate) struct Permit<'a, T> {
    shared: &'a Shared<T>,
}

impl<T> Permit<'_, T> {
    pub(crate) fn send(self, value: T) {
        let shared = self.shared;
        // The slot is used, not given back: no `Drop`.
        std::mem::forget(self);
        let mut state = shared.lock();
        state.reserved -= 1;
        // Like tokio: a value sent through a permit after the receiver closed is dropped.
        if !state.rx_closed {
            shared.push(state, value);
        }
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        // Unused: give the slot back.
        self.shared.lock().reserved -= 1;
    }
}

/// The receiving half; see [`tokio::sync::mpsc::Receiver`].
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// The queue is empty ([`Receiver::try_recv`]).
#[derive(Debug)]
pub(crate) struct TryRecvError;

impl<T> Receiver<T> {
    fn take(&self, state: &mut State<T>) -> Option<T> {
        let value = state.queue.pop_front()?;
        // A drained queue gives its buffer back: most sockets are idle most of the
        // time, and a small allocation per burst costs less than keeping it.
        if state.queue.is_empty() {
            state.queue = VecDeque::new();
        }
        if state.send_waiting {
            state.send_waiting = false;
            self.shared.notify.notify_waiters();
        }
        Some(value)
    }

    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(value) = self.take(&mut state) {
            return Poll::Ready(Some(value));
        }
        if state.rx_closed || state.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        self.take(&mut state).ok_or(TryRecvError)
    }

    /// Refuses new values; those already queued can still be received.
    pub(crate) fn close(&mut self) {
        self.shared.lock().rx_closed = true;
        self.shared.notify.notify_waiters();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.shared.lock();
            state.rx_closed = true;
            std::mem::take(&mut state.queue)
        };
        self.shared.notify.notify_waiters();
        drop(queued);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Receiver")
            .field("len", &state.queue.len())
            .field("closed", &state.rx_closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_by_queued_and_reserved_values() {
        let (tx, mut rx) = channel::<u32>(2);
        let permit = tx.try_reserve().unwrap();
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        permit.send(0);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv().unwrap(), 0);
        // An unused permit gives its slot back.
        drop(tx.try_reserve().unwrap());
        tx.try_send(3).unwrap();
        tx.try_send(4).unwrap();
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok() && rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn close_keeps_queued_values_and_wakes_closed() {
        let (tx, mut rx) = channel::<u32>(4);
        tx.try_send(1).unwrap();
        let waiter = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.closed().await })
        };
        rx.close();
        waiter.await.unwrap();
        assert!(tx.is_closed());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_sender_closes_it_once_and_queued_values_stay_receivable() {
        let (tx, mut rx) = channel::<u8>(2);
        tx.try_send(1).unwrap();
        assert!(tx.close());
        assert!(!tx.close(), "only the first close reports it");
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn wake_receiver_wakes_a_waiting_receiver_with_nothing_queued() {
        let (tx, mut rx) = channel::<u8>(1);
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&woken);
        let waiter = tokio::spawn(async move {
            poll_fn(|cx| {
                if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                    return Poll::Ready(());
                }
                assert!(rx.poll_recv(cx).is_pending());
                Poll::Pending
            })
            .await;
            rx
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
        tx.wake_receiver();
        let mut rx = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the receiver was woken")
            .unwrap();
        assert!(rx.try_recv().is_err(), "nothing was queued");
    }

    #[tokio::test]
    async fn recv_wakes_on_send_and_ends_when_senders_are_gone() {
        let (tx, mut rx) = channel::<u32>(1);
        let reader = tokio::spawn(async move { (rx.recv().await, rx.recv().await) });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        drop(tx);
        assert_eq!(reader.await.unwrap(), (Some(7), None));
    }

    #[tokio::test]
    async fn send_waits_for_room() {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let sender = tokio::spawn(async move { tx2.send(2).await });
        tokio::task::yield_now().await;
        assert_eq!(rx.recv().await, Some(1));
        sender.await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_buffer_back() {
        let (tx, mut rx) = channel::<u32>(64);
        for i in 0..32 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.shared.lock().queue.capacity(), 0);
    }
}
