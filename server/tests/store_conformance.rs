//! One conformance suite, instantiated for every store: memory, SQLite (a real file) and
//! Redis (a real `redis-server` started on a free loopback port).

mod common;

use std::sync::Arc;

use tessera_server::master_key::MasterKey;
use tessera_server::secret::{random_token, RefreshToken, TokenKey};
use tessera_server::store::{
    Liveness, RotateOutcome, RotateRequest, SessionEvent, SessionLimits, SessionRecord,
    SessionStatus, SessionStore, TokenPosition, UserRecord, MAX_EVENTS_PER_SESSION,
    MAX_GRACE_CHAIN,
};

const NOW: i64 = 1_800_000_000;
const IDLE: i64 = 600;
const GRACE: i64 = 10;

fn user(name: &str) -> UserRecord {
    UserRecord {
        id: format!("user-{name}"),
        username: name.into(),
        password_hash: "$argon2id$fake".into(),
        totp_secret: None,
    }
}

fn key() -> TokenKey {
    TokenKey::from_bytes([7; 32])
}

fn master() -> MasterKey {
    MasterKey::from_bytes([9; 32])
}

const CLIENT: &str = "client-a";

const NO_LIMIT: SessionLimits = SessionLimits {
    max_per_user: 1000,
    idle: IDLE,
};

/// A session for `name` with its first refresh token.
async fn new_session(
    store: &dyn SessionStore,
    name: &str,
    now: i64,
) -> (SessionRecord, RefreshToken) {
    let s = SessionRecord::new(random_token(), &user(name), now, 3600, false);
    let t = RefreshToken::generate(&key());
    store
        .create_session(&s, &t.to_ref(), &NO_LIMIT)
        .await
        .expect("create");
    (s, t)
}

fn rotate_req(presented: &RefreshToken, now: i64) -> (RotateRequest, RefreshToken) {
    rotate_from(presented, now, CLIENT)
}

fn rotate_from(presented: &RefreshToken, now: i64, client: &str) -> (RotateRequest, RefreshToken) {
    let next = presented.successor(&key());
    (
        RotateRequest {
            presented: presented.to_ref(),
            new_hash: next.to_ref().hash,
            sealed_successor: master().seal_successor(presented.secret(), next.secret()),
            client: client.into(),
            now,
            grace: GRACE,
            idle: IDLE,
        },
        next,
    )
}

/// Follows a grace answer's chain of sealed successors from `presented` to the current token.
fn open_grace(presented: &RefreshToken, chain: &[Vec<u8>]) -> RefreshToken {
    assert!(
        !chain.is_empty(),
        "a grace answer carries at least one sealed successor"
    );
    let mut secret = *presented.secret();
    for sealed in chain {
        secret = master()
            .open_successor(&secret, sealed)
            .expect("each sealed successor opens with the secret before it");
    }
    presented.with_secret(&key(), secret)
}

mod suite {
    use super::*;

