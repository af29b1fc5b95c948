//! The one connection probe: [`connect`] (DNS, then every address in turn, with the same hints
//! for every caller) and one SSH key exchange through libssh2 on top of it. `trust` asks for the
//! host key ([`fetch_host_key`]), `test`, `init` and `rotate` log in ([`check_login`]), `doctor`
//! asks whether an SSH server answers ([`reachable`]). Bounded by a timeout; a server that is
//! not SSH, or that hangs up, is a clear error.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ssh_key::PublicKey;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};

/// libssh2's host key method names for a key algorithm name.
fn methods_for(algorithm: &str) -> &'static [&'static str] {
    match algorithm {
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        _ => &[],
    }
}

const DEFAULT_ORDER: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// The host key preference: the algorithms already known for this host first (as OpenSSH
/// orders them, so a server with several keys shows the one we can check), then the rest.
pub fn host_key_preference(known_algorithms: &[String]) -> String {
    let mut order: Vec<&str> = Vec::new();
    for alg in known_algorithms {
        for m in methods_for(alg) {
            if !order.contains(m) {
                order.push(m);
            }
        }
    }
    for m in DEFAULT_ORDER {
        if !order.contains(m) {
            order.push(m);
        }
    }
    order.join(",")
}

fn net(what: String) -> Error {
    Error::new(ErrorKind::Network, what)
}

/// The error for `who` when no address took the connection (`last`: the last address's cause).
fn not_connected(who: &str, last: Option<std::io::Error>) -> Error {
    let mut e = net(format!("could not connect to {who}"));
    if let Some(cause) = last {
        e = e.with_source(cause);
    }
    e.hint("check the host and the port; a firewall may block port 22")
        .hint("GitHub and GitLab also answer on port 443: `ssh.github.com:443`, `altssh.gitlab.com:443`")
}

