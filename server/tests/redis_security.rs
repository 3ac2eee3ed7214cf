//! Redis Sentinel and Cluster with credentials and TLS on every node connection, and the
//! login throttle shared by instances on them: real `redis-server` processes (Sentinel,
//! Cluster) and real `tessera-server` processes.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{binary, RedisSecurity, TlsFiles};
use serde_json::json;

/// Starting the binary on `store` fails (exits non-zero within 30 s) and says why.
fn refuses_to_start(store: &str, env: &[(&str, &str)]) -> String {
    let key = std::env::temp_dir().join(format!("tessera-sec-test-{}.key", std::process::id()));
    tessera_server::master_key::MasterKey::load_or_create(&key).expect("master key");
    let mut child = common::Proc(
        Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--master-key-file",
            ])
            .arg(&key)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(!status.success(), "{store} started");
            let mut err = String::new();
            use std::io::Read as _;
            child
                .0
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read");
            return err;
        }
        assert!(
            Instant::now() < deadline,
            "{store}: still running after 30 s (it should have refused)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parallel wrong passwords for alice from one client, spread over `bases` alternately:
/// (answers 401, answers 429).
async fn wrong_passwords(bases: &[String], n: usize) -> (usize, usize) {
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, base) = (c.clone(), bases[i % bases.len()].clone());
        tasks.push(tokio::spawn(async move {
            binary::post(
                &c,
                format!("{base}auth/login"),
                json!({"username": "alice", "password": "not-her-password"}),
                None,
            )
            .await
            .expect("request")
            .0
        }));
    }
    let mut got = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            401 => got.0 += 1,
            429 => got.1 += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    got
}

/// Two instances on `store` (with `env`): both serve logins and refreshes, and 64
/// parallel wrong passwords over both are limited as one (`--account-limit 3`).
async fn two_instances_share_sessions_and_throttle(store: &str, env: &[(&str, &str)]) {
    let extra = ["--account-limit", "3"];
    let a = binary::start_with_env(store, &extra, env);
    let b = binary::start_with_env(store, &extra, env);
    let c = reqwest::Client::new();
    let (_, rt) = binary::login_alice_token(&c, &a.url).await;
    // the session written through A rotates on B
    let (s, body, _) = binary::post(
        &c,
        format!("{}auth/refresh", b.url),
        json!({"refresh_token": rt}),
        None,
    )
    .await
    .expect("request");
    assert_eq!(s, 200, "{store}: {body}");
    let (unauthorized, limited) = wrong_passwords(&[a.url.clone(), b.url.clone()], 64).await;
    assert_eq!(
        (unauthorized, limited),
        (3, 61),
        "{store}: the account limit of 3 holds across both instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_with_passwords_on_nodes_and_sentinel() {
    let sec = RedisSecurity {
        password: Some("data-node-secret".into()),
        sentinel_password: Some("sentinel-secret".into()),
        tls: None,
    };
    let Some(setup) = common::SentinelSetup::start_secured(true, sec) else {
        return;
    };
    let url = setup.url();
    assert!(url.contains(":data-node-secret@") && url.contains("sentinel_password="));
    two_instances_share_sessions_and_throttle(&url, &[]).await;

    // each credential is used where it belongs: a wrong one is refused at start
    let port = setup.sentinel_port;
    let err = refuses_to_start(
        &format!(
            "redis+sentinel://:wrong@127.0.0.1:{port}/mymaster?sentinel_password=sentinel-secret"
        ),
        &[],
    );
    assert!(
        !err.contains("wrong"),
        "the password is never printed: {err}"
    );
    refuses_to_start(
        &format!(
            "redis+sentinel://:data-node-secret@127.0.0.1:{port}/mymaster?sentinel_password=wrong"
        ),
        &[],
    );
    refuses_to_start(
        &format!("redis+sentinel://:data-node-secret@127.0.0.1:{port}/mymaster"),
        &[],
    );
    let err = refuses_to_start(
        &format!("redis+sentinel://127.0.0.1:{port}/mymaster?sentinel_pasword=x"),
        &[],
    );
    assert!(err.contains("unknown Redis URL parameter"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_over_tls_with_passwords() {
    let Some(tls) = TlsFiles::generate() else {
        return;
    };
    let tls = Arc::new(tls);
    let ca = tls.ca.display().to_string();
    let sec = RedisSecurity {
        password: Some("data-node-secret".into()),
        sentinel_password: Some("sentinel-secret".into()),
        tls: Some(tls.clone()),
    };
    let Some(setup) = common::SentinelSetup::start_secured(true, sec) else {
        return;
    };
    let url = setup.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    two_instances_share_sessions_and_throttle(&url, &[("SSL_CERT_FILE", &ca)]).await;
    // the certificate is verified: without the test CA the server refuses to start, and
    // plain redis+sentinel:// cannot talk to TLS-only nodes
    refuses_to_start(&url, &[]);
    refuses_to_start(
        &url.replacen("rediss+", "redis+", 1),
        &[("SSL_CERT_FILE", &ca)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_over_tls_with_a_password() {
    let Some(tls) = TlsFiles::generate() else {
        return;
    };
    let tls = Arc::new(tls);
    let ca = tls.ca.display().to_string();
    let sec = RedisSecurity {
        password: Some("cluster-secret".into()),
        sentinel_password: None,
        tls: Some(tls.clone()),
    };
    let Some(cluster) = common::ClusterSetup::start_secured(sec) else {
        return;
    };
    let url = cluster.url();
    assert!(
        url.starts_with("rediss+cluster://:cluster-secret@"),
        "{url}"
    );
    two_instances_share_sessions_and_throttle(&url, &[("SSL_CERT_FILE", &ca)]).await;
    refuses_to_start(&url, &[]);
    refuses_to_start(
        &url.replacen(":cluster-secret@", ":wrong@", 1),
        &[("SSL_CERT_FILE", &ca)],
    );
}
