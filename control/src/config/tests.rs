use super::*;

use super::validate::parse_key_address;
use dataplane::config::MapKind;

const HUB_EXAMPLE: &str = include_str!("../../../examples/hub-dynamic.toml");
const PEER_EXAMPLE: &str = include_str!("../../../examples/secgw-peer.toml");

/// A valid file with every control section; tests replace one piece of it. Paths are
/// relative to the file's directory, a temp dir holding the `pki/` files.
const FULL: &str = r#"
hostname = "gw1"
domain = "example.com"

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
esp = ["esp-aes", "esp-sha-hmac"]

[transform_set.ts2]
esp = ["esp-3des", "esp-md5-hmac"]

[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.1.0.0/24", destination = "10.2.0.0/24" } ]
150 = [ { action = "permit", source = "10.1.0.0/24", destination = "10.128.0.0/9" } ]

[isakmp]
identity = "hostname"
keepalive = { seconds = 10, retries = 3 }
nat_keepalive = 20
call_admission_limit = 1000
dh_precompute = 512

[[isakmp.policy]]
priority = 20
encryption = "3des"
hash = "md5"
authentication = "pre-share"
group = 2
lifetime = 28800

[[isakmp.policy]]
priority = 10
encryption = "aes 256"
hash = "sha256"
authentication = "rsa-sig"
group = 14

[[isakmp.key]]
key = "cisco123"
address = "192.0.2.2"

[[isakmp.key]]
key = "wildcard-secret"
address = "0.0.0.0 0.0.0.0"

[trustpoint.CA1]
ca_certificates = [
  "pki/root.pem",
  "pki/sub.pem",
]
certificate = "pki/gw.pem"
private_key = "pki/gw.key"
revocation_check = "crl"
crl_file = "pki/ca.crl"

[ctl]
socket = "/run/test/ctl.sock"

[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "192.0.2.2"
transform_set = "ts"
match_address = "101"
pfs = "group14"

[[crypto_map.vpn]]
seq = 65535
type = "ipsec-isakmp"
dynamic = "DYN"

[[dynamic_map.DYN]]
seq = 10
transform_set = ["ts", "ts2"]
match_address = "150"
lifetime = { seconds = 3600 }
reverse_route = true
"#;

/// A temp dir with the files the trustpoints name (empty: they are not parsed here).
struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[&str]) -> Dir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"placeholder").unwrap();
        }
        Dir(d)
    }
    fn full() -> Dir {
        Dir::new(&[
            "pki/root.pem",
            "pki/sub.pem",
            "pki/gw.pem",
            "pki/gw.key",
            "pki/ca.crl",
        ])
    }
    fn file(&self) -> PathBuf {
        self.0.path().join("gw.toml")
    }
    fn parse(&self, text: &str) -> Result<IkeConfig, ConfigError> {
        IkeConfig::parse(self.file(), text)
    }
    fn err(&self, text: &str) -> ConfigError {
        self.parse(text).unwrap_err()
    }
}