/// Opens a TCP connection to `ep`: looks the name up, then tries every address in
/// turn, each within `timeout`. Reads and writes on the stream time out after `timeout` too.
pub fn connect(ep: &Endpoint, timeout: Duration) -> Result<TcpStream> {
    let host = &ep.host;
    let addrs: Vec<_> = (host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| {
            net(format!("could not find the address of `{host}`"))
                .with_source(e)
                .hint("check the host name and your network (DNS)")
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(not_connected(&ep.to_string(), last))
}

/// What the first four bytes from a server say: an SSH server greets with `SSH-`.
fn judge_banner(who: &str, read: std::io::Result<[u8; 4]>) -> Result<()> {
    match read {
        Ok(head) if &head == b"SSH-" => Ok(()),
        Ok(_) => Err(net(format!(
            "something answered on {who} that is not an SSH server"
        ))
        .hint("check that the host and port are those of the Git server's SSH service")),
        Err(e) => Err(
            net(format!("{who} took the connection but sent no SSH banner"))
                .with_source(e)
                .hint("check that the host and port are those of the Git server's SSH service"),
        ),
    }
}

/// Whether an SSH server answers on `ep`: [`connect`], then its banner (`SSH-`),
/// without a key exchange. For `doctor`'s network check.
pub fn reachable(ep: &Endpoint, timeout: Duration) -> Result<()> {
    let mut stream = connect(ep, timeout)?;
    let mut head = [0u8; 4];
    let read = stream.read_exact(&mut head).map(|()| head);
    judge_banner(&ep.to_string(), read)
}

/// A finished key exchange: the session (not authenticated) and the host key it showed.
struct Handshake {
    session: ssh2::Session,
    host_key: PublicKey,
}

/// The SSH key exchange on `stream` with `preference` (see [`host_key_preference`]), no
/// authentication.
fn handshake<S: 'static + std::os::fd::AsRawFd>(
    who: &str,
    stream: S,
    preference: &str,
    timeout: Duration,
) -> Result<Handshake> {
    let mut session = ssh2::Session::new()
        .map_err(|e| Error::internal("could not start libssh2").with_source(e))?;
    session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    let _ = session.method_pref(ssh2::MethodType::HostKey, preference);
    session.set_tcp_stream(stream);
    session.handshake().map_err(|e| {
        net(format!("{who} did not complete an SSH handshake (it closed the connection, timed out, or is not an SSH server)"))
            .with_source(e)
            .hint("check that the host and port are those of the Git server's SSH service")
    })?;
    let (blob, _) = session.host_key().ok_or_else(|| {
        net(format!(
            "{who} completed the handshake but showed no host key"
        ))
    })?;
    let host_key = PublicKey::from_bytes(blob).map_err(|e| {
        Error::new(
            ErrorKind::HostKey,
            format!("{who} presented a host key keyclone cannot read"),
        )
        .with_source(e)
    })?;
    Ok(Handshake { session, host_key })
}

/// The key exchange with `ep`: over a direct connection, or through the `ProxyCommand`
/// recorded for it ([`crate::ssh::proxy`]), which is kept running as long as the session.
fn open(
    ep: &Endpoint,
    preference: &str,
    timeout: Duration,
) -> Result<(Handshake, Option<crate::ssh::proxy::ProxyStream>)> {
    let who = ep.to_string();
    let Some(command) = crate::ssh::proxy::command_for(ep) else {
        return Ok((
            handshake(&who, connect(ep, timeout)?, preference, timeout)?,
            None,
        ));
    };
    let mut proxy = crate::ssh::proxy::spawn(&command, timeout)?;
    let sock = proxy
        .sock
        .try_clone()
        .map_err(|e| Error::internal("could not duplicate a socket").with_source(e))?;
    match handshake(&who, sock, preference, timeout) {
        Ok(done) => Ok((done, Some(proxy))),
        Err(e) if e.kind() == ErrorKind::HostKey => Err(e),
        Err(e) => Err(proxy.explain(e)),
    }
}

/// Connects to `ep` and returns the host key the server presents.
pub fn fetch_host_key(ep: &Endpoint, timeout: Duration, preference: &str) -> Result<PublicKey> {
    let (done, _proxy) = open(ep, preference, timeout)?;
    let _ = done
        .session
        .disconnect(None, "keyclone: host key checked", None);
    Ok(done.host_key)
}
/// A session to `ep` through its proxy ([`crate::ssh::proxy`]) after the server presented
/// `expected` (anything else is refused as a changed key), authenticated as `user` with `key`.
/// For the git transport over a proxy. The proxy lives as long as the returned stream.
pub fn login_through_proxy(
    ep: &Endpoint,
    timeout: Duration,
    expected: &PublicKey,
    user: &str,
    key: LoginKey<'_>,
) -> Result<(ssh2::Session, crate::ssh::proxy::ProxyStream)> {
    let who = ep.to_string();
    let preference = host_key_preference(&[expected.algorithm().as_str().to_owned()]);
    let (done, proxy) = open(ep, &preference, timeout)?;
    let proxy = proxy.ok_or_else(|| Error::internal(format!("{who} has no proxy")))?;
    if done.host_key.key_data() != expected.key_data() {
        return Err(Error::new(
            ErrorKind::HostKey,
            format!("{who} presented another host key than the one verified a moment ago; keyclone stopped"),
        )
        .hint("someone may be intercepting the connection: do not continue; check with `keyclone trust`"));
    }
    let session = authenticate(done.session, user, key, timeout, &who)?;
    if !session.authenticated() {
        return Err(Error::new(
            ErrorKind::Auth,
            format!(
                "{who} did not accept the key for user `{user}`: the key is not on your account yet"
            ),
        ));
    }
    Ok((session, proxy))
}

/// How to present the key when logging in.
#[derive(Debug, Clone, Copy)]
pub enum LoginKey<'a> {
    /// Through ssh-agent. libssh2 finds the agent through the process's `SSH_AUTH_SOCK`, which
    /// the `Env` snapshot holds too.
    Agent,
    /// Through the agent at `socket`, with the identity that is `key` (not the agent's first
    /// one): keyclone's own agent, which `SSH_AUTH_SOCK` may not name.
    AgentAt {
        socket: &'a std::path::Path,
        key: &'a PublicKey,
    },
    File {
        path: &'a std::path::Path,
        passphrase: Option<&'a str>,
    },
}