    pub async fn meta_put_if_absent_keeps_first_writer(s: Arc<dyn SessionStore>) {
        assert_eq!(s.get_meta("k").await.unwrap(), None);
        assert_eq!(s.put_meta_if_absent("k", "one").await.unwrap(), "one");
        assert_eq!(s.put_meta_if_absent("k", "two").await.unwrap(), "one");
        s.set_meta("k", "three").await.unwrap();
        assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("three"));
    }

    pub async fn users_roundtrip_and_upsert(s: Arc<dyn SessionStore>) {
        assert_eq!(s.find_user("alice").await.unwrap(), None);
        let mut u = user("alice");
        s.upsert_user(&u).await.unwrap();
        assert_eq!(s.find_user("alice").await.unwrap(), Some(u.clone()));
        u.totp_secret = Some("4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX".into());
        s.upsert_user(&u).await.unwrap();
        assert_eq!(
            s.find_user("alice")
                .await
                .unwrap()
                .and_then(|u| u.totp_secret)
                .as_deref(),
            Some("4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX")
        );
    }

    pub async fn users_are_listed_without_secrets_and_deleted(s: Arc<dyn SessionStore>) {
        assert!(s.list_users().await.unwrap().is_empty());
        let mut bob = user("bob");
        bob.totp_secret = Some("4MEMZDELGP554FRQ6OH4LD7PAJIEUSHX".into());
        for u in [user("carol"), bob, user("alice")] {
            s.upsert_user(&u).await.unwrap();
        }
        let list = s.list_users().await.unwrap();
        let got: Vec<(&str, bool)> = list.iter().map(|u| (u.username.as_str(), u.totp)).collect();
        assert_eq!(got, [("alice", false), ("bob", true), ("carol", false)]);
        assert_eq!(list[1].id, "user-bob");
        assert!(s.delete_user("bob").await.unwrap());
        assert!(!s.delete_user("bob").await.unwrap(), "already gone");
        assert_eq!(s.find_user("bob").await.unwrap(), None);
        assert_eq!(s.list_users().await.unwrap().len(), 2);
    }

    pub async fn live_sessions_are_counted(s: Arc<dyn SessionStore>) {
        assert_eq!(s.count_live_sessions(NOW, IDLE).await.unwrap(), 0);
        let (a, ta) = new_session(s.as_ref(), "alice", NOW).await;
        let (b, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (_c, tc) = new_session(s.as_ref(), "bob", NOW).await;
        assert_eq!(s.count_live_sessions(NOW, IDLE).await.unwrap(), 3);
        assert!(s.revoke_session(&b.sid, "logout", NOW + 1).await.unwrap());
        assert_eq!(s.count_live_sessions(NOW + 1, IDLE).await.unwrap(), 2);
        // a rotation keeps alice's session alive past the others' idle deadline
        let (r, _) = rotate_req(&ta, NOW + IDLE - 1);
        assert!(matches!(
            s.rotate(&r).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        assert_eq!(
            s.count_live_sessions(NOW + IDLE - 1, IDLE).await.unwrap(),
            2
        );
        assert_eq!(s.count_live_sessions(NOW + IDLE, IDLE).await.unwrap(), 1);
        // reuse (the predecessor from another client) ends a family
        let (r, _) = rotate_from(&ta, NOW + IDLE + 1, "another-client");
        assert!(matches!(
            s.rotate(&r).await.unwrap(),
            RotateOutcome::Reused { .. }
        ));
        assert_eq!(
            s.count_live_sessions(NOW + IDLE + 1, IDLE).await.unwrap(),
            0
        );
        // an expired session found by a rotation stays uncounted
        let (r, _) = rotate_req(&tc, NOW + IDLE + 2);
        assert_eq!(s.rotate(&r).await.unwrap(), RotateOutcome::Expired);
        assert_eq!(
            s.count_live_sessions(NOW + IDLE + 2, IDLE).await.unwrap(),
            0
        );
        assert!(s.get_session(&a.sid).await.unwrap().is_some());
    }

    pub async fn session_roundtrip_and_listing(s: Arc<dyn SessionStore>) {
        let (a, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (b, _) = new_session(s.as_ref(), "alice", NOW + 1).await;
        let (_c, _) = new_session(s.as_ref(), "bob", NOW).await;
        let got = s.get_session(&a.sid).await.unwrap().expect("session");
        assert_eq!(got, a);
        assert!(got.vault_key.is_some());
        let list = s.list_sessions("user-alice").await.unwrap();
        assert_eq!(
            list.iter().map(|x| x.sid.clone()).collect::<Vec<_>>(),
            vec![b.sid.clone(), a.sid.clone()]
        );
        assert!(s.get_session("nope").await.unwrap().is_none());
    }

    pub async fn rotation_current_grace_then_reuse_revokes_family(s: Arc<dyn SessionStore>) {
        let (sess, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let (r1, t1) = rotate_req(&t0, NOW + 5);
        let RotateOutcome::Rotated(after) = s.rotate(&r1).await.unwrap() else {
            panic!("rotate")
        };
        assert_eq!(after.generation, 1);
        assert_eq!(after.last_seen, NOW + 5);
        // immediate predecessor inside the grace window: the already-issued successor
        let (again, _) = rotate_req(&t0, NOW + 5 + GRACE);
        match s.rotate(&again).await.unwrap() {
            RotateOutcome::Grace { chain, .. } => assert_eq!(open_grace(&t0, &chain), t1),
            other => panic!("expected grace, got {other:?}"),
        }
        let (r2, t2) = rotate_req(&t1, NOW + 20);
        assert!(matches!(
            s.rotate(&r2).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        // t0 is now two generations old and past its window (superseded at NOW + 5): reuse,
        // the family dies
        let (old, _) = rotate_req(&t0, NOW + 21);
        assert_eq!(
            s.rotate(&old).await.unwrap(),
            RotateOutcome::Reused {
                sid: sess.sid.clone()
            }
        );
        let dead = s.get_session(&sess.sid).await.unwrap().expect("kept");
        assert_eq!(dead.liveness(NOW + 21, IDLE), Liveness::Revoked);
        assert_eq!(dead.revoke_reason.as_deref(), Some("refresh_reused"));
        assert_eq!(dead.vault_key, None);
        // even the current token is now useless
        let (cur, _) = rotate_req(&t2, NOW + 22);
        assert_eq!(s.rotate(&cur).await.unwrap(), RotateOutcome::Revoked);
    }

    pub async fn predecessor_after_grace_window_revokes(s: Arc<dyn SessionStore>) {
        let (sess, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let (r1, _) = rotate_req(&t0, NOW);
        assert!(matches!(
            s.rotate(&r1).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        let (late, _) = rotate_req(&t0, NOW + GRACE + 1);
        assert_eq!(
            s.rotate(&late).await.unwrap(),
            RotateOutcome::Reused { sid: sess.sid }
        );
    }

    pub async fn concurrent_rotations_yield_exactly_one_successor(s: Arc<dyn SessionStore>) {
        let (sess, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            let t0 = t0.clone();
            tasks.push(tokio::spawn(async move {
                let (r, _) = rotate_req(&t0, NOW + 1);
                s.rotate(&r).await.unwrap()
            }));
        }
        let mut rotated = 0;
        let mut graced = 0;
        for t in tasks {
            match t.await.unwrap() {
                RotateOutcome::Rotated(_) => rotated += 1,
                RotateOutcome::Grace { .. } => graced += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((rotated, graced), (1, 15));
        let s1 = s.get_session(&sess.sid).await.unwrap().expect("session");
        assert_eq!(s1.generation, 1, "exactly one new family member");
        assert_eq!(s1.revoked_at, None);
    }

    pub async fn idle_and_absolute_expiry_end_the_family(s: Arc<dyn SessionStore>) {
        let (idle_s, t) = new_session(s.as_ref(), "alice", NOW).await;
        let (r, _) = rotate_req(&t, NOW + IDLE);
        assert_eq!(s.rotate(&r).await.unwrap(), RotateOutcome::Expired);
        let got = s.get_session(&idle_s.sid).await.unwrap().expect("kept");
        assert_eq!(got.revoke_reason.as_deref(), Some("expired"));
        assert_eq!(got.vault_key, None);

        // keep it alive by refreshing, but the absolute lifetime (3600) still ends it
        let (_abs, mut t) = new_session(s.as_ref(), "alice", NOW).await;
        let mut now = NOW;
        while now + 500 < NOW + 3600 {
            now += 500;
            let (r, next) = rotate_req(&t, now);
            assert!(
                matches!(s.rotate(&r).await.unwrap(), RotateOutcome::Rotated(_)),
                "at {now}"
            );
            t = next;
        }
        let (r, _) = rotate_req(&t, NOW + 3600);
        assert_eq!(s.rotate(&r).await.unwrap(), RotateOutcome::Expired);
    }

    pub async fn unknown_token_is_unknown(s: Arc<dyn SessionStore>) {
        let (r, _) = rotate_req(&RefreshToken::generate(&key()), NOW);
        assert_eq!(s.rotate(&r).await.unwrap(), RotateOutcome::Unknown);
        assert!(s
            .lookup_refresh(&r.presented, NOW, GRACE, CLIENT)
            .await
            .unwrap()
            .is_none());
    }

    pub async fn lookup_reports_token_position(s: Arc<dyn SessionStore>) {
        let (_, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let h = |t: &RefreshToken| t.to_ref();
        assert_eq!(
            s.lookup_refresh(&h(&t0), NOW, GRACE, CLIENT)
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::Current)
        );
        let (r1, t1) = rotate_req(&t0, NOW);
        s.rotate(&r1).await.unwrap();
        let (r2, t2) = rotate_req(&t1, NOW + 1);
        s.rotate(&r2).await.unwrap();
        assert_eq!(
            s.lookup_refresh(&h(&t2), NOW + 1, GRACE, CLIENT)
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::Current)
        );
        assert_eq!(
            s.lookup_refresh(&h(&t1), NOW + 1, GRACE, CLIENT)
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::GracePredecessor)
        );
        // the predecessor from another client (user agent or network) is not in grace
        assert_eq!(
            s.lookup_refresh(&h(&t1), NOW + 1, GRACE, "client-b")
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::Superseded)
        );
        // t0, two generations old but superseded by this client within the window, is in
        // grace too; past its window (superseded at NOW) it is superseded
        assert_eq!(
            s.lookup_refresh(&h(&t0), NOW + 1, GRACE, CLIENT)
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::GracePredecessor)
        );
        assert_eq!(
            s.lookup_refresh(&h(&t0), NOW + 1, GRACE, "client-b")
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::Superseded)
        );
        assert_eq!(
            s.lookup_refresh(&h(&t0), NOW + GRACE + 1, GRACE, CLIENT)
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::Superseded)
        );
    }

    /// Tabs without a lock refresh with one cookie at once and their requests arrive out of
    /// order: tab A rotates t0 -> t1, tab B (which already saw t1) t1 -> t2, then tab C's
    /// request, sent with t0 before either answer, arrives. Seen in Chromium without Web Locks
    /// and BroadcastChannel: "refresh token reuse: family revoked". Within the window, from
    /// the client that superseded it, t0 gets the current token (t2), like the immediate
    /// predecessor gets it.
    pub async fn a_token_superseded_twice_within_the_window_gets_the_current_one(
        s: Arc<dyn SessionStore>,
    ) {
        let (sess, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let (r1, t1) = rotate_from(&t0, NOW, "client-a");
        assert!(matches!(
            s.rotate(&r1).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        let (r2, t2) = rotate_from(&t1, NOW + 1, "client-a");
        assert!(matches!(
            s.rotate(&r2).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        let (late, _) = rotate_from(&t0, NOW + 2, "client-a");
        match s.rotate(&late).await.unwrap() {
            RotateOutcome::Grace { chain, session } => {
                assert_eq!(chain.len(), 2, "t0 -> t1 -> t2");
                assert_eq!(open_grace(&t0, &chain), t2, "the current token");
                assert_eq!(session.sid, sess.sid);
            }
            other => panic!("expected grace, got {other:?}"),
        }
        // nothing changed: t1 is still the grace predecessor, t2 still rotates
        let (again, _) = rotate_from(&t1, NOW + 3, "client-a");
        match s.rotate(&again).await.unwrap() {
            RotateOutcome::Grace { chain, .. } => assert_eq!(open_grace(&t1, &chain), t2),
            other => panic!("expected grace, got {other:?}"),
        }
        let (r3, _) = rotate_from(&t2, NOW + 4, "client-a");
        assert!(matches!(
            s.rotate(&r3).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        let live = s.get_session(&sess.sid).await.unwrap().expect("session");
        assert_eq!(live.revoked_at, None);
        assert_eq!(
            live.generation, 3,
            "the late request created no family member"
        );
    }

    /// The older tokens' grace has the same limits as the predecessor's: the client that
    /// superseded the token, its own window, and at most `MAX_GRACE_CHAIN` of them.
    pub async fn older_grace_holds_the_client_the_window_and_the_bound(s: Arc<dyn SessionStore>) {
        // another client presenting t0 (superseded twice, within the window): theft
        let (a, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let (r1, t1) = rotate_from(&t0, NOW, "client-a");
        s.rotate(&r1).await.unwrap();
        let (r2, _) = rotate_from(&t1, NOW + 1, "client-a");
        s.rotate(&r2).await.unwrap();
        let (stolen, _) = rotate_from(&t0, NOW + 2, "client-b");
        assert_eq!(
            s.rotate(&stolen).await.unwrap(),
            RotateOutcome::Reused { sid: a.sid.clone() }
        );

        // t0's window ends GRACE seconds after it was superseded, whatever came after it
        let (b, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let (r1, t1) = rotate_from(&t0, NOW, "client-a");
        s.rotate(&r1).await.unwrap();
        let (r2, _) = rotate_from(&t1, NOW + GRACE, "client-a");
        s.rotate(&r2).await.unwrap();
        let (late, _) = rotate_from(&t0, NOW + GRACE + 1, "client-a");
        assert_eq!(
            s.rotate(&late).await.unwrap(),
            RotateOutcome::Reused { sid: b.sid.clone() }
        );

        // bounded: the predecessor and MAX_GRACE_CHAIN older tokens, no more
        let (c, first) = new_session(s.as_ref(), "alice", NOW).await;
        let mut chain = vec![first];
        for _ in 0..MAX_GRACE_CHAIN + 2 {
            let (r, next) = rotate_from(chain.last().expect("token"), NOW, "client-a");
            assert!(matches!(
                s.rotate(&r).await.unwrap(),
                RotateOutcome::Rotated(_)
            ));
            chain.push(next);
        }
        let current = chain.last().expect("current").clone();
        let (oldest_kept, _) = rotate_from(&chain[1], NOW + 1, "client-a");
        match s.rotate(&oldest_kept).await.unwrap() {
            RotateOutcome::Grace { chain: sealed, .. } => {
                assert_eq!(sealed.len(), MAX_GRACE_CHAIN + 1);
                assert_eq!(open_grace(&chain[1], &sealed), current);
            }
            other => panic!("expected grace, got {other:?}"),
        }
        let records = s.token_records(&c.sid).await.unwrap();
        assert!(records <= 3 + MAX_GRACE_CHAIN, "{records} token records");
        let (too_old, _) = rotate_from(&chain[0], NOW + 1, "client-a");
        assert_eq!(
            s.rotate(&too_old).await.unwrap(),
            RotateOutcome::Reused { sid: c.sid.clone() }
        );
    }

    pub async fn revoke_destroys_vault_key_and_counts(s: Arc<dyn SessionStore>) {
        let (a, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (b, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (c, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (bob, _) = new_session(s.as_ref(), "bob", NOW).await;
        assert!(s.revoke_session(&a.sid, "logout", NOW).await.unwrap());
        assert!(
            !s.revoke_session(&a.sid, "logout", NOW).await.unwrap(),
            "second revoke is a no-op"
        );
        assert!(!s.revoke_session("missing", "logout", NOW).await.unwrap());
        assert_eq!(
            s.revoke_user_sessions("user-alice", "logout_all", NOW + 1)
                .await
                .unwrap(),
            2
        );
        for sid in [&a.sid, &b.sid, &c.sid] {
            let got = s.get_session(sid).await.unwrap().expect("kept");
            assert!(got.revoked_at.is_some());
            assert_eq!(got.vault_key, None);
        }
        assert_eq!(
            s.get_session(&a.sid)
                .await
                .unwrap()
                .and_then(|x| x.revoke_reason)
                .as_deref(),
            Some("logout")
        );
        assert_eq!(
            s.get_session(&bob.sid)
                .await
                .unwrap()
                .and_then(|x| x.revoked_at),
            None
        );
    }

    /// `session_status` (the introspection read) agrees with `get_session` and sees every
    /// change of liveness at once: refresh, idle and absolute expiry, revocation of one
    /// session, of all of a user's, and by the rotation that finds it expired.
    pub async fn session_status_follows_every_liveness_change(s: Arc<dyn SessionStore>) {
        let status = |sid: String| {
            let s = s.clone();
            async move {
                let st = s.session_status(&sid).await.unwrap();
                let full = s.get_session(&sid).await.unwrap();
                assert_eq!(
                    st,
                    full.as_ref().map(SessionStatus::from),
                    "agrees with get_session"
                );
                st
            }
        };
        assert_eq!(status("missing".into()).await, None);

        let mfa = SessionRecord::new(random_token(), &user("carol"), NOW, 3600, true);
        let t = RefreshToken::generate(&key());
        s.create_session(&mfa, &t.to_ref(), &NO_LIMIT)
            .await
            .expect("create");
        let st = status(mfa.sid.clone()).await.expect("status");
        assert!(st.mfa && !st.revoked);
        assert_eq!((st.last_seen, st.expires_at), (NOW, NOW + 3600));
        assert_eq!(st.liveness(NOW, IDLE), Liveness::Live);
        assert_eq!(st.liveness(NOW + IDLE, IDLE), Liveness::Expired, "idle");

        // a refresh moves last_seen
        let (r, _) = rotate_req(&t, NOW + 100);
        assert!(matches!(
            s.rotate(&r).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        let st = status(mfa.sid.clone()).await.expect("status");
        assert_eq!(st.last_seen, NOW + 100);
        assert_eq!(st.liveness(NOW + IDLE + 50, IDLE), Liveness::Live);
        assert_eq!(st.liveness(NOW + 3600, IDLE), Liveness::Expired, "absolute");

        // revocations
        let (a, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (b, _) = new_session(s.as_ref(), "alice", NOW).await;
        let (c, tc) = new_session(s.as_ref(), "bob", NOW).await;
        assert!(!status(a.sid.clone()).await.expect("a").mfa);
        assert!(s.revoke_session(&a.sid, "logout", NOW).await.unwrap());
        let st = status(a.sid.clone()).await.expect("kept");
        assert_eq!(st.liveness(NOW, IDLE), Liveness::Revoked);
        assert_eq!(
            status(b.sid.clone()).await.expect("b").liveness(NOW, IDLE),
            Liveness::Live
        );
        s.revoke_user_sessions("user-alice", "logout_all", NOW)
            .await
            .unwrap();
        assert!(status(b.sid.clone()).await.expect("b").revoked);
        let (r, _) = rotate_req(&tc, NOW + IDLE);
        assert_eq!(s.rotate(&r).await.unwrap(), RotateOutcome::Expired);
        assert!(status(c.sid.clone()).await.expect("c").revoked);
        assert!(!status(mfa.sid.clone()).await.expect("carol").revoked);
    }

    pub async fn client_updates_and_events_are_listed(s: Arc<dyn SessionStore>) {
        let (a, _) = new_session(s.as_ref(), "alice", NOW).await;
        let e = SessionEvent {
            at: NOW + 3,
            kind: "network_changed".into(),
            detail: "a -> b".into(),
        };
        s.update_client(&a.sid, "UA2", "10.0.0.9", Some(&e))
            .await
            .unwrap();
        s.update_client(&a.sid, "UA3", "10.0.0.9", None)
            .await
            .unwrap();
        let list = s.list_sessions("user-alice").await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].user_agent, "UA3");
        assert_eq!(list[0].address, "10.0.0.9");
        assert_eq!(list[0].events, vec![e]);
    }

    pub async fn purge_deletes_only_long_dead_sessions(s: Arc<dyn SessionStore>) {
        let (old, t_old) = new_session(s.as_ref(), "alice", NOW - 10_000).await; // expired at NOW - 6400
        let (live, _) = new_session(s.as_ref(), "alice", NOW).await;
        let n = s.purge_expired(NOW, 3600).await.unwrap();
        assert!(
            s.get_session(&live.sid).await.unwrap().is_some(),
            "live session kept"
        );
        if s.kind() == "redis" {
            assert_eq!(n, 0, "Redis relies on key TTLs");
        } else {
            assert_eq!(n, 1);
            assert!(s.get_session(&old.sid).await.unwrap().is_none());
            assert!(s
                .lookup_refresh(&t_old.to_ref(), NOW, GRACE, CLIENT)
                .await
                .unwrap()
                .is_none());
            assert_eq!(s.list_sessions("user-alice").await.unwrap().len(), 1);
        }
    }

    pub async fn ephemeral_values_expire_and_are_taken_once(s: Arc<dyn SessionStore>) {
        s.put_ephemeral("mfa:x", "v", NOW + 60).await.unwrap();
        assert_eq!(
            s.get_ephemeral("mfa:x", NOW).await.unwrap().as_deref(),
            Some("v")
        );
        assert_eq!(
            s.get_ephemeral("mfa:x", NOW + 60).await.unwrap(),
            None,
            "expired by the injected clock"
        );
        assert_eq!(
            s.take_ephemeral("mfa:x", NOW).await.unwrap().as_deref(),
            Some("v")
        );
        assert_eq!(s.take_ephemeral("mfa:x", NOW).await.unwrap(), None);
        assert!(s.use_once("totp:u:1", NOW + 90, NOW).await.unwrap());
        assert!(!s.use_once("totp:u:1", NOW + 90, NOW + 1).await.unwrap());
        assert!(s.use_once("totp:u:2", NOW + 90, NOW).await.unwrap());
    }

    pub async fn advance_counter_only_moves_forward(s: Arc<dyn SessionStore>) {
        assert!(s
            .advance_counter("totp-last:u", 100, NOW + 90, NOW)
            .await
            .unwrap());
        assert!(
            !s.advance_counter("totp-last:u", 100, NOW + 90, NOW)
                .await
                .unwrap(),
            "the same step twice"
        );
        assert!(
            !s.advance_counter("totp-last:u", 99, NOW + 90, NOW)
                .await
                .unwrap(),
            "an older step after a newer one"
        );
        assert!(s
            .advance_counter("totp-last:u", 101, NOW + 120, NOW + 1)
            .await
            .unwrap());
        assert!(!s
            .advance_counter("totp-last:u", 100, NOW + 90, NOW + 2)
            .await
            .unwrap());
        assert!(
            s.advance_counter("totp-last:other", 5, NOW + 90, NOW)
                .await
                .unwrap(),
            "per key"
        );
        // once the record expired, any value starts afresh
        assert!(s
            .advance_counter("totp-last:u", 7, NOW + 500, NOW + 120)
            .await
            .unwrap());
        // 64 racers for one step: exactly one wins
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.advance_counter("totp-last:race", 42, NOW + 90, NOW)
                    .await
                    .unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += t.await.unwrap() as usize;
        }
        assert_eq!(won, 1);
    }

    /// Bounded growth: reuse detection no longer needs one stored hash per rotation.
    pub async fn ten_thousand_rotations_leave_a_bounded_number_of_token_records(
        s: Arc<dyn SessionStore>,
    ) {
        let (sess, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let first = t0.clone();
        let mut t = t0;
        let mut older = Vec::new();
        for i in 0..10_000 {
            let (r, next) = rotate_req(&t, NOW + i / 100);
            assert!(
                matches!(s.rotate(&r).await.unwrap(), RotateOutcome::Rotated(_)),
                "rotation {i}"
            );
            if i % 2_500 == 0 {
                older.push(t.clone());
            }
            t = next;
        }
        let records = s.token_records(&sess.sid).await.unwrap();
        // current, predecessor, family index; the older grace entries of the last second
        assert!(
            records <= 3 + MAX_GRACE_CHAIN,
            "{records} token records after 10,000 rotations"
        );
        assert!(
            records >= 2,
            "the current token and its family are stored ({records})"
        );
        let now = NOW + 100;
        // the current token still works, and is the only current one
        assert_eq!(
            s.lookup_refresh(&t.to_ref(), now, GRACE, CLIENT)
                .await
                .unwrap()
                .map(|x| x.1),
            Some(TokenPosition::Current)
        );
        for o in &older {
            assert_eq!(
                s.lookup_refresh(&o.to_ref(), now, GRACE, CLIENT)
                    .await
                    .unwrap()
                    .map(|x| x.1),
                Some(TokenPosition::Superseded),
                "an old token is still recognised as one of this family"
            );
        }
        // … and presenting the very first token (no record of it remains) is reuse
        let (r, _) = rotate_req(&first, now);
        assert_eq!(
            s.rotate(&r).await.unwrap(),
            RotateOutcome::Reused {
                sid: sess.sid.clone()
            }
        );
        let (cur, _) = rotate_req(&t, now + 1);
        assert_eq!(s.rotate(&cur).await.unwrap(), RotateOutcome::Revoked);
    }

    pub async fn per_user_limit_revokes_the_oldest_live_sessions(s: Arc<dyn SessionStore>) {
        let limits = SessionLimits {
            max_per_user: 3,
            idle: IDLE,
        };
        let mut sids: Vec<String> = Vec::new();
        let mut tokens = Vec::new();
        for i in 0..5 {
            let sess = SessionRecord::new(random_token(), &user("alice"), NOW + i, 3600, false);
            let t = RefreshToken::generate(&key());
            let revoked = s.create_session(&sess, &t.to_ref(), &limits).await.unwrap();
            if i < 3 {
                assert!(revoked.is_empty(), "within the limit at {i}");
            } else {
                assert_eq!(revoked, vec![sids[(i - 3) as usize].clone()], "at {i}");
            }
            sids.push(sess.sid);
            tokens.push(t);
        }
        // bob is not affected by alice's limit
        let (bob, _) = new_session(s.as_ref(), "bob", NOW).await;
        let now = NOW + 5;
        let live = |x: &SessionRecord| x.liveness(now, IDLE) == Liveness::Live;
        let alice = s.list_sessions("user-alice").await.unwrap();
        assert_eq!(alice.iter().filter(|x| live(x)).count(), 3);
        for sid in &sids[..2] {
            let got = s
                .get_session(sid)
                .await
                .unwrap()
                .expect("kept for the listing");
            assert_eq!(got.revoke_reason.as_deref(), Some("session_limit"));
            assert_eq!(got.vault_key, None);
        }
        let (r, _) = rotate_req(&tokens[0], now);
        assert_eq!(s.rotate(&r).await.unwrap(), RotateOutcome::Revoked);
        assert!(live(&s.get_session(&bob.sid).await.unwrap().expect("bob")));
        // dead sessions do not count: revoke two, then two new ones revoke nothing
        s.revoke_session(&sids[2], "logout", now).await.unwrap();
        s.revoke_session(&sids[3], "logout", now).await.unwrap();
        for i in 0..2 {
            let sess = SessionRecord::new(random_token(), &user("alice"), now + i, 3600, false);
            let revoked = s
                .create_session(&sess, &RefreshToken::generate(&key()).to_ref(), &limits)
                .await
                .unwrap();
            assert!(revoked.is_empty(), "{revoked:?}");
        }
    }

    pub async fn events_per_session_are_capped(s: Arc<dyn SessionStore>) {
        let (a, _) = new_session(s.as_ref(), "alice", NOW).await;
        let n = MAX_EVENTS_PER_SESSION + 25;
        for i in 0..n {
            let e = SessionEvent {
                at: NOW + i as i64,
                kind: "network_changed".into(),
                detail: format!("#{i}"),
            };
            s.update_client(&a.sid, "UA", "10.0.0.1", Some(&e))
                .await
                .unwrap();
        }
        let list = s.list_sessions("user-alice").await.unwrap();
        let events = &list[0].events;
        assert_eq!(events.len(), MAX_EVENTS_PER_SESSION);
        assert_eq!(
            events.first().map(|e| e.detail.clone()),
            Some("#25".into()),
            "oldest dropped"
        );
        assert_eq!(
            events.last().map(|e| e.detail.clone()),
            Some(format!("#{}", n - 1))
        );
    }

    pub async fn paged_listing_returns_every_session_once_newest_first(s: Arc<dyn SessionStore>) {
        let mut made = Vec::new();
        for i in 0..7 {
            // pairs share a creation second: the order must still be total
            let (x, _) = new_session(s.as_ref(), "alice", NOW + i / 2).await;
            made.push(x);
        }
        new_session(s.as_ref(), "bob", NOW).await;
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s
                .list_sessions_page("user-alice", 3, cursor.as_deref())
                .await
                .unwrap();
            assert!(page.sessions.len() <= 3);
            seen.extend(page.sessions.iter().map(|x| (x.created_at, x.sid.clone())));
            pages += 1;
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let mut want: Vec<(i64, String)> =
            made.iter().map(|x| (x.created_at, x.sid.clone())).collect();
        want.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, want);
        assert!(s
            .list_sessions_page("user-alice", 3, Some("garbage"))
            .await
            .is_err());
        let all = s.list_sessions("user-alice").await.unwrap();
        assert_eq!(all.len(), 7);
    }

    pub async fn per_user_limit_holds_under_64_parallel_logins(s: Arc<dyn SessionStore>) {
        let limits = SessionLimits {
            max_per_user: 5,
            idle: IDLE,
        };
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let sess =
                    SessionRecord::new(random_token(), &user("alice"), NOW + i % 4, 3600, false);
                s.create_session(&sess, &RefreshToken::generate(&key()).to_ref(), &limits)
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let all = s.list_sessions("user-alice").await.unwrap();
        assert_eq!(all.len(), 64);
        let live = all
            .iter()
            .filter(|x| x.liveness(NOW + 4, IDLE) == Liveness::Live)
            .count();
        if s.kind() == "redis" {
            // Redis trims after the write (not atomic with it): never above the limit
            assert!((1..=5).contains(&live), "{live} live sessions");
        } else {
            assert_eq!(live, 5, "atomic: exactly the limit stays live");
        }
    }

    /// Secrets at rest: grace only for the user agent and network that rotated.
    pub async fn grace_is_granted_only_to_the_rotating_client(s: Arc<dyn SessionStore>) {
        let (sess, t0) = new_session(s.as_ref(), "alice", NOW).await;
        let (r1, t1) = rotate_from(&t0, NOW, "client-a");
        assert!(matches!(
            s.rotate(&r1).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        // the same client inside the window: the successor again
        let (same, _) = rotate_from(&t0, NOW + 1, "client-a");
        match s.rotate(&same).await.unwrap() {
            RotateOutcome::Grace { chain, .. } => assert_eq!(open_grace(&t0, &chain), t1),
            other => panic!("expected grace, got {other:?}"),
        }
        // the predecessor replayed from another agent/network inside the window: theft
        let (other, _) = rotate_from(&t0, NOW + 2, "client-b");
        assert_eq!(
            s.rotate(&other).await.unwrap(),
            RotateOutcome::Reused {
                sid: sess.sid.clone()
            }
        );
        let (cur, _) = rotate_from(&t1, NOW + 3, "client-a");
        assert_eq!(s.rotate(&cur).await.unwrap(), RotateOutcome::Revoked);
    }

    /// Secrets at rest: housekeeping destroys vault keys of expired sessions and grace
    /// successors past the window (Redis: the values are keys with TTLs instead).
    pub async fn shred_destroys_expired_vault_keys_and_old_grace_successors(
        s: Arc<dyn SessionStore>,
    ) {
        let (idle, _) = new_session(s.as_ref(), "alice", NOW - IDLE - 5).await;
        let (abs, mut t) = new_session(s.as_ref(), "alice", NOW - 3590).await;
        for i in 0..3 {
            let (r, next) = rotate_req(&t, NOW - 3589 + i);
            assert!(matches!(
                s.rotate(&r).await.unwrap(),
                RotateOutcome::Rotated(_)
            ));
            t = next;
        }
        let (live, t_live) = new_session(s.as_ref(), "alice", NOW).await;
        let (r, _) = rotate_req(&t_live, NOW);
        assert!(matches!(
            s.rotate(&r).await.unwrap(),
            RotateOutcome::Rotated(_)
        ));
        let get = |sid: String| {
            let s = s.clone();
            async move { s.get_session(&sid).await.unwrap().expect("session") }
        };
        if s.kind() == "redis" {
            // Redis: the live session's successor key expires after the grace window by
            // itself, the vault key at the idle deadline (TTLs checked on the raw keys in
            // redis_keeps_vault_keys_and_grace_successors_under_ttls)
            assert!(get(live.sid.clone()).await.prev_sealed.is_some());
            return;
        }
        assert!(
            get(idle.sid.clone()).await.vault_key.is_some(),
            "nothing shredded yet"
        );
        assert!(get(abs.sid.clone()).await.prev_sealed.is_some());
        let n = s.shred(NOW + 11, IDLE, GRACE).await.unwrap();
        assert!(n >= 3, "{n}");
        let idle_s = get(idle.sid.clone()).await;
        assert_eq!(idle_s.vault_key, None, "idle-expired session");
        let abs_s = get(abs.sid.clone()).await;
        assert_eq!(abs_s.vault_key, None, "absolute lifetime over");
        assert_eq!(abs_s.prev_sealed, None, "grace successor past the window");
        let live_s = get(live.sid.clone()).await;
        assert!(live_s.vault_key.is_some(), "a live session keeps its key");
        assert_eq!(
            live_s.prev_sealed, None,
            "but not its successor after the window"
        );
        assert_eq!(live_s.revoked_at, None);
    }
}

type Guard = Box<dyn std::any::Any + Send>;

async fn memory() -> Option<(Arc<dyn SessionStore>, Guard)> {
    Some((
        Arc::new(tessera_server::store::memory::MemoryStore::new()),
        Box::new(()),
    ))
}

async fn sqlite() -> Option<(Arc<dyn SessionStore>, Guard)> {
    let db = common::TempDb::new("conf");
    let store = tessera_server::store::sqlite::SqliteStore::open(&db.0).expect("open sqlite");
    Some((Arc::new(store), Box::new(db)))
}

async fn redis() -> Option<(Arc<dyn SessionStore>, Guard)> {
    let srv = common::RedisServer::start()?;
    let store = tessera_server::store::redis::RedisStore::connect(&srv.url(), "tessera-test:")
        .await
        .expect("connect redis");
    Some((Arc::new(store), Box::new(srv)))
}

async fn sentinel() -> Option<(Arc<dyn SessionStore>, Guard)> {
    let setup = common::SentinelSetup::start(false)?;
    let store = tessera_server::store::redis::RedisStore::connect(&setup.url(), "tessera-test:")
        .await
        .expect("connect through sentinel");
    Some((Arc::new(store), Box::new(setup)))
}

async fn cluster() -> Option<(Arc<dyn SessionStore>, Guard)> {
    let setup = common::ClusterSetup::start()?;
    let store = tessera_server::store::redis::RedisStore::connect(&setup.url(), "tessera-test:")
        .await
        .expect("connect to cluster");
    Some((Arc::new(store), Box::new(setup)))
}

macro_rules! conformance {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some((store, _guard)) = super::$backend().await else { return };
                    super::suite::$test(store).await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($backend:ident),*) => {
        $(conformance!($backend:
            meta_put_if_absent_keeps_first_writer,
            users_roundtrip_and_upsert,
            session_roundtrip_and_listing,
            rotation_current_grace_then_reuse_revokes_family,
            predecessor_after_grace_window_revokes,
            concurrent_rotations_yield_exactly_one_successor,
            idle_and_absolute_expiry_end_the_family,
            unknown_token_is_unknown,
            lookup_reports_token_position,
            revoke_destroys_vault_key_and_counts,
            client_updates_and_events_are_listed,
            ephemeral_values_expire_and_are_taken_once,
            advance_counter_only_moves_forward,
            ten_thousand_rotations_leave_a_bounded_number_of_token_records,
            a_token_superseded_twice_within_the_window_gets_the_current_one,
            older_grace_holds_the_client_the_window_and_the_bound,
            per_user_limit_revokes_the_oldest_live_sessions,
            events_per_session_are_capped,
            paged_listing_returns_every_session_once_newest_first,
            grace_is_granted_only_to_the_rotating_client,
            per_user_limit_holds_under_64_parallel_logins,
            shred_destroys_expired_vault_keys_and_old_grace_successors,
            purge_deletes_only_long_dead_sessions,
            users_are_listed_without_secrets_and_deleted,
            live_sessions_are_counted,
            session_status_follows_every_liveness_change,
        );)*
    };
}

all_backends!(memory, sqlite, redis, sentinel, cluster);

/// The sealing layer every server wraps its backend in (over SQLite).
async fn sealed() -> Option<(Arc<dyn SessionStore>, Guard)> {
    let (inner, guard) = sqlite().await?;
    Some((
        Arc::new(tessera_server::store::sealed::SealedStore::new(
            inner,
            master(),
        )),
        guard,
    ))
}

conformance!(sealed: session_status_follows_every_liveness_change, revoke_destroys_vault_key_and_counts, a_token_superseded_twice_within_the_window_gets_the_current_one);

/// The introspection read opens nothing: under a master key that cannot open the session's
/// vault key, `get_session` fails (sealed) while `session_status` still answers.
#[tokio::test]
async fn sealed_session_status_decrypts_nothing() {
    use tessera_server::store::sealed::SealedStore;
    let inner: Arc<dyn SessionStore> = Arc::new(tessera_server::store::memory::MemoryStore::new());
    let writer = SealedStore::new(inner.clone(), master());
    let (sess, _) = new_session(&writer, "alice", NOW).await;
    let stranger = SealedStore::new(inner, MasterKey::from_bytes([3; 32]));
    assert!(
        stranger.get_session(&sess.sid).await.is_err(),
        "the vault key does not open"
    );
    let st = stranger
        .session_status(&sess.sid)
        .await
        .expect("no decryption involved")
        .expect("status");
    assert_eq!(st.liveness(NOW, IDLE), Liveness::Live);
}

#[tokio::test]
async fn sqlite_restart_keeps_sessions_and_migrations_are_idempotent() {
    let db = common::TempDb::new("restart");
    let (sid, t0) = {
        let s = tessera_server::store::sqlite::SqliteStore::open(&db.0).expect("open");
        let (sess, t0) = new_session(&s, "alice", NOW).await;
        (sess.sid, t0)
    };
    let s = tessera_server::store::sqlite::SqliteStore::open(&db.0).expect("reopen");
    assert!(s.get_session(&sid).await.unwrap().is_some());
    let (r, _) = rotate_req(&t0, NOW + 1);
    assert!(matches!(
        s.rotate(&r).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
}

#[tokio::test]
async fn redis_store_survives_two_instances_sharing_sessions() {
    let Some(srv) = common::RedisServer::start() else {
        return;
    };
    let a = tessera_server::store::redis::RedisStore::connect(&srv.url(), "shared:")
        .await
        .expect("a");
    let b = tessera_server::store::redis::RedisStore::connect(&srv.url(), "shared:")
        .await
        .expect("b");
    let (sess, t0) = new_session(&a, "alice", NOW).await;
    let (r, _) = rotate_req(&t0, NOW + 1);
    assert!(matches!(
        b.rotate(&r).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    assert_eq!(
        a.get_session(&sess.sid)
            .await
            .unwrap()
            .map(|s| s.generation),
        Some(1)
    );
}

#[tokio::test]
async fn redis_keeps_vault_keys_and_grace_successors_under_ttls() {
    let Some(srv) = common::RedisServer::start() else {
        return;
    };
    let store = tessera_server::store::redis::RedisStore::connect(&srv.url(), "ttl:")
        .await
        .expect("connect");
    let (sess, t0) = new_session(&store, "alice", NOW).await;
    let (r, _) = rotate_req(&t0, NOW + 1);
    assert!(matches!(
        store.rotate(&r).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    let client = ::redis::Client::open(srv.url()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let ttl = |key: String| {
        let mut c = c.clone();
        async move {
            ::redis::cmd("TTL")
                .arg(key)
                .query_async::<i64>(&mut c)
                .await
                .expect("TTL")
        }
    };
    let vault = format!("ttl:v:{{{}}}", sess.sid);
    let grace = format!("ttl:g:{{{}}}", sess.sid);
    let v = ttl(vault.clone()).await;
    assert!(v > 0 && v <= IDLE, "vault key TTL {v} (idle {IDLE})");
    let g = ttl(grace.clone()).await;
    assert!(
        g > 0 && g <= GRACE,
        "grace successor TTL {g} (grace {GRACE})"
    );
    assert!(store
        .revoke_session(&sess.sid, "logout", NOW + 2)
        .await
        .unwrap());
    let exists: i64 = ::redis::cmd("EXISTS")
        .arg(&vault)
        .arg(&grace)
        .query_async(&mut c)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "revocation deletes both");
}