/// The 1-based line holding `needle`, which must occur once.
fn line_of(text: &str, needle: &str) -> usize {
    assert_eq!(text.matches(needle).count(), 1, "{needle:?} is not unique");
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

/// `FULL` with `old` (which must occur once) replaced by `new`.
fn with(old: &str, new: &str) -> String {
    assert_eq!(FULL.matches(old).count(), 1, "{old:?} is not unique");
    FULL.replace(old, new)
}

/// Asserts that `text` is refused at the line holding `needle`, for a reason containing
/// `reason`.
fn refused(dir: &Dir, text: &str, needle: &str, reason: &str) {
    let e = dir.err(text);
    assert_eq!(e.line, line_of(text, needle), "{e}");
    assert!(e.reason.contains(reason), "{e}");
    let prefix = format!("{}:{}: ", dir.file().display(), e.line);
    assert!(e.to_string().starts_with(&prefix), "{e}");
}

#[test]
fn full_file() {
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    assert_eq!(c.base.hostname, "gw1");
    assert_eq!(c.fqdn(), "gw1.example.com");
    assert_eq!(
        c.isakmp,
        IsakmpGlobal {
            identity: IdentityMode::Hostname,
            dpd: Some(Dpd {
                interval: 10,
                retries: 3
            }),
            nat_keepalive: Some(20),
            call_admission_limit: Some(1000),
            dh_precompute: Some(512),
        }
    );
    assert_eq!(c.policies.len(), 2);
    assert_eq!(
        c.policies[0],
        IsakmpPolicy {
            priority: 10,
            encryption: IkeEncryption::Aes256,
            hash: IkeHash::Sha256,
            authentication: AuthMethod::RsaSig,
            group: DhGroupId::new(14).unwrap(),
            lifetime: 86400,
        }
    );
    assert_eq!(c.policies[1].encryption, IkeEncryption::TripleDes);
    assert_eq!(c.policies[1].hash, IkeHash::Md5);
    assert_eq!(c.policies[1].authentication, AuthMethod::PreShare);
    assert_eq!(c.policies[1].group.get(), 2);
    assert_eq!(c.policies[1].lifetime, 28800);

    assert_eq!(c.keys.len(), 2);
    assert_eq!(c.keys[0].secret.expose(), b"cisco123");
    assert_eq!(
        c.keys[1].peer,
        Prefix {
            addr: "0.0.0.0".parse().unwrap(),
            len: 0
        }
    );

    let tp = &c.trustpoints["CA1"];
    let dir = d.0.path();
    assert_eq!(
        tp.ca_certificates,
        vec![dir.join("pki/root.pem"), dir.join("pki/sub.pem")]
    );
    assert_eq!(tp.certificate, dir.join("pki/gw.pem"));
    assert_eq!(tp.private_key, dir.join("pki/gw.key"));
    assert_eq!(tp.revocation, RevocationCheck::Crl);
    assert_eq!(tp.crl_file, Some(dir.join("pki/ca.crl")));
    assert_eq!(tp.crl_url, None);
    assert_eq!(c.ctl_socket, PathBuf::from("/run/test/ctl.sock"));
}

#[test]
fn policies_in_priority_order() {
    let d = Dir::full();
    let text = FULL.to_string()
        + "\n[[isakmp.policy]]\npriority = 5\n\n[[isakmp.policy]]\npriority = 10000\nauthentication = \"pre-share\"\n";
    let c = d.parse(&text).unwrap();
    let prios: Vec<u32> = c.policies.iter().map(|p| p.priority).collect();
    assert_eq!(prios, vec![5, 10, 20, 10000]);
    // Omitted fields take IOS's defaults.
    let p5 = c.policies[0];
    assert_eq!(p5.encryption, IkeEncryption::Des);
    assert_eq!(p5.hash, IkeHash::Sha1);
    assert_eq!(p5.authentication, AuthMethod::RsaSig);
    assert_eq!(p5.group.get(), 1);
    assert_eq!(p5.lifetime, 86400);
    assert!(!c.policies.iter().any(|p| p.is_default_suite()));
}

#[test]
fn isakmp_policies_without_an_isakmp_header() {
    // `[[isakmp.policy]]` alone creates the [isakmp] table implicitly
    let c = IkeConfig::parse(
        "secgw-peer.toml",
        &format!(
            "{PEER_EXAMPLE}\n[[isakmp.policy]]\npriority = 7\nauthentication = \"pre-share\"\n\
             [[isakmp.key]]\nkey = \"k\"\naddress = \"10.99.0.2\"\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.policies[0].priority, 7);
    assert_eq!(c.keys.len(), 1);
}

#[test]
fn default_suite_when_no_policy() {
    // The dataplane's manual-keying example has no control section at all.
    let c = IkeConfig::parse("secgw-peer.toml", PEER_EXAMPLE).unwrap();
    assert_eq!(c.policies, IsakmpPolicy::default_suite());
    assert_eq!(c.isakmp, IsakmpGlobal::default());
    assert!(c.keys.is_empty() && c.trustpoints.is_empty());
    assert_eq!(c.ctl_socket, PathBuf::from("/run/ipsec-gateway/ctl.sock"));
    let p = c.policies[0];
    assert!(p.is_default_suite());
    assert_eq!(
        (
            p.encryption,
            p.hash,
            p.authentication,
            p.group.get(),
            p.lifetime
        ),
        (
            IkeEncryption::Des,
            IkeHash::Sha1,
            AuthMethod::RsaSig,
            1,
            86400
        )
    );
    // As `sh cr isa policy` prints it on IOS 12.2 (reference output, unwrapped).
    assert_eq!(
        p.to_string(),
        "Default protection suite
        encryption algorithm:   DES - Data Encryption Standard (56 bit keys).
        hash algorithm:         Secure Hash Standard
        authentication method:  Rivest-Shamir-Adleman Signature
        Diffie-Hellman group:   #1 (768 bit)
        lifetime:               86400 seconds, no volume limit"
    );
    // A configured policy's block.
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    assert_eq!(
        c.policies[1].to_string(),
        "Protection suite of priority 20
        encryption algorithm:   Three key triple DES
        hash algorithm:         Message Digest 5
        authentication method:  Pre-Shared Key
        Diffie-Hellman group:   #2 (1024 bit)
        lifetime:               28800 seconds, no volume limit"
    );
}

#[test]
fn ios_words() {
    assert_eq!(
        IkeEncryption::Aes192.to_string(),
        "AES - Advanced Encryption Standard (192 bit keys)."
    );
    assert_eq!(IkeEncryption::Aes128.ios_keyword(), "aes");
    assert_eq!(IkeHash::Sha384.ios_keyword(), "sha384");
    assert_eq!(AuthMethod::RsaSig.ios_keyword(), "rsa-sig");
    assert_eq!(DhGroupId::new(2).unwrap().to_string(), "#2 (1024 bit)");
    assert_eq!(DhGroupId::new(14).unwrap().to_string(), "#14 (2048 bit)");
    for g in [0, 3, 4, 16, 21, 24] {
        assert_eq!(DhGroupId::new(g), None, "group {g}");
    }
    for g in DhGroupId::SUPPORTED {
        assert!(DhGroupId::new(g)
            .unwrap()
            .to_string()
            .starts_with(&format!("#{g} (")));
    }
    assert_eq!(IdentityMode::Dn.to_string(), "dn");
    assert_eq!(IdentityMode::Hostname.id_type_name(), "ID_FQDN");
    assert_eq!(IdentityMode::Address.id_type_name(), "ID_IPV4_ADDR");
    assert_eq!(RevocationCheck::CrlNone.to_string(), "crl none");
}

#[test]
fn pre_shared_keys_are_redacted() {
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("cisco123"), "{dbg}");
    assert!(!dbg.contains("wildcard-secret"), "{dbg}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
    assert_eq!(format!("{:?}", c.keys[0].secret), "<redacted>");
    // Nor in an error about a key.
    let text = with("address = \"192.0.2.2\"\n", "address = \"10.0.0.1/8\"\n");
    let e = d.err(&text);
    assert!(!e.to_string().contains("cisco123"), "{e}");
}

#[test]
fn key_for_picks_the_most_specific() {
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        c.key_for(ip("192.0.2.2")).unwrap().secret.expose(),
        b"cisco123"
    );
    assert_eq!(
        c.key_for(ip("203.0.113.9")).unwrap().secret.expose(),
        b"wildcard-secret"
    );
    assert!(c.key_for(ip("2001:db8::1")).is_none());
}

#[test]
fn key_addresses() {
    let p = |s: &str| parse_key_address(s).map(|p| (p.addr.to_string(), p.len));
    assert_eq!(p("10.99.0.2"), Ok(("10.99.0.2".into(), 32)));
    assert_eq!(p("0.0.0.0 0.0.0.0"), Ok(("0.0.0.0".into(), 0)));
    assert_eq!(p("10.0.0.0 255.0.0.0"), Ok(("10.0.0.0".into(), 8)));
    assert_eq!(p("10.0.0.0/8"), Ok(("10.0.0.0".into(), 8)));
    assert_eq!(p("2001:db8::/32"), Ok(("2001:db8::".into(), 32)));
    assert!(p("10.0.0.0 255.0.255.0")
        .unwrap_err()
        .contains("not contiguous"));
    assert!(p("10.1.1.1 255.255.255.0")
        .unwrap_err()
        .contains("outside the mask"));
    assert!(p("10.0.0.0/33").is_err());
    assert!(p("10.0.0.300").is_err());
    assert!(p("2001:db8:: 255.255.0.0").is_err());
    assert!(p("host").is_err());
    assert!(p("").is_err());
}

#[test]
fn errors_name_line_and_reason() {
    let d = Dir::full();
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, by, line holding, reason)
        (
            "encryption = \"3des\"",
            "encryption = \"blowfish\"",
            "blowfish",
            "unknown encryption \"blowfish\"",
        ),
        (
            "encryption = \"aes 256\"",
            "encryption = \"aes 512\"",
            "aes 512",
            "unknown encryption",
        ),
        (
            "hash = \"md5\"",
            "hash = \"sha512\"",
            "sha512",
            "unknown hash",
        ),
        (
            "authentication = \"pre-share\"",
            "authentication = \"rsa-encr\"",
            "rsa-encr",
            "unknown authentication",
        ),
        (
            "group = 14",
            "group = 24",
            "group = 24",
            "Diffie-Hellman group 24 is not supported",
        ),
        (
            "group = 2\n",
            "group = 3\n",
            "group = 3",
            "group 3 is not supported",
        ),
        (
            "lifetime = 28800",
            "lifetime = 30",
            "lifetime = 30",
            "lifetime must be 60-86400",
        ),
        (
            "priority = 20",
            "priority = 10",
            "priority = 10\nencryption = \"aes 256\"",
            "crypto isakmp policy 10 is already defined at line",
        ),
        ("priority = 20", "priority = 0", "priority = 0", "1-10000"),
        (
            "identity = \"hostname\"",
            "identity = \"fqdn\"",
            "identity = \"fqdn\"",
            "identity must be \"address\", \"hostname\" or \"dn\", not \"fqdn\"",
        ),
        (
            "keepalive = { seconds = 10, retries = 3 }",
            "keepalive = { seconds = 5, retries = 3 }",
            "keepalive = { seconds = 5",
            "keepalive seconds must be 10-3600",
        ),
        (
            "nat_keepalive = 20",
            "nat_keepalive = 0",
            "nat_keepalive = 0",
            "nat_keepalive must be 5-3600",
        ),
        (
            "dh_precompute = 512",
            "dh_precompute = 65537",
            "dh_precompute = 65537",
            "dh_precompute must be 0-65536",
        ),
        (
            "address = \"192.0.2.2\"\n",
            "address = \"192.0.2.256\"\n",
            "192.0.2.256",
            "not an address, address and mask, or prefix",
        ),
        (
            "address = \"0.0.0.0 0.0.0.0\"",
            "address = \"0.0.0.0 255.0.255.0\"",
            "255.0.255.0",
            "mask is not contiguous",
        ),
        (
            "address = \"0.0.0.0 0.0.0.0\"",
            "address = \"192.0.2.2/32\"",
            "192.0.2.2/32",
            "a key for 192.0.2.2/32 is already defined at line",
        ),
        (
            "key = \"cisco123\"",
            "key = \"\"",
            "key = \"\"",
            "the key is empty",
        ),
        (
            "certificate = \"pki/gw.pem\"",
            "certificate = \"pki/missing.pem\"",
            "pki/missing.pem",
            "cannot read certificate",
        ),
        (
            "  \"pki/sub.pem\",",
            "  \"pki/sub2.pem\",",
            "pki/sub2.pem",
            "cannot read CA certificate",
        ),
        (
            "private_key = \"pki/gw.key\"",
            "private_key = \"pki\"",
            "private_key = \"pki\"",
            "is not a file",
        ),
        (
            "crl_file = \"pki/ca.crl\"",
            "crl_file = \"pki/none.crl\"",
            "none.crl",
            "cannot read CRL",
        ),
        (
            "crl_file = \"pki/ca.crl\"",
            "crl_url = \"ldap://ca/crl\"",
            "ldap://",
            "not an http:// URL",
        ),
        (
            "crl_file = \"pki/ca.crl\"",
            "crl_file = \"pki/ca.crl\"\ncrl_url = \"http://ca/crl\"",
            "crl_url",
            "not both",
        ),
        (
            "revocation_check = \"crl\"",
            "revocation_check = \"ocsp\"",
            "ocsp",
            "revocation_check must be",
        ),
        (
            "dynamic = \"DYN\"",
            "dynamic = \"NOPE\"",
            "dynamic = \"NOPE\"",
            "no dynamic map named NOPE",
        ),
        (
            "transform_set = [\"ts\", \"ts2\"]",
            "transform_set = [\"ts\", \"ts3\"]",
            "ts3",
            "no transform set named ts3",
        ),
        (
            "socket = \"/run/test/ctl.sock\"",
            "sokcet = \"/run/test/ctl.sock\"",
            "sokcet",
            "unknown field `sokcet`",
        ),
        (
            "hash = \"sha256\"",
            "hahs = \"sha256\"",
            "hahs",
            "unknown field `hahs`",
        ),
        (
            "group = 14",
            "group = \"14\"",
            "group = \"14\"",
            "invalid type",
        ),
        (
            "domain = \"example.com\"",
            "domain = \"ex ample\"",
            "ex ample",
            "not a domain name",
        ),
    ];
    for (old, new, needle, reason) in cases {
        let text = with(old, new);
        refused(&d, &text, needle, reason);
    }
}

