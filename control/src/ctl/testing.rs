//! Test fixtures: the views of the reference documents' scenarios (the IOS 12.2 router
//! 1720-1 and the newer-IOS Branch1), which the golden tests render, and [`TestBackend`],
//! a [`CtlBackend`] holding them, which the server and metrics tests serve.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ctl::backend::CtlBackend;
use crate::ctl::command::SaSelector;
use crate::ctl::view::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ident(addr: &str, mask: &str) -> IdentView {
    IdentView {
        addr: ip(addr),
        mask: ip(mask),
        protocol: 0,
        port: 0,
    }
}

/// 1720-1's `sh cr isa sa`: the PIX initiated, so dst is the router.
pub fn router_isakmp_sas() -> Vec<IsakmpSaView> {
    vec![IsakmpSaView {
        dst: ip("172.16.172.39"),
        src: ip("172.16.172.34"),
        initiator: false,
        state: "QM_IDLE".into(),
        conn_id: 110,
        status: "ACTIVE".into(),
        local_port: 500,
        remote_port: 500,
        peer_identity: Some("pix520-1.vpn.com".into()),
        encryption: Some("des".into()),
        hash: Some("md5".into()),
        authentication: Some("rsa-sig".into()),
        dh_group: Some(1),
        lifetime_remaining: Some(86_000),
        capabilities: vec![],
    }]
}

/// Branch1's `show crypto isakmp sa`: Branch1 (10.1.1.1) initiated.
pub fn branch_isakmp_sas() -> Vec<IsakmpSaView> {
    vec![IsakmpSaView {
        dst: ip("10.2.2.1"),
        src: ip("10.1.1.1"),
        initiator: true,
        state: "QM_IDLE".into(),
        conn_id: 1001,
        status: "ACTIVE".into(),
        local_port: 500,
        remote_port: 500,
        peer_identity: Some("Branch2.amit.com".into()),
        encryption: Some("3des".into()),
        hash: Some("md5".into()),
        authentication: Some("rsa-sig".into()),
        dh_group: Some(1),
        lifetime_remaining: Some(86_398),
        capabilities: vec![],
    }]
}

/// 1720-1's `sh cr isa policy`: priority 10 and the default suite.
pub fn router_isakmp_policies() -> Vec<IsakmpPolicyView> {
    vec![
        IsakmpPolicyView {
            priority: Some(10),
            encryption: "des".into(),
            hash: "md5".into(),
            authentication: "rsa-sig".into(),
            group: 1,
            lifetime_seconds: 86_400,
        },
        IsakmpPolicyView {
            priority: None,
            encryption: "des".into(),
            hash: "sha".into(),
            authentication: "rsa-sig".into(),
            group: 1,
            lifetime_seconds: 86_400,
        },
    ]
}

#[allow(clippy::too_many_arguments)]
fn esp(
    spi: u32,
    transform: &str,
    conn_id: u32,
    flow_id: u32,
    map: &str,
    kb: u64,
    secs: u64,
    packets: u64,
) -> EspSaView {
    EspSaView {
        spi,
        transform: transform.into(),
        mode: "Tunnel".into(),
        udp_encapsulated: false,
        conn_id,
        flow_id,
        crypto_map: map.into(),
        remaining_kilobytes: kb,
        remaining_seconds: secs,
        iv_size: 8,
        replay_detection: true,
        status: "ACTIVE".into(),
        packets,
        bytes: packets * 84,
        drops: BTreeMap::new(),
    }
}

