//! Running one command line: parse it, ask the backend for the views or the action, render
//! IOS's text or the views' JSON, and choose the exit code. The server calls this for every
//! request; it holds nothing but the session's debug set.

use serde::Serialize;

use crate::ctl::backend::CtlBackend;
use crate::ctl::command::{self, Command, DebugFacility, IpsecSaFilter, Show};
use crate::ctl::protocol::exit;
use crate::ctl::show;
use crate::ctl::view::IpsecSaView;

/// The debug traces a session has turned on (`debug crypto ...`): the lines of these
/// facilities are pushed to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugSet(u8);

impl DebugSet {
    pub fn contains(self, f: DebugFacility) -> bool {
        self.0 & f.bit() != 0
    }
    pub fn insert(&mut self, f: DebugFacility) {
        self.0 |= f.bit();
    }
    pub fn remove(&mut self, f: DebugFacility) {
        self.0 &= !f.bit();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The set as bits (see [`DebugFacility::bit`]).
    pub fn bits(self) -> u8 {
        self.0
    }
}

/// What a command produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: i32,
    pub output: String,
}

impl Outcome {
    fn ok(output: String) -> Outcome {
        Outcome {
            exit_code: exit::OK,
            output,
        }
    }

    /// An error in IOS's words, or as `{"error": ...}` for JSON.
    fn error(exit_code: i32, text: String, json: bool) -> Outcome {
        let output = if json {
            json_text(&serde_json::json!({ "error": text.trim_end() }))
        } else {
            text
        };
        Outcome { exit_code, output }
    }
}

fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("views always serialise");
    s.push('\n');
    s
}

/// Parses and runs a line as the server received it (errors echo the line, since the
/// server cannot know the client's prompt).
pub fn execute_line(
    line: &str,
    json: bool,
    backend: &mut dyn CtlBackend,
    debug: &mut DebugSet,
) -> Outcome {
    match command::parse(line) {
        Ok(cmd) => execute(&cmd, json, backend, debug),
        Err(e) if json => Outcome::error(exit::SYNTAX, e.to_string(), true),
        Err(e) => Outcome::error(exit::SYNTAX, e.render_with_line(line), false),
    }
}

/// Shows views: their JSON, or the text `render` makes of them.
fn show<T: Serialize + ?Sized>(
    views: Result<impl AsRef<T>, String>,
    json: bool,
    render: impl FnOnce(&T) -> String,
) -> Outcome {
    match views {
        Ok(v) if json => Outcome::ok(json_text(v.as_ref())),
        Ok(v) => Outcome::ok(render(v.as_ref())),
        Err(reason) => Outcome::error(exit::FAILED, format!("% {reason}\n"), json),
    }
}

/// The answer of an action: its message (usually empty, as IOS says nothing).
fn action(result: Result<String, String>, json: bool) -> Outcome {
    match result {
        Ok(message) if json => Outcome::ok(json_text(&serde_json::json!({ "message": message }))),
        Ok(message) if message.is_empty() || message.ends_with('\n') => Outcome::ok(message),
        Ok(message) => Outcome::ok(message + "\n"),
        Err(reason) => Outcome::error(exit::FAILED, format!("% {reason}\n"), json),
    }
}

/// Runs a parsed command.
pub fn execute(
    cmd: &Command,
    json: bool,
    backend: &mut dyn CtlBackend,
    debug: &mut DebugSet,
) -> Outcome {
    match cmd {
        Command::Show(s) => execute_show(s, json, backend, debug),
        Command::ClearSa(which) => action(backend.clear_sa(which), json),
        Command::ClearIsakmp(conn_id) => action(backend.clear_isakmp(*conn_id), json),
        Command::CrlRequest(tp) => action(backend.crl_request(tp), json),
        Command::Reload => action(backend.reload(), json),
        Command::Debug(f) => {
            debug.insert(*f);
            action(Ok(format!("{} debugging is on", f.title())), json)
        }
        Command::Undebug(None) => {
            *debug = DebugSet::default();
            action(
                Ok("All possible debugging has been turned off".into()),
                json,
            )
        }
        Command::Undebug(Some(f)) => {
            debug.remove(*f);
            action(Ok(format!("{} debugging is off", f.title())), json)
        }
        Command::Exit => action(Ok(String::new()), json),
    }
}

