//! What waits to be sent to one client of the channel's server. The server never blocks (the
//! dataplane's main lcore polls it), so a frame the socket does not take now — the client is
//! busy and its socket buffer is full: EAGAIN, or ENOBUFS — waits here for the next poll,
//! in order, instead of being lost with the client (before this, a send that would block
//! dropped the client, and with it whatever was queued for it).
//!
//! - Replies are always kept. They are bounded by the client itself: the server reads no
//!   further request from a client while a dump is being sent to it or more than
//!   [`PAUSE_READING`] bytes wait ([`Outbox::reading_paused`]).
//! - A dump ([`DumpPages`]) is encoded a page at a time when everything before it has been
//!   sent, so a large dump holds its snapshot, not its frames.
//! - Events are kept as frames up to [`EVENT_BOUND`] bytes waiting. Past it, until the
//!   client has read everything queued: a punted IKE packet is dropped and counted (the
//!   peer retransmits it), while Acquire and lifetime events are held, one per crypto-map
//!   entry and one per SA and kind (their number is bounded by the SPD and the SAD), and
//!   sent when the client reads again. One log line says when the bound is exceeded, one
//!   when the client caught up, with what was dropped and held.

use std::collections::{BTreeMap, VecDeque};
use std::io;

use super::paging::DumpPages;
use super::{encode, Connection, Error, Message, HEADER_LEN, MAX_FRAME};
use crate::esp::Direction;

/// Bytes of events waiting (beyond what the socket holds) past which punted IKE packets are
/// dropped and Acquire/lifetime events are held until the client catches up.
pub const EVENT_BOUND: usize = 4 << 20;
/// Bytes waiting past which no further request is read from the client.
pub const PAUSE_READING: usize = 1 << 20;
/// Dump pages encoded and sent per flush: the rest go at the next poll, so that a dump of
/// many SAs does not hold up the main lcore's other work for long.
pub const PAGES_PER_FLUSH: usize = 16;

/// What happened to one client's events and replies, since it connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Sends that would have blocked (the frame waited here for a later poll).
    pub deferred: u64,
    /// Times the event bound was exceeded.
    pub overflows: u64,
    /// Punted IKE packets dropped past the bound.
    pub dropped_punts: u64,
    /// Acquire and lifetime events held past the bound (and sent later).
    pub held_events: u64,
    /// Frames larger than the socket takes (EMSGSIZE): a reply is replaced by an `Error`, an
    /// event is dropped.
    pub oversize: u64,
}

struct Queued {
    frame: Vec<u8>,
    /// 0 for an event.
    request_id: u32,
}

/// Acquire and lifetime events held while the client is behind.
#[derive(Default)]
struct Held {
    /// The latest Acquire of each crypto-map entry (SPD SA id): control needs one.
    acquires: BTreeMap<u32, Message>,
    /// Lifetime events by (SPI, inbound, hard): a soft expiry sorts before the hard one.
    expires: BTreeMap<(u32, bool, bool), Message>,
}

/// One client's waiting frames, dump and held events.
#[derive(Default)]
pub struct Outbox {
    frames: VecDeque<Queued>,
    queued_bytes: usize,
    dump: Option<DumpPages>,
    held: Held,
    /// The event bound was exceeded and the client has not caught up yet.
    overflow: bool,
    /// Punted IKE packets dropped in this overflow.
    dropped_now: u64,
    stats: OutboxStats,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queues the reply to request `request_id`. A reply too large for a frame becomes an
    /// `Error` (dumps, the large replies, come in pages through [`Outbox::dump`]).
    pub fn reply(&mut self, request_id: u32, msg: &Message) {
        let mut frame = encode(request_id, msg);
        if frame.len() > MAX_FRAME + HEADER_LEN {
            log::warn!(
                "%DATAPLANE-4-CHANNEL: reply of kind {} too large for a frame ({} bytes)",
                msg.kind(),
                frame.len()
            );
            frame = encode(request_id, &too_large());
        }
        self.push(frame, request_id);
    }

    /// Sends `pages` after what is queued; no request is read meanwhile.
    pub fn dump(&mut self, pages: DumpPages) {
        debug_assert!(self.dump.is_none(), "one dump at a time: reading is paused");
        self.dump = Some(pages);
    }

