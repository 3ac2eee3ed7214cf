//! Redis Sentinel failover with real processes: a master, a replica and a Sentinel.
//!
//! With `--redis-wait-replicas 1` every acknowledged session write survives the master's
//! death: 64 clients rotate concurrently while another client logs in and out in a loop,
//! the master is killed (SIGKILL) mid-load, and after the store followed the promoted
//! replica every client's last acknowledged token still works, every acknowledged login is
//! there and every acknowledged logout still holds. Without the option the loss window is
//! real, and the second test shows it deterministically: with the replica paused (SIGSTOP)
//! the master acknowledges a rotation, a login and a logout that a failover then erases
//! (the rotated token is taken for reuse, the session created is unknown, the logged-out
//! session is live again), while the waiting store refuses to acknowledge any of them.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_server::master_key::MasterKey;
use tessera_server::secret::{random_token, RefreshToken, TokenKey};
use tessera_server::store::redis::{RedisStore, ReplicaWait};
use tessera_server::store::{
    RotateOutcome, RotateRequest, SessionLimits, SessionRecord, SessionStore, UserRecord,
};

const NOW: i64 = 1_800_000_000;
const CLIENTS: usize = 64;

fn user() -> UserRecord {
    named_user("u1")
}

fn named_user(id: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: format!("name-{id}"),
        password_hash: "x".into(),
        totp_secret: None,
    }
}

/// The refresh-token tag key of these tests.
fn key() -> TokenKey {
    TokenKey::from_bytes([7; 32])
}

/// `from`'s next token in its family.
fn next(from: &RefreshToken) -> RefreshToken {
    from.successor(&key())
}

fn rotate_req(from: &RefreshToken, to: &RefreshToken) -> RotateRequest {
    RotateRequest {
        presented: from.to_ref(),
        new_hash: to.to_ref().hash,
        sealed_successor: MasterKey::ephemeral().seal_successor(from.secret(), to.secret()),
        client: "c".into(),
        now: NOW + 1,
        // generous: a client whose last rotation reached the replica but whose answer was
        // lost presents the predecessor and must get the successor back
        grace: 300,
        idle: 3600,
    }
}

async fn connect(url: &str, wait: Option<ReplicaWait>) -> RedisStore {
    let store = RedisStore::connect(url, "fo:")
        .await
        .expect("connect through sentinel");
    match wait {
        Some(w) => store.with_replica_wait(w).expect("wait option"),
        None => store,
    }
}

async fn new_session(store: &RedisStore) -> (String, RefreshToken) {
    try_new_session(store, &user()).await.expect("create")
}

/// A login: the new session's id and first token, or the store's refusal.
async fn try_new_session(
    store: &RedisStore,
    user: &UserRecord,
) -> Result<(String, RefreshToken), tessera_server::store::StoreError> {
    let s = SessionRecord::new(random_token(), user, NOW, 3600, false);
    let t0 = RefreshToken::generate(&key());
    // room for every client of these tests: none may be revoked by the per-user limit
    let limits = SessionLimits {
        max_per_user: 100,
        idle: 3600,
    };
    let revoked = store.create_session(&s, &t0.to_ref(), &limits).await?;
    assert!(revoked.is_empty(), "no session revoked by the limit");
    Ok((s.sid, t0))
}

