use super::*;
use crate::crypto::{Encryption, Integrity};
use crate::esp::Direction;
use crate::spd::SpdAction;

const EXAMPLE: &str = include_str!("../../../examples/secgw-peer.toml");

fn err(text: &str) -> ConfigError {
    Config::parse("t.toml", text).unwrap_err()
}

/// A minimal valid file; tests append to it or replace one line.
const BASE: &str = r#"
[[interface]]
name = "inside"
role = "inside"
device = "net_null0"
address = "10.1.0.1/24"

[[interface]]
name = "outside"
role = "outside"
device = "net_null1"
address = ["192.0.2.1/24"]
crypto_map = "vpn"

[transform_set.ts]
esp = ["esp-3des", "esp-md5-hmac"]

[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.1.0.0/24", destination = "10.2.0.0/24" } ]

[[crypto_map.vpn]]
seq = 10
type = "ipsec-manual"
peer = "192.0.2.2"
transform_set = "ts"
match_address = "101"
session_key.inbound = { spi = 300, cipher = "000102030405060708090a0b0c0d0e0f1011121314151617", authenticator = "00112233445566778899aabbccddeeff" }
session_key.outbound = { spi = 400, cipher = "101112131415161718191a1b1c1d1e1f2021222324252627", authenticator = "ffeeddccbbaa99887766554433221100" }
"#;

#[test]
fn example_file_compiles_to_sas_and_spd() {
    let c = Config::parse("secgw-peer.toml", EXAMPLE).unwrap();
    assert_eq!(c.hostname, "gw1");
    assert_eq!(c.dataplane.worker_lcores, vec![1]);
    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(c.manual_sas.len(), 2);
    let gcm = &c.manual_sas[0];
    assert_eq!(gcm.inbound.spi, 105);
    assert_eq!(gcm.outbound.spi, 5);
    assert_eq!(gcm.inbound.direction, Direction::Inbound);
    assert_eq!(gcm.outbound.transform.encryption, Encryption::Gcm128);
    assert_eq!(gcm.outbound.keys.encryption.len(), 20);
    assert_eq!(gcm.outbound.local, "10.99.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(gcm.outbound.remote, "10.99.0.2".parse::<IpAddr>().unwrap());
    let cbc = &c.manual_sas[1];
    assert_eq!(cbc.outbound.transform.integrity, Integrity::Sha1);
    assert_eq!(cbc.outbound.lifetime, Lifetime::default());
    let spd = c.spd();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        spd.outbound(ip("10.10.1.1"), ip("10.10.2.1"), 1, 0, 0),
        SpdAction::Protect(gcm.sa_id)
    );
    assert_eq!(
        spd.outbound(ip("10.10.1.1"), ip("10.10.2.200"), 6, 1, 80),
        SpdAction::Protect(cbc.sa_id)
    );
    assert_eq!(
        spd.outbound(ip("10.10.1.1"), ip("8.8.8.8"), 6, 1, 80),
        SpdAction::Bypass
    );
    assert_eq!(c.routes[0].interface, 1);
}

#[test]
fn keys_never_in_debug_output() {
    let c = Config::parse("t.toml", BASE).unwrap();
    let dbg = format!("{:?}", c);
    assert!(!dbg.contains("0a0b0c"), "{dbg}");
    assert!(!dbg.contains("[0, 1, 2, 3"), "{dbg}");
    assert!(dbg.contains("<24 bytes>"));
}

#[test]
fn errors_name_line_and_reason() {
    // wrong key length for 3DES (23 bytes)
    let e = err(&BASE.replace(
        "cipher = \"000102030405060708090a0b0c0d0e0f1011121314151617\"",
        "cipher = \"000102030405060708090a0b0c0d0e0f10111213141516\"",
    ));
    assert_eq!(e.line, 27, "{e}");
    assert!(e.reason.contains("24-byte cipher key, got 23"), "{e}");
    assert!(e.to_string().starts_with("t.toml:27: "), "{e}");

    // unknown transform
    let e = err(&BASE.replace("esp-md5-hmac", "esp-md4-hmac"));
    assert_eq!(e.line, 16);
    assert!(
        e.reason.contains("unknown transform \"esp-md4-hmac\""),
        "{e}"
    );

    // GCM with an HMAC
    let e = err(&BASE.replace(
        "\"esp-3des\", \"esp-md5-hmac\"",
        "\"esp-gcm\", \"256\", \"esp-sha-hmac\"",
    ));
    assert!(e.reason.contains("carries its own integrity"), "{e}");

    // address that does not parse
    let e = err(&BASE.replace("192.0.2.1/24", "192.0.2.300/24"));
    assert_eq!(e.line, 12);
    assert!(e.reason.contains("not an IP address"), "{e}");

    // duplicate SPI
    let two = BASE.to_string()
        + r#"
[[crypto_map.vpn]]
seq = 20
type = "ipsec-manual"
peer = "192.0.2.3"
transform_set = "ts"
match_address = "102"
session_key.inbound = { spi = 300, cipher = "000102030405060708090a0b0c0d0e0f1011121314151617", authenticator = "00112233445566778899aabbccddeeff" }
session_key.outbound = { spi = 401, cipher = "101112131415161718191a1b1c1d1e1f2021222324252627", authenticator = "ffeeddccbbaa99887766554433221100" }
"#;
    let two = two.replace(
        "101 = [",
        "102 = [ { action = \"permit\", source = \"10.1.0.0/24\", destination = \"10.3.0.0/24\" } ]\n101 = [",
    );
    let e = err(&two);
    assert!(
        e.reason.contains("inbound SPI 300 is already used at line"),
        "{e}"
    );

    // unknown reference
    let e = err(&BASE.replace("match_address = \"101\"", "match_address = \"199\""));
    assert!(e.reason.contains("no access-list 199"), "{e}");

    // a shadowed ACL entry
    let e = err(&BASE.replace(
        "destination = \"10.2.0.0/24\" } ]",
        "destination = \"10.2.0.0/24\" }, { action = \"deny\", protocol = \"tcp\", source = \"10.1.0.0/25\", destination = \"host 10.2.0.9\" } ]",
    ));
    assert!(e.reason.contains("never matches"), "{e}");

    // a TOML syntax error keeps its line
    let e = err(&BASE.replace("seq = 10", "seq = = 10"));
    assert_eq!(e.line, 22, "{e}");

    // unknown key
    let e = err(&BASE.replace("seq = 10", "seq = 10\nsqe = 1"));
    assert!(e.reason.contains("unknown field"), "{e}");

    // lcores
    let e = err(&format!(
        "[dataplane]\nlcores = {{ main = 1, workers = [1] }}\n{BASE}"
    ));
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("both main and worker"), "{e}");
}