/// 1720-1's `sh cr ipsec sa`: one flow, 3 packets each way.
pub fn router_ipsec_sas() -> Vec<IpsecSaView> {
    let mut inbound = esp(
        0xD740971C,
        "esp-des esp-md5-hmac",
        200,
        1,
        "vpn",
        4_607_999,
        3150,
        3,
    );
    inbound.drops.insert("replay".into(), 1);
    vec![IpsecSaView {
        interface: "FastEthernet0".into(),
        crypto_map: "vpn".into(),
        crypto_map_seq: 10,
        local_addr: ip("172.16.172.39"),
        local_ident: ident("1.1.1.0", "255.255.255.0"),
        remote_ident: ident("192.168.4.0", "255.255.255.0"),
        current_peer: ip("172.16.172.34"),
        peer_port: 500,
        flags: vec!["origin_is_acl".into()],
        pkts_encaps: 3,
        pkts_encrypt: 3,
        pkts_digest: 3,
        pkts_decaps: 3,
        pkts_decrypt: 3,
        pkts_verify: 3,
        send_errors: 0,
        recv_errors: 0,
        local_crypto_endpt: ip("172.16.172.39"),
        remote_crypto_endpt: ip("172.16.172.34"),
        path_mtu: 1500,
        ip_mtu: 1500,
        current_outbound_spi: Some(0x3803A0C1),
        inbound_esp: vec![inbound],
        outbound_esp: vec![esp(
            0x3803A0C1,
            "esp-des esp-md5-hmac",
            201,
            2,
            "vpn",
            4_607_999,
            3141,
            3,
        )],
    }]
}

/// Branch1's `show crypto ipsec sa`: 4 packets each way, one send error.
pub fn branch_ipsec_sas() -> Vec<IpsecSaView> {
    let t = "esp-3des esp-md5-hmac";
    vec![IpsecSaView {
        interface: "Serial0/0".into(),
        crypto_map: "CRYPTO".into(),
        crypto_map_seq: 10,
        local_addr: ip("10.1.1.1"),
        local_ident: ident("192.168.11.0", "255.255.255.0"),
        remote_ident: ident("192.168.22.0", "255.255.255.0"),
        current_peer: ip("10.2.2.1"),
        peer_port: 500,
        flags: vec!["origin_is_acl".into()],
        pkts_encaps: 4,
        pkts_encrypt: 4,
        pkts_digest: 4,
        pkts_decaps: 4,
        pkts_decrypt: 4,
        pkts_verify: 4,
        send_errors: 1,
        recv_errors: 0,
        local_crypto_endpt: ip("10.1.1.1"),
        remote_crypto_endpt: ip("10.2.2.1"),
        path_mtu: 1500,
        ip_mtu: 1500,
        current_outbound_spi: Some(0x34F84D56),
        inbound_esp: vec![esp(0xAC4D6EB3, t, 1, 1, "CRYPTO", 4_506_395, 3539, 4)],
        outbound_esp: vec![esp(0x34F84D56, t, 2, 2, "CRYPTO", 4_506_395, 3539, 4)],
    }]
}

/// 1720-1's `sh cr en conn ac`.
pub fn router_engine_connections() -> Vec<EngineConnectionView> {
    let row = |id, state: &str, algorithm: &str, encrypt, decrypt| EngineConnectionView {
        id,
        interface: "FastEthernet0".into(),
        ip_address: ip("172.16.172.39"),
        state: state.into(),
        algorithm: algorithm.into(),
        encrypt,
        decrypt,
    };
    let set = "HMAC_MD5+DES_56_CB";
    vec![
        row(110, "set", set, 0, 0),
        row(114, "alloc", "NONE", 0, 0),
        row(115, "alloc", "NONE", 0, 0),
        row(116, "alloc", "NONE", 0, 0),
        row(117, "alloc", "NONE", 0, 0),
        row(200, "set", set, 0, 3),
        row(201, "set", set, 3, 0),
    ]
}

/// 1720-1's `sh cr map`.
pub fn router_crypto_maps() -> Vec<CryptoMapView> {
    vec![CryptoMapView {
        name: "vpn".into(),
        seq: 10,
        kind: "ipsec-isakmp".into(),
        dynamic: None,
        peers: vec![ip("172.16.172.34")],
        acl_name: Some("130".into()),
        acl_entries: vec![
            "access-list 130 permit ip 1.1.1.0 0.0.0.255 192.168.4.0 0.0.0.255".into(),
        ],
        current_peer: Some(ip("172.16.172.34")),
        lifetime_kilobytes: 4_608_000,
        lifetime_seconds: 3600,
        pfs_group: None,
        transform_sets: vec!["myset".into()],
        interfaces: vec!["FastEthernet0".into()],
    }]
}

