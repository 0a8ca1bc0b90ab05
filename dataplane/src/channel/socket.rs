//! Unix SOCK_SEQPACKET sockets for the channel. The standard library has stream and datagram
//! Unix sockets only, so these are a few libc calls. The server side never blocks: the
//! dataplane's main lcore polls it between its other duties.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::paging::{Dump, DumpReader};
use super::{decode, encode, CountersMsg, Error, Message, SaCountersMsg, MAX_FRAME};

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// Raises the socket's buffers so that one frame of up to [`MAX_FRAME`] (an SPD of many
/// rules) fits, and a dump's pages have room to queue while the client reads. A
/// SOCK_SEQPACKET datagram larger than the sender's buffer fails with EMSGSIZE, and a stock
/// kernel caps SO_SNDBUF/SO_RCVBUF at net.core.wmem_max/rmem_max (208 KB: an SPD of some
/// 5,000 rules), so the forcing variants come first: they ignore that cap for a process with
/// CAP_NET_ADMIN, which both daemons have (they run as root). Without it, the capped size is
/// what there is.
fn raise_buffers(fd: &OwnedFd) {
    let size: libc::c_int = (MAX_FRAME + 4096) as libc::c_int;
    for (forced, capped) in [
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
    ] {
        let set = |opt: libc::c_int| {
            // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the stated size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &size as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        if set(forced) != 0 {
            set(capped);
        }
    }
}

/// The socket's send buffer as the kernel reports it (twice what was asked: it counts its
/// own overhead), for tests.
#[cfg(test)]
pub(crate) fn send_buffer(fd: &impl AsRawFd) -> usize {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt with a valid fd, a c_int to write into and its length.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &mut v as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt SO_SNDBUF");
    v as usize
}

fn seqpacket(nonblocking: bool) -> io::Result<OwnedFd> {
    let flags = libc::SOCK_SEQPACKET
        | libc::SOCK_CLOEXEC
        | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    raise_buffers(&fd);
    Ok(fd)
}

/// One end of an established channel connection.
pub struct Connection {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Connection {
    fn new(fd: OwnedFd) -> Connection {
        Connection {
            fd,
            buf: vec![0u8; MAX_FRAME + super::HEADER_LEN],
        }
    }

    /// Sends one message (blocking or not as the socket is; a non-blocking send that would
    /// block is `Error::Io` of kind `WouldBlock`).
    pub fn send(&self, request_id: u32, msg: &Message) -> Result<(), Error> {
        let frame = encode(request_id, msg);
        // The peer's decoder refuses larger frames; sending one would only fill its socket.
        if frame.len() > MAX_FRAME + super::HEADER_LEN {
            return Err(Error::BadLength(frame.len()));
        }
        self.send_frame(&frame).map_err(Error::Io)
    }

