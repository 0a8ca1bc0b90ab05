//! Dumps in pages (see the module documentation of [`super`]): [`DumpPages`] cuts the
//! dataplane's snapshot into frames of at most [`PAGE_BYTES`] of payload, one when asked
//! (a page is encoded only when the socket has room for it), and [`DumpReader`] puts the
//! pages back together on the client's side, checking that none is missing.

use std::iter::Peekable;
use std::vec::IntoIter;

use super::{
    encode, CountersMsg, Error, LcoreCountersMsg, Message, PageInfo, SaCountersMsg, PAGE_BYTES,
};

/// What a dump holds: the snapshot taken when the request was handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dump {
    /// The answer to `DumpSas`.
    Sas(Vec<SaCountersMsg>),
    /// The answer to `DumpCounters`.
    Counters(CountersMsg),
}

/// A dump on its way out: the snapshot's SAs not sent yet.
pub struct DumpPages {
    request_id: u32,
    /// Counters dumps carry the workers' counters on their first page; None for SA dumps.
    lcores: Option<Vec<LcoreCountersMsg>>,
    counters: bool,
    sas: Peekable<IntoIter<SaCountersMsg>>,
    total: u32,
    next_index: u32,
    finished: bool,
}

/// Bytes of a page's payload besides its SAs: the message tag, the page info, the two
/// vectors' lengths (bincode, fixed-width integers). Over-counted a little, never under.
const PAGE_OVERHEAD: usize = 64;

fn size_of(v: &impl serde::Serialize) -> usize {
    bincode::serialized_size(v).map_or(usize::MAX, |n| n as usize)
}

impl DumpPages {
    /// The pages answering request `request_id`.
    pub fn new(request_id: u32, dump: Dump) -> DumpPages {
        let (lcores, counters, sas) = match dump {
            Dump::Sas(sas) => (None, false, sas),
            Dump::Counters(c) => (Some(c.lcores), true, c.sas),
        };
        DumpPages {
            request_id,
            lcores,
            counters,
            total: sas.len() as u32,
            sas: sas.into_iter().peekable(),
            next_index: 0,
            finished: false,
        }
    }

    /// The request these pages answer.
    pub fn request_id(&self) -> u32 {
        self.request_id
    }

    /// True once the last page was handed out.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The next page's frame: as many SAs as fit in [`PAGE_BYTES`] with the rest of the page
    /// (at least one, so that a dump always ends), `last` set on the final one. None after
    /// the last page.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.next_message().map(|m| encode(self.request_id, &m))
    }

    /// The next page as a message (what [`DumpPages::next_frame`] encodes).
    pub fn next_message(&mut self) -> Option<Message> {
        if self.finished {
            return None;
        }
        let lcores = if self.next_index == 0 {
            self.lcores.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut bytes = PAGE_OVERHEAD + size_of(&lcores);
        let mut sas = Vec::new();
        while let Some(sa) = self.sas.peek() {
            let n = size_of(sa);
            if !sas.is_empty() && bytes.saturating_add(n) > PAGE_BYTES {
                break;
            }
            bytes = bytes.saturating_add(n);
            sas.extend(self.sas.next());
        }
        let last = self.sas.peek().is_none();
        let page = PageInfo {
            index: self.next_index,
            total: self.total,
            last,
        };
        self.next_index += 1;
        self.finished = last;
        Some(if self.counters {
            Message::CountersPage { page, lcores, sas }
        } else {
            Message::SasPage { page, sas }
        })
    }
}

/// Puts a dump's pages back together, refusing a dump whose pages are missing, repeated,
/// out of order, of the other kind of dump, or whose SAs do not add up to its count.
#[derive(Default)]
pub struct DumpReader {
    next_index: u32,
    total: Option<u32>,
    counters: Option<bool>,
    sas: Vec<SaCountersMsg>,
    lcores: Vec<LcoreCountersMsg>,
    done: bool,
}

impl DumpReader {
    pub fn new() -> DumpReader {
        DumpReader::default()
    }

    /// Takes the next reply to the dump request. Ok(true) when it was the last page: the
    /// dump is complete ([`DumpReader::finish`]). An `Error` reply is [`Error::Refused`].
    pub fn feed(&mut self, reply: Message) -> Result<bool, Error> {
        if self.done {
            return Err(Error::Dump("a page after the last one".into()));
        }
        let (page, lcores, sas, counters) = match reply {
            Message::SasPage { page, sas } => (page, Vec::new(), sas, false),
            Message::CountersPage { page, lcores, sas } => (page, lcores, sas, true),
            Message::Error { reason } => return Err(Error::Refused(reason)),
            other => {
                return Err(Error::Dump(format!(
                    "a message of kind {} instead of a page",
                    other.kind()
                )))
            }
        };
        if *self.counters.get_or_insert(counters) != counters {
            return Err(Error::Dump("pages of two kinds of dump".into()));
        }
        if page.index != self.next_index {
            return Err(Error::Dump(format!(
                "page {} where page {} was due",
                page.index, self.next_index
            )));
        }
        if *self.total.get_or_insert(page.total) != page.total {
            return Err(Error::Dump(format!(
                "page {} counts {} SAs, the first page {}",
                page.index,
                page.total,
                self.total.unwrap_or_default()
            )));
        }
        self.next_index += 1;
        self.sas.extend(sas);
        self.lcores.extend(lcores);
        if self.sas.len() > page.total as usize
            || (page.last && self.sas.len() != page.total as usize)
        {
            return Err(Error::Dump(format!(
                "{} SAs in pages 0-{} of a dump of {}",
                self.sas.len(),
                page.index,
                page.total
            )));
        }
        self.done = page.last;
        Ok(page.last)
    }

    /// The whole dump, once the last page was fed.
    pub fn finish(self) -> Result<Dump, Error> {
        if !self.done {
            return Err(Error::Dump(format!(
                "{} pages and no last one",
                self.next_index
            )));
        }
        Ok(if self.counters == Some(true) {
            Dump::Counters(CountersMsg {
                sas: self.sas,
                lcores: self.lcores,
            })
        } else {
            Dump::Sas(self.sas)
        })
    }
}
