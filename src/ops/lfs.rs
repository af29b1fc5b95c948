//! Git LFS content for a clone: find the pointer files, fetch their objects over the same
//! verified SSH connection and key as the clone, verify and store them, put them in the work
//! tree and refresh the index; and say what happened, naming the files left as pointers.
//!
//! Which protocol, as git-lfs decides (`lfsapi.initSSHTransfer`): first the pure SSH protocol,
//! `git-lfs-transfer PATH download` on an exec channel; when that command does not start the
//! protocol (it does not exist: the shell's exit 127; it sends no `version=1`; the channel
//! fails), the fallback is `git-lfs-authenticate PATH download` and the HTTPS batch API with
//! the header it returns.
//! A changed host key or a refused key is not a reason to try the other: it fails the files.
//! The pure protocol is one request at a time on a channel, so, like git-lfs (one `ssh` per
//! transfer worker), up to [`JOBS`] connections download at once, each its own verified
//! session; the first also asks the batches.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone::Auth;
use crate::git::remote::RemoteUrl;
use crate::http::{Client, Method, Request, Timeouts};
use crate::lfs::attributes::Filter;
use crate::lfs::batch::{self, Endpoint, Fetch};
use crate::lfs::pointer::Pointer;
use crate::lfs::transfer;
use crate::lfs::{self as domain, LfsFile, LfsProgress};

/// Objects asked for in one batch request, either protocol (git-lfs asks for 100).
const BATCH_SIZE: usize = transfer::BATCH_SIZE;
/// Downloads at once (git-lfs's `lfs.concurrenttransfers` default is 8; 4 suits a small VM).
pub(crate) const JOBS: usize = 4;
/// The most of `git-lfs-authenticate`'s answer (or of a command's errors) that is read.
const AUTH_LIMIT: u64 = 64 * 1024;

/// Which LFS files to fetch.
#[derive(Debug, Clone, Default)]
pub(crate) struct LfsOptions {
    /// `--no-lfs`: fetch none (the files stay pointers; the report says so).
    pub skip: bool,
    pub filter: Filter,
    /// The SSH and HTTPS timeout.
    pub timeout: Option<Duration>,
    /// The longest silence from the LFS server mid-download (`--stall-timeout`): after it the
    /// file is given up, its pointer left.
    pub stall: Option<Duration>,
}

/// What a pull did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Pulled {
    /// Files whose content was put in place, and their bytes.
    pub fetched: usize,
    pub bytes: u64,
    /// Files that already had their content.
    pub present: usize,
    /// Files left as pointers: path and why.
    pub failed: Vec<(String, String)>,
    /// Files left as pointers on purpose (`--no-lfs`, include/exclude).
    pub skipped: Vec<String>,
    /// Files with `filter=lfs` that are not valid pointers (left as they are).
    pub invalid: Vec<(String, String)>,
    /// How the objects were asked for: `ssh` (`git-lfs-transfer`), `https`
    /// (`git-lfs-authenticate` and the batch API), or none when nothing was fetched.
    pub protocol: Option<&'static str>,
}

/// The work tree of the clone at or above `start` and its `origin` URL.
pub(crate) fn origin_of(start: &Path) -> Result<(std::path::PathBuf, String)> {
    let repo = git2::Repository::discover(start).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("`{}` is not inside a git clone", start.display()),
        )
        .with_source(e)
        .hint("run it in the clone, or give the clone's folder: `keyclone lfs pull PATH`")
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::refused("the repository has no work tree (a bare repository)"))?
        .to_path_buf();
    let origin = repo
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().ok().map(str::to_owned))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "the clone has no `origin` remote to fetch from",
            )
            .hint("add it with `git remote add origin URL`")
        })?;
    Ok((workdir, origin))
}

/// The server-side path of the repository, quoted for the server's shell.
fn quoted_path(url: &RemoteUrl) -> String {
    format!("'{}'", url.server_path().replace('\'', r"'\''"))
}

