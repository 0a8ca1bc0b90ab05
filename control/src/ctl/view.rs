//! What the show commands print, as plain data: the daemon fills these from its live state
//! (IKE SAs, the dataplane's counter dumps, the configuration, the PKI) and the ctl code never
//! reaches past them. They are also the `--json` schema: `ipsec-ctl --json show ...` prints
//! the serialised views of that command, and the field names below are a stable interface
//! (fields may be added; none is renamed or removed without a new schema version).
//!
//! JSON shapes per command (all keys snake_case, addresses as strings, times as Unix
//! seconds, counters as unsigned integers):
//!
//! | command | JSON |
//! |---|---|
//! | `show crypto isakmp sa [detail]` | `[IsakmpSaView]` |
//! | `show crypto isakmp policy` | `[IsakmpPolicyView]` |
//! | `show crypto ipsec sa [...]` | `[IpsecSaView]` (after the peer/map filter) |
//! | `show crypto ipsec transform-set` | `[TransformSetView]` |
//! | `show crypto map` | `[CryptoMapView]` |
//! | `show crypto engine connections active` | `[EngineConnectionView]` |
//! | `show crypto engine brief` / `configuration` | `EngineView` |
//! | `show crypto engine accelerator statistics` | `[LcoreStatsView]` (the text adds [`DhKeyPairsView`]) |
//! | `show crypto pki certificates` | `[CertificateView]` |
//! | `show crypto pki trustpoints` | `[TrustpointView]` |
//! | `show crypto pki crls` | `[CrlView]` |
//!
//! Keys never appear here: no view has a field that could hold key material, and the
//! daemon's conversion code must keep it that way.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The version of the JSON schema these views define.
pub const SCHEMA_VERSION: u32 = 1;

/// One phase 1 (ISAKMP) SA: a row of `show crypto isakmp sa`, and with its detail fields a
/// row of `show crypto isakmp sa detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsakmpSaView {
    /// IOS's `dst`: the responder's address (ours when the peer initiated).
    pub dst: IpAddr,
    /// IOS's `src`: the initiator's address.
    pub src: IpAddr,
    /// True when this gateway initiated the exchange (then `src` is our address).
    pub initiator: bool,
    /// The state as IOS names it: `MM_NO_STATE`, `MM_SA_SETUP`, `MM_KEY_EXCH`,
    /// `MM_KEY_AUTH`, `QM_IDLE` (phase 1 complete), `MM_NO_STATE` again while deleting.
    pub state: String,
    /// The engine connection id of the IKE SA (`conn-id`, `C-id`): the same number names its
    /// row in `show crypto engine connections active` and `clear crypto isakmp CONN-ID`.
    pub conn_id: u32,
    /// `ACTIVE`, or `ACTIVE (deleted)` while a DELETE is being sent, as IOS prints it.
    pub status: String,
    /// Our UDP port (500, or 4500 after the NAT-T float).
    pub local_port: u16,
    /// The peer's UDP port.
    pub remote_port: u16,
    /// The peer's phase 1 identity once authenticated (an address, FQDN or DN).
    pub peer_identity: Option<String>,
    /// Phase 1 cipher in `crypto isakmp policy` words: `des`, `3des`, `aes`, `aes 192`,
    /// `aes 256`; None before the SA payload was agreed.
    pub encryption: Option<String>,
    /// `md5`, `sha`, `sha256`, `sha384`.
    pub hash: Option<String>,
    /// `rsa-sig` or `pre-share`.
    pub authentication: Option<String>,
    /// The Diffie-Hellman group number.
    pub dh_group: Option<u16>,
    /// Seconds before the SA's lifetime ends; None before it is established.
    pub lifetime_remaining: Option<u64>,
    /// IOS's capability letters: `D` (dead peer detection), `N` (NAT traversal), ...
    pub capabilities: Vec<String>,
}

impl IsakmpSaView {
    /// Our end of the SA.
    pub fn local(&self) -> IpAddr {
        if self.initiator {
            self.src
        } else {
            self.dst
        }
    }

    /// The peer's end of the SA.
    pub fn remote(&self) -> IpAddr {
        if self.initiator {
            self.dst
        } else {
            self.src
        }
    }
}

