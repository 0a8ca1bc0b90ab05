//! The ctl socket's server: a Unix stream socket that `ipsec-ctl` connects to, served from
//! the daemon's single-threaded event loop.
//!
//! - [`CtlServer::bind`] creates the socket with mode 0600 (0660 and the configured group
//!   when one is given) before it starts listening, so no connection can be made while the
//!   mode is still the umask's. A stale socket left by a dead daemon is replaced; a live
//!   one is not.
//! - Each accepted connection's peer credentials (`SO_PEERCRED`) are checked
//!   ([`check_credentials`]): root, the daemon's own user, or the configured group. Others
//!   get a [`ServerMessage::Refused`] with the reason and are closed.
//! - [`CtlServer::poll`] never blocks: it accepts what is pending, reads what has arrived,
//!   answers every complete request through the [`CtlBackend`], writes what the sockets
//!   take and keeps the rest for the next call. A malformed request gets an error reply;
//!   a frame too large to skip closes that connection; nothing stops the server.
//! - [`Monitor`] is the sink for debug traces: the daemon writes lines to it (from anywhere,
//!   it is `Send + Sync` and cheap to clone), and each poll pushes them to the sessions that
//!   turned that trace on with `debug crypto ...`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::unistd::{Gid, Group, Uid, User};

use crate::ctl::backend::CtlBackend;
use crate::ctl::command::DebugFacility;
use crate::ctl::execute::{execute_line, DebugSet};
use crate::ctl::protocol::{
    encode, exit, FrameBuffer, Request, ServerMessage, MAX_REQUEST, PROTOCOL_VERSION,
};

/// How the socket is created and who may use it.
#[derive(Clone, Debug, Default)]
pub struct CtlServerOptions {
    /// A group whose members may use the socket besides root (the socket is then mode 0660
    /// and owned by that group). None: root and the daemon's user only, mode 0600.
    pub group: Option<u32>,
    /// Connections served at once; more are refused. 0 means the default (64).
    pub max_sessions: usize,
}

/// Who is at the other end of a connection (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// Who may use the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The daemon's effective uid: its own user is always allowed.
    pub server_uid: u32,
    /// The configured group, if any.
    pub group: Option<u32>,
}

/// Whether a peer may use the socket: root, the daemon's user, a process whose group is the
/// configured group, or a user the group database lists as a member of it (SO_PEERCRED
/// carries only the primary group). Err is the reason given to the refused peer.
pub fn check_credentials(peer: PeerCredentials, policy: &AccessPolicy) -> Result<(), String> {
    if peer.uid == 0 || peer.uid == policy.server_uid {
        return Ok(());
    }
    if let Some(group) = policy.group {
        if peer.gid == group || is_group_member(peer.uid, group) {
            return Ok(());
        }
        return Err(format!(
            "Access denied: uid {} (pid {}) is neither root nor a member of group {}",
            peer.uid,
            peer.pid,
            group_name(group)
        ));
    }
    Err(format!(
        "Access denied: uid {} (pid {}) is not root",
        peer.uid, peer.pid
    ))
}

/// Whether the group database lists `uid`'s user as a member of `gid`.
fn is_group_member(uid: u32, gid: u32) -> bool {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    if user.gid.as_raw() == gid {
        return true;
    }
    matches!(Group::from_gid(Gid::from_raw(gid)), Ok(Some(g)) if g.mem.contains(&user.name))
}

fn group_name(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => format!("{} (gid {gid})", g.name),
        _ => format!("gid {gid}"),
    }
}

/// Lines a monitor keeps while no poll drains them; older ones are dropped first.
const MONITOR_BACKLOG: usize = 10_000;

/// Bytes a session may have waiting to be written before pushed debug lines are dropped
/// for it (a client that stops reading must not grow the daemon without bound).
const MAX_PENDING: usize = 4 << 20;