#[test]
fn rx_mode_is_polling_unless_adaptive_is_asked_for() {
    let c = Config::parse("t.toml", BASE).unwrap();
    assert_eq!(c.dataplane.rx_mode, RxMode::Polling);
    let c = Config::parse(
        "t.toml",
        &format!("[dataplane]\nrx_mode = \"adaptive\"\n{BASE}"),
    )
    .unwrap();
    assert_eq!(c.dataplane.rx_mode, RxMode::Adaptive);
    let e = err(&format!("[dataplane]\nrx_mode = \"interrupt\"\n{BASE}"));
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.reason.contains("polling") && e.reason.contains("adaptive"),
        "{e}"
    );
    for m in [RxMode::Polling, RxMode::Adaptive] {
        assert_eq!(RxMode::from_name(m.name()), Some(m));
    }
}

#[test]
fn transform_words() {
    use validate::parse_transform;
    let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    assert_eq!(
        parse_transform(&w("esp-gcm 256")).unwrap().to_string(),
        "esp-gcm 256"
    );
    assert_eq!(
        parse_transform(&w("esp-gcm")).unwrap().encryption,
        Encryption::Gcm128
    );
    assert_eq!(
        parse_transform(&w("esp-aes 192 esp-sha256-hmac"))
            .unwrap()
            .to_string(),
        "esp-aes 192 esp-sha256-hmac"
    );
    assert_eq!(
        parse_transform(&w("esp-des esp-md5-hmac"))
            .unwrap()
            .to_string(),
        "esp-des esp-md5-hmac"
    );
    assert!(parse_transform(&w("esp-aes 512 esp-sha-hmac")).is_err());
    assert!(parse_transform(&w("esp-aes")).is_err());
    assert!(parse_transform(&w("esp-null")).is_ok());
    assert!(parse_transform(&w("esp-des esp-md5-hmac extra")).is_err());
}

