//! The conn-id of the exchange being processed, for the log lines of the exchanges.
//!
//! The exchange code logs as IOS's `debug crypto isakmp` does, `ISAKMP:(0): ...`, but it
//! does not know the conn-id the daemon gave the ISAKMP SA (an exchange is a pure state
//! machine). The daemon runs each step inside [`scope`], and the process's logger writes
//! the conn-id in place of the 0 ([`with_conn_id`]), so that a trace reads
//! `ISAKMP:(1004): beginning Main Mode exchange` as on a router.

use std::cell::Cell;

thread_local! {
    static CONN_ID: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` with `conn_id` as the current conn-id of this thread.
pub fn scope<T>(conn_id: u32, f: impl FnOnce() -> T) -> T {
    let old = CONN_ID.with(|c| c.replace(conn_id));
    let t = f();
    CONN_ID.with(|c| c.set(old));
    t
}

/// The current conn-id of this thread (0 outside any exchange).
pub fn current() -> u32 {
    CONN_ID.with(|c| c.get())
}

/// `line` with the current conn-id in IOS's prefixes `ISAKMP:(0)` and `ISAKMP (0:0)`.
pub fn with_conn_id(line: &str) -> std::borrow::Cow<'_, str> {
    let id = current();
    if id == 0 || !line.contains("ISAKMP") {
        return line.into();
    }
    line.replace("ISAKMP:(0)", &format!("ISAKMP:({id})"))
        .replace("ISAKMP (0:0)", &format!("ISAKMP (0:{id})"))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_names_the_conn_id_and_ends_with_it() {
        let l = "ISAKMP:(0): beginning Main Mode exchange";
        assert_eq!(with_conn_id(l), l);
        scope(1004, || {
            assert_eq!(
                with_conn_id(l),
                "ISAKMP:(1004): beginning Main Mode exchange"
            );
            assert_eq!(
                with_conn_id("ISAKMP (0:0): received packet from 10.1.1.1"),
                "ISAKMP (0:1004): received packet from 10.1.1.1"
            );
            scope(7, || assert_eq!(current(), 7));
            assert_eq!(current(), 1004);
        });
        assert_eq!(current(), 0);
    }
}