#[derive(Default)]
struct MonitorShared {
    /// Bits of the facilities some session wants ([`DebugFacility::bit`]).
    wanted: AtomicU8,
    lines: Mutex<VecDeque<(DebugFacility, String)>>,
}

/// The sink for debug traces (IOS's `terminal monitor`): the daemon's IKE, IPsec and engine
/// code write lines here, and [`CtlServer::poll`] delivers them to the sessions that asked.
#[derive(Clone, Default)]
pub struct Monitor(Arc<MonitorShared>);

impl Monitor {
    /// Whether any session wants this trace: check it before formatting a costly line.
    pub fn enabled(&self, facility: DebugFacility) -> bool {
        self.0.wanted.load(Ordering::Relaxed) & facility.bit() != 0
    }

    /// Queues a line (without its newline) for the sessions debugging `facility`; a no-op
    /// when none is.
    pub fn line(&self, facility: DebugFacility, text: impl Into<String>) {
        if !self.enabled(facility) {
            return;
        }
        let mut lines = self.0.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() >= MONITOR_BACKLOG {
            lines.pop_front();
        }
        lines.push_back((facility, text.into()));
    }

    fn take(&self) -> VecDeque<(DebugFacility, String)> {
        std::mem::take(&mut *self.0.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn set_wanted(&self, bits: u8) {
        self.0.wanted.store(bits, Ordering::Relaxed);
    }
}

/// One accepted connection.
struct Session {
    stream: UnixStream,
    incoming: FrameBuffer,
    outgoing: Vec<u8>,
    debug: DebugSet,
    /// The peer closed its end (or must be closed): no more reading; the session ends once
    /// `outgoing` is written.
    closing: bool,
    /// A write failed: the session ends now.
    broken: bool,
    /// Debug lines not queued because the client was not reading.
    dropped_lines: u64,
}

impl Session {
    fn new(stream: UnixStream) -> Session {
        Session {
            stream,
            incoming: FrameBuffer::new(MAX_REQUEST),
            outgoing: Vec::new(),
            debug: DebugSet::default(),
            closing: false,
            broken: false,
            dropped_lines: 0,
        }
    }

    fn send(&mut self, msg: &ServerMessage) {
        self.outgoing.extend_from_slice(&encode(msg));
    }

    /// Reads what has arrived, without blocking.
    fn read_available(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        while !self.closing {
            match self.stream.read(&mut buf) {
                Ok(0) => self.closing = true,
                Ok(n) => self.incoming.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closing = true;
                    self.broken = true;
                }
            }
        }
    }

    /// Answers every complete request.
    fn serve(&mut self, backend: &mut dyn CtlBackend) -> usize {
        let mut served = 0;
        loop {
            let frame = match self.incoming.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(too_large) => {
                    self.send(&ServerMessage::Reply {
                        exit_code: exit::PROTOCOL,
                        output: format!(
                            "% Malformed request: a frame of {} bytes (the limit is {MAX_REQUEST})\n",
                            too_large.0
                        ),
                    });
                    self.closing = true;
                    break;
                }
            };
            served += 1;
            let reply = match serde_json::from_slice::<Request>(&frame) {
                Ok(req) => {
                    let o = execute_line(&req.command, req.json, backend, &mut self.debug);
                    ServerMessage::Reply {
                        exit_code: o.exit_code,
                        output: o.output,
                    }
                }
                Err(e) => ServerMessage::Reply {
                    exit_code: exit::PROTOCOL,
                    output: format!("% Malformed request: {e}\n"),
                },
            };
            self.send(&reply);
        }
        served
    }