#[test]
fn authentication_needs_its_credentials() {
    let d = Dir::full();
    // rsa-sig without any trustpoint
    let start = FULL.find("[trustpoint.CA1]").unwrap();
    let end = FULL.find("[ctl]").unwrap();
    let text = format!("{}{}", &FULL[..start], &FULL[end..]);
    refused(
        &d,
        &text,
        "authentication = \"rsa-sig\"",
        "authentication rsa-sig needs a [trustpoint]",
    );
    // An omitted authentication is rsa-sig too; the error then names the policy.
    let text = text.replace("authentication = \"rsa-sig\"\n", "");
    let e = d.err(&text);
    assert!(
        e.reason.contains("policy 10: authentication rsa-sig"),
        "{e}"
    );
    // identity dn needs a certificate.
    let text = with("identity = \"hostname\"", "identity = \"dn\"");
    assert_eq!(d.parse(&text).unwrap().isakmp.identity, IdentityMode::Dn);
    let (start, end) = (
        text.find("[trustpoint.CA1]").unwrap(),
        text.find("[ctl]").unwrap(),
    );
    let text = format!("{}{}", &text[..start], &text[end..]).replace(
        "authentication = \"rsa-sig\"",
        "authentication = \"pre-share\"",
    );
    refused(
        &d,
        &text,
        "identity = \"dn\"",
        "identity dn needs a trustpoint",
    );
    // pre-share without any key
    let start = FULL.find("[[isakmp.key]]").unwrap();
    let end = FULL.find("[trustpoint.CA1]").unwrap();
    let text = format!("{}{}", &FULL[..start], &FULL[end..]);
    refused(
        &d,
        &text,
        "authentication = \"pre-share\"",
        "pre-share needs an [[isakmp.key]]",
    );
}

