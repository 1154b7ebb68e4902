//! The shim's single-threaded `poll(2)` loop: container output → log file + attach clients,
//! client input → container stdin, requests on `shim.sock`, and reaping (SIGCHLD through a
//! signalfd). No async runtime and no threads: a shim must stay tiny (≤ 1 MB RSS target).
//!
//! Back-pressure rules: output is always read and logged at once (the container never blocks
//! on the shim); an attach client whose unsent backlog exceeds [`MAX_CLIENT_BACKLOG`] is
//! dropped (the client, never the data); stdin from clients waits while the container's stdin
//! backlog exceeds [`MAX_STDIN_BACKLOG`].

use crate::backend::{Backend, BackendError, Io};
use crate::fdio;
use crate::logfile::{self, LogWriter, Stream};
use crate::protocol::{self, AttachOpts, ExecRequest, Reply, Request};
use crate::records::{self, ExecExitRecord, ExitRecord};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rustix::event::{PollFd, PollFlags};
use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const READ_CHUNK: usize = 32 * 1024;
pub use crate::conn::MAX_CLIENT_BACKLOG;
use crate::conn::{Client, ExecSession, Mode, Owner, Sink, Source};
/// Pending stdin per process before clients' input is paused.
pub const MAX_STDIN_BACKLOG: usize = 1 << 20;
/// How long output is still drained after a process exited (its pipes may be held by
/// descendants outside a pid namespace).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How long the exiting shim tries to deliver the last bytes to clients.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

/// Reads a cgroup's OOM-kill counter (`None` when unreadable).
pub type OomReader = Box<dyn Fn() -> Option<u64>>;

/// The running shim.
pub struct Server<B: Backend> {
    pub id: String,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub log_max_files: u32,
    pub backend: B,
    pub log: LogWriter,
    pub init_pid: i32,
    pub tty: bool,
    started: bool,
    init_exit: Option<(i32, Instant)>,
    master: Option<OwnedFd>,
    stdin: Sink,
    sources: Vec<Source>,
    clients: Vec<Client>,
    execs: HashMap<String, ExecSession>,
    /// Exits of pids reaped before the shim knew them (an exec that ended before
    /// `runtime exec` returned its pid; the runtime helpers, never claimed), with when.
    unclaimed: HashMap<i32, (i32, Instant)>,
    listener: UnixListener,
    sigfd: SignalFd,
    /// Reads the cgroup's OOM-kill counter: (baseline at create, reader).
    pub oom: Option<(u64, OomReader)>,
    /// When to drop the page mappings of the shim's code
    /// ([`berth_sys::memory::release_startup_pages`]): [`crate::RELEASE_AFTER_IDLE`] after the
    /// last request. Set-up, the runtime helper's fork and each request run code that the shim's
    /// steady state (copying output to the log) never runs again; with the kernel's 64 KB
    /// fault-around it kept ~1.7 MB of text resident per shim. Dropped, it stays in the page
    /// cache, shared with every other shim, and faults back in if a request needs it.
    release: berth_sys::memory::IdleRelease,
    /// One read buffer for output and client bytes, allocated once: as two 32 KB arrays on the
    /// stack it was zeroed on every read and kept 64 KB of stack resident.
    scratch: Vec<u8>,
}

/// What `create` handed back, for building a [`Server`].
pub struct InitIo {
    pub pid: i32,
    /// PTY master (tty) — or the stdout/stderr pipe read ends and stdin write end.
    pub master: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
}

fn nonblock(fd: &OwnedFd) {
    let _ = fdio::set_nonblocking(fd, true);
}