    /// Writes what the socket takes, without blocking.
    fn flush(&mut self) {
        while !self.outgoing.is_empty() && !self.broken {
            match self.stream.write(&self.outgoing) {
                Ok(0) => self.broken = true,
                Ok(n) => {
                    self.outgoing.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.broken = true,
            }
        }
    }

    fn finished(&self) -> bool {
        self.broken || (self.closing && self.outgoing.is_empty())
    }
}

/// The ctl socket's server. Dropping it removes the socket file.
pub struct CtlServer {
    listener: UnixListener,
    path: PathBuf,
    policy: AccessPolicy,
    max_sessions: usize,
    sessions: Vec<Session>,
    monitor: Monitor,
    /// [`check_credentials`]; a field so that tests can refuse a fake user.
    credential_check: fn(PeerCredentials, &AccessPolicy) -> Result<(), String>,
}

impl CtlServer {
    /// Creates the socket at `path` (its directory too, if missing) and listens.
    pub fn bind(path: impl AsRef<Path>, options: CtlServerOptions) -> io::Result<CtlServer> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        remove_stale_socket(&path)?;
        let fd = create_listening_socket(&path, options.group)?;
        Ok(CtlServer {
            listener: UnixListener::from(fd),
            path,
            policy: AccessPolicy {
                server_uid: Uid::effective().as_raw(),
                group: options.group,
            },
            max_sessions: if options.max_sessions == 0 {
                64
            } else {
                options.max_sessions
            },
            sessions: Vec::new(),
            monitor: Monitor::default(),
            credential_check: check_credentials,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle on the debug-trace sink, for the daemon's modules.
    pub fn monitor(&self) -> Monitor {
        self.monitor.clone()
    }

    /// Connections open now.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The descriptors to watch for readability (the listener and every session), for a
    /// daemon that sleeps in poll/epoll between calls to [`CtlServer::poll`].
    pub fn fds(&self) -> Vec<RawFd> {
        std::iter::once(self.listener.as_raw_fd())
            .chain(self.sessions.iter().map(|s| s.stream.as_raw_fd()))
            .collect()
    }

    /// Whether some session has output the socket did not take yet (then also watch the
    /// sessions for writability, or poll again soon).
    pub fn wants_write(&self) -> bool {
        self.sessions.iter().any(|s| !s.outgoing.is_empty())
    }

    /// Does everything that can be done now without blocking: accept, read, answer,
    /// deliver debug lines, write. Returns the number of requests answered and connections
    /// accepted (0: nothing happened).
    pub fn poll(&mut self, backend: &mut dyn CtlBackend) -> usize {
        let mut work = self.accept_pending(backend);
        for (facility, line) in self.monitor.take() {
            for s in self
                .sessions
                .iter_mut()
                .filter(|s| s.debug.contains(facility) && !s.closing)
            {
                if s.outgoing.len() < MAX_PENDING {
                    s.send(&ServerMessage::Monitor { line: line.clone() });
                } else {
                    s.dropped_lines += 1;
                }
            }
        }
        for s in &mut self.sessions {
            s.read_available();
            work += s.serve(backend);
            s.flush();
        }
        self.sessions.retain(|s| {
            if s.finished() && s.dropped_lines > 0 {
                log::info!(
                    "ctl: a session closed with {} debug lines not delivered",
                    s.dropped_lines
                );
            }
            !s.finished()
        });
        let wanted = self
            .sessions
            .iter()
            .fold(0, |bits, s| bits | s.debug.bits());
        self.monitor.set_wanted(wanted);
        work
    }

    fn accept_pending(&mut self, backend: &mut dyn CtlBackend) -> usize {
        let mut accepted = 0;
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: leave the connection pending for a later poll.
                    log::warn!("ctl: accept on {}: {e}", self.path.display());
                    break;
                }
            };
            accepted += 1;
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut session = Session::new(stream);
            let verdict = peer_credentials(&session.stream)
                .map_err(|e| format!("Access denied: peer credentials unavailable ({e})"))
                .and_then(|cred| (self.credential_check)(cred, &self.policy))
                .and_then(|()| {
                    if self.sessions.len() >= self.max_sessions {
                        Err(format!(
                            "Too many sessions ({} open), try again later",
                            self.sessions.len()
                        ))
                    } else {
                        Ok(())
                    }
                });
            match verdict {
                Ok(()) => session.send(&ServerMessage::Hello {
                    hostname: backend.hostname(),
                    version: PROTOCOL_VERSION,
                }),
                Err(reason) => {
                    log::warn!("ctl: connection refused: {reason}");
                    session.send(&ServerMessage::Refused {
                        reason: format!("% {reason}"),
                    });
                    session.closing = true;
                }
            }
            session.flush();
            if !session.finished() {
                self.sessions.push(session);
            }
        }
        accepted
    }
}