/// The router's transform set `myset` (esp-des esp-md5-hmac).
pub fn transform_sets() -> Vec<TransformSetView> {
    vec![TransformSetView {
        name: "myset".into(),
        transforms: vec!["esp-des".into(), "esp-md5-hmac".into()],
        mode: "Tunnel".into(),
    }]
}

/// A dataplane with two workers.
pub fn engine() -> EngineView {
    EngineView {
        name: "ipsec-dataplane".into(),
        engine_type: "software (DPDK)".into(),
        state: "installed".into(),
        version: Some("0.1.0".into()),
        main_lcore: Some(0),
        worker_lcores: vec![1, 2],
        backends: BTreeMap::from([
            ("esp-des esp-md5-hmac".to_string(), "openssl".to_string()),
            ("esp-gcm 256".to_string(), "intel-ipsec-mb".to_string()),
        ]),
        capabilities: vec!["UDP-encaps".into(), "anti-replay".into()],
        connections_used: 2,
        connections_max: Some(8),
    }
}

/// One worker's counters.
pub fn lcores() -> Vec<LcoreStatsView> {
    vec![LcoreStatsView {
        lcore: 1,
        worker: 0,
        rx: 100,
        tx: 97,
        encaps: 50,
        decaps: 47,
        handoff_in: 3,
        handoff_out: 4,
        punted: 2,
        bursts: 8,
        cycles_per_packet: Some(410),
        pipeline_cycles_per_packet: Some(300),
        idle_sleeps: 5,
        drops: BTreeMap::from([
            ("auth-failed".to_string(), 1),
            ("replay".to_string(), 2),
            ("no-route".to_string(), 0),
        ]),
    }]
}

const WIN2003_CDP: [&str; 2] = [
    "ldap:///CN=WIN2003,CN=amit-ed0d48583a,CN=CDP,CN=Public%20Key%20Services,CN=Services,CN=Configuration,DC=amit,DC=com?certificateRevocationList?base?objectClass=cRLDistributionPoint",
    "http://amit-ed0d48583a.amit.com/CertEnroll/WIN2003.crl",
];

fn win2003_dn() -> Vec<String> {
    vec!["cn=WIN2003".into(), "dc=amit".into(), "dc=com".into()]
}

/// Branch1's `show crypto pki certificates`: its own certificate and the CA's. The times
/// are the sample's wall-clock times taken as UTC.
pub fn branch_certificates() -> Vec<CertificateView> {
    vec![
        CertificateView {
            kind: "Certificate".into(),
            status: "Available".into(),
            serial: "614C662A000000000009".into(),
            usage: "General Purpose".into(),
            issuer: win2003_dn(),
            subject: vec!["hostname=Branch1.amit.com".into()],
            subject_name: Some("Branch1.amit.com".into()),
            crl_distribution_points: WIN2003_CDP.iter().map(|s| s.to_string()).collect(),
            not_before: 1_275_710_418,
            not_after: 1_307_247_018,
            trustpoints: vec!["WIN2003".into()],
        },
        CertificateView {
            kind: "CA Certificate".into(),
            status: "Available".into(),
            serial: "6462CFFA77B593A74DB4E13D530CBC02".into(),
            usage: "Signature".into(),
            issuer: win2003_dn(),
            subject: win2003_dn(),
            subject_name: None,
            crl_distribution_points: WIN2003_CDP.iter().map(|s| s.to_string()).collect(),
            not_before: 1_274_412_678,
            not_after: 1_590_032_413,
            trustpoints: vec!["WIN2003".into()],
        },
    ]
}

/// Branch1's trustpoint.
pub fn trustpoints() -> Vec<TrustpointView> {
    vec![TrustpointView {
        name: "WIN2003".into(),
        ca_subject: win2003_dn(),
        ca_serial: "6462CFFA77B593A74DB4E13D530CBC02".into(),
        certificate_configured: true,
        revocation_check: "crl".into(),
        crl_source: Some(WIN2003_CDP[1].into()),
    }]
}