#[test]
fn dataplane_errors_come_first() {
    let d = Dir::full();
    let text = with(
        "esp = [\"esp-aes\", \"esp-sha-hmac\"]",
        "esp = [\"esp-aes\", \"esp-md4-hmac\"]",
    );
    refused(&d, &text, "esp-md4-hmac", "unknown transform");
    let e = IkeConfig::load(d.0.path().join("absent.toml")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.reason.starts_with("cannot read"), "{e}");
}

#[test]
fn dynamic_map_referenced() {
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    let dyns = c.dynamic_maps();
    assert_eq!(dyns.len(), 1);
    let e = &dyns["DYN"][0];
    assert_eq!(e.seq, 10);
    assert_eq!(e.transform_sets, vec!["ts".to_string(), "ts2".to_string()]);
    assert_eq!(e.match_address.as_deref(), Some("150"));
    assert_eq!(e.lifetime.seconds, 3600);
    assert!(e.reverse_route);
    assert_eq!(e.pfs, None);
    assert!(c.unused_dynamic_maps().is_empty());

    let vpn = &c.base.crypto_maps["vpn"];
    assert_eq!(vpn.len(), 2);
    assert_eq!(vpn[1].seq, 65535);
    assert_eq!(vpn[1].kind, MapKind::Isakmp);
    assert_eq!(vpn[1].dynamic.as_deref(), Some("DYN"));
    assert_eq!(vpn[1].peer, None);
    assert_eq!(vpn[1].match_address, None);
    // Only the static entry's ACL makes SPD rules: access-list 150 waits for an SA.
    assert_eq!(c.base.spd_rules.len(), 1);
    assert_eq!(c.base.spd_rules[0].entry, vpn[0].sa_id);
    assert_eq!(vpn[0].match_address.as_deref(), Some("101"));
}