/// One `crypto isakmp policy` (or IOS's default suite): a block of `show crypto isakmp
/// policy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsakmpPolicyView {
    /// The priority; None for IOS's "Default protection suite".
    pub priority: Option<u32>,
    /// `des`, `3des`, `aes`, `aes 192`, `aes 256` (the `encryption` command's words).
    pub encryption: String,
    /// `md5`, `sha`, `sha256`, `sha384`.
    pub hash: String,
    /// `rsa-sig` or `pre-share`.
    pub authentication: String,
    /// The Diffie-Hellman group number.
    pub group: u16,
    /// The lifetime in seconds (no volume limit, as in IOS).
    pub lifetime_seconds: u32,
}

impl From<&crate::config::IsakmpPolicy> for IsakmpPolicyView {
    fn from(p: &crate::config::IsakmpPolicy) -> IsakmpPolicyView {
        IsakmpPolicyView {
            priority: (!p.is_default_suite()).then_some(p.priority),
            encryption: p.encryption.ios_keyword().to_string(),
            hash: p.hash.ios_keyword().to_string(),
            authentication: p.authentication.ios_keyword().to_string(),
            group: p.group.get(),
            lifetime_seconds: p.lifetime,
        }
    }
}

/// A proxy identity as IOS prints it: `(addr/mask/prot/port)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentView {
    pub addr: IpAddr,
    pub mask: IpAddr,
    /// IP protocol number, 0 for any.
    pub protocol: u8,
    /// Port, 0 for any.
    pub port: u16,
}

/// One IPsec flow (a pair of proxy identities with its SAs): a block of `show crypto ipsec
/// sa`. IOS counts packets per flow; the per-SA counts are in [`EspSaView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecSaView {
    /// The interface the crypto map is applied to (`interface:`).
    pub interface: String,
    /// `Crypto map tag:`.
    pub crypto_map: String,
    /// The crypto map entry's sequence number.
    pub crypto_map_seq: u32,
    /// `local addr`: the interface's address.
    pub local_addr: IpAddr,
    /// `local  ident (addr/mask/prot/port)`.
    pub local_ident: IdentView,
    /// `remote ident (addr/mask/prot/port)`.
    pub remote_ident: IdentView,
    /// `current_peer`.
    pub current_peer: IpAddr,
    /// The peer's IKE port (`current_peer A.B.C.D port 500`).
    pub peer_port: u16,
    /// The flags IOS prints after `PERMIT` (`origin_is_acl` for a static crypto map entry).
    pub flags: Vec<String>,
    /// `#pkts encaps`, `#pkts encrypt`, `#pkts digest` (outbound, all SAs of the flow).
    pub pkts_encaps: u64,
    pub pkts_encrypt: u64,
    pub pkts_digest: u64,
    /// `#pkts decaps`, `#pkts decrypt`, `#pkts verify` (inbound).
    pub pkts_decaps: u64,
    pub pkts_decrypt: u64,
    pub pkts_verify: u64,
    /// `#send errors`: outbound packets that could not be protected or sent.
    pub send_errors: u64,
    /// `#recv errors`: inbound packets that failed a check (replay, ICV, padding, policy).
    pub recv_errors: u64,
    /// `local crypto endpt.`
    pub local_crypto_endpt: IpAddr,
    /// `remote crypto endpt.`
    pub remote_crypto_endpt: IpAddr,
    /// `path mtu`.
    pub path_mtu: u32,
    /// `ip mtu` of the interface.
    pub ip_mtu: u32,
    /// `current outbound spi`; None when no outbound SA is installed (printed `0x0(0)`).
    pub current_outbound_spi: Option<u32>,
    /// `inbound esp sas:`.
    pub inbound_esp: Vec<EspSaView>,
    /// `outbound esp sas:`.
    pub outbound_esp: Vec<EspSaView>,
}