/// Logs in as `user` with a key (like `ssh -T`), after checking that the server presents
/// `expected` as its host key. Returns whether the server accepted the key. Every step is
/// bounded by `timeout`, the login through ssh-agent too (see [`agent_login`]).
pub fn check_login(
    ep: &Endpoint,
    timeout: Duration,
    expected: &PublicKey,
    user: &str,
    key: LoginKey<'_>,
) -> Result<bool> {
    let (session, _proxy) = login(ep, timeout, expected, user, key)?;
    let ok = session.authenticated();
    let _ = session.disconnect(None, "keyclone: login checked", None);
    Ok(ok)
}

/// What a command run over SSH gave: its exit status and output (each bounded).
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `command` on the server as `user` with the key, after the same host key check as
/// [`check_login`] (`git-lfs-authenticate PATH download`); reads at most `limit` bytes of its
/// output and of its errors.
pub fn exec(
    ep: &Endpoint,
    timeout: Duration,
    expected: &PublicKey,
    (user, key): (&str, LoginKey<'_>),
    command: &str,
    limit: u64,
) -> Result<ExecOutput> {
    let mut running = open_exec(ep, timeout, expected, (user, key), command, timeout)?;
    let mut stdout = Vec::new();
    (&mut running)
        .take(limit)
        .read_to_end(&mut stdout)
        .map_err(|e| net(format!("reading a command's answer from {ep} failed")).with_source(e))?;
    let (status, stderr) = running.finish(limit);
    Ok(ExecOutput {
        status,
        stdout,
        stderr,
    })
}

/// A command running on the server over one SSH exec channel (`git-lfs-transfer PATH
/// download`): its standard input and output as a byte stream, every read and write bounded by
/// the stall timeout it was opened with. The session (and its proxy) lives as long as it.
pub struct ExecChannel {
    session: ssh2::Session,
    channel: ssh2::Channel,
    _proxy: Option<crate::ssh::proxy::ProxyStream>,
    stall: Duration,
}

impl std::fmt::Debug for ExecChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecChannel").finish_non_exhaustive()
    }
}

/// Opens a session to `ep` with the same host key check and key as [`check_login`] and starts
/// `command` on it; from then on each read or write waits at most `stall`.
pub fn open_exec(
    ep: &Endpoint,
    timeout: Duration,
    expected: &PublicKey,
    (user, key): (&str, LoginKey<'_>),
    command: &str,
    stall: Duration,
) -> Result<ExecChannel> {
    let (session, proxy) = login(ep, timeout, expected, user, key)?;
    if !session.authenticated() {
        return Err(Error::new(
            ErrorKind::Auth,
            format!("{ep} did not accept the key"),
        ));
    }
    let who = ep.to_string();
    let broke =
        |e: ssh2::Error| net(format!("running a command on {who} over SSH failed")).with_source(e);
    let mut channel = session.channel_session().map_err(broke)?;
    channel.exec(command).map_err(broke)?;
    session.set_timeout(u32::try_from(stall.as_millis()).unwrap_or(u32::MAX));
    Ok(ExecChannel {
        session,
        channel,
        _proxy: proxy,
        stall,
    })
}

impl ExecChannel {
    /// A timed-out read or write named as the stall it is.
    fn stalled(&self, e: std::io::Error) -> std::io::Error {
        if e.kind() == std::io::ErrorKind::TimedOut {
            crate::error::stalled(self.stall)
        } else {
            e
        }
    }

    /// Ends the command: its exit status (-1 when it gave none) and at most `limit` bytes of
    /// what it wrote to its standard error; the session is closed.
    pub fn finish(mut self, limit: u64) -> (i32, Vec<u8>) {
        let _ = self.channel.send_eof();
        let mut stderr = Vec::new();
        let _ = self.channel.stderr().take(limit).read_to_end(&mut stderr);
        let _ = self.channel.wait_close();
        let status = self.channel.exit_status().unwrap_or(-1);
        let _ = self.session.disconnect(None, "keyclone: done", None);
        (status, stderr)
    }
}

impl Read for ExecChannel {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.channel.read(buf).map_err(|e| self.stalled(e))
    }
}