#[test]
fn dynamic_map_unreferenced_is_accepted() {
    let d = Dir::full();
    let text = with(
        "[[crypto_map.vpn]]\nseq = 65535\ntype = \"ipsec-isakmp\"\ndynamic = \"DYN\"\n",
        "",
    );
    let c = d.parse(&text).unwrap();
    assert_eq!(c.dynamic_maps().len(), 1);
    assert_eq!(c.unused_dynamic_maps(), vec!["DYN"]);
    assert_eq!(c.base.crypto_maps["vpn"].len(), 1);
}

#[test]
fn dynamic_map_entry_errors() {
    let d = Dir::full();
    // A dynamic entry takes nothing but seq, type and dynamic.
    let text = with(
        "dynamic = \"DYN\"",
        "dynamic = \"DYN\"\npeer = \"192.0.2.9\"",
    );
    // An error about a whole entry names the line of its `[[...]]` header.
    refused(
        &d,
        &text,
        "[[crypto_map.vpn]]\nseq = 65535",
        "set peer there, not here",
    );
    // ...and belongs to ipsec-isakmp.
    let text = FULL.replace(
        "seq = 65535\ntype = \"ipsec-isakmp\"",
        "seq = 65535\ntype = \"ipsec-manual\"",
    );
    refused(
        &d,
        &text,
        "dynamic = \"DYN\"",
        "a dynamic map belongs to an ipsec-isakmp entry",
    );
    // A static entry still needs its access-list.
    let text = with("match_address = \"101\"\n", "");
    refused(
        &d,
        &text,
        "[[crypto_map.vpn]]\nseq = 10\n",
        "has no match_address",
    );
    // The dynamic map's own checks.
    let text = with("match_address = \"150\"", "match_address = \"199\"");
    refused(&d, &text, "\"199\"", "no access-list 199");
    let text = FULL.to_string() + "\n[[dynamic_map.DYN]]\nseq = 10\ntransform_set = \"ts\"\n";
    let e = d.err(&text);
    assert_eq!(e.line, text.lines().count() - 1, "{e}");
    assert!(
        e.reason
            .contains("crypto dynamic-map DYN 10 is defined twice"),
        "{e}"
    );
    let text = FULL.to_string() + "\n[[dynamic_map.DYN]]\nseq = 20\n";
    let e = d.err(&text);
    assert!(e.reason.contains("DYN 20 has no transform set"), "{e}");
    let text = FULL.to_string()
        + "\n[[dynamic_map.DYN]]\nseq = 20\ntransform_set = \"ts\"\npfs = \"group3\"\n";
    let e = d.err(&text);
    assert_eq!(e.line, text.lines().count(), "{e}");
    assert!(e.reason.contains("unknown pfs group"), "{e}");
}