/// Fetches the LFS content of the clone at `repo_path` from `url`'s server, whose host key
/// was approved as `host_key`.
pub(crate) fn pull(
    repo_path: &Path,
    url: &RemoteUrl,
    auth: &Auth,
    host_key: &PublicKey,
    opts: &LfsOptions,
    progress: &dyn LfsProgress,
) -> Result<Pulled> {
    let repo = git2::Repository::open(repo_path).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("`{}` is not a git clone", repo_path.display()),
        )
        .with_source(e)
    })?;
    let scan = domain::scan(&repo)?;
    let mut pulled = Pulled {
        present: scan.present,
        invalid: scan.invalid.clone(),
        ..Pulled::default()
    };
    let (wanted, skipped): (Vec<LfsFile>, Vec<LfsFile>) = scan
        .pointers
        .into_iter()
        .partition(|f| !opts.skip && opts.filter.wants(&f.path));
    pulled.skipped = skipped.into_iter().map(|f| f.path).collect();
    if wanted.is_empty() {
        return Ok(pulled);
    }
    let git_dir = repo.path().to_path_buf();
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::internal("the clone has no work tree"))?
        .to_path_buf();
    let total: u64 = wanted.iter().map(|f| f.pointer.size).sum();
    progress.start(wanted.len(), total);
    let (stored, to_fetch): (Vec<LfsFile>, Vec<LfsFile>) = wanted
        .into_iter()
        .partition(|f| domain::store::has(&git_dir, &f.pointer));
    let mut ready = stored;
    for f in &ready {
        progress.bytes(f.pointer.size);
    }
    if !to_fetch.is_empty() {
        let (ok, failed, protocol) =
            fetch_missing(url, auth, host_key, opts, &git_dir, to_fetch, progress);
        ready.extend(ok);
        pulled.failed.extend(failed);
        pulled.protocol = protocol;
    }
    let mut placed = Vec::new();
    for f in ready {
        match domain::checkout::place(&workdir, &git_dir, &f) {
            Ok(()) => {
                pulled.fetched += 1;
                pulled.bytes += f.pointer.size;
                placed.push(f.path);
            }
            Err(e) => pulled.failed.push((f.path, e.message().to_owned())),
        }
        progress.file_done();
    }
    progress.finish();
    domain::checkout::refresh_index(&repo, &placed)?;
    Ok(pulled)
}

/// What a download round left: the files whose object is now stored, the others with the
/// reason.
type Outcome = (Vec<LfsFile>, Vec<(String, String)>);

/// Fetches the objects of `files` into the store: over `git-lfs-transfer` when the server
/// offers it, else through `git-lfs-authenticate` and HTTPS. Also says which was used.
fn fetch_missing(
    url: &RemoteUrl,
    auth: &Auth,
    host_key: &PublicKey,
    opts: &LfsOptions,
    git_dir: &Path,
    files: Vec<LfsFile>,
    progress: &dyn LfsProgress,
) -> (Vec<LfsFile>, Vec<(String, String)>, Option<&'static str>) {
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(30));
    let stall = opts.stall.unwrap_or(Duration::from_secs(120));
    let pure = Pure {
        url,
        auth,
        host_key,
        timeout,
        stall,
    };
    let not_offered = match pure.open() {
        Ok(conn) => {
            let (ok, failed) = pure.fetch_all(conn, git_dir, files, progress);
            return (ok, failed, Some("ssh"));
        }
        Err(NoTransfer::Failed(why)) => {
            let failed = files.into_iter().map(|f| (f.path, why.clone())).collect();
            return (Vec::new(), failed, None);
        }
        Err(NoTransfer::NotOffered(why)) => why,
    };
    match authenticate(url, auth, host_key, timeout) {
        Err(why) => {
            let why = format!("{why}; and `git-lfs-transfer`: {not_offered}");
            let failed = files.into_iter().map(|f| (f.path, why.clone())).collect();
            (Vec::new(), failed, None)
        }
        Ok(endpoint) => {
            let client = Client::new(Timeouts {
                connect: timeout,
                request: timeout * 4,
                stall,
            });
            let (ok, failed) = fetch_all(&client, &endpoint, git_dir, files, progress);
            (ok, failed, Some("https"))
        }
    }
}

/// Why the pure SSH protocol is not used.
enum NoTransfer {
    /// The server does not offer it (git-lfs then falls back to `git-lfs-authenticate`).
    NotOffered(String),
    /// It must not be tried further: the host key changed, or the key was refused.
    Failed(String),
}

/// The pure SSH protocol to one server: where, and with which key and timeouts.
struct Pure<'a> {
    url: &'a RemoteUrl,
    auth: &'a Auth,
    host_key: &'a PublicKey,
    timeout: Duration,
    /// Every read and write on the channel waits at most this long (`--stall-timeout`).
    stall: Duration,
}

type PureConn = transfer::Conn<crate::ssh::probe::ExecChannel>;