fn execute_show(s: &Show, json: bool, backend: &mut dyn CtlBackend, debug: &DebugSet) -> Outcome {
    use show::{engine, ipsec, isakmp, map, pki};
    match s {
        Show::IsakmpSa { detail: false } => show(backend.isakmp_sas(), json, isakmp::render_sa),
        Show::IsakmpSa { detail: true } => {
            show(backend.isakmp_sas(), json, isakmp::render_sa_detail)
        }
        Show::IsakmpPolicy => show(backend.isakmp_policies(), json, isakmp::render_policy),
        Show::IpsecSa { filter, detail } => {
            let flows = backend.ipsec_sas().map(|all| match filter {
                IpsecSaFilter::All => all,
                IpsecSaFilter::Peer(p) => ipsec::filter_peer(&all, *p),
                IpsecSaFilter::Map(m) => ipsec::filter_map(&all, m),
            });
            show(flows, json, |f: &[IpsecSaView]| {
                ipsec::render_sa(f, *detail)
            })
        }
        Show::TransformSet => show(backend.transform_sets(), json, ipsec::render_transform_sets),
        Show::CryptoMap => show(backend.crypto_maps(), json, map::render),
        Show::EngineConnections => show(
            backend.engine_connections(),
            json,
            engine::render_connections,
        ),
        Show::EngineBrief => show(backend.engine().map(Box::new), json, engine::render_brief),
        Show::EngineConfiguration => show(
            backend.engine().map(Box::new),
            json,
            engine::render_configuration,
        ),
        Show::EngineStatistics => {
            // ipsec-control's own key pairs: known even when the dataplane is not
            let dh = backend.dh_key_pairs().unwrap_or_default();
            show(backend.lcore_stats(), json, |lcores: &[_]| {
                engine::render_accelerator_statistics(lcores, &dh)
            })
        }
        Show::PkiCertificates => show(backend.certificates(), json, pki::render_certificates),
        Show::PkiTrustpoints => show(backend.trustpoints(), json, pki::render_trustpoints),
        Show::PkiCrls => show(backend.crls(), json, pki::render_crls),
        Show::Debugging => {
            let on: Vec<DebugFacility> = DebugFacility::ALL
                .into_iter()
                .filter(|f| debug.contains(*f))
                .collect();
            if json {
                return Outcome::ok(json_text(&on));
            }
            let mut out = String::new();
            if !on.is_empty() {
                out.push_str("Cryptographic Subsystem:\n");
                for f in on {
                    out.push_str(&format!("  {} debugging is on\n", f.title()));
                }
            }
            Outcome::ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::testing::{self, TestBackend};

    fn run(line: &str, json: bool, b: &mut TestBackend, d: &mut DebugSet) -> Outcome {
        execute_line(line, json, b, d)
    }

    #[test]
    fn show_text_and_json() {
        let (mut b, mut d) = (TestBackend::default(), DebugSet::default());
        let o = run("sh cr en conn ac", false, &mut b, &mut d);
        assert_eq!(o.exit_code, exit::OK);
        assert_eq!(
            o.output,
            show::engine::render_connections(&testing::router_engine_connections())
        );
        let o = run("sh cr ipsec sa", true, &mut b, &mut d);
        let back: Vec<IpsecSaView> = serde_json::from_str(&o.output).unwrap();
        assert_eq!(back, testing::router_ipsec_sas());
        let o = run("sh cr en brief", true, &mut b, &mut d);
        let back: crate::ctl::view::EngineView = serde_json::from_str(&o.output).unwrap();
        assert_eq!(back, testing::engine());
    }

    #[test]
    fn ipsec_filters() {
        let (mut b, mut d) = (TestBackend::default(), DebugSet::default());
        let o = run("sh cr ips sa peer 10.9.9.9", true, &mut b, &mut d);
        assert_eq!(o.output, "[]\n");
        let o = run("sh cr ips sa map vpn", false, &mut b, &mut d);
        assert!(o.output.contains("current_peer 172.16.172.34 port 500"));
        let o = run("sh cr ips sa det", false, &mut b, &mut d);
        assert!(o.output.contains("drops (replay): 1"));
    }

    #[test]
    fn errors_and_exit_codes() {
        let (mut b, mut d) = (TestBackend::default(), DebugSet::default());
        let o = run("sh cr foo", false, &mut b, &mut d);
        assert_eq!(o.exit_code, exit::SYNTAX);
        assert_eq!(
            o.output,
            "sh cr foo\n      ^\n% Invalid input detected at '^' marker.\n\n"
        );
        let o = run("sh cr i sa", true, &mut b, &mut d);
        assert_eq!(o.exit_code, exit::SYNTAX);
        let v: serde_json::Value = serde_json::from_str(&o.output).unwrap();
        assert_eq!(v["error"], "% Ambiguous command:  \"sh cr i\"");
        let o = run("crypto pki crl request nope", false, &mut b, &mut d);
        assert_eq!(o.exit_code, exit::FAILED);
        assert_eq!(o.output, "% trustpoint nope does not exist\n");
        b.fail = Some("the dataplane is not connected".into());
        let o = run("sh cr ipsec sa", false, &mut b, &mut d);
        assert_eq!(o.exit_code, exit::FAILED);
        assert_eq!(o.output, "% the dataplane is not connected\n");
    }

    #[test]
    fn actions_reach_the_backend() {
        let (mut b, mut d) = (TestBackend::default(), DebugSet::default());
        for line in [
            "clear crypto sa peer 172.16.172.34",
            "clear crypto sa spi 0x3803A0C1",
            "cl cr isa 110",
            "crypto pki crl request WIN2003",
        ] {
            let o = run(line, false, &mut b, &mut d);
            assert_eq!(o, Outcome::ok(String::new()), "{line}");
        }
        let o = run("reload", false, &mut b, &mut d);
        assert!(o.output.ends_with("1 removed\n"));
        assert_eq!(
            b.actions,
            [
                "clear sa Peer(172.16.172.34)",
                "clear sa Spi(939761857)",
                "clear isakmp Some(110)",
                "crl request WIN2003",
                "reload"
            ]
        );
    }

    #[test]
    fn debug_set_follows_the_commands() {
        let (mut b, mut d) = (TestBackend::default(), DebugSet::default());
        let o = run("debug crypto isakmp", false, &mut b, &mut d);
        assert_eq!(o.output, "Crypto ISAKMP debugging is on\n");
        run("deb cr ips", false, &mut b, &mut d);
        assert!(d.contains(DebugFacility::Isakmp) && d.contains(DebugFacility::Ipsec));
        let o = run("show debugging", false, &mut b, &mut d);
        assert_eq!(
            o.output,
            "Cryptographic Subsystem:\n  Crypto ISAKMP debugging is on\n  Crypto IPSEC debugging is on\n"
        );
        run("undebug crypto isakmp", false, &mut b, &mut d);
        assert!(!d.contains(DebugFacility::Isakmp));
        let o = run("undebug all", false, &mut b, &mut d);
        assert_eq!(o.output, "All possible debugging has been turned off\n");
        assert!(d.is_empty());
    }
}