impl std::io::Write for ExecChannel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.channel.write(buf).map_err(|e| self.stalled(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.channel.flush().map_err(|e| self.stalled(e))
    }
}

/// The handshake, the host key check against `expected`, and the key offered as `user`: the
/// session (authenticated or not), and the proxy it runs through, if any (kept as long as it).
fn login(
    ep: &Endpoint,
    timeout: Duration,
    expected: &PublicKey,
    user: &str,
    key: LoginKey<'_>,
) -> Result<(ssh2::Session, Option<crate::ssh::proxy::ProxyStream>)> {
    let who = ep.to_string();
    let mismatch = || {
        Error::new(
            ErrorKind::HostKey,
            format!("{who} presented another host key than the one verified a moment ago; keyclone stopped"),
        )
        .hint("someone may be intercepting the connection: do not continue; check with `keyclone trust`")
    };
    let preference = host_key_preference(&[expected.algorithm().as_str().to_owned()]);
    let (done, proxy) = match open(ep, &preference, timeout) {
        Ok(done) => done,
        // A key keyclone cannot read is not the one it verified.
        Err(e) if e.kind() == ErrorKind::HostKey => return Err(mismatch().with_source(e)),
        Err(e) => return Err(e),
    };
    if done.host_key.key_data() != expected.key_data() {
        return Err(mismatch());
    }
    Ok((authenticate(done.session, user, key, timeout, &who)?, proxy))
}

/// Offers the key as `user` on an open session; the session back, authenticated or not. The
/// agent's part is bounded by `limit` ([`agent_login`]).
fn authenticate(
    session: ssh2::Session,
    user: &str,
    key: LoginKey<'_>,
    limit: Duration,
    who: &str,
) -> Result<ssh2::Session> {
    match key {
        LoginKey::Agent => agent_login(session, user, None, limit, who),
        LoginKey::AgentAt { socket, key } => {
            let mut blob = Vec::new();
            ssh_encoding::Encode::encode(key.key_data(), &mut blob)
                .map_err(|e| Error::internal("could not encode the key").with_source(e))?;
            agent_login(session, user, Some((socket.to_owned(), blob)), limit, who)
        }
        LoginKey::File { path, passphrase } => {
            let _ = session.userauth_pubkey_file(user, None, path, passphrase);
            Ok(session)
        }
    }
}

/// The login through ssh-agent, bounded by `limit`: libssh2 talks to the agent's socket with
/// blocking reads and no timeout of its own, so an agent that stalls (stuck, or waiting for a
/// confirmation nobody sees) would hang keyclone. The login runs on a worker thread that is
/// given up past `limit` (it ends with the process). `at`: the agent's socket and the key's
/// blob to use; without it, `SSH_AUTH_SOCK` and the agent's first key (libssh2's own choice).
fn agent_login(
    session: ssh2::Session,
    user: &str,
    at: Option<(std::path::PathBuf, Vec<u8>)>,
    limit: Duration,
    who: &str,
) -> Result<ssh2::Session> {
    let (tx, rx) = std::sync::mpsc::channel();
    let user = user.to_owned();
    std::thread::Builder::new()
        .name("agent-login".into())
        .spawn(move || {
            match at {
                None => {
                    let _ = session.userauth_agent(&user);
                }
                Some((socket, blob)) => {
                    let _ = login_with(&session, &user, &socket, &blob);
                }
            }
            let _ = tx.send(session);
        })
        .map_err(|e| Error::internal("could not start the login thread").with_source(e))?;
    rx.recv_timeout(limit)
        .map_err(|_| agent_stalled(who, limit))
}