#[test]
fn relative_and_absolute_paths() {
    // Relative paths are taken from the file's directory, not the working directory.
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    assert!(c.trustpoints["CA1"].certificate.is_absolute());
    assert!(c.trustpoints["CA1"].certificate.starts_with(d.0.path()));
    let other = Dir::new(&["elsewhere/gw.pem"]);
    let abs = other.0.path().join("elsewhere/gw.pem");
    let text = with(
        "certificate = \"pki/gw.pem\"",
        &format!("certificate = {:?}", abs.to_str().unwrap()),
    );
    let c = d.parse(&text).unwrap();
    assert_eq!(c.trustpoints["CA1"].certificate, abs);
    // The same file read from another directory misses its relative files.
    let e = other.err(FULL);
    assert_eq!(e.line, line_of(FULL, "pki/root.pem"), "{e}");
    assert!(e.reason.contains("cannot read CA certificate"), "{e}");
    // A bare file name is in the working directory; paths are made absolute all the same.
    let e = IkeConfig::parse("gw.toml", FULL).unwrap_err();
    let cwd = std::env::current_dir().unwrap();
    let want = format!("{}", cwd.join("pki/root.pem").display());
    assert!(e.reason.contains(&want), "{e}");
    // load() takes the directory from the path it is given.
    std::fs::write(d.file(), FULL).unwrap();
    let c = IkeConfig::load(d.file()).unwrap();
    assert_eq!(
        c.trustpoints["CA1"].private_key,
        d.0.path().join("pki/gw.key")
    );
}

