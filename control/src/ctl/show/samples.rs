//! Verbatim samples of `shared/reference/ios-show-and-debug.md` (the text between a command
//! line and the next prompt, tabs and line wraps of the document included) and the helpers
//! the golden tests use to undo what the document did to them.

/// `sh cr isa sa` on the IOS 12.2 router (1720-1).
pub const ROUTER_ISAKMP_SA: &str = r##"dst             src             state           conn-id    slot
172.16.172.39   172.16.172.34   QM_IDLE             110       0

"##;

/// `sh cr map` on the IOS 12.2 router.
pub const ROUTER_CRYPTO_MAP: &str = r##"        Interfaces using crypto map mymap:

Crypto Map "vpn" 10 ipsec-isakmp
        Peer = 172.16.172.34
        Extended IP access list 130
            access-list 130 permit ip 1.1.1.0 0.0.0.255 192.168.4.0 0.0.0.255
        Current peer: 172.16.172.34
        Security association lifetime: 4608000 kilobytes/3600 seconds
        PFS (Y/N): N
        Transform sets={ myset, }
        Interfaces using crypto map vpn:
                FastEthernet0
        Interfaces using crypto map certificate:

"##;

/// `sh cr isa policy` on the IOS 12.2 router.
pub const ROUTER_ISAKMP_POLICY: &str = r##"Protection suite of priority 10
        encryption algorithm:   DES - Data Encryption Standard 
		(56 bit keys).
        hash algorithm:         Message Digest 5
        authentication method:  Rivest-Shamir-Adleman Signature
        Diffie-Hellman group:   #1 (768 bit)
        lifetime:               86400 seconds, no volume limit
Default protection suite
        encryption algorithm:   DES - Data Encryption Standard 
		(56 bit keys).
        hash algorithm:         Secure Hash Standard
        authentication method:  Rivest-Shamir-Adleman Signature
        Diffie-Hellman group:   #1 (768 bit)
        lifetime:               86400 seconds, no volume limit
"##;

/// `sh cr ipsec sa` on the IOS 12.2 router.
pub const ROUTER_IPSEC_SA: &str = r##"
interface: FastEthernet0
    Crypto map tag: vpn, local addr. 172.16.172.39

   local  ident (addr/mask/prot/port): 
   (1.1.1.0/255.255.255.0/0/0)
   remote ident (addr/mask/prot/port): 
   (192.168.4.0/255.255.255.0/0/0)
   current_peer: 172.16.172.34
     PERMIT, flags={origin_is_acl,}
    #pkts encaps: 3, #pkts encrypt: 3, #pkts digest 3
    #pkts decaps: 3, #pkts decrypt: 3, #pkts verify 3
    #pkts compressed: 0, #pkts decompressed: 0
    #pkts not compressed: 0, #pkts compr. failed: 0, 
	#pkts decompress failed: 0
    #send errors 0, #recv errors 0

     local crypto endpt.: 172.16.172.39, 
	 remote crypto endpt.: 172.16.172.34
     path mtu 1500, media mtu 1500
     current outbound spi: 3803A0C1

     inbound esp sas:
      spi: 0xD740971C(3611334428)
        transform: esp-des esp-md5-hmac ,
        in use settings ={Tunnel, }
        slot: 0, conn id: 200, flow_id: 1, 
		crypto map: vpn
        sa timing: remaining key lifetime 
		(k/sec): (4607999/3150)
        IV size: 8 bytes
        replay detection support: Y

     inbound ah sas:

     inbound pcp sas:

     outbound esp sas:
      spi: 0x3803A0C1(939761857)
        transform: esp-des esp-md5-hmac ,
        in use settings ={Tunnel, }
        slot: 0, conn id: 201, flow_id: 2, 
		crypto map: vpn
        sa timing: remaining key lifetime 
		(k/sec): (4607999/3141)
        IV size: 8 bytes
        replay detection support: Y

     outbound ah sas:

     outbound pcp sas:


"##;

/// `sh cr en conn ac` on the IOS 12.2 router.
pub const ROUTER_ENGINE_CONNECTIONS: &str = r##"
  ID Interface       IP-Address     State   Algorithm               Encrypt  Decrypt
 110 FastEthernet0   172.16.172.39   set    HMAC_MD5+DES_56_CB        0        0
 114 FastEthernet0   172.16.172.39   alloc  NONE                      0        0
 115 FastEthernet0   172.16.172.39   alloc  NONE                      0        0
 116 FastEthernet0   172.16.172.39   alloc  NONE                      0        0
 117 FastEthernet0   172.16.172.39   alloc  NONE                      0        0
 200 FastEthernet0   172.16.172.39   set    HMAC_MD5+DES_56_CB        0        3
 201 FastEthernet0   172.16.172.39   set    HMAC_MD5+DES_56_CB        3        0


"##;

/// `sh crypto ca crls` on the IOS 12.2 router (the document indents it by 4 spaces).
pub const ROUTER_CRLS: &str = r##"    CRL Issuer Name: 
        OU = sjvpn, O = cisco, C = us
        LastUpdate: 16:17:34 PST Jan 10 2002
        NextUpdate: 17:17:34 PST Jan 11 2002
        Retrieved from CRL Distribution Point: 
          LDAP: CN = CRL1, OU = sjvpn, O = cisco, C = us
    
