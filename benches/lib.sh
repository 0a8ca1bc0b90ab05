#!/bin/bash
# What the net_pcap/net_null benchmarks share (benches/throughput.sh, benches/sa-install.sh):
# the test keys of their one static esp-gcm 128 tunnel and the gateway configuration around
# it. Sourced; sets nothing else.
#
# The keys are made up for the benchmarks (cipher key then the 4-byte salt, RFC 4106) and
# written only into the benchmarks' temporary files.
GCM_OUT=0102030405060708090a0b0c0d0e0f10a1a2a3a4
GCM_IN=4142434445464748494a4b4c4d4e4f50b1b2b3b4

# bench_gateway_toml OUT PREFIX CHANNEL INSIDE_DEVICE OUTSIDE_DEVICE [EXTRA_TOML]: the
# ipsec-dataplane configuration of the benchmarks: one worker (lcore 1, main on 0), inside
# 10.10.1.254/24 and outside 10.99.0.1/24 on the given DPDK devices, the peer 10.99.0.2 (static
# ARP) behind which 10.10.2.0/24 lies, and crypto map vpn 10: ipsec-manual, esp-gcm 128, SPIs
# 5 out and 105 in, replay window off (a replayed pcap repeats its sequence numbers) and the
# longest lifetimes (the default 4608000 KB would expire within seconds). EXTRA_TOML is
# appended (more routes or ARP entries).
bench_gateway_toml() {
    local out=$1 prefix=$2 channel=$3 inside=$4 outside=$5 extra=${6:-}
    cat >"$out" <<EOF
hostname = "bench"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "1024", "--file-prefix", "$prefix", "--log-level", "*:error"]
lcores = { main = 0, workers = [1] }
mbufs = 16384
channel = "$channel"
[[interface]]
name = "inside"
role = "inside"
device = "$inside"
address = ["10.10.1.254/24"]
[[interface]]
name = "outside"
role = "outside"
device = "$outside"
address = ["10.99.0.1/24"]
crypto_map = "vpn"
[[route]]
prefix = "10.10.2.0/24"
next_hop = "10.99.0.2"
[[arp]]
address = "10.99.0.2"
mac = "02:00:00:00:00:02"
[transform_set.gcm128]
esp = ["esp-gcm", "128"]
[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.10.1.0/24", destination = "10.10.2.0/24" } ]
[[crypto_map.vpn]]
seq = 10
type = "ipsec-manual"
peer = "10.99.0.2"
transform_set = "gcm128"
match_address = "101"
replay_window = "disable"
lifetime = { seconds = 86400, kilobytes = 4294967295 }
session_key.inbound = { spi = 105, cipher = "$GCM_IN" }
session_key.outbound = { spi = 5, cipher = "$GCM_OUT" }
$extra
EOF
}