impl Pure<'_> {
    /// A new verified session running `git-lfs-transfer PATH download`, negotiated.
    fn open(&self) -> std::result::Result<PureConn, NoTransfer> {
        let ep = self.url.endpoint();
        let user = self.url.user.as_deref().unwrap_or(&self.auth.default_user);
        let command = format!("git-lfs-transfer {} download", quoted_path(self.url));
        let channel = crate::ssh::probe::open_exec(
            &ep,
            self.timeout,
            self.host_key,
            (user, self.auth.login_key()),
            &command,
            self.stall,
        )
        .map_err(|e| match e.kind() {
            // The same host and key would fail the fallback too, and a changed host key is no
            // reason to try anything else.
            ErrorKind::HostKey | ErrorKind::Auth => NoTransfer::Failed(e.message().to_owned()),
            _ => NoTransfer::NotOffered(e.message().to_owned()),
        })?;
        let mut conn = transfer::Conn::new(channel, &ep.to_string());
        match conn.negotiate() {
            Ok(()) => Ok(conn),
            Err(e) => {
                let (status, stderr) = conn.into_inner().finish(AUTH_LIMIT);
                let said = batch::shown(String::from_utf8_lossy(&stderr).trim());
                Err(NoTransfer::NotOffered(if status > 0 {
                    format!(
                        "it exited {status}{}",
                        if said.is_empty() {
                            String::new()
                        } else {
                            format!(": {said}")
                        }
                    )
                } else {
                    e.message().to_owned()
                }))
            }
        }
    }

    /// Asks the batches on `first` and downloads what is offered, [`JOBS`] connections at a
    /// time (`first` and new ones opened as workers need them; a connection a failed object
    /// left mid-response is dropped, and the next object gets a new one).
    fn fetch_all(
        &self,
        first: PureConn,
        git_dir: &Path,
        files: Vec<LfsFile>,
        progress: &dyn LfsProgress,
    ) -> Outcome {
        let mut conn = Some(first);
        let (queue, failed) = plan(&files, |pointers| {
            let mut c = conn.take().map_or_else(|| self.reopen(), Ok)?;
            let answers = c.batch(pointers).map_err(|e| e.message().to_owned());
            if c.usable() {
                conn = Some(c);
            }
            answers
        });
        let workers = JOBS.min(queue.len());
        let queue = Mutex::new(queue);
        let pool = Mutex::new(conn.into_iter().collect::<Vec<_>>());
        let done = Mutex::new((Vec::new(), failed));
        let last_error = Mutex::new(None::<String>);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut mine: Option<PureConn> = None;
                    loop {
                        let next = queue.lock().map(|mut q| q.pop());
                        let Ok(Some((f, offer))) = next else { break };
                        let from_pool = || pool.lock().ok().and_then(|mut p| p.pop());
                        let c = match mine
                            .take()
                            .or_else(from_pool)
                            .map_or_else(|| self.reopen(), Ok)
                        {
                            Ok(c) => c,
                            Err(why) => {
                                // No connection for this worker: the object goes back for the
                                // others (or is failed below when none is left).
                                if let Ok(mut q) = queue.lock() {
                                    q.push((f, offer));
                                }
                                if let Ok(mut l) = last_error.lock() {
                                    *l = Some(why);
                                }
                                break;
                            }
                        };
                        let mut c = c;
                        let result = get_one(&mut c, git_dir, &f, &offer, progress);
                        if c.usable() {
                            mine = Some(c);
                        }
                        if let Ok(mut d) = done.lock() {
                            match result {
                                Ok(()) => d.0.push(f),
                                Err(e) => d.1.push((f.path, e.message().to_owned())),
                            }
                        }
                    }
                    if let Some(c) = mine {
                        quit(c);
                    }
                });
            }
        });
        for c in pool.into_inner().unwrap_or_default() {
            quit(c);
        }
        let (ok, mut failed) = done.into_inner().unwrap_or_default();
        let why = last_error
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| "no connection to the LFS server was left".to_owned());
        for (f, _) in queue.into_inner().unwrap_or_default() {
            failed.push((f.path, why.clone()));
        }
        (ok, failed)
    }

    /// Another connection, or why there is none.
    fn reopen(&self) -> std::result::Result<PureConn, String> {
        self.open().map_err(|e| match e {
            NoTransfer::NotOffered(why) | NoTransfer::Failed(why) => {
                format!("could not open another `git-lfs-transfer` connection: {why}")
            }
        })
    }
}