    /// Queues an event (request id 0), or past [`EVENT_BOUND`] drops or holds it.
    pub fn event(&mut self, msg: Message) {
        if !self.overflow && self.queued_bytes < EVENT_BOUND {
            self.push(encode(0, &msg), 0);
            return;
        }
        if !self.overflow {
            self.overflow = true;
            self.stats.overflows += 1;
            log::warn!(
                "%DATAPLANE-4-CHANNEL: control client not reading: {} bytes wait for it; until \
                 it catches up, punted IKE packets for it are dropped, Acquire and lifetime \
                 events held",
                self.queued_bytes
            );
        }
        match msg {
            Message::PuntedIke { .. } => {
                self.dropped_now += 1;
                self.stats.dropped_punts += 1;
            }
            Message::Acquire { sa_id, .. } => {
                self.held.acquires.insert(sa_id, msg);
            }
            Message::SoftExpire { spi, direction, .. } => {
                self.held
                    .expires
                    .insert((spi, direction == Direction::Inbound, false), msg);
            }
            Message::HardExpire { spi, direction, .. } => {
                self.held
                    .expires
                    .insert((spi, direction == Direction::Inbound, true), msg);
            }
            // no other event exists; one that did would be kept, not lost
            other => self.push(encode(0, &other), 0),
        }
    }

    /// Sends what the socket takes: queued frames in order, then held events once the
    /// queue is empty, then up to [`PAGES_PER_FLUSH`] pages of the dump in progress.
    /// Returns the number of frames sent; an error only when the connection is broken.
    pub fn flush(&mut self, conn: &Connection) -> Result<usize, Error> {
        let mut sent = 0;
        let mut pages = 0;
        loop {
            if self.frames.is_empty() && self.overflow {
                self.caught_up();
            }
            if self.frames.is_empty() {
                let Some(dump) = self.dump.as_mut() else {
                    return Ok(sent);
                };
                if pages == PAGES_PER_FLUSH {
                    return Ok(sent);
                }
                let id = dump.request_id();
                let frame = dump.next_frame();
                if dump.finished() {
                    self.dump = None;
                }
                match frame {
                    Some(f) => {
                        pages += 1;
                        self.push(f, id);
                    }
                    None => continue,
                }
            }
            let Some(q) = self.frames.front() else {
                continue;
            };
            match conn.send_frame(&q.frame) {
                Ok(()) => {
                    self.pop();
                    sent += 1;
                }
                Err(e) if would_block(&e) => {
                    self.stats.deferred += 1;
                    return Ok(sent);
                }
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    // larger than the socket's buffer can ever hold: it cannot go
                    self.stats.oversize += 1;
                    let q = self.pop();
                    log::warn!(
                        "%DATAPLANE-4-CHANNEL: a frame of {} bytes is larger than the channel \
                         socket takes; {}",
                        q.frame.len(),
                        if q.request_id == 0 {
                            "event dropped"
                        } else {
                            "the client is told"
                        }
                    );
                    if q.request_id != 0 {
                        let f = encode(q.request_id, &too_large());
                        self.queued_bytes += f.len();
                        self.frames.push_front(Queued {
                            frame: f,
                            request_id: q.request_id,
                        });
                    }
                }
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// True while a dump is being sent or much is waiting: no further request should be
    /// read from this client (its replies would overtake the dump's pages, or pile up).
    pub fn reading_paused(&self) -> bool {
        self.dump.is_some() || self.queued_bytes >= PAUSE_READING
    }

    /// True when something waits for the socket to take it.
    pub fn wants_write(&self) -> bool {
        !self.frames.is_empty() || self.dump.is_some() || self.overflow
    }

    /// Bytes of frames waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn stats(&self) -> OutboxStats {
        self.stats
    }

    fn push(&mut self, frame: Vec<u8>, request_id: u32) {
        self.queued_bytes += frame.len();
        self.frames.push_back(Queued { frame, request_id });
    }

    fn pop(&mut self) -> Queued {
        let q = self.frames.pop_front().expect("a frame is queued");
        self.queued_bytes -= q.frame.len();
        q
    }

    /// Everything queued went out: the held events follow, and events are queued again.
    fn caught_up(&mut self) {
        let held = std::mem::take(&mut self.held);
        let n = held.acquires.len() + held.expires.len();
        self.stats.held_events += n as u64;
        for m in held
            .expires
            .into_values()
            .chain(held.acquires.into_values())
        {
            self.push(encode(0, &m), 0);
        }
        log::warn!(
            "%DATAPLANE-4-CHANNEL: control client caught up: {} punted IKE packets for it were \
             dropped, {n} Acquire and lifetime events held for it are sent now",
            self.dropped_now
        );
        self.dropped_now = 0;
        self.overflow = false;
    }
}

fn too_large() -> Message {
    Message::Error {
        reason: "reply too large for one channel frame".into(),
    }
}