/// One ESP SA, in the `inbound esp sas:` / `outbound esp sas:` lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EspSaView {
    pub spi: u32,
    /// The transform set's transforms as IOS words: `esp-des esp-md5-hmac`,
    /// `esp-gcm 256`...
    pub transform: String,
    /// `Tunnel` or `Transport`.
    pub mode: String,
    /// ESP in UDP (RFC 3948), printed `{Tunnel UDP-Encaps, }`.
    pub udp_encapsulated: bool,
    /// The engine connection id (`conn id`), also the SA's row in `show crypto engine
    /// connections active`.
    pub conn_id: u32,
    /// The dataplane's SA id, printed `flow_id: SW:N`.
    pub flow_id: u32,
    pub crypto_map: String,
    /// `sa timing: remaining key lifetime (k/sec)`: kilobytes left...
    pub remaining_kilobytes: u64,
    /// ...and seconds left.
    pub remaining_seconds: u64,
    /// `IV size: N bytes`.
    pub iv_size: u32,
    /// `replay detection support: Y/N`.
    pub replay_detection: bool,
    /// `Status: ACTIVE` (or `STANDBY` while the new SA of a rekey is not yet in use).
    pub status: String,
    /// Packets this SA protected (outbound) or accepted (inbound); not printed by IOS, given
    /// for JSON and metrics.
    pub packets: u64,
    /// Plaintext bytes (what the kilobyte lifetime counts).
    pub bytes: u64,
    /// This SA's drops by reason (`replay`, `auth-failed`, ...; the dataplane's names).
    pub drops: BTreeMap<String, u64>,
}

/// One row of `show crypto engine connections active`: an IKE SA or one ESP SA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConnectionView {
    /// `ID`: the connection id (an IKE SA's conn-id or an ESP SA's conn id).
    pub id: u32,
    pub interface: String,
    pub ip_address: IpAddr,
    /// `set` (keys installed) or `alloc` (reserved during a negotiation).
    pub state: String,
    /// IOS's algorithm name, e.g. `HMAC_MD5+DES_56_CB`, `NONE` while `alloc`.
    pub algorithm: String,
    /// Packets encrypted with this connection.
    pub encrypt: u64,
    /// Packets decrypted with this connection.
    pub decrypt: u64,
}

/// One `crypto ipsec transform-set`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformSetView {
    pub name: String,
    /// The transforms in IOS words: `["esp-des", "esp-md5-hmac"]`, `["esp-gcm 256"]`.
    pub transforms: Vec<String>,
    /// `Tunnel` or `Transport`.
    pub mode: String,
}

/// One crypto map entry (`crypto map NAME SEQ ...`) of `show crypto map`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoMapView {
    pub name: String,
    pub seq: u32,
    /// `ipsec-isakmp`, `ipsec-manual`, or `ipsec-isakmp` with `dynamic` set.
    pub kind: String,
    /// The dynamic map this entry stands for (`crypto map NAME SEQ ipsec-isakmp dynamic DYN`).
    pub dynamic: Option<String>,
    /// `Peer = A.B.C.D` lines.
    pub peers: Vec<IpAddr>,
    /// The `match address` ACL's name (`Extended IP access list 130`).
    pub acl_name: Option<String>,
    /// The ACL's entries as `access-list 130 permit ip 1.1.1.0 0.0.0.255 192.168.4.0
    /// 0.0.0.255` lines.
    pub acl_entries: Vec<String>,
    /// `Current peer:` (the peer with SAs now), if any.
    pub current_peer: Option<IpAddr>,
    /// `Security association lifetime: K kilobytes/S seconds`.
    pub lifetime_kilobytes: u64,
    pub lifetime_seconds: u64,
    /// The PFS group (`PFS (Y/N): Y`, `DH group:  group14`), None for no PFS.
    pub pfs_group: Option<u16>,
    /// `Transform sets={ myset, }`.
    pub transform_sets: Vec<String>,
    /// The interfaces the map is applied to (`Interfaces using crypto map NAME:`).
    pub interfaces: Vec<String>,
}

/// The crypto engine (the dataplane): `show crypto engine brief` and `configuration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineView {
    /// `crypto engine name`, e.g. `ipsec-dataplane`.
    pub name: String,
    /// `crypto engine type`, e.g. `software (DPDK)`.
    pub engine_type: String,
    /// `installed` when the dataplane is connected, `not connected` otherwise.
    pub state: String,
    /// The version the dataplane reported in its Hello.
    pub version: Option<String>,
    /// The main lcore id.
    pub main_lcore: Option<u32>,
    /// The worker lcore ids.
    pub worker_lcores: Vec<u32>,
    /// The cipher library per transform (`esp-gcm 256` -> `intel-ipsec-mb`).
    pub backends: BTreeMap<String, String>,
    /// What the engine can do: transforms, `UDP-encaps`, `anti-replay`, `ESN`...
    pub capabilities: Vec<String>,
    /// Connections in use and their maximum (`size = 8, free = 6, used = 2`).
    pub connections_used: u64,
    pub connections_max: Option<u64>,
}