#[test]
fn static_arp_entries() {
    let c = Config::parse(
        "t.toml",
        &format!("{BASE}\n[[arp]]\naddress = \"192.0.2.2\"\nmac = \"0200.0000.0002\"\n"),
    )
    .unwrap();
    assert_eq!(c.static_arp.len(), 1);
    assert_eq!(c.static_arp[0].mac, [2, 0, 0, 0, 0, 2]);
    assert_eq!(c.static_arp[0].interface, 1);
    let e = err(&format!(
        "{BASE}\n[[arp]]\naddress = \"192.0.2.2\"\nmac = \"02:00:00:00:02\"\n"
    ));
    assert!(e.reason.contains("not a MAC address"), "{e}");
    let e = err(&format!(
        "{BASE}\n[[arp]]\naddress = \"198.51.100.1\"\nmac = \"02:00:00:00:00:02\"\n"
    ));
    assert!(e.reason.contains("on no interface's network"), "{e}");
    assert_eq!(
        validate::parse_mac("02-00-00-00-00-0a").unwrap(),
        [2, 0, 0, 0, 0, 10]
    );
}

/// BASE plus an `ipsec-isakmp` entry that references dynamic map DYN.
fn with_dynamic(entry_extra: &str, dynamic_map: &str) -> String {
    let text = BASE.replace(
        "101 = [",
        "150 = [ { action = \"permit\", source = \"10.1.0.0/24\", destination = \"10.128.0.0/9\" } ]\n101 = [",
    );
    format!(
        "{text}\n[[crypto_map.vpn]]\nseq = 65535\ntype = \"ipsec-isakmp\"\ndynamic = \"DYN\"\n{entry_extra}\n{dynamic_map}"
    )
}

const DYN: &str = "[[dynamic_map.DYN]]\nseq = 10\ntransform_set = [\"ts\"]\nmatch_address = \"150\"\npfs = \"group2\"\nlifetime = { seconds = 3600 }\nreverse_route = true\n";

#[test]
fn dynamic_crypto_maps() {
    let c = Config::parse("t.toml", &with_dynamic("", DYN)).unwrap();
    let d = &c.dynamic_maps["DYN"];
    assert_eq!(
        d,
        &vec![DynamicMapEntry {
            seq: 10,
            transform_sets: vec!["ts".into()],
            match_address: Some("150".into()),
            lifetime: Lifetime {
                seconds: 3600,
                ..Lifetime::default()
            },
            pfs: Some("group2".into()),
            reverse_route: true,
        }]
    );
    let vpn = &c.crypto_maps["vpn"];
    assert_eq!(vpn.len(), 2);
    let e = &vpn[1];
    assert_eq!(e.kind, MapKind::Isakmp);
    assert_eq!(e.dynamic.as_deref(), Some("DYN"));
    assert_eq!((e.peer, e.match_address.as_deref()), (None, None));
    assert!(e.transform_sets.is_empty());
    assert_ne!(e.sa_id, vpn[0].sa_id);
    // Access-list 150 adds no SPD rule: only the manual entry's ACL is in the SPD.
    assert_eq!(c.spd_rules.len(), 1);
    assert_eq!(c.spd_rules[0].entry, vpn[0].sa_id);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        c.spd().outbound(ip("10.1.0.5"), ip("10.128.0.1"), 6, 1, 80),
        SpdAction::Bypass
    );

    // A dynamic map without an access-list accepts any proxy identities; one that no crypto
    // map references is accepted too.
    let c = Config::parse(
        "t.toml",
        &with_dynamic(
            "",
            &format!("{DYN}\n[[dynamic_map.OTHER]]\nseq = 1\ntransform_set = \"ts\"\n"),
        ),
    )
    .unwrap();
    assert_eq!(c.dynamic_maps["OTHER"][0].match_address, None);
    assert_eq!(c.dynamic_maps["OTHER"][0].lifetime, Lifetime::default());
    // The secgw example has none.
    assert!(Config::parse("x.toml", EXAMPLE)
        .unwrap()
        .dynamic_maps
        .is_empty());
}