/// `get-object` on `conn`, the bytes verified into the store.
fn get_one(
    conn: &mut PureConn,
    git_dir: &Path,
    f: &LfsFile,
    offer: &transfer::Offer,
    progress: &dyn LfsProgress,
) -> Result<()> {
    let mut body = conn.get_object(&f.pointer, offer)?;
    domain::store::receive(git_dir, &f.pointer, &mut body, &mut |n| progress.bytes(n))
}

/// Ends a connection politely: `quit`, then the channel closed.
fn quit(conn: PureConn) {
    if let Ok(channel) = conn.quit() {
        let _ = channel.finish(AUTH_LIMIT);
    }
}

/// `git-lfs-authenticate PATH download` over SSH, with the approved host key and the key: the
/// batch API's address and header, or why there is none.
fn authenticate(
    url: &RemoteUrl,
    auth: &Auth,
    host_key: &PublicKey,
    timeout: Duration,
) -> std::result::Result<Endpoint, String> {
    let ep = url.endpoint();
    let user = url.user.as_deref().unwrap_or(&auth.default_user);
    let command = format!("git-lfs-authenticate {} download", quoted_path(url));
    let out = crate::ssh::probe::exec(
        &ep,
        timeout,
        host_key,
        (user, auth.login_key()),
        &command,
        AUTH_LIMIT,
    )
    .map_err(|e| e.message().to_owned())?;
    if out.status != 0 {
        let said = batch::shown(String::from_utf8_lossy(&out.stderr).trim());
        return Err(format!(
            "{ep} offers no LFS server over SSH (`git-lfs-authenticate` exited {}{})",
            out.status,
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        ));
    }
    batch::parse_authenticate(&out.stdout, &ep.to_string()).map_err(|e| e.message().to_owned())
}

/// Asks the batch API for `files` and downloads what it offers, [`JOBS`] at a time: the files
/// whose object is now stored, and the others with the reason.
fn fetch_all(
    client: &Client,
    endpoint: &Endpoint,
    git_dir: &Path,
    files: Vec<LfsFile>,
    progress: &dyn LfsProgress,
) -> Outcome {
    let (queue, failed) = plan(&files, |pointers| ask(client, endpoint, pointers));
    let queue = Mutex::new(queue);
    let done = Mutex::new((Vec::new(), failed));
    std::thread::scope(|s| {
        for _ in 0..JOBS {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.pop());
                    let Ok(Some((f, fetch))) = next else { break };
                    let result = download(client, git_dir, &f, &fetch, progress);
                    if let Ok(mut d) = done.lock() {
                        match result {
                            Ok(()) => d.0.push(f),
                            Err(e) => d.1.push((f.path, e.message().to_owned())),
                        }
                    }
                }
            });
        }
    });
    done.into_inner().unwrap_or_default()
}

/// Each file's answer in a batch: an offer or the reason there is none; `Err` for the whole batch.
type Answers<T> = std::result::Result<Vec<std::result::Result<T, String>>, String>;
/// The files to download with their offer, and the failed files with the reason.
type Plan<T> = (Vec<(LfsFile, T)>, Vec<(String, String)>);

/// Asks `ask` for `files` a batch ([`BATCH_SIZE`]) at a time: the files offered with their
/// offer, and the others with the reason (the batch's own when the whole batch failed).
fn plan<T>(files: &[LfsFile], mut ask: impl FnMut(&[Pointer]) -> Answers<T>) -> Plan<T> {
    let mut queue = Vec::new();
    let mut failed = Vec::new();
    for chunk in files.chunks(BATCH_SIZE) {
        let pointers: Vec<_> = chunk.iter().map(|f| f.pointer.clone()).collect();
        match ask(&pointers) {
            Err(why) => failed.extend(chunk.iter().map(|f| (f.path.clone(), why.clone()))),
            Ok(answers) => {
                for (f, a) in chunk.iter().zip(answers) {
                    match a {
                        Ok(offer) => queue.push((f.clone(), offer)),
                        Err(why) => failed.push((f.path.clone(), why)),
                    }
                }
            }
        }
    }
    (queue, failed)
}

