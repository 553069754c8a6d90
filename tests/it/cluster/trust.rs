//! Who may join: a cluster over TLS (the server's CA trusted, or not) and one whose server
//! takes only the users of its operator (a credentials file, or none).

use std::path::Path;

use super::{Nats, Node, refused_start};
use crate::common::echo_app;

/// A certificate authority and a server certificate it signed for 127.0.0.1, as PEM files
/// in `dir`: `ca.pem`, `server.pem`, `server.key`; and `other-ca.pem`, a CA that signed
/// nothing here.
fn certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let authority = || {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("the CA's certificate");
        (cert, Issuer::new(params, key))
    };
    let (ca, issuer) = authority();
    let (other, _) = authority();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
    let key = KeyPair::generate().expect("a server key");
    let server = params
        .signed_by(&key, &issuer)
        .expect("the server's certificate");
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("other-ca.pem", other.pem()),
        ("server.pem", server.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).expect("writing a certificate");
    }
}

/// The echo app, its nodes started with `setting` in their `[cluster]` table, or none.
fn echo_app_with(setting: Option<String>) -> tempfile::TempDir {
    let app = echo_app(|r| r);
    if let Some(setting) = setting {
        let settings = app.path().join("wasmhost.toml");
        let mut text = std::fs::read_to_string(&settings).expect("the app's settings");
        text.push_str(&format!("\n[cluster]\n{setting}\n"));
        std::fs::write(&settings, text).expect("writing the app's settings");
    }
    app
}

/// The echo app, its nodes trusting the CA at `ca` for the cluster's TLS, or none.
fn echo_app_trusting(ca: Option<&Path>) -> tempfile::TempDir {
    echo_app_with(ca.map(|ca| format!("tls_ca = {:?}", ca.display().to_string())))
}

#[test]
fn a_cluster_over_tls_is_joined_with_the_servers_ca_and_refused_without_it() {
    let certs = tempfile::tempdir().expect("a folder for certificates");
    certificates(certs.path());
    let file = |name: &str| certs.path().join(name).display().to_string();
    let (cert, key) = (file("server.pem"), file("server.key"));
    let nats = Nats::start_with(&["-js", "--tls", "--tlscert", &cert, "--tlskey", &key]);

    let app = echo_app_trusting(Some(&certs.path().join("ca.pem")));
    let _b = Node::relay(app.path(), &nats, "b");
    let mut a = Node::start(app.path(), &nats, "a", &["--services", "none", "app:cli"]);
    a.out.wait_for("Echo Client");
    a.echo_until_answered("over tls");

    // Trusting another CA, or none (the system's roots): the server's certificate is not
    // trusted, and the join is refused naming the server.
    for ca in [Some(certs.path().join("other-ca.pem")), None] {
        let app = echo_app_trusting(ca.as_deref());
        let stderr = refused_start(app.path(), &["--cluster", &nats.url, "--node", "c"]);
        assert!(
            stderr.contains(&format!("cannot reach the cluster at {}", nats.url))
                && stderr.contains("invalid peer certificate")
                && stderr.contains("set `[cluster] tls_ca` to the CA that signed it"),
            "{stderr}"
        );
    }
}

/// A JWT as NATS's tools make one: `subject`'s claims (`nats` the part NATS reads), signed by
/// `issuer`'s nkey.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, nats: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{subject}{now}"),
        "iat": now,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": subject,
        "nats": nats,
    });
    let signed = format!("{header}.{}", b64.encode(claims.to_string()));
    let signature = issuer.sign(signed.as_bytes()).expect("signing a JWT");
    format!("{signed}.{}", b64.encode(signature))
}

/// A user of `account` (signed by its key), as a credentials file's text.
fn credentials(account: &nkeys::KeyPair) -> String {
    let user = nkeys::KeyPair::new_user();
    let nats = serde_json::json!({
        "type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
    });
    let token = jwt(account, &user.public_key(), nats);
    let seed = user.seed().expect("the user's seed");
    format!(
        "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

/// An operator, its system account and one account of it with JetStream, in `dir`: the server's configuration
/// (`server.conf`: only that operator's users may connect), `node.creds` (a user of the
/// account), `stranger.creds` (a user of an account the server does not know) and
/// `garbage.creds` (not credentials at all).
fn operator(dir: &Path) {
    let operator = nkeys::KeyPair::new_operator();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        serde_json::json!({ "type": "operator", "version": 2 }),
    );
    let account = nkeys::KeyPair::new_account();
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        serde_json::json!({ "type": "account", "version": 2, "limits": unlimited }),
    );
    // The server's own account, which JetStream needs in operator mode.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        serde_json::json!({ "type": "account", "version": 2 }),
    );
    let (account_key, system_key) = (account.public_key(), system.public_key());
    let conf = format!(
        "operator: {operator_jwt:?}\nsystem_account: {system_key}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {account_key}: {account_jwt:?}\n  {system_key}: {system_jwt:?}\n}}\n"
    );
    let stranger = nkeys::KeyPair::new_account();
    for (name, text) in [
        ("server.conf", conf),
        ("node.creds", credentials(&account)),
        ("stranger.creds", credentials(&stranger)),
        ("garbage.creds", "not a credentials file\n".to_string()),
    ] {
        std::fs::write(dir.join(name), text).expect("writing the operator's files");
    }
}

#[test]
fn a_cluster_whose_server_takes_only_its_operators_users_is_joined_with_a_credentials_file() {
    let dir = tempfile::tempdir().expect("a folder for the operator's files");
    operator(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let nats = Nats::start_with(&["-js", "-c", &file("server.conf")]);
    let with = |name: &str| echo_app_with(Some(format!("credentials = {:?}", file(name))));

    let app = with("node.creds");
    let _b = Node::relay(app.path(), &nats, "b");
    let mut a = Node::start(app.path(), &nats, "a", &["--services", "none", "app:cli"]);
    a.out.wait_for("Echo Client");
    a.echo_until_answered("with credentials");

    // No credentials, or a user of an account the server does not know: refused by the
    // server, and the error says which setting to look at.
    for app in [echo_app_with(None), with("stranger.creds")] {
        let stderr = refused_start(app.path(), &["--cluster", &nats.url, "--node", "c"]);
        assert!(
            stderr.contains(&format!(
                "the NATS server at {} refused this node",
                nats.url
            )) && stderr.contains("authorization violation")
                && stderr.contains("set `[cluster] credentials`"),
            "{stderr}"
        );
    }
    // A file that holds no credentials: named, before anything is sent.
    let app = with("garbage.creds");
    let stderr = refused_start(app.path(), &["--cluster", &nats.url, "--node", "c"]);
    let named = format!(
        "invalid [cluster] setting: credentials = {}",
        file("garbage.creds")
    );
    assert!(stderr.contains(&named), "{stderr}");
}
