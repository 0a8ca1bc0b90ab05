//! Under systemd, stderr is a stream into journald: `ipsec-control` then writes each line
//! with the `<N>` syslog priority of its IOS tag (journald's SyslogLevelPrefix) and without
//! its own timestamp. The stream is recognised as systemd does it: `JOURNAL_STREAM` names
//! the device and inode of the stream, here a file the test owns.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"
hostname = "gw"
[dataplane]
eal = ["--no-huge"]
lcores = {{ main = 0, workers = [1] }}
channel = "{dir}/dp.sock"
[[interface]]
name = "inside"
role = "inside"
device = "net_null0"
address = ["10.1.0.1/24"]
[[interface]]
name = "outside"
role = "outside"
device = "net_null1"
address = ["192.0.2.1/24"]
crypto_map = "vpn"
[transform_set.ts]
esp = ["esp-aes", "esp-sha-hmac"]
[access_list]
101 = [ {{ action = "permit", protocol = "ip", source = "10.1.0.0/24", destination = "10.2.0.0/24" }} ]
[isakmp]
[[isakmp.policy]]
priority = 10
encryption = "aes"
hash = "sha"
authentication = "pre-share"
group = 14
lifetime = 3600
[[isakmp.key]]
key = "test-only"
address = "192.0.2.2"
[ctl]
socket = "{dir}/ctl.sock"
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "192.0.2.2"
transform_set = "ts"
match_address = "101"
"#,
        dir = dir.display()
    )
}

/// Runs ipsec-control (no dataplane to connect to) with stderr into `log` until it has
/// said `wanted`, and returns what it wrote.
fn run(journal: bool, wanted: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("gw.toml");
    std::fs::write(&toml, config(dir.path())).unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipsec-control"));
    cmd.arg("--config")
        .arg(&toml)
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(log);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains(wanted) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains(wanted), "no {wanted:?} in: {text}");
    text
}

#[test]
fn into_journald_each_line_carries_the_priority_of_its_tag() {
    let text = run(true, "%CRYPTO-4-DATAPLANE: no dataplane");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>%CRYPTO-6-IKMP_ON: ISAKMP is enabled")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>%CRYPTO-4-DATAPLANE: no dataplane")),
        "{text}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with('<')),
        "every line has a priority and no timestamp: {text}"
    );
}

#[test]
fn elsewhere_lines_are_timestamped_as_ios_does() {
    let text = run(false, "%CRYPTO-4-DATAPLANE: no dataplane");
    for l in text.lines() {
        assert!(l.starts_with('*'), "{l}");
        assert!(!l.starts_with('<'), "{l}");
    }
}