#[test]
fn dynamic_crypto_map_errors() {
    let line =
        |text: &str, needle: &str| text[..text.find(needle).unwrap()].matches('\n').count() + 1;
    // a missing dynamic map
    let text = with_dynamic("", &DYN.replace("DYN", "DYN2"));
    let e = err(&text);
    assert_eq!(e.line, line(&text, "dynamic = \"DYN\""), "{e}");
    assert!(e.reason.contains("no dynamic map named DYN"), "{e}");
    // an entry that references one sets nothing else
    let text = with_dynamic("peer = \"192.0.2.9\"", DYN);
    let e = err(&text);
    assert_eq!(
        e.line,
        line(&text, "[[crypto_map.vpn]]\nseq = 65535"),
        "{e}"
    );
    assert!(e.reason.contains("set peer there, not here"), "{e}");
    let e = err(&with_dynamic("match_address = \"150\"", DYN));
    assert!(e.reason.contains("set match_address there"), "{e}");
    // manual entries do not take one
    let e = err(&with_dynamic("", DYN).replace(
        "seq = 65535\ntype = \"ipsec-isakmp\"",
        "seq = 65535\ntype = \"ipsec-manual\"",
    ));
    assert!(e.reason.contains("belongs to an ipsec-isakmp entry"), "{e}");
    // a static entry still needs an access-list
    let e = err(&BASE.replace("match_address = \"101\"\n", ""));
    assert!(e.reason.contains("has no match_address"), "{e}");
    // the dynamic map's own fields
    let text = with_dynamic("", &DYN.replace("[\"ts\"]", "[\"ts\", \"nope\"]"));
    let e = err(&text);
    assert_eq!(e.line, line(&text, "\"nope\""), "{e}");
    assert!(e.reason.contains("no transform set named nope"), "{e}");
    let text = with_dynamic("", &DYN.replace("\"150\"", "\"151\""));
    let e = err(&text);
    assert_eq!(e.line, line(&text, "\"151\""), "{e}");
    assert!(e.reason.contains("no access-list 151"), "{e}");
    let e = err(&with_dynamic("", &DYN.replace("group2", "group3")));
    assert!(e.reason.contains("unknown pfs group \"group3\""), "{e}");
    let e = err(&with_dynamic("", &DYN.replace("3600", "60")));
    assert!(
        e.reason.contains("lifetime seconds must be 120-86400"),
        "{e}"
    );
    let e = err(&with_dynamic(
        "",
        &format!("{DYN}\n[[dynamic_map.DYN]]\nseq = 10\ntransform_set = \"ts\"\n"),
    ));
    assert!(
        e.reason
            .contains("crypto dynamic-map DYN 10 is defined twice"),
        "{e}"
    );
    let e = err(&with_dynamic("", "[[dynamic_map.DYN]]\nseq = 10\n"));
    assert!(
        e.reason
            .contains("crypto dynamic-map DYN 10 has no transform set"),
        "{e}"
    );
    let e = err(&with_dynamic(
        "",
        "[[dynamic_map.DYN]]\nseq = 10\ntransform_set = \"ts\"\npeer = \"1.2.3.4\"\n",
    ));
    assert!(e.reason.contains("unknown field `peer`"), "{e}");
}

#[test]
fn line_index_numbers_lines_from_one() {
    let text = "a\nbb\n\nccc";
    let ix = super::LineIndex::new(text);
    for (at, line) in [(0, 1), (1, 1), (2, 2), (4, 2), (5, 3), (6, 4), (9, 4)] {
        let slow = text[..at].bytes().filter(|&b| b == b'\n').count() + 1;
        assert_eq!(ix.line(at), line, "offset {at}");
        assert_eq!(ix.line(at), slow, "offset {at}");
    }
}