/// Reads a session through `store` once it answers again after the failover.
async fn session_after_failover(store: &RedisStore, sid: &str) -> Option<SessionRecord> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.get_session(sid).await {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("store never followed the failover: {e}"),
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Retries `req` until the store answers (it fails while the Sentinel promotes the
/// replica and the store's watcher has not switched yet).
async fn rotate_after_failover(store: &RedisStore, req: &RotateRequest) -> RotateOutcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.rotate(req).await {
            Ok(o) => return o,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("store never followed the failover: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_no_acknowledged_rotation_is_lost_in_a_failover() {
    let Some(mut setup) = common::SentinelSetup::start(true) else {
        return;
    };
    let wait = ReplicaWait {
        replicas: 1,
        timeout_ms: 1000,
    };
    let store = Arc::new(connect(&setup.url(), Some(wait)).await);
    // after the failover the promoted master has no replica left, so a waiting store
    // refuses every write (503, by design): the survivors are checked without waiting
    let check = connect(&setup.url(), None).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(new_session(&store).await);
    }
    // 64 clients rotate as fast as they can; each keeps its last acknowledged token and
    // stops at its first error (as the SDK would: it retries later with the token it holds)
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (sid, t0) in clients {
        let store = store.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut current = t0;
            loop {
                let succ = next(&current);
                match store.rotate(&rotate_req(&current, &succ)).await {
                    Ok(RotateOutcome::Rotated(s)) => {
                        assert_eq!(s.sid, sid);
                        current = succ;
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(other) => panic!("rotation before the failover: {other:?}"),
                    Err(_) => return (sid, current),
                }
            }
        }));
    }
    // one more client logs in and out in a loop (another user: the per-user limit stays
    // out of the way); it keeps what was acknowledged and stops at its first error
    let logouts = Arc::new(AtomicUsize::new(0));
    let churn = {
        let store = store.clone();
        let logouts = logouts.clone();
        tokio::spawn(async move {
            let other = named_user("u2");
            let mut logged_in: Vec<String> = Vec::new();
            let mut logged_out: Vec<String> = Vec::new();
            while let Ok((sid, _)) = try_new_session(&store, &other).await {
                logged_in.push(sid);
                if logged_in.len() > 2 {
                    let sid = logged_in.remove(0);
                    match store.revoke_session(&sid, "logout", NOW + 1).await {
                        Ok(was_live) => {
                            assert!(was_live);
                            logged_out.push(sid);
                            logouts.fetch_add(1, Ordering::Relaxed);
                        }
                        // not acknowledged: its outcome is unknown, so it is not checked
                        Err(_) => break,
                    }
                }
            }
            (logged_in, logged_out)
        })
    };
    while (acked.load(Ordering::Relaxed) < CLIENTS * 4 || logouts.load(Ordering::Relaxed) < 16)
        && !tasks.iter().all(|t| t.is_finished())
        && !churn.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(setup.master.take()); // SIGKILL under load
    let mut last = Vec::new();
    for t in tasks {
        last.push(t.await.expect("client task"));
    }
    let total = acked.load(Ordering::Relaxed);
    let mut rotated = 0;
    let mut grace = 0;
    for (sid, token) in &last {
        let req = rotate_req(token, &next(token));
        match rotate_after_failover(&check, &req).await {
            RotateOutcome::Rotated(s) => {
                assert_eq!(&s.sid, sid);
                rotated += 1;
            }
            // the rotation reached the replica but its answer was lost with the master
            RotateOutcome::Grace { session, .. } => {
                assert_eq!(&session.sid, sid);
                grace += 1;
            }
            other => panic!("acknowledged rotation lost in the failover: {other:?}"),
        }
    }
    let (logged_in, logged_out) = churn.await.expect("login/logout task");
    assert!(
        !logged_out.is_empty(),
        "the churn client logged out before the failover"
    );
    for sid in &logged_in {
        let s = session_after_failover(&check, sid).await;
        assert!(
            s.is_some_and(|s| s.revoked_at.is_none()),
            "an acknowledged login was lost in the failover"
        );
    }
    for sid in &logged_out {
        let s = session_after_failover(&check, sid).await.expect("session");
        assert_eq!(
            s.revoke_reason.as_deref(),
            Some("logout"),
            "an acknowledged logout came undone in the failover"
        );
    }
    println!(
        "failover with --redis-wait-replicas 1: {total} acknowledged rotations by {CLIENTS} clients; \
         after the failover {rotated} last tokens rotated, {grace} got their successor, 0 lost; \
         {} acknowledged logins and {} logouts all kept",
        logged_in.len(),
        logged_out.len()
    );
    assert_eq!(rotated + grace, CLIENTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_an_acknowledged_rotation_is_lost_when_the_replica_lagged() {
    let Some(mut setup) = common::SentinelSetup::start(true) else {
        return;
    };
    let waiting = connect(
        &setup.url(),
        Some(ReplicaWait {
            replicas: 1,
            timeout_ms: 300,
        }),
    )
    .await;
    let plain = connect(&setup.url(), None).await;
    // both sessions are on the replica (created through the waiting store)
    let (sid_a, a0) = new_session(&waiting).await;
    let (sid_b, b0) = new_session(&waiting).await;
    let (sid_d, _) = new_session(&waiting).await;
    let (sid_f, _) = new_session(&waiting).await;

    // the replica lags: paused, and its link cut on the master (so nothing sent to it can
    // wait in a socket buffer); the plain store acknowledges, the waiting store refuses
    let replica_pid = setup.replica.as_ref().expect("replica").0.id();
    signal(replica_pid, "-STOP");
    let master =
        redis::Client::open(format!("redis://127.0.0.1:{}/", setup.master_port)).expect("client");
    let mut mc = master
        .get_multiplexed_async_connection()
        .await
        .expect("master conn");
    let cut: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut mc)
        .await
        .expect("CLIENT KILL");
    assert_eq!(cut, 1, "the replica link was cut");
    let a1 = next(&a0);
    let acknowledged = plain.rotate(&rotate_req(&a0, &a1)).await;
    let b1 = next(&b0);
    let refused = waiting.rotate(&rotate_req(&b0, &b1)).await;
    // a login and a logout each way
    let login_acked = try_new_session(&plain, &user()).await;
    let login_refused = try_new_session(&waiting, &user()).await;
    let logout_acked = plain.revoke_session(&sid_d, "logout", NOW + 1).await;
    let logout_refused = waiting.revoke_session(&sid_f, "logout", NOW + 1).await;
    drop(setup.master.take());
    signal(replica_pid, "-CONT");
    assert!(
        matches!(&acknowledged, Ok(RotateOutcome::Rotated(s)) if s.sid == sid_a),
        "without the option the master acknowledges alone: {acknowledged:?}"
    );
    assert!(
        refused.is_err(),
        "with the option an unreplicated rotation is not acknowledged: {refused:?}"
    );
    let (sid_c, _) = login_acked.expect("without the option the master acknowledges a login");
    assert!(
        matches!(logout_acked, Ok(true)),
        "without the option the master acknowledges a logout: {logout_acked:?}"
    );
    assert!(login_refused.is_err(), "with the option: login refused");
    assert!(logout_refused.is_err(), "with the option: logout refused");

    // after the failover: the rotation acknowledged without waiting is gone … (a1 is of
    // a0's family, which the promoted replica knows at generation 0: a1 looks like a
    // superseded member, so the family is even revoked as reuse)
    let lost = rotate_after_failover(&plain, &rotate_req(&a1, &next(&a1))).await;
    assert!(
        matches!(
            &lost,
            RotateOutcome::Reused { sid } if *sid == sid_a
        ),
        "the acknowledged token a1 was lost in the failover: {lost:?}"
    );
    // … while the client that was refused still holds a token that works (checked through
    // the plain store: with no replica left, the waiting store now refuses every write)
    let kept = rotate_after_failover(&plain, &rotate_req(&b0, &next(&b0))).await;
    assert!(
        matches!(&kept, RotateOutcome::Rotated(s) if s.sid == sid_b),
        "the refused client's token still rotates: {kept:?}"
    );
    // the acknowledged login is gone, the acknowledged logout came undone
    assert_eq!(
        session_after_failover(&plain, &sid_c).await,
        None,
        "the session of the acknowledged login was lost"
    );
    let d = session_after_failover(&plain, &sid_d)
        .await
        .expect("session d");
    assert_eq!(
        (d.revoked_at, d.revoke_reason),
        (None, None),
        "the acknowledged logout was lost: the session is live again"
    );
}
