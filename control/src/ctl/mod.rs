//! The operator's view of the gateway (issue 4): the ctl socket that `ipsec-ctl` talks to,
//! the IOS command language it speaks, the show commands' text in IOS's layout and as
//! JSON, and Prometheus metrics.
//!
//! The daemon owns every piece of live state; this module never reaches into it. The daemon
//! implements [`CtlBackend`] (views and actions) and, in its event loop, calls
//! [`CtlServer::poll`] and [`MetricsServer::poll`] with it. Debug traces go through the
//! [`Monitor`] the server hands out.
//!
//! - [`view`]: the plain data the show commands print (and the `--json` schema);
//! - [`show`]: the IOS-layout renderers, one module per command family;
//! - [`command`]: the command tree, IOS abbreviations and errors, `?` help, completion;
//! - [`execute`]: running one command line against a backend;
//! - [`backend`]: the [`CtlBackend`] trait;
//! - [`protocol`]: the socket's framing and messages;
//! - [`server`]: the non-blocking socket server, credentials, and the monitor;
//! - [`metrics`]: the Prometheus text and its HTTP endpoint.

pub mod backend;
pub mod command;
pub mod execute;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod show;
pub mod view;

#[cfg(test)]
pub(crate) mod testing;

pub use backend::CtlBackend;
pub use command::{Command, DebugFacility, ParseError, SaSelector};
pub use metrics::MetricsServer;
pub use server::{CtlServer, CtlServerOptions, Monitor};
