//! A bounded multi-producer, single-consumer queue with the subset of the API of
//! [`tokio::sync::mpsc`] that a socket uses, whose buffer is allocated lazily.
//!
//! Patched in (not part of engineioxide 0.17.9): tokio's bounded channel allocates a
//! block of 32 slots when it is created, whatever its capacity — 32 × 168 bytes of
//! [`PacketBuf`](engineioxide_core::PacketBuf) plus a cache-padded channel of ~512
//! bytes, for every socket, idle or not. Here an idle socket's queue holds one value
//! inline (a relayed item is most often alone in its burst) and no buffer; one grows
//! when a second value waits and is given back once the queue is drained.

use std::{
    collections::VecDeque,
    fmt,
    future::poll_fn,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use tokio::sync::{Notify, mpsc::error::TrySendError};

/// Values in order: the first inline, the others in a buffer that exists only while
/// there are others.
struct Slots<T> {
    first: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Slots<T> {
    const fn new() -> Self {
        Self {
            first: None,
            rest: VecDeque::new(),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn push_back(&mut self, value: T) {
        if self.first.is_none() {
            self.first = Some(value);
        } else {
            self.rest.push_back(value);
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let value = self.first.take()?;
        self.first = self.rest.pop_front();
        // A drained buffer is given back: most sockets are idle most of the time, and
        // a small allocation per burst of several values costs less than keeping it.
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
        Some(value)
    }
}

struct State<T> {
    queue: Slots<T>,
    /// The latest value sent with [`Sender::replace_latest`], outside the bound and
    /// overwritten by the next one (engine.io's volatile packets). Boxed: most sockets
    /// never get one.
    latest: Option<Box<T>>,
    /// Slots taken by [`Permit`]s not yet used.
    reserved: usize,
    rx_closed: bool,
    senders: usize,
    rx_waker: Option<Waker>,
    /// Set by [`Sender::wake_receiver`], taken by [`Receiver::poll_recv_or_latest`].
    woken: bool,
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
            queue: Slots::new(),
            latest: None,
            reserved: 0,
            rx_closed: false,
            senders: 1,
            rx_waker: None,
            woken: false,
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

    /// Keeps `value` as the latest value, replacing one not yet received, whether or
    /// not the queue has room, and wakes the receiver. False if the receiver is closed.
    pub(crate) fn replace_latest(&self, value: T) -> bool {
        let mut state = self.shared.lock();
        if state.rx_closed {
            return false;
        }
        state.latest = Some(Box::new(value));
        let waker = state.rx_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Wakes the receiver's task without queuing anything, for a signal it checks when
    /// woken (the session's end): [`Receiver::poll_recv_or_latest`] then answers
    /// [`Next::Woken`] once, so the receiver checks it only when told to.
    pub(crate) fn wake_receiver(&self) {
        let waker = {
            let mut state = self.shared.lock();
            state.woken = true;
            state.rx_waker.take()
        };
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

/// What [`Receiver::poll_recv_or_latest`] received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<T> {
    /// A value sent through the queue.
    Queued(T),
    /// The value of [`Sender::replace_latest`].
    Latest(T),
    /// [`Sender::wake_receiver`] was called.
    Woken,
}

/// The queue is empty ([`Receiver::try_recv`]).
#[derive(Debug)]
pub(crate) struct TryRecvError;

impl<T> Receiver<T> {
    fn take(&self, state: &mut State<T>) -> Option<T> {
        let value = state.queue.pop_front()?;
        if state.send_waiting {
            state.send_waiting = false;
            self.shared.notify.notify_waiters();
        }
        Some(value)
    }

    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.poll_next(cx, false) {
            Poll::Ready(Some(Next::Queued(value) | Next::Latest(value))) => {
                Poll::Ready(Some(value))
            }
            Poll::Ready(None) => Poll::Ready(None),
            // `Woken` is reported only with `latest`; the waker is registered otherwise.
            Poll::Ready(Some(Next::Woken)) | Poll::Pending => Poll::Pending,
        }
    }

    /// Like [`Receiver::poll_recv`], but once the queue is empty the value of
    /// [`Sender::replace_latest`] is received too, and a [`Sender::wake_receiver`]
    /// since the last call is reported.
    pub(crate) fn poll_recv_or_latest(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next<T>>> {
        self.poll_next(cx, true)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>, latest: bool) -> Poll<Option<Next<T>>> {
        let mut state = self.shared.lock();
        if let Some(value) = self.take(&mut state) {
            return Poll::Ready(Some(Next::Queued(value)));
        }
        if state.rx_closed || state.senders == 0 {
            return Poll::Ready(None);
        }
        if latest {
            if let Some(value) = state.latest.take() {
                return Poll::Ready(Some(Next::Latest(*value)));
            }
            if std::mem::take(&mut state.woken) {
                return Poll::Ready(Some(Next::Woken));
            }
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
            (
                std::mem::replace(&mut state.queue, Slots::new()),
                state.latest.take(),
            )
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
        // The wake-up is reported to `poll_recv_or_latest` once, then it waits again.
        let next = poll_fn(|cx| Poll::Ready(rx.poll_recv_or_latest(cx))).await;
        assert_eq!(next, Poll::Ready(Some(Next::Woken)));
        let next = poll_fn(|cx| Poll::Ready(rx.poll_recv_or_latest(cx))).await;
        assert_eq!(next, Poll::Pending);
    }

    #[tokio::test]
    async fn the_latest_value_bypasses_the_bound_and_only_the_last_one_is_kept() {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(1).unwrap();
        assert!(tx.replace_latest(10), "room or not");
        assert!(tx.replace_latest(11));
        let next = poll_fn(|cx| rx.poll_recv_or_latest(cx)).await;
        assert_eq!(next, Some(Next::Queued(1)), "queued values first");
        let next = poll_fn(|cx| rx.poll_recv_or_latest(cx)).await;
        assert_eq!(next, Some(Next::Latest(11)), "then the last of the latest");
        let waiting = tokio::spawn(async move {
            let value = poll_fn(|cx| rx.poll_recv_or_latest(cx)).await;
            (value, rx)
        });
        tokio::task::yield_now().await;
        assert!(tx.replace_latest(12), "wakes the waiting receiver");
        let (value, mut rx) = waiting.await.unwrap();
        assert_eq!(value, Some(Next::Latest(12)));
        tx.replace_latest(13);
        assert!(rx.try_recv().is_err(), "plain receives never see it");
        rx.close();
        assert!(!tx.replace_latest(14), "refused once closed");
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
        assert_eq!(rx.shared.lock().queue.rest.capacity(), 0);
        // A value alone needs no buffer at all, and values keep their order.
        tx.try_send(1).unwrap();
        assert_eq!(rx.shared.lock().queue.rest.capacity(), 0);
        tx.try_send(2).unwrap();
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv().unwrap(), 1);
        tx.try_send(4).unwrap();
        let order: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(order, [2, 3, 4]);
        assert_eq!(rx.shared.lock().queue.rest.capacity(), 0);
    }
}
