//! `ipsec-control`: the IKEv1 daemon. Not built yet (issue 3); today it only validates a
//! configuration file with the dataplane's parser.
fn main() {
    eprintln!("ipsec-control: the IKEv1 control plane is not implemented yet (issue 3)");
    std::process::exit(2);
}
