//! Finds the system DPDK with pkg-config, generates bindings with bindgen, and compiles the
//! C shim for the static-inline fast-path functions.

use std::env;
use std::path::PathBuf;

fn main() {
    let lib = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
        .expect("DPDK not found: install libdpdk-dev (make deps)");
    // pkg-config --cflags also carries `-include rte_config.h` and `-march=...`, which
    // `probe` does not return: ask for the raw flags.
    let cflags = String::from_utf8(
        std::process::Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .expect("pkg-config")
            .stdout,
    )
    .unwrap();
    let cflags: Vec<String> = cflags.split_whitespace().map(String::from).collect();
    let libs = String::from_utf8(
        std::process::Command::new("pkg-config")
            .args(["--libs", "libdpdk"])
            .output()
            .expect("pkg-config")
            .stdout,
    )
    .unwrap();
    for flag in libs.split_whitespace() {
        if let Some(l) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={l}");
        } else if let Some(p) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={p}");
        } else if flag.starts_with("-Wl,") {
            // --as-needed would drop the PMD-less libraries whose constructors register
            // buses and drivers: leave it out on purpose.
        }
    }
    let _ = lib;
    // intel-ipsec-mb (libipsec-mb-dev, installed with DPDK's crypto PMDs): AES-GCM backend.
    println!("cargo:rustc-link-lib=dylib=IPSec_MB");

    let mut cc = cc::Build::new();
    cc.file("shim.c").include(".").opt_level(3).warnings(false);
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("dpdkshim");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(cflags.iter().filter(|f| !f.starts_with("-march")))
        .clang_arg("-I.")
        .allowlist_function(
            "shim_.*|rte_eal_.*|rte_eth_.*|rte_pktmbuf_.*|rte_mempool_.*|rte_ring_create|rte_ring_free|rte_lcore_.*|rte_socket_id|rte_get_.*|rte_strerror|rte_version|rte_zmalloc.*|rte_free|rte_delay_us_block",
        )
        .allowlist_type("rte_mbuf|rte_mempool|rte_ring|rte_ether_addr|rte_eth_.*")
        .allowlist_var("RTE_ETH_.*|RTE_MBUF_.*|RTE_PKTMBUF_.*|RTE_MAX_.*|RTE_RING_.*|SOCKET_ID_ANY|RTE_MEMPOOL_.*")
        .derive_debug(false)
        .blocklist_type("max_align_t")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings.write_to_file(out.join("bindings.rs")).unwrap();
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=wrapper.h");
}