/// One worker lcore's counters: a block of `show crypto engine accelerator statistics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcoreStatsView {
    /// The EAL lcore id.
    pub lcore: u32,
    /// The worker index (SA shard).
    pub worker: u16,
    /// Frames received / sent.
    pub rx: u64,
    pub tx: u64,
    /// Packets encapsulated / decapsulated.
    pub encaps: u64,
    pub decaps: u64,
    /// Packets handed from / to other lcores (SAs owned elsewhere).
    pub handoff_in: u64,
    pub handoff_out: u64,
    /// Packets sent to the main lcore (ARP, ICMP, IKE).
    pub punted: u64,
    /// Non-empty bursts processed (average burst size is rx / bursts).
    pub bursts: u64,
    /// CPU cycles per packet over the last interval, when the dataplane measures it.
    pub cycles_per_packet: Option<u64>,
    /// The part of `cycles_per_packet` spent in the pipeline (policy, SA, ESP, crypto,
    /// routing), outside the ports' rx and tx bursts.
    #[serde(default)]
    pub pipeline_cycles_per_packet: Option<u64>,
    /// Times the worker slept with its queues empty (`[dataplane] rx_mode = "adaptive"`).
    #[serde(default)]
    pub idle_sleeps: u64,
    /// Drops by reason (the dataplane's reason names).
    pub drops: BTreeMap<String, u64>,
}

/// One Diffie-Hellman group of ipsec-control's precomputed key pairs: a block of `show crypto
/// engine accelerator statistics` and the `ipsec_dh_keypairs_*` metrics. Counts only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhKeyPairsView {
    /// The group number (`group 14`).
    pub group: u16,
    /// Key pairs kept ready (0: the group is not precomputed).
    pub target: u64,
    /// Key pairs ready now.
    pub ready: u64,
    /// Made ahead of need since the start.
    pub precomputed: u64,
    /// Handed to an exchange from the pool.
    pub taken: u64,
    /// Made during an exchange because none was ready.
    pub on_demand: u64,
}

/// The dataplane's counter dump of one worker, as is (the daemon gets these from
/// `DumpCounters`), with the cycles a packet cost on it while it had packets.
impl From<&dataplane::channel::LcoreCountersMsg> for LcoreStatsView {
    fn from(m: &dataplane::channel::LcoreCountersMsg) -> LcoreStatsView {
        LcoreStatsView {
            lcore: m.lcore,
            worker: m.worker,
            rx: m.rx,
            tx: m.tx,
            encaps: m.encaps,
            decaps: m.decaps,
            handoff_in: m.handoff_in,
            handoff_out: m.handoff_out,
            punted: m.punted,
            bursts: m.bursts,
            // what a worker spent per packet it took in, while it had packets
            cycles_per_packet: per_packet(m.busy_cycles, m),
            pipeline_cycles_per_packet: per_packet(m.pipeline_cycles, m),
            idle_sleeps: m.idle_sleeps,
            drops: m.drops.clone(),
        }
    }
}

/// `cycles` over the packets a worker took in (from its ports and from other workers); None
/// before any was counted.
fn per_packet(cycles: u64, m: &dataplane::channel::LcoreCountersMsg) -> Option<u64> {
    let packets = m.rx + m.handoff_in;
    (packets > 0 && cycles > 0).then(|| cycles / packets)
}

/// One certificate a trustpoint holds (a CA's or ours): a block of `show crypto pki
/// certificates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    /// `Certificate` (ours), `CA Certificate`, `RA Signature Certificate`...
    pub kind: String,
    /// `Available`, `Pending`, `Expired`, `Revoked`.
    pub status: String,
    /// The serial number in upper-case hex, without `0x`.
    pub serial: String,
    /// `General Purpose`, `Signature`, `Encryption`.
    pub usage: String,
    /// The issuer's RDNs as IOS prints them, one a line: `cn=WIN2003`, `dc=amit`...
    pub issuer: Vec<String>,
    /// The subject's RDNs.
    pub subject: Vec<String>,
    /// The subject's name as IOS prints it first (`Name: Branch1.amit.com`): the
    /// `hostname=` / DNS name; None for a CA.
    pub subject_name: Option<String>,
    /// CRL distribution point URLs.
    pub crl_distribution_points: Vec<String>,
    /// Validity start and end, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// `Associated Trustpoints:`.
    pub trustpoints: Vec<String>,
}

