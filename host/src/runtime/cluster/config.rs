//! What a node needs to join a cluster, with its defaults, and the ways a join fails, each
//! with a message that names what to change.

use std::path::PathBuf;
use std::time::Duration;

use crate::app::ClusterSettings;
use wasmhost_types::NodeId;

/// How a node joins a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// This node's name (`NodeId::check_name`).
    pub node: String,
    /// How often the node tells the others it is alive.
    pub heartbeat: Duration,
    /// How long a node may be silent before the others take it for down.
    pub down_after: Duration,
    /// A NATS credentials file to authenticate with.
    pub credentials: Option<PathBuf>,
    /// A CA certificate the server's TLS certificate must chain to (TLS is then required).
    pub tls_ca: Option<PathBuf>,
    /// The digest of the registry this node runs: every member runs the same one.
    pub registry: String,
    /// The units placed on a list of nodes (`lifecycle.nodes`) this node runs when its turn
    /// comes. Its record says so: the nodes after it on a unit's list wait for it only then.
    pub runs: Vec<String>,
}

impl ClusterConfig {
    /// The default heartbeat.
    pub const HEARTBEAT: Duration = Duration::from_secs(1);
    /// The default silence after which a node is down: three heartbeats.
    pub const DOWN_AFTER: Duration = Duration::from_secs(3);

    /// The configuration `settings` ask for, or `None` if they name no cluster.
    pub fn from_settings(
        settings: &ClusterSettings,
        registry: String,
    ) -> Result<Option<ClusterConfig>, JoinError> {
        let (url, node) = match (&settings.url, &settings.node) {
            (None, None) => return Ok(None),
            (Some(url), Some(node)) => (url.clone(), node.clone()),
            (Some(_), None) => return Err(JoinError::Incomplete("a node name (--node NAME)")),
            (None, Some(_)) => {
                return Err(JoinError::Incomplete(
                    "the NATS server's URL (--cluster URL)",
                ));
            }
        };
        NodeId::check_name(&node).map_err(|why| JoinError::BadName(node.clone(), why))?;
        let heartbeat = settings.heartbeat.unwrap_or(Self::HEARTBEAT);
        let down_after = settings.down_after.unwrap_or(Self::DOWN_AFTER);
        if heartbeat < Duration::from_millis(10) {
            return Err(JoinError::Settings(format!(
                "heartbeat = {heartbeat:?}: the shortest is 10ms"
            )));
        }
        if down_after < heartbeat * 2 {
            return Err(JoinError::Settings(format!(
                "down_after = {down_after:?} is shorter than two heartbeats ({heartbeat:?} each): one late heartbeat would take a node for down"
            )));
        }
        Ok(Some(ClusterConfig {
            url,
            node,
            heartbeat,
            down_after,
            credentials: settings.credentials.clone(),
            tls_ca: settings.tls_ca.clone(),
            registry,
            runs: Vec::new(),
        }))
    }
}

/// Why a node could not join its cluster. Each is reported at start, before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "a node of a cluster needs {0}\n  hint: give both --cluster URL and --node NAME, or `url` and `node` in [cluster] of wasmhost.toml"
    )]
    Incomplete(&'static str),
    #[error("invalid node name {0:?}: {1}")]
    BadName(String, String),
    #[error("invalid [cluster] setting: {0}")]
    Settings(String),
    #[error(
        "cannot reach the cluster at {url}: {why}\n  hint: is a NATS server running there? `scripts/install-nats.sh` installs one"
    )]
    Unreachable { url: String, why: String },
    #[error(
        "cannot reach the cluster at {url}: {why}\n  hint: the server's TLS certificate is not trusted here; set `[cluster] tls_ca` to the CA that signed it"
    )]
    Untrusted { url: String, why: String },
    #[error(
        "the NATS server at {url} refused this node: {why}\n  hint: set `[cluster] credentials` to a credentials file the server accepts (or put a user and password in the URL)"
    )]
    NotAuthorized { url: String, why: String },
    #[error(
        "the NATS server at {url} is version {version}; wasmhost needs 2.11 or later (its per-key markers)"
    )]
    TooOld { url: String, version: String },
    #[error(
        "the NATS server at {url} has JetStream off; wasmhost keeps the cluster's members and names in JetStream\n  hint: start the server with `-js`"
    )]
    NoJetStream { url: String },
    #[error(
        "node name {node} is held by a live node (its heartbeats went on for the {ago:?} this node waited)\n  hint: give this node another name, or stop the other one"
    )]
    NameHeld { node: String, ago: Duration },
    #[error(
        "node {node} runs another registry ({theirs}; this node's is {mine}): every node of a cluster runs the same registry"
    )]
    OtherRegistry {
        node: String,
        theirs: String,
        mine: String,
    },
    #[error(
        "the cluster's members bucket keeps a node {found:?} after its last heartbeat, and this node's down_after is {wanted:?}: every node of a cluster has the same down_after"
    )]
    DownAfter { found: Duration, wanted: Duration },
    #[error("the cluster at {url}: {what}: {why}")]
    Nats {
        url: String,
        what: &'static str,
        why: String,
    },
}
