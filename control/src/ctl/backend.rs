//! The seam between the ctl code and the daemon that owns the live state. The daemon
//! implements [`CtlBackend`]; the ctl server, the command dispatcher and the metrics server
//! call it and see nothing but the plain views of [`super::view`], so that neither side
//! depends on the other's internals.
//!
//! Every method returns `Err(reason)` when the data cannot be had (the dataplane is not
//! connected, a trustpoint does not exist...): the operator sees `% reason` and the command
//! exits non-zero. Show methods return everything; filters (`peer`, `map`) are applied by
//! the caller.
//!
//! The daemon is single-threaded and event-driven: these calls are made from
//! [`super::CtlServer::poll`] and [`super::MetricsServer::poll`] on its own thread, so they
//! must not block for long (answer from the latest dataplane counter dump rather than a
//! synchronous round trip, for instance).

use crate::ctl::command::SaSelector;
use crate::ctl::view::{
    CertificateView, CrlView, CryptoMapView, DhKeyPairsView, EngineConnectionView, EngineView,
    IpsecSaView, IsakmpPolicyView, IsakmpSaView, LcoreStatsView, TransformSetView, TrustpointView,
};

/// What the daemon provides to `ipsec-ctl` and to the metrics endpoint.
pub trait CtlBackend {
    /// The `hostname` of the configuration: the interactive prompt is `hostname#`.
    fn hostname(&mut self) -> String;

    /// `show crypto isakmp sa [detail]`: every phase 1 SA, including those being negotiated.
    fn isakmp_sas(&mut self) -> Result<Vec<IsakmpSaView>, String>;
    /// `show crypto isakmp policy`: the policies in priority order, the default suite last.
    fn isakmp_policies(&mut self) -> Result<Vec<IsakmpPolicyView>, String>;
    /// `show crypto ipsec sa`: every flow with its SAs and counters.
    fn ipsec_sas(&mut self) -> Result<Vec<IpsecSaView>, String>;
    /// `show crypto ipsec transform-set`.
    fn transform_sets(&mut self) -> Result<Vec<TransformSetView>, String>;
    /// `show crypto map`: every entry, by map name then sequence number.
    fn crypto_maps(&mut self) -> Result<Vec<CryptoMapView>, String>;
    /// `show crypto engine connections active`: IKE SAs and ESP SAs, by id.
    fn engine_connections(&mut self) -> Result<Vec<EngineConnectionView>, String>;
    /// `show crypto engine brief` / `configuration`.
    fn engine(&mut self) -> Result<EngineView, String>;
    /// `show crypto engine accelerator statistics` and the per-lcore metrics.
    fn lcore_stats(&mut self) -> Result<Vec<LcoreStatsView>, String>;
    /// The Diffie-Hellman key pairs made ahead of need, per group: the end of `show crypto
    /// engine accelerator statistics` and the `ipsec_dh_keypairs_*` metrics.
    fn dh_key_pairs(&mut self) -> Result<Vec<DhKeyPairsView>, String>;
    /// `show crypto pki certificates`.
    fn certificates(&mut self) -> Result<Vec<CertificateView>, String>;
    /// `show crypto pki trustpoints`.
    fn trustpoints(&mut self) -> Result<Vec<TrustpointView>, String>;
    /// `show crypto pki crls`.
    fn crls(&mut self) -> Result<Vec<CrlView>, String>;

    /// `clear crypto sa [peer A | map NAME | spi N]`: delete the IPsec SAs (sending DELETE
    /// to the peers). Ok carries a message to print, usually empty as in IOS.
    fn clear_sa(&mut self, which: &SaSelector) -> Result<String, String>;
    /// `clear crypto isakmp [CONN-ID]`: delete one or every phase 1 SA (sending DELETE).
    fn clear_isakmp(&mut self, conn_id: Option<u32>) -> Result<String, String>;
    /// `crypto pki crl request TRUSTPOINT`: fetch that trustpoint's CRL now.
    fn crl_request(&mut self, trustpoint: &str) -> Result<String, String>;
    /// `reload`: re-read the configuration and apply the difference, keeping the SAs of
    /// unchanged crypto map entries.
    fn reload(&mut self) -> Result<String, String>;
}