/// Logs in with the identity `blob` of the agent at `socket`.
fn login_with(
    session: &ssh2::Session,
    user: &str,
    socket: &std::path::Path,
    blob: &[u8],
) -> std::result::Result<(), ssh2::Error> {
    let mut agent = session.agent()?;
    agent.set_identity_path(socket)?;
    agent.connect()?;
    agent.list_identities()?;
    let found = agent.identities()?.into_iter().find(|id| id.blob() == blob);
    let r = match found {
        Some(id) => agent.userauth(user, &id),
        None => Ok(()),
    };
    let _ = agent.disconnect();
    r
}

fn agent_stalled(who: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "ssh-agent (`SSH_AUTH_SOCK`) did not answer within {}s while logging in to {who}; keyclone gave up",
            limit.as_secs()
        ),
    )
    .hint("the agent may be stuck or waiting for a confirmation: restart it (`eval \"$(ssh-agent)\"`, or `keyclone agent stop` for keyclone's own), then run the same command again")
    .hint("or run the command with `SSH_AUTH_SOCK` unset: keyclone then uses the key file and asks for its passphrase")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn known_types_come_first() {
        let p = host_key_preference(&["ssh-rsa".into()]);
        assert!(
            p.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519"),
            "{p}"
        );
        assert!(host_key_preference(&[]).starts_with("ssh-ed25519,"));
    }

    #[test]
    fn an_ssh_banner_answers_and_anything_else_is_a_network_error() {
        assert!(judge_banner("h:22", Ok(*b"SSH-")).is_ok());
        let other = judge_banner("h:22", Ok(*b"HTTP")).unwrap_err();
        assert_eq!(other.kind(), ErrorKind::Network);
        assert!(other.message().contains("not an SSH server"), "{other}");
        let silent = judge_banner(
            "h:22",
            Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        )
        .unwrap_err();
        assert_eq!(silent.kind(), ErrorKind::Network);
        assert!(silent.message().contains("no SSH banner"), "{silent}");
        assert_eq!(silent.causes().len(), 1);
    }

    #[test]
    fn a_stalled_agent_says_so_with_how_to_go_on() {
        let e = agent_stalled("h:22", Duration::from_secs(3));
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("did not answer within 3s"), "{e}");
        assert!(e.hints().iter().any(|h| h.contains("keyclone agent stop")));
        assert!(
            e.hints()
                .iter()
                .any(|h| h.contains("`SSH_AUTH_SOCK` unset"))
        );
    }

    #[test]
    fn no_connection_names_the_endpoint_and_the_port_443_fallback() {
        let e = not_connected("h:22", Some(std::io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(e.kind(), ErrorKind::Network);
        assert_eq!(e.message(), "could not connect to h:22");
        assert_eq!(e.causes().len(), 1);
        assert!(e.hints().iter().any(|h| h.contains("ssh.github.com:443")));
        assert!(e.hints().iter().any(|h| h.contains("firewall")));
    }

    /// A server on localhost that sends `greeting` to its first client.
    fn serve(greeting: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let _ = conn.write_all(greeting);
            }
        });
        port
    }

    #[test]
    fn connect_bounds_reads_and_writes_by_the_timeout() {
        let port = serve(b"");
        let s = connect(&Endpoint::new("127.0.0.1", port), Duration::from_secs(7)).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_secs(7)));
        assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn reachable_tells_an_ssh_server_from_another_one() {
        let t = Duration::from_secs(5);
        assert!(reachable(&Endpoint::new("127.0.0.1", serve(b"SSH-2.0-test\r\n")), t).is_ok());
        let e = reachable(
            &Endpoint::new("127.0.0.1", serve(b"HTTP/1.1 400 Bad\r\n")),
            t,
        )
        .unwrap_err();
        assert!(e.message().contains("not an SSH server"), "{e}");
        let e = reachable(&Endpoint::new("127.0.0.1", serve(b"")), t).unwrap_err();
        assert!(e.message().contains("no SSH banner"), "{e}");
    }
}
