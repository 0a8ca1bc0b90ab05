//! The SA ids of crypto map entries: the number under which the SPD names an entry's
//! outbound SA, and under which the dataplane keeps it.
//!
//! A configuration numbers its entries densely in file order (what `ipsec-dataplane` does
//! when it loads the file at start). That numbering is only a starting point: an entry
//! that already has SAs in the dataplane must keep its number for as long as they live,
//! whatever was added or removed in front of it since. So after a `reload`, or when
//! control restarts next to a dataplane that kept forwarding, the entries that have a
//! number already keep it, and the others get their file number if it is free or the
//! lowest free one otherwise. Control then installs the whole SPD with these numbers.

use std::collections::{BTreeMap, BTreeSet};

/// `crypto map NAME SEQ`.
pub type EntryKey = (String, u32);

/// Numbers `entries` (each with its number in file order): an entry in `keep` gets that
/// number; the others their own number if no kept entry and nothing in `taken` has it,
/// else the lowest number that is free. Returns file number -> final number for every
/// entry. `keep` must not give two entries one number, nor a number in `taken`.
pub fn assign(
    entries: &[(EntryKey, u32)],
    keep: &BTreeMap<EntryKey, u32>,
    taken: &BTreeSet<u32>,
) -> BTreeMap<u32, u32> {
    let mut used: BTreeSet<u32> = taken.clone();
    let mut out = BTreeMap::new();
    let mut rest = Vec::new();
    for (key, file_id) in entries {
        match keep.get(key) {
            Some(&id) => {
                used.insert(id);
                out.insert(*file_id, id);
            }
            None => rest.push(*file_id),
        }
    }
    let mut moved = Vec::new();
    for file_id in rest {
        if used.insert(file_id) {
            out.insert(file_id, file_id);
        } else {
            moved.push(file_id);
        }
    }
    let mut candidate = 0u32;
    for file_id in moved {
        while used.contains(&candidate) {
            candidate += 1;
        }
        used.insert(candidate);
        out.insert(file_id, candidate);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &str, s: u32) -> EntryKey {
        (m.to_string(), s)
    }

    #[test]
    fn without_history_the_file_numbers_stand() {
        let e = vec![(key("vpn", 10), 0), (key("vpn", 20), 1), (key("b", 5), 2)];
        let ids = assign(&e, &BTreeMap::new(), &BTreeSet::new());
        assert_eq!(ids, BTreeMap::from([(0, 0), (1, 1), (2, 2)]));
    }

    #[test]
    fn kept_entries_keep_their_number_when_one_is_added_in_front() {
        // before: vpn 10 = 0, vpn 20 = 1; now vpn 5 is added in front (file numbers shift)
        let e = vec![(key("vpn", 5), 0), (key("vpn", 10), 1), (key("vpn", 20), 2)];
        let keep = BTreeMap::from([(key("vpn", 10), 0), (key("vpn", 20), 1)]);
        let ids = assign(&e, &keep, &BTreeSet::new());
        assert_eq!(ids[&1], 0);
        assert_eq!(ids[&2], 1);
        // the new entry's file number 0 is taken by vpn 10: it gets the lowest free one
        assert_eq!(ids[&0], 2);
    }

    #[test]
    fn numbers_in_use_elsewhere_are_never_given() {
        // a dynamic-map SA holds 1; vpn 30 is new with file number 1
        let e = vec![(key("vpn", 10), 0), (key("vpn", 30), 1)];
        let keep = BTreeMap::from([(key("vpn", 10), 0)]);
        let ids = assign(&e, &keep, &BTreeSet::from([1, 2]));
        assert_eq!(ids[&0], 0);
        assert_eq!(ids[&1], 3);
    }

    #[test]
    fn a_removed_entry_frees_its_number() {
        // before: a = 0, b = 1, c = 2; b removed, d added: d may take 1
        let e = vec![(key("a", 1), 0), (key("c", 1), 1), (key("d", 1), 2)];
        let keep = BTreeMap::from([(key("a", 1), 0), (key("c", 1), 2)]);
        let ids = assign(&e, &keep, &BTreeSet::new());
        assert_eq!(ids, BTreeMap::from([(0, 0), (1, 2), (2, 1)]));
        let finals: BTreeSet<u32> = ids.values().copied().collect();
        assert_eq!(finals.len(), 3, "numbers are distinct");
    }
}