/// 1720-1's `sh crypto ca crls` (times taken as UTC).
pub fn router_crls() -> Vec<CrlView> {
    vec![CrlView {
        issuer: "OU = sjvpn, O = cisco, C = us".into(),
        last_update: 1_010_679_454,
        next_update: Some(1_010_769_454),
        retrieved_from: "LDAP: CN = CRL1, OU = sjvpn, O = cisco, C = us".into(),
        revoked: vec![],
    }]
}

/// ipsec-control's Diffie-Hellman key pairs: group 14 precomputed and partly used by a
/// burst that outran the pool three times; group 19 not precomputed, used twice.
pub fn dh_key_pairs() -> Vec<DhKeyPairsView> {
    vec![
        DhKeyPairsView {
            group: 14,
            target: 2048,
            ready: 1536,
            precomputed: 2560,
            taken: 1024,
            on_demand: 3,
        },
        DhKeyPairsView {
            group: 19,
            target: 0,
            ready: 0,
            precomputed: 0,
            taken: 0,
            on_demand: 2,
        },
    ]
}

/// A backend holding the router's views; actions are recorded, and `fail` makes every
/// method fail with that reason.
#[derive(Default)]
pub struct TestBackend {
    pub actions: Vec<String>,
    pub fail: Option<String>,
}

impl TestBackend {
    fn check(&self) -> Result<(), String> {
        match &self.fail {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
}

impl CtlBackend for TestBackend {
    fn hostname(&mut self) -> String {
        "1720-1".into()
    }
    fn isakmp_sas(&mut self) -> Result<Vec<IsakmpSaView>, String> {
        self.check()?;
        Ok(router_isakmp_sas())
    }
    fn isakmp_policies(&mut self) -> Result<Vec<IsakmpPolicyView>, String> {
        self.check()?;
        Ok(router_isakmp_policies())
    }
    fn ipsec_sas(&mut self) -> Result<Vec<IpsecSaView>, String> {
        self.check()?;
        Ok(router_ipsec_sas())
    }
    fn transform_sets(&mut self) -> Result<Vec<TransformSetView>, String> {
        self.check()?;
        Ok(transform_sets())
    }
    fn crypto_maps(&mut self) -> Result<Vec<CryptoMapView>, String> {
        self.check()?;
        Ok(router_crypto_maps())
    }
    fn engine_connections(&mut self) -> Result<Vec<EngineConnectionView>, String> {
        self.check()?;
        Ok(router_engine_connections())
    }
    fn engine(&mut self) -> Result<EngineView, String> {
        self.check()?;
        Ok(engine())
    }
    fn lcore_stats(&mut self) -> Result<Vec<LcoreStatsView>, String> {
        self.check()?;
        Ok(lcores())
    }
    fn dh_key_pairs(&mut self) -> Result<Vec<DhKeyPairsView>, String> {
        self.check()?;
        Ok(dh_key_pairs())
    }
    fn certificates(&mut self) -> Result<Vec<CertificateView>, String> {
        self.check()?;
        Ok(branch_certificates())
    }
    fn trustpoints(&mut self) -> Result<Vec<TrustpointView>, String> {
        self.check()?;
        Ok(trustpoints())
    }
    fn crls(&mut self) -> Result<Vec<CrlView>, String> {
        self.check()?;
        Ok(router_crls())
    }
    fn clear_sa(&mut self, which: &SaSelector) -> Result<String, String> {
        self.check()?;
        self.actions.push(format!("clear sa {which:?}"));
        Ok(String::new())
    }
    fn clear_isakmp(&mut self, conn_id: Option<u32>) -> Result<String, String> {
        self.check()?;
        self.actions.push(format!("clear isakmp {conn_id:?}"));
        Ok(String::new())
    }
    fn crl_request(&mut self, trustpoint: &str) -> Result<String, String> {
        self.check()?;
        if trustpoint != "WIN2003" {
            return Err(format!("trustpoint {trustpoint} does not exist"));
        }
        self.actions.push(format!("crl request {trustpoint}"));
        Ok(String::new())
    }
    fn reload(&mut self) -> Result<String, String> {
        self.check()?;
        self.actions.push("reload".into());
        Ok("Configuration reloaded: 1 crypto map entry added, 1 removed".into())
    }
}