impl AsRawFd for CtlServer {
    /// The listening socket.
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `SO_PEERCRED` of a connected Unix socket.
pub fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let cred = socket::getsockopt(&stream.as_fd(), sockopt::PeerCredentials)?;
    Ok(PeerCredentials {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// Removes a socket file nobody listens on; refuses to touch a live socket or anything
/// that is not a socket.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by another process", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

/// socket + bind + chmod/chown + listen, so that the socket accepts connections only once
/// its mode is set.
fn create_listening_socket(path: &Path, group: Option<u32>) -> io::Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    socket::bind(fd.as_raw_fd(), &addr)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    let configured = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .and_then(|()| match group {
            Some(gid) => {
                nix::unistd::chown(path, None, Some(Gid::from_raw(gid))).map_err(io::Error::from)
            }
            None => Ok(()),
        })
        .and_then(|()| socket::listen(&fd, Backlog::new(64)?).map_err(io::Error::from));
    if let Err(e) = configured {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::protocol::{read_frame, write_frame, MAX_REPLY};
    use crate::ctl::testing::{self, TestBackend};
    use crate::ctl::view::IsakmpSaView;
    use std::time::{Duration, Instant};

    /// Polls the server until `done` holds (or a few seconds pass).
    fn pump(server: &mut CtlServer, backend: &mut TestBackend, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out");
            server.poll(backend);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A client on its own thread: connects, reads the hello, and runs the given requests
    /// (raw frames), returning every message it received.
    fn client(
        path: PathBuf,
        frames: Vec<Vec<u8>>,
        expect: usize,
    ) -> std::thread::JoinHandle<Vec<ServerMessage>> {
        std::thread::spawn(move || {
            let mut s = UnixStream::connect(&path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = vec![read_frame::<ServerMessage>(&mut s, MAX_REPLY).unwrap()];
            for f in frames {
                // A refused client may find the socket closed already.
                let _ = s.write_all(&f);
            }
            while got.len() < expect {
                match read_frame::<ServerMessage>(&mut s, MAX_REPLY) {
                    Ok(m) => got.push(m),
                    Err(_) => break,
                }
            }
            got
        })
    }

    fn request(line: &str, json: bool) -> Vec<u8> {
        encode(&Request {
            command: line.into(),
            json,
        })
    }

    #[test]
    fn serves_requests_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/ctl.sock");
        let mut server = CtlServer::bind(&path, CtlServerOptions::default()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut backend = TestBackend::default();
        let c = client(
            path.clone(),
            vec![
                request("sh cr isa sa", false),
                request("sh cr isa sa", true),
            ],
            3,
        );
        pump(&mut server, &mut backend, || c.is_finished());
        let got = c.join().unwrap();
        assert_eq!(
            got[0],
            ServerMessage::Hello {
                hostname: "1720-1".into(),
                version: PROTOCOL_VERSION
            }
        );
        assert_eq!(
            got[1],
            ServerMessage::Reply {
                exit_code: 0,
                output: crate::ctl::show::isakmp::render_sa(&testing::router_isakmp_sas())
            }
        );
        let ServerMessage::Reply {
            exit_code: 0,
            output,
        } = &got[2]
        else {
            panic!("{:?}", got[2]);
        };
        let back: Vec<IsakmpSaView> = serde_json::from_str(output).unwrap();
        assert_eq!(back, testing::router_isakmp_sas());
        // The session is gone once the client closed.
        drain(&mut server, &mut backend);
        drop(server);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    /// Polls until every session has ended.
    fn drain(server: &mut CtlServer, backend: &mut TestBackend) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.session_count() > 0 {
            assert!(Instant::now() < deadline, "sessions did not end");
            server.poll(backend);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn malformed_requests_get_errors_and_the_server_stays_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let mut server = CtlServer::bind(&path, CtlServerOptions::default()).unwrap();
        let mut backend = TestBackend::default();
        // Bad JSON in a good frame: an error, then the same connection still works.
        let mut bad = (7u32).to_be_bytes().to_vec();
        bad.extend_from_slice(b"{oops!}");
        let c = client(
            path.clone(),
            vec![bad, request("sh cr en conn ac", false)],
            3,
        );
        pump(&mut server, &mut backend, || c.is_finished());
        let got = c.join().unwrap();
        let ServerMessage::Reply { exit_code, output } = &got[1] else {
            panic!("{:?}", got[1]);
        };
        assert_eq!(*exit_code, exit::PROTOCOL);
        assert!(output.starts_with("% Malformed request"));
        assert!(matches!(&got[2], ServerMessage::Reply { exit_code: 0, .. }));

        // A frame too large to skip: an error and that connection is closed...
        let c = client(path.clone(), vec![(1u32 << 30).to_be_bytes().to_vec()], 3);
        pump(&mut server, &mut backend, || c.is_finished());
        let got = c.join().unwrap();
        assert_eq!(got.len(), 2, "closed after the error: {got:?}");
        assert!(matches!(
            &got[1],
            ServerMessage::Reply {
                exit_code: exit::PROTOCOL,
                ..
            }
        ));

        // ...and the next client is served.
        let c = client(path.clone(), vec![request("sh cr map", false)], 2);
        pump(&mut server, &mut backend, || c.is_finished());
        let got = c.join().unwrap();
        assert!(matches!(&got[1], ServerMessage::Reply { exit_code: 0, .. }));

        // A syntax error is an answer, not a failure of the server.
        let c = client(path.clone(), vec![request("sh cr i sa", false)], 2);
        pump(&mut server, &mut backend, || c.is_finished());
        let got = c.join().unwrap();
        assert_eq!(
            got[1],
            ServerMessage::Reply {
                exit_code: exit::SYNTAX,
                output: "% Ambiguous command:  \"sh cr i\"\n".into()
            }
        );
    }

    #[test]
    fn debug_lines_reach_the_sessions_that_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let mut server = CtlServer::bind(&path, CtlServerOptions::default()).unwrap();
        let monitor = server.monitor();
        let mut backend = TestBackend::default();
        assert!(!monitor.enabled(DebugFacility::Isakmp));

        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut quiet = UnixStream::connect(&path).unwrap();
        quiet
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Both connections are pending in the listener's backlog: one poll accepts both.
        server.poll(&mut backend);
        assert_eq!(server.session_count(), 2);
        assert!(matches!(
            read_frame::<ServerMessage>(&mut s, MAX_REPLY).unwrap(),
            ServerMessage::Hello { .. }
        ));
        assert!(matches!(
            read_frame::<ServerMessage>(&mut quiet, MAX_REPLY).unwrap(),
            ServerMessage::Hello { .. }
        ));

        write_frame(
            &mut s,
            &Request {
                command: "debug crypto isakmp".into(),
                json: false,
            },
        )
        .unwrap();
        pump(&mut server, &mut backend, || {
            monitor.enabled(DebugFacility::Isakmp)
        });
        assert_eq!(
            read_frame::<ServerMessage>(&mut s, MAX_REPLY).unwrap(),
            ServerMessage::Reply {
                exit_code: 0,
                output: "Crypto ISAKMP debugging is on\n".into()
            }
        );
        monitor.line(DebugFacility::Ipsec, "not asked for");
        monitor.line(
            DebugFacility::Isakmp,
            "ISAKMP (0:110): SA has been authenticated with 172.16.172.34",
        );
        server.poll(&mut backend);
        assert_eq!(
            read_frame::<ServerMessage>(&mut s, MAX_REPLY).unwrap(),
            ServerMessage::Monitor {
                line: "ISAKMP (0:110): SA has been authenticated with 172.16.172.34".into()
            }
        );
        assert!(
            read_frame::<ServerMessage>(&mut quiet, MAX_REPLY).is_err(),
            "the other session got nothing"
        );

        write_frame(
            &mut s,
            &Request {
                command: "undebug all".into(),
                json: false,
            },
        )
        .unwrap();
        pump(&mut server, &mut backend, || {
            !monitor.enabled(DebugFacility::Isakmp)
        });
        drop(s);
        drop(quiet);
        drain(&mut server, &mut backend);
    }

    #[test]
    fn group_option_makes_the_socket_group_writable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let options = CtlServerOptions {
            group: Some(0),
            max_sessions: 0,
        };
        let server = CtlServer::bind(&path, options).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 0);
        // A second server on a live socket is refused.
        assert!(CtlServer::bind(&path, CtlServerOptions::default()).is_err());
        drop(server);
        // A path that is not a socket is never removed.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert!(CtlServer::bind(&plain, CtlServerOptions::default()).is_err());
        assert!(plain.exists());
    }

    #[test]
    fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _server = CtlServer::bind(&path, CtlServerOptions::default()).unwrap();
    }

    #[test]
    fn credentials_policy() {
        let policy = AccessPolicy {
            server_uid: 990,
            group: None,
        };
        let cred = |uid, gid| PeerCredentials {
            pid: 4242,
            uid,
            gid,
        };
        assert!(check_credentials(cred(0, 0), &policy).is_ok());
        assert!(check_credentials(cred(990, 990), &policy).is_ok());
        assert_eq!(
            check_credentials(cred(12345, 12345), &policy),
            Err("Access denied: uid 12345 (pid 4242) is not root".into())
        );
        let grouped = AccessPolicy {
            server_uid: 990,
            group: Some(4711),
        };
        assert!(check_credentials(cred(12345, 4711), &grouped).is_ok());
        let refused = check_credentials(cred(12345, 12345), &grouped).unwrap_err();
        assert!(
            refused.contains("neither root nor a member of group"),
            "{refused}"
        );
        // Root's group membership comes from the group database: gid 0's members.
        assert!(!is_group_member(12345, 0));
    }

    /// The refusal path of `accept`, over a real socket: tests run as root, whom the
    /// policy always allows, so the server's check is given the credentials of a fake
    /// user (uid and gid 65534) in place of the real ones, and refuses them.
    #[test]
    fn refused_peer_gets_the_reason_and_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let mut server = CtlServer::bind(&path, CtlServerOptions::default()).unwrap();
        server.credential_check = |real, policy| {
            check_credentials(
                PeerCredentials {
                    uid: 65534,
                    gid: 65534,
                    ..real
                },
                policy,
            )
        };
        let mut backend = TestBackend::default();
        let c = client(path.clone(), vec![request("sh cr isa sa", false)], 2);
        pump(&mut server, &mut backend, || c.is_finished());
        let got = c.join().unwrap();
        assert_eq!(got.len(), 1, "nothing after the refusal: {got:?}");
        let ServerMessage::Refused { reason } = &got[0] else {
            panic!("{:?}", got[0]);
        };
        assert!(
            reason.starts_with("% Access denied: uid 65534 (pid "),
            "{reason}"
        );
        assert_eq!(server.session_count(), 0);
        // The real credentials of a connection come from SO_PEERCRED.
        let (a, _b) = UnixStream::pair().unwrap();
        let me = peer_credentials(&a).unwrap();
        assert_eq!(me.uid, Uid::effective().as_raw());
        assert_eq!(me.pid as u32, std::process::id());
    }
}