/// One `crypto pki trustpoint`: a block of `show crypto pki trustpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustpointView {
    pub name: String,
    /// The (root) CA certificate's subject RDNs.
    pub ca_subject: Vec<String>,
    /// Its serial number in upper-case hex.
    pub ca_serial: String,
    /// Whether our own certificate is configured (`Certificate configured.`).
    pub certificate_configured: bool,
    /// `crl`, `crl none`, `none`.
    pub revocation_check: String,
    /// Where CRLs come from: a URL, a file, or the certificates' distribution points.
    pub crl_source: Option<String>,
}

/// One CRL in the cache: a block of `show crypto pki crls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlView {
    /// The issuer's DN on one line (`OU = sjvpn, O = cisco, C = us`).
    pub issuer: String,
    /// thisUpdate / nextUpdate, Unix seconds.
    pub last_update: i64,
    pub next_update: Option<i64>,
    /// Where it was retrieved from, as IOS prints it (`LDAP: CN = CRL1, ...`,
    /// `HTTP: http://ca/vpn.crl`, `File: /etc/ipsec/vpn.crl`).
    pub retrieved_from: String,
    /// The revoked certificates.
    pub revoked: Vec<RevokedView>,
}

/// One entry of a CRL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedView {
    /// The serial number in upper-case hex.
    pub serial: String,
    /// Revocation date, Unix seconds.
    pub revoked_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::testing;

    /// The JSON keys are the schema: this pins those of the most used views.
    #[test]
    fn json_keys_are_stable() {
        let v = serde_json::to_value(&testing::router_isakmp_sas()[0]).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "authentication",
                "capabilities",
                "conn_id",
                "dh_group",
                "dst",
                "encryption",
                "hash",
                "initiator",
                "lifetime_remaining",
                "local_port",
                "peer_identity",
                "remote_port",
                "src",
                "state",
                "status"
            ]
        );
        let v = serde_json::to_value(&testing::router_ipsec_sas()[0]).unwrap();
        assert_eq!(v["current_peer"], "172.16.172.34");
        assert_eq!(v["local_ident"]["mask"], "255.255.255.0");
        assert_eq!(v["inbound_esp"][0]["spi"], 0xD740971Cu32);
        assert_eq!(v["inbound_esp"][0]["remaining_kilobytes"], 4_607_999);
        assert_eq!(v["outbound_esp"][0]["udp_encapsulated"], false);
    }

    #[test]
    fn lcore_counters_from_the_dataplane() {
        let msg = dataplane::channel::LcoreCountersMsg {
            lcore: 3,
            worker: 1,
            rx: 10,
            tx: 9,
            handoff_in: 1,
            handoff_out: 2,
            punted: 1,
            bursts: 2,
            encaps: 4,
            decaps: 5,
            drops: BTreeMap::from([("replay".to_string(), 1)]),
            busy_cycles: 0,
            pipeline_cycles: 0,
            idle_sleeps: 7,
        };
        let v = LcoreStatsView::from(&msg);
        assert_eq!((v.lcore, v.worker, v.rx, v.decaps), (3, 1, 10, 5));
        assert_eq!(v.drops["replay"], 1);
        assert_eq!(v.idle_sleeps, 7);
        assert_eq!(v.cycles_per_packet, None, "no cycles counted: not shown");
        // 11 packets in (10 from the ports, 1 handed over) in 2200 busy cycles, 1650 of them
        // in the pipeline
        let msg = dataplane::channel::LcoreCountersMsg {
            busy_cycles: 2200,
            pipeline_cycles: 1650,
            ..msg
        };
        let v = LcoreStatsView::from(&msg);
        assert_eq!(v.cycles_per_packet, Some(200));
        assert_eq!(v.pipeline_cycles_per_packet, Some(150));
    }
}
