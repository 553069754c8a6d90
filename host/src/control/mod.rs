//! The control socket. A running `wasmhost run` answers on a Unix socket in the app's runtime
//! folder (`$XDG_RUNTIME_DIR/wasmhost/<app>-<hash>/control.sock`, else under the temporary
//! folder in `wasmhost-<uid>/`), made for this user only: the folder is 0700 and the socket
//! 0600. One request per connection, one line, answered with one JSON document: `ps` (a
//! snapshot, `snapshot.rs`) or `upgrade ENTRY GRACE_MS` (what the upgrade did, `upgrade.rs`).

mod snapshot;
mod upgrade;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

pub use snapshot::{NodeRow, ProcessRow, Snapshot, UnitRow, show_ms};
pub use upgrade::{MovedRow, UpgradeAnswer};

/// What a node answers on its control socket.
pub trait Requests: Send + Sync + 'static {
    /// `ps`: the node now.
    fn ps(&self) -> Snapshot;
    /// `upgrade`: the process entry `entry` (as the registry names it now) upgraded to its
    /// component, each process given `grace` to hand over; or why not.
    fn upgrade(&self, entry: String, grace: Duration) -> BoxFuture<'static, Result<UpgradeAnswer>>;
}

/// The longest request line read; anything longer is not a request.
const MAX_REQUEST: u64 = 256;
/// The largest answer `ps` reads (a node of a million processes fits).
const MAX_ANSWER: u64 = 1 << 30;
/// How long one connection may take before the node hangs up.
const PATIENCE: Duration = Duration::from_secs(10);

/// The folder the app's control socket is in.
pub fn runtime_dir(app_root: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("wasmhost"))
        .unwrap_or_else(|| {
            let uid = rustix::process::getuid().as_raw();
            std::env::temp_dir().join(format!("wasmhost-{uid}"))
        });
    let root = app_root
        .canonicalize()
        .unwrap_or_else(|_| app_root.to_path_buf());
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    // Socket paths are limited to 108 bytes: keep the readable part short.
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(24).collect())
        .unwrap_or_else(|| "app".into());
    base.join(format!("{name}-{hash}"))
}

/// The socket's name in the runtime folder: `control.sock`, or for a node of a cluster
/// `control-<node>.sock` (several nodes of one app may run on one machine).
fn socket_name(node: Option<&str>) -> String {
    match node {
        Some(node) => format!("control-{node}.sock"),
        None => "control.sock".into(),
    }
}

/// Where the app's node (`node`, of a cluster) answers.
pub fn socket_path(app_root: &Path, node: Option<&str>) -> PathBuf {
    runtime_dir(app_root).join(socket_name(node))
}

/// The socket `ps` asks: the one of `node` if named; else the app's only one.
fn socket_to_ask(dir: &Path, node: Option<&str>) -> Result<PathBuf> {
    let lone = dir.join(socket_name(None));
    if node.is_some() || lone.exists() {
        return Ok(dir.join(socket_name(node)));
    }
    let mut nodes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item.ok()?.file_name().into_string().ok()?;
            Some(
                name.strip_prefix("control-")?
                    .strip_suffix(".sock")?
                    .to_string(),
            )
        })
        .collect();
    nodes.sort();
    match nodes.as_slice() {
        [one] => Ok(dir.join(socket_name(Some(one)))),
        [] => Ok(lone),
        several => bail!(
            "several nodes of this app run here: {}\n  hint: pick one with `wasmhost ps --node NAME`",
            several.join(", ")
        ),
    }
}

/// The app's runtime folder, resolved, if it is private all the way down.
fn private_runtime_dir(app_root: &Path) -> Result<PathBuf> {
    let dir = runtime_dir(app_root);
    crate::private_dir::private(&dir)
        .map_err(|why| anyhow::anyhow!("{} is not private: {why}", dir.display()))
}

/// Whether the other end of `stream` runs as `uid`: an answer from another user's process
/// is not this node's, and a request from one is not answered.
fn peer_is(stream: &UnixStream, uid: u32) -> Result<()> {
    let peer = stream
        .peer_cred()
        .context("cannot tell who is at the other end of the control socket")?;
    if peer.uid() != uid {
        bail!(
            "the other end of the control socket runs as user {}, not {uid}",
            peer.uid()
        );
    }
    Ok(())
}

