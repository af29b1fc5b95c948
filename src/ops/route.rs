//! Where a connection goes: the host of a URL (or `HOST`) through the user's whole
//! `~/.ssh/config` (keyclone's block is part of it), as `ssh` would resolve it
//! ([`crate::ssh::user_config`]). What applies but keyclone does not do is said as a warning.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::git::remote::{RemoteUrl, Scheme};
use crate::ssh::user_config::{self, Inputs, Proxy, Resolved};

/// A host as the config resolves it, and the key it names.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub resolved: Resolved,
    /// The first `IdentityFile` that exists (`ssh` tries them in order; keyclone uses one).
    pub key: Option<PathBuf>,
}

impl Route {
    /// Does the config change anything for this host (and the port the URL names, 22 if none)?
    pub fn changes(&self, host: &str, port: u16) -> bool {
        let r = &self.resolved;
        !r.hostname.eq_ignore_ascii_case(host)
            || r.port != port
            || r.user.is_some()
            || self.key.is_some()
            || r.proxy.is_some()
    }
}

/// Resolves `host` through `~/.ssh/config` and shows the warnings. `port`: the one the URL or
/// `HOST:PORT` names, which wins over the config's `Port` as `ssh -p` does, for the
/// connection, the proxy's `%p` and where the proxy is recorded.
pub(crate) fn resolve(ctx: &mut Ctx, host: &str, port: Option<u16>) -> Result<Route> {
    let path = crate::ssh::config::path_in(&ctx.ssh_dir);
    let home = ctx
        .env
        .home()
        .or_else(|| ctx.ssh_dir.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"));
    let user = super::login_name(&ctx.env);
    let local_host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let env = |name: &str| ctx.env.get_str(name).map(str::to_owned);
    let inp = Inputs {
        home: &home,
        ssh_dir: &ctx.ssh_dir,
        local_user: &user,
        local_host: &local_host,
        uid: crate::files::my_uid(),
        env: &env,
    };
    let mut resolved = user_config::resolve(&path, host, &inp)?;
    if let Some(p) = port {
        resolved.port = p;
    }
    let key = resolved
        .identity_paths(&inp)?
        .into_iter()
        .find(|p| p.is_file());
    let mut warnings = resolved.warnings.clone();
    if let Some(alias) = &resolved.host_key_alias {
        warnings.push(format!(
            "`HostKeyAlias {alias}` applies to `{host}`, but keyclone checks the host key of `{}` itself",
            resolved.endpoint()
        ));
    }
    let own = |f: &String| {
        [
            ctx.ssh_dir.join("known_hosts"),
            ctx.ssh_dir.join("known_hosts2"),
        ]
        .iter()
        .any(|k| std::path::Path::new(f) == k)
    };
    if let Some(files) = resolved
        .user_known_hosts
        .as_ref()
        .filter(|f| !f.iter().all(own))
    {
        warnings.push(format!(
            "`UserKnownHostsFile {}` applies to `{host}`, but keyclone checks host keys against its own known_hosts in `{}`",
            files.join(" "),
            ctx.ssh_dir.display()
        ));
    }
    for w in &warnings {
        ctx.ui.warn(&format!("~/.ssh/config: {w}"));
    }
    let command = match &resolved.proxy {
        Some(Proxy::Command(_)) => resolved.proxy_command(&inp)?,
        Some(Proxy::Jump(j)) => Some(jump_command(ctx, j, &resolved.endpoint())?),
        None => None,
    };
    if let Some(c) = &command {
        crate::ssh::proxy::register(&resolved.endpoint(), c);
    }
    Ok(Route { resolved, key })
}

/// Single quotes for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `ProxyJump a,b` as OpenSSH runs it: `ssh -J a -W [host]:port b`, reading the same config
/// (`-F`) and keyclone's known_hosts, never asking on a terminal (`BatchMode`).
fn jump_command(ctx: &Ctx, jump: &str, to: &Endpoint) -> Result<String> {
    let (rest, last) = match jump.rsplit_once(',') {
        Some((rest, last)) => (Some(rest), last),
        None => (None, jump),
    };
    let (user, hostport) = match last.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, last),
    };
    let bad = || {
        crate::error::Error::new(
            crate::error::ErrorKind::Config,
            format!("the `ProxyJump {jump}` of `~/.ssh/config` is not `[user@]host[:port]`"),
        )
        .hint("fix that line of `~/.ssh/config` (`ssh -G HOST` shows what OpenSSH makes of it), then run the same command again")
    };
    let hop: Endpoint = hostport.parse().map_err(|_| bad())?;
    // Without a port of its own, the hop's port is what the config says for it.
    let explicit_port = hostport.starts_with('[') || hostport.contains(':');
    let mut words = vec![
        "ssh".to_owned(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!(
            "UserKnownHostsFile={}",
            ctx.ssh_dir.join("known_hosts").display()
        ),
    ];
    let config = crate::ssh::config::path_in(&ctx.ssh_dir);
    if config.is_file() {
        words.extend(["-F".into(), config.display().to_string()]);
    }
    if let Some(r) = rest {
        words.extend(["-J".into(), r.to_owned()]);
    }
    if let Some(u) = user {
        words.extend(["-l".into(), u.to_owned()]);
    }
    if explicit_port {
        words.extend(["-p".into(), hop.port.to_string()]);
    }
    words.extend([
        "-W".into(),
        format!("[{}]:{}", to.host, to.port),
        "--".into(),
        hop.host.clone(),
    ]);
    Ok(words
        .iter()
        .map(|w| sh_quote(w))
        .collect::<Vec<_>>()
        .join(" "))
}