"##;

/// `show crypto isakmp sa` on Branch1, a newer IOS (the document collapsed its spacing).
pub const BRANCH_ISAKMP_SA: &str = r##"IPv4 Crypto ISAKMP SA
dst src state conn-id slot status
10.2.2.1 10.1.1.1 QM_IDLE 1001 0 ACTIVE
IPv6 Crypto ISAKMP SA
"##;

/// `show crypto ipsec sa` on Branch1, a newer IOS (the document removed its indentation and blank lines).
pub const BRANCH_IPSEC_SA: &str = r##"interface: Serial0/0
Crypto map tag: CRYPTO, local addr 10.1.1.1
protected vrf: (none)
local ident (addr/mask/prot/port): (192.168.11.0/255.255.255.0/0/0)
remote ident (addr/mask/prot/port): (192.168.22.0/255.255.255.0/0/0)
current_peer 10.2.2.1 port 500
PERMIT, flags={origin_is_acl,}
#pkts encaps: 4, #pkts encrypt: 4, #pkts digest: 4
#pkts decaps: 4, #pkts decrypt: 4, #pkts verify: 4
#pkts compressed: 0, #pkts decompressed: 0
#pkts not compressed: 0, #pkts compr. failed: 0
#pkts not decompressed: 0, #pkts decompress failed: 0
#send errors 1, #recv errors 0
local crypto endpt.: 10.1.1.1, remote crypto endpt.: 10.2.2.1
path mtu 1500, ip mtu 1500, ip mtu idb Serial0/0
current outbound spi: 0x34F84D56(888687958)
inbound esp sas:
spi: 0xAC4D6EB3(2890755763)
transform: esp-3des esp-md5-hmac ,
in use settings ={Tunnel, }
conn id: 1, flow_id: SW:1, crypto map: CRYPTO
sa timing: remaining key lifetime (k/sec): (4506395/3539)
IV size: 8 bytes
replay detection support: Y
Status: ACTIVE
inbound ah sas:
inbound pcp sas:
outbound esp sas:
spi: 0x34F84D56(888687958)
transform: esp-3des esp-md5-hmac ,
in use settings ={Tunnel, }
conn id: 2, flow_id: SW:2, crypto map: CRYPTO
sa timing: remaining key lifetime (k/sec): (4506395/3539)
IV size: 8 bytes
replay detection support: Y
Status: ACTIVE
outbound ah sas:
outbound pcp sas:
"##;

/// `show crypto pki certificates` on Branch1, a newer IOS (the document removed its indentation and wrapped a long URL).
pub const BRANCH_PKI_CERTIFICATES: &str = r##"Certificate
Status: Available
Certificate Serial Number: 0x614C662A000000000009
Certificate Usage: General Purpose
Issuer:
cn=WIN2003
dc=amit
dc=com
Subject:
Name: Branch1.amit.com
hostname=Branch1.amit.com
CRL Distribution Points:
ldap:///CN=WIN2003,CN=amit-ed0d48583a,CN=CDP,CN=Public%20Key%20Services,CN=S
ervices,CN=Configuration,DC=amit,DC=com?certificateRevocationList?base?objectCla
ss=cRLDistributionPoint
http://amit-ed0d48583a.amit.com/CertEnroll/WIN2003.crl
Validity Date:
start date: 04:00:18 AEST Jun 5 2010
end date: 04:10:18 AEST Jun 5 2011
Associated Trustpoints: WIN2003
CA Certificate
Status: Available
Certificate Serial Number: 0x6462CFFA77B593A74DB4E13D530CBC02
Certificate Usage: Signature
Issuer:
cn=WIN2003
dc=amit
dc=com
Subject:
cn=WIN2003
dc=amit
dc=com
CRL Distribution Points:
ldap:///CN=WIN2003,CN=amit-ed0d48583a,CN=CDP,CN=Public%20Key%20Services,CN=S
ervices,CN=Configuration,DC=amit,DC=com?certificateRevocationList?base?objectCla
ss=cRLDistributionPoint
http://amit-ed0d48583a.amit.com/CertEnroll/WIN2003.crl
Validity Date:
start date: 03:31:18 AEST May 21 2010
end date: 03:40:13 AEST May 21 2020
Associated Trustpoints: WIN2003
"##;

/// Undoes the document's line wraps: a line that starts with a tab continues the previous
/// one (the reference says so), and is joined to it without its leading whitespace.
pub fn unwrap_document(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with('\t') && out.ends_with('\n') {
            out.pop();
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The non-empty lines of a text as lists of words: how a sample whose spacing and
/// indentation the document lost is compared with ours.
pub fn words_per_line(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Removes the indentation the document added to every line of a sample.
pub fn dedent(text: &str, by: usize) -> String {
    text.split_inclusive('\n')
        .map(|l| {
            let n = l.len() - l.trim_start_matches(' ').len();
            &l[n.min(by)..]
        })
        .collect()
}