/// The app's control socket, answered on a task of its own; the task ends and the socket
/// file goes when this is dropped.
pub struct Serving {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the app's control socket and answers on it until the returned handle is dropped:
/// `ps` is answered with what `snapshot` makes then. Refused if another node of the app
/// answers there, or if anyone but this user (or root) could have made the folders on the
/// way to it.
pub async fn serve(
    app_root: &Path,
    node: Option<&str>,
    requests: Arc<dyn Requests>,
) -> Result<Serving> {
    let dir = private_runtime_dir(app_root)?;
    crate::private_dir::create(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(socket_name(node));
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            bail!(
                "another node of this app answers on {}; `wasmhost ps` shows that one",
                path.display()
            );
        }
        // Left by a node that did not end cleanly.
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    let serving = Serving {
        task: tokio::spawn(accept(listener, requests)),
        path,
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&serving.path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} owner-only", serving.path.display()))?;
    Ok(serving)
}

/// Answers connections of this user's processes, each on a task of its own.
async fn accept(listener: UnixListener, requests: Arc<dyn Requests>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!("control socket: {err}");
                continue;
            }
        };
        if let Err(why) = peer_is(&stream, rustix::process::getuid().as_raw()) {
            tracing::warn!("control socket: {why:#}; not answered");
            continue;
        }
        let requests = requests.clone();
        tokio::spawn(answer(stream, requests));
    }
}

/// Reads one request (within `PATIENCE`) and answers it: `ps` at once, an upgrade when it is
/// done (it bounds its own time: each process has its grace).
async fn answer(stream: UnixStream, requests: Arc<dyn Requests>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    match tokio::time::timeout(PATIENCE, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => return tracing::debug!("control socket: a client took too long"),
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = match words.as_slice() {
        ["ps"] => serde_json::to_string(&requests.ps()),
        ["upgrade", entry, grace_ms] => match grace_ms.parse::<u64>() {
            Ok(ms) => {
                match requests
                    .upgrade(entry.to_string(), Duration::from_millis(ms))
                    .await
                {
                    Ok(answer) => serde_json::to_string(&answer),
                    Err(err) => serde_json::to_string(&serde_json::json!({
                        "error": format!("{err:#}")
                    })),
                }
            }
            Err(_) => serde_json::to_string(&serde_json::json!({
                "error": format!("`{}` is not a grace period in milliseconds", grace_ms.escape_debug())
            })),
        },
        _ => serde_json::to_string(&serde_json::json!({
            "error": format!(
                "unknown request `{}`; the requests are `ps` and `upgrade ENTRY GRACE_MS`",
                line.trim().escape_debug()
            )
        })),
    };
    if let Ok(mut reply) = reply {
        reply.push('\n');
        let _ = write.write_all(reply.as_bytes()).await;
    }
}

/// Asks the app's running node for a snapshot. Only a node of this user's, answering in a
/// folder only this user could have made, is believed.
pub async fn ps(app_root: &Path, node: Option<&str>) -> Result<Snapshot> {
    let path = socket_to_ask(&private_runtime_dir(app_root)?, node)?;
    // A node that is stopped (SIGSTOP) or stuck accepts and never answers.
    match tokio::time::timeout(ANSWER_WITHIN, ask(&path, "ps")).await {
        Ok(answer) => answer,
        Err(_) => bail!(
            "the node on {} did not answer within {ANSWER_WITHIN:?} (is it stopped?)",
            path.display()
        ),
    }
}

/// Asks the app's running node to upgrade `entry` to its component, each process with
/// `grace` to hand over. Waits as long as the upgrade takes.
pub async fn upgrade(
    app_root: &Path,
    node: Option<&str>,
    entry: &str,
    grace: Duration,
) -> Result<UpgradeAnswer> {
    if entry.is_empty() || entry.contains(char::is_whitespace) {
        bail!("`{}` is not an entry name", entry.escape_debug());
    }
    let path = socket_to_ask(&private_runtime_dir(app_root)?, node)?;
    ask(&path, &format!("upgrade {entry} {}", grace.as_millis())).await
}

/// How long `ps` waits for the node's answer.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// What the node on the socket at `path` answers `request` with: `T`, or the error it
/// answered.
async fn ask<T: serde::de::DeserializeOwned>(path: &Path, request: &str) -> Result<T> {
    let mut stream = match UnixStream::connect(path).await {
        Ok(stream) => stream,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused
            ) =>
        {
            bail!(
                "no node of this app is running (nothing answers on {})\n  hint: start one with `wasmhost run`",
                path.display()
            )
        }
        Err(err) => return Err(err).with_context(|| format!("connecting to {}", path.display())),
    };
    peer_is(&stream, rustix::process::getuid().as_raw())
        .with_context(|| format!("not believing what answers on {}", path.display()))?;
    stream.write_all(format!("{request}\n").as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Answer<T> {
        Refused { error: String },
        Answered(T),
    }
    match serde_json::from_slice(&answer)
        .with_context(|| format!("the node on {} answered something else", path.display()))?
    {
        Answer::Answered(answer) => Ok(answer),
        Answer::Refused { error } => Err(anyhow::anyhow!(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_of_another_user_is_not_believed() {
        let (ours, _theirs) = UnixStream::pair().expect("a socket pair");
        let me = rustix::process::getuid().as_raw();
        assert!(peer_is(&ours, me).is_ok());
        let why = peer_is(&ours, me.wrapping_add(1)).expect_err("another user");
        assert!(
            why.to_string().contains(&format!("runs as user {me}")),
            "{why}"
        );
    }
}