/// An SSH URL through the config: the URL to connect to (`HostName`, `Port`, `User` put in,
/// what the URL gives itself kept) and the route; `None` when the config changes nothing.
pub(crate) fn route_url(ctx: &mut Ctx, url: &RemoteUrl) -> Result<Option<(RemoteUrl, Route)>> {
    if url.scheme != Scheme::Ssh {
        return Ok(None);
    }
    let route = resolve(ctx, &url.host, url.port)?;
    if !route.changes(&url.host, url.port.unwrap_or(crate::endpoint::DEFAULT_PORT)) {
        return Ok(None);
    }
    let r = &route.resolved;
    let port = url.port.unwrap_or(r.port);
    let user = url.user.clone().or_else(|| r.user.clone());
    let connect = url.at(&Endpoint::new(r.hostname.as_str(), port), user.as_deref())?;
    Ok(Some((connect, route)))
}

/// A `HOST[:PORT]` through the config: `HostName` always, `Port` unless one was given; says so
/// when the config changes it. Returns the endpoint to connect to and the route.
pub(crate) fn endpoint_for(ctx: &mut Ctx, ep: Endpoint) -> Result<(Endpoint, Route)> {
    let given = (ep.port != crate::endpoint::DEFAULT_PORT).then_some(ep.port);
    let route = resolve(ctx, &ep.host, given)?;
    if !route.changes(&ep.host, ep.port) {
        return Ok((ep, route));
    }
    let port = if ep.port == crate::endpoint::DEFAULT_PORT {
        route.resolved.port
    } else {
        ep.port
    };
    let connect = Endpoint::new(route.resolved.hostname.as_str(), port);
    if connect != ep {
        ctx.ui
            .info(&format!("`{}` is `{connect}` in `~/.ssh/config`", ep.host));
    }
    Ok((connect, route))
}

/// How a route is said: "`alias` is `host` port N in `~/.ssh/config`".
pub(crate) fn describe(alias: &str, connect: &RemoteUrl, route: &Route) -> String {
    let mut s = format!(
        "`{alias}` is `{}` port {} in `~/.ssh/config`",
        connect.host,
        connect.port.unwrap_or(crate::endpoint::DEFAULT_PORT)
    );
    if let Some(k) = &route.key {
        s.push_str(&format!("; using key `{}`", k.display()));
    }
    match &route.resolved.proxy {
        Some(Proxy::Command(c)) => s.push_str(&format!("; through `ProxyCommand {c}`")),
        Some(Proxy::Jump(j)) => s.push_str(&format!("; through `ProxyJump {j}`")),
        None => {}
    }
    s
}