#[test]
fn hub_example_checks_with_its_files() {
    let d = Dir::new(&[
        "pki/root.pem",
        "pki/sub-east.pem",
        "pki/sub-west.pem",
        "pki/hub1.pem",
        "pki/hub1.key",
    ]);
    let path = d.0.path().join("hub-dynamic.toml");
    std::fs::write(&path, HUB_EXAMPLE).unwrap();
    let c = IkeConfig::load(&path).unwrap();
    assert_eq!(c.fqdn(), "hub1.vpn.example.com");
    assert_eq!(c.policies.len(), 3);
    assert_eq!(c.trustpoints["CA1"].ca_certificates.len(), 3);
    assert_eq!(c.keys.len(), 1);
    assert_eq!(c.dynamic_maps()["DYN"][0].transform_sets.len(), 2);
    assert!(c.unused_dynamic_maps().is_empty());
    assert_eq!(c.base.spd_rules.len(), 1);
    // Without the files, the first one named is reported with its line.
    let e = Dir::new(&[]).err(HUB_EXAMPLE);
    assert_eq!(e.line, line_of(HUB_EXAMPLE, "ca_certificates = ["), "{e}");
}

#[test]
fn ctl_group_and_metrics() {
    let d = Dir::full();
    let c = d.parse(FULL).unwrap();
    assert_eq!((c.ctl_group, c.ctl_metrics), (None, None));
    // a group by name (root's group exists everywhere) or by number, and an address
    let text = with(
        "socket = \"/run/test/ctl.sock\"",
        "socket = \"/run/test/ctl.sock\"\ngroup = \"root\"\nmetrics = \"127.0.0.1:9477\"",
    );
    let c = d.parse(&text).unwrap();
    assert_eq!(c.ctl_group, Some(0));
    assert_eq!(c.ctl_metrics, Some("127.0.0.1:9477".parse().unwrap()));
    let text = with(
        "socket = \"/run/test/ctl.sock\"",
        "socket = \"/run/test/ctl.sock\"\ngroup = \"4242\"\nmetrics = \"[::1]:9477\"",
    );
    let c = d.parse(&text).unwrap();
    assert_eq!(c.ctl_group, Some(4242));
    assert_eq!(c.ctl_metrics, Some("[::1]:9477".parse().unwrap()));
    for (line, reason) in [
        ("group = \"no-such-group-here\"", "does not exist"),
        ("group = \"\"", "empty name"),
        ("metrics = \"localhost\"", "is not ADDRESS:PORT"),
        ("metrics = \"127.0.0.1:0\"", "port 0"),
    ] {
        let text = with(
            "socket = \"/run/test/ctl.sock\"",
            &format!("socket = \"/run/test/ctl.sock\"\n{line}"),
        );
        refused(&d, &text, line, reason);
    }
}
