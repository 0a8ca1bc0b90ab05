//! The Security Policy Database: the crypto-map ACLs of the outside interfaces, compiled into
//! an immutable list that answers "what happens to this packet": protect it with an SA,
//! let it pass in clear, or discard it.
//!
//! Order is IOS's: crypto-map entries by sequence number, then ACL entries in order; the
//! first match wins. A `deny` entry in a crypto ACL means "not protected by this map entry":
//! the packet goes on to the next entries and, if none protects it, passes in clear (Bypass).
//!
//! The SPD is built once and never changed; a new configuration builds a new one that the
//! runtime swaps in between bursts (DESIGN.md rule 5).
//!
//! Lookup is linear over the rules, with the rules grouped by address family so that IPv4
//! packets never look at IPv6 rules. A crypto map has tens of entries on a branch router and
//! up to thousands on a headend; the headend case is a known limit of this structure (issue 5
//! measures it), to be replaced by a decision tree when it shows.

use std::net::IpAddr;

use crate::esp::Selector;

/// What the SPD says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpdAction {
    /// Protect with the outbound SA of this crypto-map entry (dense SA id).
    Protect(u32),
    /// Forward in clear.
    Bypass,
    /// Drop.
    Discard,
}

/// One compiled ACL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpdRule {
    /// Written from the outbound point of view: source is our side.
    pub selector: Selector,
    /// `Some(sa_id)` for a permit entry, `None` for a deny entry.
    pub protect: Option<u32>,
    /// The crypto-map entry this rule belongs to: a deny ends the search in its own entry.
    pub entry: u32,
}

/// The compiled policy.
#[derive(Clone, Debug, Default)]
pub struct Spd {
    v4: Vec<SpdRule>,
    v6: Vec<SpdRule>,
}

impl Spd {
    /// Builds the SPD from rules in match order.
    pub fn new(rules: impl IntoIterator<Item = SpdRule>) -> Spd {
        let mut spd = Spd::default();
        for r in rules {
            match r.selector.source.addr {
                IpAddr::V4(_) => spd.v4.push(r),
                IpAddr::V6(_) => spd.v6.push(r),
            }
        }
        spd
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True when there are no rules (everything bypasses).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rules(&self, a: IpAddr) -> &[SpdRule] {
        match a {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        }
    }

    /// The action for a plaintext packet leaving through the protected interface.
    pub fn outbound(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        let mut denied_entry = None;
        for r in self.rules(src) {
            if denied_entry == Some(r.entry) || !r.selector.matches(src, dst, proto, sport, dport) {
                continue;
            }
            match r.protect {
                Some(sa) => return SpdAction::Protect(sa),
                // A deny ends the search in its own ACL only; IOS then tries the next map
                // entry, whose rules follow in the list.
                None => denied_entry = Some(r.entry),
            }
        }
        SpdAction::Bypass
    }

    /// The action for a plaintext packet arriving on the protected interface: traffic that a
    /// map entry protects must arrive as ESP, so the mirror image of a permit entry is
    /// discarded; everything else passes.
    pub fn inbound_plaintext(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        for r in self.rules(src) {
            if r.protect.is_some() && r.selector.mirror().matches(src, dst, proto, sport, dport) {
                return SpdAction::Discard;
            }
        }
        SpdAction::Bypass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::Prefix;

    fn sel(src: &str, dst: &str, proto: u8) -> Selector {
        let p = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix {
                addr: a.parse().unwrap(),
                len: l.parse().unwrap(),
            }
        };
        Selector {
            source: p(src),
            destination: p(dst),
            protocol: proto,
            source_ports: (0, 65535),
            destination_ports: (0, 65535),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_match_in_order_and_deny_falls_through() {
        let spd = Spd::new([
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.5/32", 6),
                protect: None,
                entry: 0,
            },
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.0/16", 0),
                protect: Some(1),
                entry: 1,
            },
            SpdRule {
                selector: sel("10.1.0.0/16", "10.0.0.0/8", 0),
                protect: Some(2),
                entry: 2,
            },
            SpdRule {
                selector: sel("2001:db8:1::/48", "2001:db8:2::/48", 0),
                protect: Some(3),
                entry: 3,
            },
        ]);
        assert_eq!(
            spd.outbound(ip("10.1.1.1"), ip("10.2.9.9"), 17, 1, 2),
            SpdAction::Protect(1)
        );
        assert_eq!(
            spd.outbound(ip("10.1.1.1"), ip("10.3.9.9"), 17, 1, 2),
            SpdAction::Protect(2)
        );
        // denied in the first entry, protected by the next one that matches
        assert_eq!(
            spd.outbound(ip("10.1.1.1"), ip("10.2.0.5"), 6, 1, 2),
            SpdAction::Protect(1)
        );
        assert_eq!(
            spd.outbound(ip("10.9.1.1"), ip("10.2.0.5"), 6, 1, 2),
            SpdAction::Bypass
        );
        // a deny stops later permits of the same entry (rule 2 is entry 0 too)
        let same = Spd::new([
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.5/32", 0),
                protect: None,
                entry: 0,
            },
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.0/16", 0),
                protect: Some(1),
                entry: 0,
            },
        ]);
        assert_eq!(
            same.outbound(ip("10.1.1.1"), ip("10.2.0.5"), 6, 1, 2),
            SpdAction::Bypass
        );
        assert_eq!(
            same.outbound(ip("10.1.1.1"), ip("10.2.0.6"), 6, 1, 2),
            SpdAction::Protect(1)
        );
        assert_eq!(
            spd.outbound(ip("2001:db8:1::1"), ip("2001:db8:2::1"), 58, 0, 0),
            SpdAction::Protect(3)
        );
        assert_eq!(
            spd.inbound_plaintext(ip("10.2.9.9"), ip("10.1.1.1"), 17, 2, 1),
            SpdAction::Discard
        );
        assert_eq!(
            spd.inbound_plaintext(ip("192.168.9.9"), ip("10.1.1.1"), 17, 2, 1),
            SpdAction::Bypass
        );
    }
}
