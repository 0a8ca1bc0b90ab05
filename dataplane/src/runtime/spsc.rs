//! A bounded single-producer single-consumer queue for small `Copy`-free messages between one
//! worker and the main lcore (neighbour resolution requests, Acquire requests).
//!
//! Packets travel on DPDK's `rte_ring`s; these messages are not mbufs and must not cost an
//! allocation per message (a `Box` per request would), so they go through this ring of
//! slots: a Lamport queue with one atomic index per side, acquire/release ordered, no lock and
//! no system call. Capacity is a power of two.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Shared<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Next slot the consumer reads (written by the consumer only).
    head: AtomicUsize,
    /// Next slot the producer writes (written by the producer only).
    tail: AtomicUsize,
}

// SAFETY: a slot is accessed by the producer only while it is outside [head, tail) and by the
// consumer only while inside it; the release store of `tail` (producer) / `head` (consumer)
// publishes the slot write / frees the slot before the other side's acquire load sees it. So
// no slot is ever accessed by both threads at once, and values of T move between threads,
// which needs T: Send.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; the queue owns values of T, which may be dropped on either thread.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let head = *self.head.get_mut();
        let tail = *self.tail.get_mut();
        for i in head..tail {
            // SAFETY: slots in [head, tail) hold initialised values not yet consumed; we have
            // exclusive access (&mut self), and each is dropped once.
            unsafe { (*self.slots[i & self.mask].get()).assume_init_drop() };
        }
    }
}

/// The sending end (one thread).
pub struct Producer<T> {
    q: Arc<Shared<T>>,
}

/// The receiving end (one thread).
pub struct Consumer<T> {
    q: Arc<Shared<T>>,
}

/// A queue of `capacity` slots (rounded up to a power of two, at least 2).
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let slots = (0..cap)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let q = Arc::new(Shared {
        slots,
        mask: cap - 1,
        head: AtomicUsize::new(0),
        tail: AtomicUsize::new(0),
    });
    (Producer { q: q.clone() }, Consumer { q })
}

impl<T> Producer<T> {
    /// Slots free right now; the consumer may free more, never fewer, before the next push.
    #[inline]
    pub fn free_slots(&self) -> usize {
        let q = &*self.q;
        let tail = q.tail.load(Ordering::Relaxed);
        let head = q.head.load(Ordering::Acquire);
        q.mask + 1 - tail.wrapping_sub(head)
    }

    /// Enqueues `v`, or gives it back when the queue is full.
    #[inline]
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let q = &*self.q;
        let tail = q.tail.load(Ordering::Relaxed);
        let head = q.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) > q.mask {
            return Err(v);
        }
        // SAFETY: the slot at `tail` is outside [head, tail): the consumer does not touch it
        // until the release store below publishes it, and only this producer (`&mut self`)
        // writes slots.
        unsafe { (*q.slots[tail & q.mask].get()).write(v) };
        q.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }
}

impl<T> Consumer<T> {
    /// Dequeues one value, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let q = &*self.q;
        let head = q.head.load(Ordering::Relaxed);
        let tail = q.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: the slot at `head` is inside [head, tail): the producer initialised it
        // before its release store of `tail`, which our acquire load observed; the producer
        // will not reuse it until our release store of `head` below. It is read exactly once.
        let v = unsafe { (*q.slots[head & q.mask].get()).assume_init_read() };
        q.head.store(head.wrapping_add(1), Ordering::Release);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_slots_counts_room() {
        let (mut p, mut c) = channel::<u8>(4);
        assert_eq!(p.free_slots(), 4);
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(p.free_slots(), 2);
        c.pop();
        assert_eq!(p.free_slots(), 3);
    }

    #[test]
    fn fills_up_and_drains_in_order() {
        let (mut p, mut c) = channel::<u32>(3); // rounded up to 4
        for i in 0..4 {
            assert!(p.push(i).is_ok());
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.pop(), Some(0));
        assert!(p.push(4).is_ok());
        let got: Vec<_> = std::iter::from_fn(|| c.pop()).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn crosses_threads_without_loss_and_drops_leftovers() {
        let (mut p, mut c) = channel::<Box<u64>>(64);
        const N: u64 = 100_000;
        let t = std::thread::spawn(move || {
            let mut next = 0;
            while next < N {
                if let Some(v) = c.pop() {
                    assert_eq!(*v, next);
                    next += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
            c
        });
        for i in 0..N {
            let mut v = Box::new(i);
            while let Err(back) = p.push(v) {
                v = back;
                std::hint::spin_loop();
            }
        }
        let c = t.join().unwrap();
        // leftovers are dropped with the queue (Box values: a leak would show under miri/asan)
        assert!(p.push(Box::new(1)).is_ok());
        drop((p, c));
    }
}