/// One batch request: each object's download, or why there is none; `Err` for the whole batch.
fn ask(client: &Client, endpoint: &Endpoint, pointers: &[Pointer]) -> Answers<Fetch> {
    let url = batch::batch_url(endpoint).map_err(|e| e.message().to_owned())?;
    let mut req = Request::new(Method::Post, url).header("Accept", "application/vnd.git-lfs+json");
    req.body = Some((
        "application/vnd.git-lfs+json".to_owned(),
        batch::request_body(pointers),
    ));
    if let Some(a) = &endpoint.headers.auth {
        req = req.auth(a.clone());
    }
    for (n, v) in &endpoint.headers.other {
        req = req.header(n, v);
    }
    let answer = client.send(&req).map_err(|e| e.message().to_owned())?;
    if answer.status != 200 {
        let what = match answer.status {
            401 | 403 => "refused access",
            404 => "has no such repository",
            429 => "is rate limiting",
            507 | 509 => "says the storage or bandwidth quota is exhausted",
            _ => "failed",
        };
        return Err(format!(
            "the LFS server {} {what} (HTTP {})",
            crate::http::origin_of(&answer.url),
            answer.status
        ));
    }
    batch::judge(endpoint, pointers, &answer.body).map_err(|e| e.message().to_owned())
}

/// Downloads one object into the store, verified.
fn download(
    client: &Client,
    git_dir: &Path,
    f: &LfsFile,
    fetch: &Fetch,
    progress: &dyn LfsProgress,
) -> Result<()> {
    let mut req = Request::get(fetch.url.clone());
    if let Some(a) = &fetch.headers.auth {
        req = req.auth(a.clone());
    }
    for (n, v) in &fetch.headers.other {
        req = req.header(n, v);
    }
    // One byte more than the pointer says, so a longer answer is named as such.
    let mut answer = client.open(&req, f.pointer.size.saturating_add(1))?;
    if answer.status != 200 {
        return Err(Error::new(
            ErrorKind::Network,
            format!(
                "the download from {} answered HTTP {}",
                crate::http::origin_of(&fetch.url),
                answer.status
            ),
        ));
    }
    domain::store::receive(git_dir, &f.pointer, &mut answer.body, &mut |n| {
        progress.bytes(n)
    })
}

/// The report: what was fetched, and for files left as pointers an error of kind
/// `Incomplete` naming them and the commands that fetch them later.
pub(crate) fn report(ctx: &mut Ctx, repo_path: &Path, pulled: &Pulled) -> Result<()> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    if pulled.fetched > 0 {
        let via = match pulled.protocol {
            Some("ssh") => " over SSH (`git-lfs-transfer`)",
            Some(_) => " over HTTPS (`git-lfs-authenticate`)",
            None => "",
        };
        ctx.ui.info(&format!(
            "{} LFS file{} ({:.1} MiB) fetched{via}.",
            pulled.fetched,
            if pulled.fetched == 1 { "" } else { "s" },
            mib(pulled.bytes)
        ));
    }
    for (path, why) in &pulled.invalid {
        ctx.ui.warn(&format!(
            "`{path}` is marked as an LFS file but is not a valid LFS pointer ({why}): left as it is"
        ));
    }
    let pull = format!("cd {} && keyclone lfs pull", repo_path.display());
    if !pulled.skipped.is_empty() && pulled.failed.is_empty() {
        ctx.ui.info(&format!(
            "{} LFS file{} left as pointers, as asked; fetch them later with `{pull}` (or `git lfs pull` where git-lfs is installed).",
            pulled.skipped.len(),
            if pulled.skipped.len() == 1 { " is" } else { "s are" },
        ));
    }
    if pulled.failed.is_empty() {
        return Ok(());
    }
    const NAMED: usize = 10;
    let mut msg = format!(
        "{} LFS file{} could not be fetched and {} still a pointer (a small text file, not the content):",
        pulled.failed.len(),
        if pulled.failed.len() == 1 { "" } else { "s" },
        if pulled.failed.len() == 1 {
            "is"
        } else {
            "are"
        },
    );
    for (path, why) in pulled.failed.iter().take(NAMED) {
        msg.push_str(&format!("\n  {path}: {why}"));
    }
    if pulled.failed.len() > NAMED {
        msg.push_str(&format!("\n  ... and {} more", pulled.failed.len() - NAMED));
    }
    Err(Error::new(ErrorKind::Incomplete, msg)
        .hint(format!(
            "the rest of the clone is in place; when the cause is fixed: `{pull}`"
        ))
        .hint("or, where git-lfs is installed: `git lfs pull` in the clone"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_path_is_quoted_for_its_shell() {
        let url = RemoteUrl::parse("ssh://git@h/srv/it's.git").unwrap();
        assert_eq!(quoted_path(&url), r"'/srv/it'\''s.git'");
    }
}
