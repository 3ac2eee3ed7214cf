//! Redis Sentinel failover with real processes: a master, a replica and a Sentinel. Sessions
//! written before the master dies are served by the promoted replica, and the store follows
//! the new master without a restart.

mod common;

use std::time::{Duration, Instant};

use tessera_server::master_key::MasterKey;
use tessera_server::secret::{random_token, RefreshToken, TokenKey};
use tessera_server::store::{
    RotateOutcome, RotateRequest, SessionLimits, SessionRecord, SessionStore, UserRecord,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_keeps_sessions_and_follows_the_new_master() {
    let Some(mut setup) = common::SentinelSetup::start(true) else {
        return;
    };
    let store = tessera_server::store::redis::RedisStore::connect(&setup.url(), "fo:")
        .await
        .expect("connect through sentinel");
    let user = UserRecord {
        id: "u1".into(),
        username: "alice".into(),
        password_hash: "x".into(),
        totp_secret: None,
    };
    let now = 1_800_000_000;
    let s = SessionRecord::new(random_token(), &user, now, 3600, false);
    let key = TokenKey::from_bytes([1; 32]);
    let t0 = RefreshToken::generate(&key);
    let limits = SessionLimits {
        max_per_user: 50,
        idle: 600,
    };
    store
        .create_session(&s, &t0.to_ref(), &limits)
        .await
        .expect("create");
    // wait until the replica has acknowledged every write, then kill the master
    let master =
        redis::Client::open(format!("redis://127.0.0.1:{}/", setup.master_port)).expect("client");
    let mut mc = master
        .get_multiplexed_async_connection()
        .await
        .expect("master conn");
    let mut acked = 0i64;
    for _ in 0..50 {
        acked = redis::cmd("WAIT")
            .arg(1)
            .arg(200)
            .query_async(&mut mc)
            .await
            .expect("WAIT");
        if acked >= 1 {
            break;
        }
    }
    assert_eq!(acked, 1, "replica in sync");
    drop(setup.master.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    let t1 = t0.successor(&key);
    let req = RotateRequest {
        presented: t0.to_ref(),
        new_hash: t1.to_ref().hash,
        sealed_successor: MasterKey::ephemeral().seal_successor(t0.secret(), t1.secret()),
        client: "c".into(),
        now: now + 1,
        grace: 10,
        idle: 600,
    };
    loop {
        match store.rotate(&req).await {
            Ok(RotateOutcome::Rotated(after)) => {
                assert_eq!(after.sid, s.sid);
                assert_eq!(after.generation, 1);
                break;
            }
            Ok(other) => panic!("session lost in failover: {other:?}"),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("store never followed the failover: {e}"),
        }
    }
    assert!(store.get_session(&s.sid).await.expect("read").is_some());
}