    /// Sends one encoded frame as one datagram: all of it or nothing (SOCK_SEQPACKET).
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: send(2) reads frame.len() bytes from a live slice.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one message. With `wait` false, returns `Ok(None)` when nothing is queued.
    /// A signal that interrupts the wait (SIGHUP asking for a reload) is no error: the
    /// receive is made again (with a receive timeout set, it still ends by then).
    pub fn recv(&mut self, wait: bool) -> Result<Option<(u32, Message)>, Error> {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        let n = loop {
            // SAFETY: recv(2) writes at most buf.len() bytes into our own buffer.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    flags | libc::MSG_TRUNC,
                )
            };
            if n >= 0 {
                break n;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(Error::Io(e)),
            }
        };
        if n == 0 {
            return Err(Error::Closed);
        }
        let n = n as usize;
        if n > self.buf.len() {
            return Err(Error::BadLength(n));
        }
        decode(&self.buf[..n]).map(Some)
    }

    /// Sets a receive timeout for blocking receives.
    pub fn set_timeout(&self, t: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt with a valid fd and a pointer to a timeval of the stated size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The peer's uid, from SO_PEERCRED.
    pub fn peer_uid(&self) -> io::Result<u32> {
        self.peer_cred().map(|c| c.uid)
    }

    /// The peer's process id, from SO_PEERCRED (a client reads the dataplane's memory use
    /// from /proc with it).
    pub fn peer_pid(&self) -> io::Result<u32> {
        self.peer_cred().map(|c| c.pid as u32)
    }

    fn peer_cred(&self) -> io::Result<libc::ucred> {
        // SAFETY: ucred is plain old data.
        let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `cred`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                &mut cred as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(cred)
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The dataplane's listening socket: non-blocking, mode 0600, removed on drop.
pub struct Server {
    fd: OwnedFd,
    path: PathBuf,
}

impl Server {
    /// Binds and listens at `path`, replacing a stale socket file.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Server> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&path);
        let fd = seqpacket(true)?;
        let (addr, len) = sockaddr(&path)?;
        // SAFETY: bind(2) with a sockaddr_un we built and its true length.
        if unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                len,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        // SAFETY: listen(2) on a bound socket we own.
        if unsafe { libc::listen(fd.as_raw_fd(), 16) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Server { fd, path })
    }

    /// Accepts one pending connection, if any (never blocks). Connections from users other
    /// than root and the dataplane's own user are refused (closed at once).
    pub fn accept(&self) -> io::Result<Option<Connection>> {
        // SAFETY: accept4(2) on our listening socket; null address pointers are allowed.
        let fd = unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        // SAFETY: fd is a fresh descriptor from accept4 that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // An accepted socket does not inherit the listener's buffer sizes: without this only
        // the default 208 KB of replies and events could wait in it for a busy client.
        raise_buffers(&fd);
        let c = Connection::new(fd);
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        match c.peer_uid() {
            Ok(uid) if uid == 0 || uid == me => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRawFd for Server {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A blocking client (the control process, `ipsec-dpctl`).
pub struct Client {
    conn: Connection,
    next_id: u32,
    /// Events that arrived while a request waited for its reply, in order.
    events: std::collections::VecDeque<Message>,
    /// The name the server gave in its Hello (`ipsec-dataplane 0.1.0`).
    peer: String,
}

impl Client {
    /// Connects to the dataplane's socket and exchanges Hello.
    pub fn connect(path: impl AsRef<Path>, name: &str) -> Result<Client, Error> {
        let fd = seqpacket(false)?;
        let (addr, len) = sockaddr(path.as_ref())?;
        // SAFETY: connect(2) with a sockaddr_un we built and its true length.
        if unsafe {
            libc::connect(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                len,
            )
        } < 0
        {
            return Err(Error::Io(io::Error::last_os_error()));
        }
        let conn = Connection::new(fd);
        conn.set_timeout(Duration::from_secs(10))?;
        let mut c = Client {
            conn,
            next_id: 1,
            events: Default::default(),
            peer: String::new(),
        };
        match c.request(&Message::Hello {
            version: super::VERSION,
            name: name.to_string(),
        })? {
            Message::Hello { name, .. } => {
                c.peer = name;
                Ok(c)
            }
            other => Err(Error::Decode(format!("expected Hello, got {other:?}"))),
        }
    }

    /// The name and version the server gave in its Hello.
    pub fn peer_name(&self) -> &str {
        &self.peer
    }

    /// Sends a request and waits for its reply. Events that arrive meanwhile are kept for
    /// [`Client::event`] (control must not lose a punted IKE packet or an Acquire because
    /// it was waiting for an Ack); stale replies to earlier requests are skipped. A dump
    /// request is answered with several pages: use [`Client::dump_sas`] or
    /// [`Client::dump_counters`] for those.
    pub fn request(&mut self, msg: &Message) -> Result<Message, Error> {
        let id = self.send_request(msg)?;
        self.reply_to(id)
    }

    /// Every SA the dataplane holds, read page after page (see the channel's module
    /// documentation for what a dump shows when SAs change while it is read).
    pub fn dump_sas(&mut self) -> Result<Vec<SaCountersMsg>, Error> {
        match self.dump(&Message::DumpSas)? {
            Dump::Sas(sas) => Ok(sas),
            Dump::Counters(_) => Err(Error::Dump("counters where SAs were asked".into())),
        }
    }

    /// Every SA's and every worker's counters, read page after page.
    pub fn dump_counters(&mut self) -> Result<CountersMsg, Error> {
        match self.dump(&Message::DumpCounters)? {
            Dump::Counters(c) => Ok(c),
            Dump::Sas(_) => Err(Error::Dump("SAs where counters were asked".into())),
        }
    }

    fn dump(&mut self, msg: &Message) -> Result<Dump, Error> {
        let id = self.send_request(msg)?;
        let mut reader = DumpReader::new();
        while !reader.feed(self.reply_to(id)?)? {}
        reader.finish()
    }

    fn send_request(&mut self, msg: &Message) -> Result<u32, Error> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.conn.send(id, msg)?;
        Ok(id)
    }

    /// The next message answering request `id`, keeping events that come first.
    fn reply_to(&mut self, id: u32) -> Result<Message, Error> {
        loop {
            match self.conn.recv(true)? {
                Some((rid, reply)) if rid == id => return Ok(reply),
                Some((0, event)) => self.events.push_back(event),
                Some(_) => continue,
                None => return Err(Error::Io(io::ErrorKind::TimedOut.into())),
            }
        }
    }

    /// The next event (a message with request id 0): one kept by [`Client::request`], or one
    /// received now, waiting up to the receive timeout.
    pub fn event(&mut self) -> Result<Option<Message>, Error> {
        self.next(true)
    }

    /// An event already received or waiting in the socket; None at once otherwise.
    pub fn try_event(&mut self) -> Result<Option<Message>, Error> {
        self.next(false)
    }

    fn next(&mut self, wait: bool) -> Result<Option<Message>, Error> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        loop {
            match self.conn.recv(wait) {
                Ok(Some((0, m))) => return Ok(Some(m)),
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(None),
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

#[cfg(test)]
mod buffer_tests {
    use super::*;

    /// As root (CI, and how both daemons run) the buffers hold a whole MAX_FRAME frame
    /// whatever net.core.wmem_max says: the kernel reports twice the forced size. Without
    /// CAP_NET_ADMIN they are as large as the host's cap allows.
    #[test]
    fn socket_buffers_fit_the_largest_frame() {
        let fd = seqpacket(false).expect("socket");
        let got = send_buffer(&fd);
        let asked = MAX_FRAME + 4096;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(got >= 2 * asked, "SO_SNDBUF {got}, want {}", 2 * asked);
        } else {
            let cap: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
                .expect("wmem_max")
                .trim()
                .parse()
                .expect("a number");
            assert!(got >= 2 * asked.min(cap), "SO_SNDBUF {got}, cap {cap}");
        }
    }
}