impl<B: Backend> Server<B> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        state_dir: PathBuf,
        log_path: PathBuf,
        log_max_files: u32,
        backend: B,
        log: LogWriter,
        io: InitIo,
        listener: UnixListener,
        sigfd: SignalFd,
    ) -> Server<B> {
        let mut sources = Vec::new();
        let tty = io.master.is_some();
        let mut stdin = Sink::default();
        if let Some(m) = &io.master {
            nonblock(m);
            if let Ok(d) = m.try_clone() {
                sources.push(Source {
                    fd: d,
                    stream: Stream::Stdout,
                    owner: Owner::Init,
                });
            }
            stdin.fd = m.try_clone().ok();
        }
        for (fd, stream) in [(io.stdout, Stream::Stdout), (io.stderr, Stream::Stderr)] {
            if let Some(fd) = fd {
                nonblock(&fd);
                sources.push(Source {
                    fd,
                    stream,
                    owner: Owner::Init,
                });
            }
        }
        if let Some(fd) = io.stdin {
            nonblock(&fd);
            stdin.fd = Some(fd);
        }
        let _ = listener.set_nonblocking(true);
        Server {
            id,
            state_dir,
            log_path,
            log_max_files,
            backend,
            log,
            init_pid: io.pid,
            tty,
            started: false,
            init_exit: None,
            master: io.master,
            stdin,
            sources,
            clients: Vec::new(),
            execs: HashMap::new(),
            unclaimed: HashMap::new(),
            listener,
            sigfd,
            oom: None,
            release: {
                // Set-up just ran: due one idle period from now, like after a request.
                let mut r = berth_sys::memory::IdleRelease::new(crate::RELEASE_AFTER_IDLE);
                r.touch();
                r
            },
            scratch: vec![0u8; READ_CHUNK],
        }
    }

    /// Run until the container exited and everything is recorded; returns the shim's exit code.
    pub fn run(mut self) -> i32 {
        self.reap();
        loop {
            self.poll_once();
            self.finish_execs();
            if let Some(Err(e)) = self.release.release_if_due() {
                eprintln!("berth shim {}: release start-up pages: {e}", self.id);
            }
            if let Some((code, at)) = self.init_exit {
                let drained = !self.sources.iter().any(|s| s.owner == Owner::Init);
                if drained || at.elapsed() >= DRAIN_AFTER_EXIT {
                    return self.finish(code);
                }
            }
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let mut t: Option<Duration> = None;
        let exits = self
            .init_exit
            .iter()
            .map(|(_, at)| *at)
            .chain(self.execs.values().filter_map(|e| e.exit.map(|(_, at)| at)));
        for at in exits {
            let left = DRAIN_AFTER_EXIT.saturating_sub(at.elapsed()) + Duration::from_millis(5);
            t = Some(t.map_or(left, |x| x.min(left)));
        }
        if let Some(left) = self.release.due_in() {
            t = Some(t.map_or(left, |x| x.min(left)));
        }
        t
    }

    fn poll_once(&mut self) {
        #[derive(Clone, Copy)]
        enum K {
            Sig,
            Listen,
            Src(usize),
            InitStdin,
            ExecStdin(usize),
            Client(usize),
        }
        // Clients closed since the last round (e.g. by finish_execs) must not be polled.
        self.clients.retain(|c| !c.dead);
        // Sized up front, and the execs' map not walked when it is empty: every window of
        // code the idle loop touches stays resident (see `release`). Walking the empty map
        // each round measured +0.13 MB RSS for a shim copying output.
        let exec_ids: Vec<String> = if self.execs.is_empty() {
            Vec::new()
        } else {
            self.execs.keys().cloned().collect()
        };
        let n = 3 + self.sources.len() + exec_ids.len() + self.clients.len();
        let mut keys = Vec::with_capacity(n);
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(n);
        fds.push(PollFd::new(&self.sigfd, PollFlags::IN));
        keys.push(K::Sig);
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        keys.push(K::Listen);
        for (i, s) in self.sources.iter().enumerate() {
            fds.push(PollFd::new(&s.fd, PollFlags::IN));
            keys.push(K::Src(i));
        }
        if let (Some(fd), false) = (&self.stdin.fd, self.stdin.buf.is_empty()) {
            fds.push(PollFd::new(fd, PollFlags::OUT));
            keys.push(K::InitStdin);
        }
        for (i, id) in exec_ids.iter().enumerate() {
            let e = &self.execs[id];
            if let (Some(fd), false) = (&e.stdin.fd, e.stdin.buf.is_empty()) {
                fds.push(PollFd::new(fd, PollFlags::OUT));
                keys.push(K::ExecStdin(i));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut f = PollFlags::empty();
            let stdin_full = match &c.mode {
                Mode::Attached {
                    owner: Owner::Init, ..
                } => self.stdin.buf.len() > MAX_STDIN_BACKLOG,
                Mode::Attached {
                    owner: Owner::Exec(x),
                    ..
                } => self
                    .execs
                    .get(x)
                    .is_some_and(|e| e.stdin.buf.len() > MAX_STDIN_BACKLOG),
                _ => false,
            };
            if !c.read_eof && !stdin_full && !matches!(c.mode, Mode::Closing) {
                f |= PollFlags::IN;
            }
            if !c.out.is_empty() {
                f |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&c.sock, f));
            keys.push(K::Client(i));
        }
        let ts = self.timeout().map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return,
            Err(e) => {
                eprintln!("berth shim {}: poll: {e}", self.id);
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        let mut ready: Vec<(K, PollFlags)> = Vec::with_capacity(n);
        for (k, f) in keys.iter().zip(fds.iter()) {
            if !f.revents().is_empty() {
                ready.push((*k, f.revents()));
            }
        }
        drop(fds);
        let mut dead_sources = Vec::new();
        for (k, rev) in ready {
            match k {
                K::Sig => self.reap(),
                K::Listen => self.accept(),
                K::Src(i) => {
                    if self.read_source(i) {
                        dead_sources.push(i);
                    }
                }
                K::InitStdin => self.stdin.flush(),
                K::ExecStdin(i) => {
                    if let Some(e) = self.execs.get_mut(&exec_ids[i]) {
                        e.stdin.flush();
                    }
                }
                K::Client(i) => {
                    if rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                        self.read_client(i);
                    }
                    // HUP on a unix stream: the peer closed both directions (a half-close
                    // is only EOF on read). Nothing can reach it any more; forget it, or
                    // poll would report it again at once, forever.
                    if rev.intersects(PollFlags::HUP | PollFlags::ERR) {
                        let c = &mut self.clients[i];
                        if c.read_eof {
                            c.dead = true;
                        }
                    }
                    self.clients[i].flush();
                }
            }
        }
        dead_sources.sort_unstable();
        for i in dead_sources.into_iter().rev() {
            self.sources.remove(i);
        }
        for c in &mut self.clients {
            c.flush();
        }
        self.clients.retain(|c| !c.dead);
    }

    /// Reap every exited child.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) => {
                    if let (Some(pid), Some(code)) = (st.pid(), records::exit_code(st)) {
                        self.on_exit(pid.as_raw(), code);
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    fn on_exit(&mut self, pid: i32, code: i32) {
        if pid == self.init_pid {
            self.init_exit = Some((code, Instant::now()));
            return;
        }
        for e in self.execs.values_mut() {
            if e.pid == pid && e.exit.is_none() {
                e.exit = Some((code, Instant::now()));
                return;
            }
        }
        // Only a pid about to be registered is ever claimed: forget old ones.
        self.unclaimed
            .retain(|_, (_, at)| at.elapsed() < Duration::from_secs(10));
        self.unclaimed.insert(pid, (code, Instant::now()));
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    let _ = sock.set_nonblocking(true);
                    self.clients.push(Client {
                        sock,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        mode: Mode::Request,
                        read_eof: false,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Read one chunk of output; true when the source reached EOF.
    fn read_source(&mut self, i: usize) -> bool {
        let mut buf = std::mem::take(&mut self.scratch);
        let eof = self.copy_source(i, &mut buf);
        self.scratch = buf;
        eof
    }

    fn copy_source(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let n = match fdio::read(&self.sources[i].fd, buf) {
            Ok(None) => return false,
            Ok(Some(0)) | Err(_) => return true,
            Ok(Some(n)) => n,
        };
        let (stream, owner) = (self.sources[i].stream, self.sources[i].owner.clone());
        let data = &buf[..n];
        if owner == Owner::Init {
            if let Err(e) = self.log.write(stream, data) {
                eprintln!(
                    "berth shim {}: write log {}: {e}",
                    self.id,
                    self.log_path.display()
                );
            }
        }
        let sid = match stream {
            Stream::Stdout => protocol::STREAM_STDOUT,
            Stream::Stderr => protocol::STREAM_STDERR,
        };
        let header = protocol::frame_header(sid, n);
        for c in &mut self.clients {
            if let Mode::Attached {
                owner: o,
                opts,
                tty,
            } = &c.mode
            {
                let wanted = match stream {
                    Stream::Stdout => opts.stdout,
                    Stream::Stderr => opts.stderr,
                };
                if *o == owner && wanted {
                    if *tty {
                        c.send(data);
                    } else {
                        let mut framed = Vec::with_capacity(8 + n);
                        framed.extend_from_slice(&header);
                        framed.extend_from_slice(data);
                        c.send(&framed);
                    }
                }
            }
        }
        false
    }

    fn sink_of(&mut self, owner: &Owner) -> Option<&mut Sink> {
        match owner {
            Owner::Init => Some(&mut self.stdin),
            Owner::Exec(id) => self.execs.get_mut(id).map(|e| &mut e.stdin),
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.scratch);
        self.take_client_bytes(i, &mut buf);
        self.scratch = buf;
    }

    fn take_client_bytes(&mut self, i: usize, buf: &mut [u8]) {
        let n = match self.clients[i].sock.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return
            }
            Err(_) => {
                self.clients[i].dead = true;
                return;
            }
        };
        if n == 0 {
            self.client_eof(i);
            return;
        }
        let data = &buf[..n];
        match &self.clients[i].mode {
            Mode::Request => {
                self.clients[i].inbuf.extend_from_slice(data);
                if let Some(nl) = self.clients[i].inbuf.iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&self.clients[i].inbuf[..nl]).into_owned();
                    let rest = self.clients[i].inbuf.split_off(nl + 1);
                    self.clients[i].inbuf.clear();
                    self.handle(i, &line);
                    if !rest.is_empty() {
                        self.client_input(i, &rest);
                    }
                } else if self.clients[i].inbuf.len() > protocol::MAX_REQUEST {
                    let c = &mut self.clients[i];
                    c.reply(&Reply::Err("request line too long".into()));
                    c.mode = Mode::Closing;
                }
            }
            _ => self.client_input(i, data),
        }
    }

    /// Bytes from an attached client: the process's stdin, if it attached stdin.
    fn client_input(&mut self, i: usize, data: &[u8]) {
        if let Mode::Attached { owner, opts, .. } = &self.clients[i].mode {
            if opts.stdin {
                let owner = owner.clone();
                if let Some(s) = self.sink_of(&owner) {
                    s.push(data);
                }
            }
        }
    }

    /// The client shut down its writing side. For an attach with stdin: if no other client
    /// is attached to that stdin, close the process's stdin (Docker's StdinOnce; an exec's
    /// always).
    fn client_eof(&mut self, i: usize) {
        self.clients[i].read_eof = true;
        let (owner, had_stdin, once) = match &self.clients[i].mode {
            Mode::Request => {
                self.clients[i].dead = true;
                return;
            }
            Mode::Attached { owner, opts, .. } => (owner.clone(), opts.stdin, opts.stdin_once),
            _ => return,
        };
        // An exec's stdin always closes with its client; the init's only with StdinOnce.
        if !had_stdin || (owner == Owner::Init && !once) {
            return;
        }
        let others = self.clients.iter().enumerate().any(|(j, c)| {
            j != i && !c.read_eof && matches!(&c.mode, Mode::Attached { owner: o, opts, .. } if *o == owner && opts.stdin)
        });
        let tty = self.tty && owner == Owner::Init
            || matches!(&owner, Owner::Exec(x) if self.execs.get(x).is_some_and(|e| e.master.is_some()));
        if !others && !tty {
            if let Some(s) = self.sink_of(&owner) {
                s.close_when_empty = true;
                s.flush();
            }
        }
    }

    fn init_done(&self) -> bool {
        self.init_exit.is_some()
    }

    fn handle(&mut self, i: usize, line: &str) {
        self.release.touch();
        let req = match Request::parse(line) {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.clients[i];
                c.reply(&Reply::Err(e.to_string()));
                c.mode = Mode::Closing;
                return;
            }
        };
        let reply = match req {
            Request::Start => {
                if self.init_done() {
                    Reply::Err(format!("container {} has already exited", self.id))
                } else if self.started {
                    Reply::Ok(Some(self.init_pid))
                } else {
                    match self.backend.start(&self.id) {
                        Ok(()) => {
                            self.started = true;
                            Reply::Ok(Some(self.init_pid))
                        }
                        Err(e) => backend_err(&e),
                    }
                }
            }
            Request::Attach(opts) => {
                let tty = self.tty;
                let c = &mut self.clients[i];
                c.reply(&Reply::Ok(None));
                if opts.logs {
                    for e in logfile::read_tail(
                        &self.log_path,
                        self.log_max_files,
                        MAX_CLIENT_BACKLOG / 2,
                    ) {
                        let (wanted, sid) = match e.stream.as_str() {
                            "stderr" => (opts.stderr, protocol::STREAM_STDERR),
                            _ => (opts.stdout, protocol::STREAM_STDOUT),
                        };
                        if wanted {
                            if !tty {
                                c.send(&protocol::frame_header(sid, e.log.len()));
                            }
                            c.send(e.log.as_bytes());
                        }
                    }
                }
                c.mode = if self.init_exit.is_some()
                    && !self.sources.iter().any(|s| s.owner == Owner::Init)
                {
                    Mode::Closing
                } else {
                    Mode::Attached {
                        owner: Owner::Init,
                        opts,
                        tty,
                    }
                };
                return;
            }
            Request::Resize { rows, cols } => match &self.master {
                Some(m) => match fdio::resize(m, rows, cols) {
                    Ok(()) => Reply::Ok(None),
                    Err(e) => Reply::Err(format!("resize: {e}")),
                },
                None => Reply::Err(format!("container {} has no tty to resize", self.id)),
            },
            Request::ResizeExec {
                exec_id,
                rows,
                cols,
            } => match self.execs.get(&exec_id).and_then(|e| e.master.as_ref()) {
                Some(m) => match fdio::resize(m, rows, cols) {
                    Ok(()) => Reply::Ok(None),
                    Err(e) => Reply::Err(format!("resize: {e}")),
                },
                None => Reply::Err(format!("exec {exec_id} is not running with a tty")),
            },
            Request::Kill(sig) => {
                if self.init_done() {
                    Reply::Err(format!("container {} is not running", self.id))
                } else {
                    match self.backend.kill(&self.id, sig) {
                        Ok(()) => Reply::Ok(None),
                        Err(e) => backend_err(&e),
                    }
                }
            }
            Request::Wait => {
                self.clients[i].mode = Mode::Waiting;
                return;
            }
            Request::Exec(req) => {
                self.exec(i, req);
                return;
            }
        };
        let c = &mut self.clients[i];
        c.reply(&reply);
        c.mode = Mode::Closing;
        // A runtime call may have run with SIGCHLD unblocked (see lib_backend): reap anyway.
        self.reap();
    }

    fn exec(&mut self, i: usize, req: ExecRequest) {
        let fail = |s: &mut Self, msg: Reply| {
            let c = &mut s.clients[i];
            c.reply(&msg);
            c.mode = Mode::Closing;
        };
        if self.init_done() {
            return fail(
                self,
                Reply::Err(format!("container {} is not running", self.id)),
            );
        }
        if req.exec_id.is_empty()
            || req.exec_id.contains('/')
            || self.execs.contains_key(&req.exec_id)
        {
            return fail(
                self,
                Reply::Err(format!(
                    "exec id {:?} is empty, has '/', or is in use",
                    req.exec_id
                )),
            );
        }
        let owner = Owner::Exec(req.exec_id.clone());
        let mut new_sources = Vec::new();
        let mut stdin = Sink::default();
        let io = if req.tty {
            Io::Tty
        } else {
            let pipes = (|| -> std::io::Result<_> {
                let (or, ow) = fdio::pipe()?;
                let (er, ew) = fdio::pipe()?;
                let sin = if req.stdin { Some(fdio::pipe()?) } else { None };
                Ok((or, ow, er, ew, sin))
            })();
            let (or, ow, er, ew, sin) = match pipes {
                Ok(p) => p,
                Err(e) => return fail(self, Reply::Err(format!("pipes for exec: {e}"))),
            };
            new_sources.push((or, Stream::Stdout));
            new_sources.push((er, Stream::Stderr));
            let child_in = sin.map(|(r, w)| {
                stdin.fd = Some(w);
                r
            });
            Io::Pipes {
                stdin: child_in,
                stdout: ow,
                stderr: ew,
            }
        };
        let sp = match self.backend.exec(&self.id, &req.exec_id, &req.process, io) {
            Ok(sp) => sp,
            Err(e) => return fail(self, backend_err(&e)),
        };
        if let Some(m) = &sp.console {
            if let Ok(d) = m.try_clone() {
                new_sources.push((d, Stream::Stdout));
            }
            if req.stdin {
                stdin.fd = m.try_clone().ok();
            }
        }
        for (fd, stream) in new_sources {
            nonblock(&fd);
            self.sources.push(Source {
                fd,
                stream,
                owner: owner.clone(),
            });
        }
        if let Some(fd) = &stdin.fd {
            nonblock(fd);
        }
        let exit = self
            .unclaimed
            .remove(&sp.pid)
            .map(|(c, _)| (c, Instant::now()));
        let tty = sp.console.is_some();
        self.execs.insert(
            req.exec_id.clone(),
            ExecSession {
                pid: sp.pid,
                master: sp.console,
                stdin,
                exit,
            },
        );
        self.reap();
        let c = &mut self.clients[i];
        c.reply(&Reply::Ok(Some(sp.pid)));
        c.mode = Mode::Attached {
            owner,
            opts: AttachOpts {
                stdin: req.stdin,
                stdout: true,
                stderr: true,
                logs: false,
                stdin_once: true,
            },
            tty,
        };
    }

    /// Execs that exited and whose output is drained: record the exit code, then close their
    /// streams (the record is on disk before the client sees EOF).
    fn finish_execs(&mut self) {
        let done: Vec<(String, i32)> = self
            .execs
            .iter()
            .filter_map(|(id, e)| {
                let (code, at) = e.exit?;
                let owner = Owner::Exec(id.clone());
                let drained = !self.sources.iter().any(|s| s.owner == owner);
                (drained || at.elapsed() >= DRAIN_AFTER_EXIT).then(|| (id.clone(), code))
            })
            .collect();
        for (id, code) in done {
            if let Err(e) = records::write_replace(
                &self.state_dir,
                &records::exec_json(&id),
                &ExecExitRecord { exit_code: code },
                false,
            ) {
                eprintln!("berth shim {}: record exec {id}: {e}", self.id);
            }
            let owner = Owner::Exec(id.clone());
            self.sources.retain(|s| s.owner != owner);
            for c in &mut self.clients {
                if matches!(&c.mode, Mode::Attached { owner: o, .. } if *o == owner) {
                    c.mode = Mode::Closing;
                    c.flush();
                }
            }
            self.execs.remove(&id);
        }
    }

    /// The container exited: record, clean up, answer, exit.
    fn finish(mut self, code: i32) -> i32 {
        if let Err(e) = self.log.flush_partial() {
            eprintln!("berth shim {}: flush log: {e}", self.id);
        }
        // The OOM counter lives in the cgroup, which `delete` removes: read it first.
        let oom_killed = self
            .oom
            .as_ref()
            .and_then(|(base, read)| read().map(|n| n > *base))
            .unwrap_or(false);
        let rec = ExitRecord {
            exit_code: code,
            oom_killed,
            finished_at: logfile::now_rfc3339_nano(),
            pid: self.init_pid,
        };
        if let Err(e) = records::write_replace(&self.state_dir, records::EXIT_JSON, &rec, false) {
            eprintln!("berth shim {}: write exit.json: {e}", self.id);
        }
        // Exec records for execs that ended with the container.
        let ids: Vec<String> = self.execs.keys().cloned().collect();
        for id in ids {
            if let Some((c, _)) = self.execs[&id].exit {
                let _ = records::write_replace(
                    &self.state_dir,
                    &records::exec_json(&id),
                    &ExecExitRecord { exit_code: c },
                    false,
                );
            }
        }
        let exit = Reply::Exit { code, oom_killed };
        for c in &mut self.clients {
            if let Mode::Request = c.mode {
                // A request may be in flight: a WAIT still gets its answer.
                let mut buf = [0u8; 512];
                if let Ok(n) = c.sock.read(&mut buf) {
                    c.inbuf.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&c.inbuf).into_owned();
                if matches!(
                    Request::parse(line.lines().next().unwrap_or("")),
                    Ok(Request::Wait)
                ) {
                    c.mode = Mode::Waiting;
                }
            }
            match c.mode {
                Mode::Waiting => c.reply(&exit),
                Mode::Request => c.reply(&Reply::Err(format!("container {} has exited", self.id))),
                _ => {}
            }
            c.mode = Mode::Closing;
            c.flush();
        }
        // The runtime's cleanup (cgroups, state dir) after the answer: `run --rm` does not wait
        // for it; a new start of this container waits until the runtime's state dir is gone.
        if let Err(e) = self.backend.delete(&self.id) {
            eprintln!("berth shim {}: runtime delete: {e}", self.id);
        }
        let deadline = Instant::now() + FLUSH_AT_EXIT;
        loop {
            self.clients.retain(|c| !c.dead);
            if self.clients.is_empty() || Instant::now() >= deadline {
                break;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .clients
                .iter()
                .map(|c| PollFd::new(&c.sock, PollFlags::OUT))
                .collect();
            let ts = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
            drop(fds);
            for c in &mut self.clients {
                c.flush();
            }
        }
        let _ = std::fs::remove_file(self.state_dir.join(records::SOCKET));
        0
    }
}

fn backend_err(e: &BackendError) -> Reply {
    Reply::Err(format!("{}: {e}", e.kind()))
}
