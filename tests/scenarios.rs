//! Scenario tests of the engine's policies, one behaviour each. The multi-tab properties
//! under random schedules are proven by the simulator in `tests/sim.rs`.
#![cfg(not(target_arch = "wasm32"))]
use tessera::core::*;

const T0: Millis = 1_764_000_000_000;
const TTL: Millis = 300_000;

fn cfg() -> Config {
    Config {
        refresh_jitter: 0,
        ..Config::default()
    }
}

fn tokens(name: &str) -> Tokens {
    Tokens {
        access_token: name.into(),
        expires_in_ms: TTL,
        refresh_token: None,
        session: None,
        user: None,
    }
}

/// Signs in through the login request: `LoginStarted` (unless a login is pending), then
/// the answer carrying the request's id.
fn login(e: &mut Engine, now: Millis, t: Tokens) {
    if e.awaiting().login.is_none() {
        e.handle(now, Input::LoginStarted);
        while let Some(f) = e.poll_effect() {
            if matches!(f, Effect::SendLogin { .. }) {
                break;
            }
        }
    }
    let id = e.awaiting().login.unwrap();
    e.handle(now, Input::LoginSucceeded { id, tokens: t });
}

/// `merge_shared` at a time late enough that nothing in these tests is from the future.
fn merge(stored: Option<&[u8]>, new: &[u8]) -> Vec<u8> {
    merge_shared(stored, new, T0 + 24 * 3_600_000)
}

fn refresh_id(e: &Engine) -> RequestId {
    e.awaiting().refresh.unwrap_or_default()
}

fn lock_id(e: &Engine) -> RequestId {
    e.awaiting().lock.unwrap_or_default()
}

fn refresh_ok(e: &Engine, tokens: Tokens) -> Input {
    Input::RefreshSucceeded {
        id: refresh_id(e),
        tokens,
    }
}

fn refresh_rejected(e: &Engine, reason: LogoutReason) -> Input {
    Input::RefreshRejected {
        id: refresh_id(e),
        reason,
    }
}

fn refresh_failed(e: &Engine, retry_after: Option<Millis>) -> Input {
    Input::RefreshFailed {
        id: refresh_id(e),
        retry_after,
    }
}

fn lock_granted(e: &Engine) -> Input {
    Input::LockGranted { id: lock_id(e) }
}

fn lock_unavailable(e: &Engine) -> Input {
    Input::LockUnavailable { id: lock_id(e) }
}

fn drain(e: &mut Engine) -> Vec<Effect> {
    let mut out = Vec::new();
    while let Some(x) = e.poll_effect() {
        out.push(x);
    }
    out
}

fn events(fx: &[Effect]) -> Vec<Event> {
    fx.iter()
        .filter_map(|f| {
            if let Effect::Emit(e) = f {
                Some(e.clone())
            } else {
                None
            }
        })
        .collect()
}

fn broadcasts(fx: &[Effect]) -> Vec<Msg> {
    fx.iter()
        .filter_map(|f| {
            if let Effect::Broadcast(b) = f {
                Msg::decode(b).ok()
            } else {
                None
            }
        })
        .collect()
}

fn last_persist(fx: &[Effect]) -> Option<Vec<u8>> {
    fx.iter().rev().find_map(|f| {
        if let Effect::PersistShared(b) = f {
            Some(b.clone())
        } else {
            None
        }
    })
}

fn sends_refresh(fx: &[Effect]) -> bool {
    fx.iter().any(|f| matches!(f, Effect::SendRefresh { .. }))
}

/// A signed-in engine at T0, its effects drained; returns it and the login broadcast.
fn signed_in(tab: u64, c: Config) -> (Engine, Vec<u8>, Vec<u8>) {
    let mut e = Engine::new(c, tab, 7, T0);
    e.handle(T0, Input::Shared(None));
    login(&mut e, T0, tokens("a0"));
    let fx = drain(&mut e);
    let bus = fx
        .iter()
        .find_map(|f| {
            if let Effect::Broadcast(b) = f {
                Some(b.clone())
            } else {
                None
            }
        })
        .unwrap();
    let shared = last_persist(&fx).unwrap();
    (e, bus, shared)
}

#[test]
fn login_persists_before_it_broadcasts_and_emits_login() {
    let mut e = Engine::new(cfg(), 1, 7, T0);
    login(&mut e, T0, tokens("a0"));
    let fx = drain(&mut e);
    let kinds: Vec<&str> = fx
        .iter()
        .map(|f| match f {
            Effect::PersistShared(_) => "persist",
            Effect::StoreToken(_) => "store",
            Effect::Broadcast(_) => "broadcast",
            Effect::Emit(Event::Login { .. }) => "login",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["login", "persist", "store", "broadcast"]);
    assert_eq!(e.state(), SessionState::Active);
    assert_eq!(e.access_token(), Some("a0"));
    let meta = e.token_meta().unwrap();
    assert_eq!(
        meta.expires_at,
        T0 + TTL,
        "expiry is local receipt time + expires_in"
    );
}

#[test]
fn refresh_is_due_at_expiry_minus_lead_and_goes_through_the_lock() {
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    assert_eq!(e.next_deadline(), Some(due));
    e.handle(due - 1, Input::Timer);
    assert!(drain(&mut e).is_empty(), "nothing before the due time");
    e.handle(due, Input::Timer);
    assert_eq!(
        drain(&mut e),
        vec![Effect::AcquireLock {
            id: lock_id(&e),
            wait: 8_000,
            steal: false
        }]
    );
    e.handle(due + 5, lock_granted(&e));
    let fx = drain(&mut e);
    assert!(sends_refresh(&fx));
    let claim = Shared::decode(&last_persist(&fx).unwrap())
        .unwrap()
        .claim
        .unwrap();
    assert_eq!(
        (claim.tab, claim.until),
        (1, due + 5 + 5_000),
        "a claim guards the request"
    );
    e.handle(due + 100, refresh_ok(&e, tokens("a1")));
    let fx = drain(&mut e);
    assert!(matches!(events(&fx)[..], [Event::Refresh { .. }]));
    assert!(fx.contains(&Effect::ReleaseLock));
    assert!(matches!(broadcasts(&fx)[..], [Msg::Token { .. }]));
    assert_eq!(e.access_token(), Some("a1"));
    assert_eq!(e.token_meta().unwrap().expires_at, due + 100 + TTL);
}

#[test]
fn lead_is_capped_at_half_the_token_lifetime() {
    let mut e = Engine::new(
        Config {
            refresh_lead: 600_000,
            refresh_jitter: 0,
            ..cfg()
        },
        1,
        7,
        T0,
    );
    login(
        &mut e,
        T0,
        Tokens {
            access_token: "a".into(),
            expires_in_ms: 60_000,
            refresh_token: None,
            session: None,
            user: None,
        },
    );
    drain(&mut e);
    assert_eq!(e.next_deadline(), Some(T0 + 30_000));
}

#[test]
fn jitter_stays_within_bounds_and_depends_on_the_seed() {
    let mut dues = Vec::new();
    for seed in 0..20 {
        let mut e = Engine::new(
            Config {
                refresh_jitter: 5_000,
                ..Config::default()
            },
            1,
            seed,
            T0,
        );
        login(&mut e, T0, tokens("a"));
        drain(&mut e);
        let d = e.next_deadline().unwrap();
        assert!((T0 + TTL - 65_000..=T0 + TTL - 60_000).contains(&d));
        dues.push(d);
    }
    dues.sort_unstable();
    dues.dedup();
    assert!(dues.len() > 1, "jitter varies with the seed");
}

#[test]
fn a_second_tab_adopts_the_broadcast_token_and_stands_down_under_the_lock() {
    let (mut a, login, shared) = signed_in(1, cfg());
    let mut b = Engine::new(cfg(), 2, 9, T0);
    b.handle(T0, Input::Shared(Some(shared)));
    b.handle(T0 + 3, Input::Bus(login));
    assert!(matches!(events(&drain(&mut b))[..], [Event::Login { .. }]));
    let due = T0 + TTL - 60_000;
    // Both reach the due time; A gets the lock first and refreshes.
    a.handle(due, Input::Timer);
    b.handle(due, Input::Timer);
    drain(&mut a);
    drain(&mut b);
    a.handle(due, lock_granted(&a));
    let fx = drain(&mut a);
    let persisted = last_persist(&fx).unwrap();
    a.handle(due + 50, refresh_ok(&a, tokens("a1")));
    let fx = drain(&mut a);
    let persisted2 = merge(Some(&persisted), &last_persist(&fx).unwrap());
    let msg = fx
        .iter()
        .find_map(|f| {
            if let Effect::Broadcast(m) = f {
                Some(m.clone())
            } else {
                None
            }
        })
        .unwrap();
    // B is granted the lock after A released it, before A's bus message arrived; the shared
    // record it reads under the lock already names the newer token: no second request.
    b.handle(due + 51, Input::Shared(Some(persisted2)));
    b.handle(due + 51, lock_granted(&b));
    let fx = drain(&mut b);
    assert!(!sends_refresh(&fx), "B must not refresh the same expiry");
    assert!(fx.contains(&Effect::ReleaseLock));
    b.handle(due + 60, Input::Bus(msg));
    assert_eq!(b.access_token(), Some("a1"));
    assert_eq!(b.stats().refresh_sent, 0);
}

#[test]
fn an_older_token_is_never_adopted() {
    let (mut a, old_login, _) = signed_in(1, cfg());
    let mut b = Engine::new(cfg(), 2, 9, T0);
    b.handle(T0, Input::Bus(old_login.clone()));
    let due = T0 + TTL - 60_000;
    a.handle(due, Input::Timer);
    a.handle(due, lock_granted(&a));
    a.handle(due + 9, refresh_ok(&a, tokens("a1")));
    let fx = drain(&mut a);
    let newer = fx
        .iter()
        .find_map(|f| {
            if let Effect::Broadcast(m) = f {
                Some(m.clone())
            } else {
                None
            }
        })
        .unwrap();
    b.handle(due + 10, Input::Bus(newer));
    b.handle(due + 11, Input::Bus(old_login)); // reordered / duplicated delivery
    assert_eq!(b.access_token(), Some("a1"));
}

#[test]
fn a_stuck_lock_is_stolen_after_the_bounded_wait() {
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    e.handle(due, Input::Timer);
    drain(&mut e);
    e.handle(due + 8_000, lock_unavailable(&e));
    assert_eq!(
        drain(&mut e),
        vec![Effect::AcquireLock {
            id: lock_id(&e),
            wait: 8_000,
            steal: true
        }]
    );
    e.handle(due + 15_001, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
    assert_eq!(e.stats().lock_steals, 1);
}

#[test]
fn a_live_claim_of_another_tab_holds_back_the_request_until_it_expires() {
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    let other = Shared {
        claim: Some(Claim {
            serial: 99,
            tab: 2,
            at: due - 10,
            until: due + 8_000,
            base: T0,
        }),
        ..Shared::default()
    };
    e.handle(due, Input::Shared(Some(other.encode())));
    assert!(
        drain(&mut e).is_empty(),
        "no lock request while another tab's claim is live"
    );
    assert_eq!(e.next_deadline(), Some(due + 8_000));
    e.handle(due + 8_000, Input::Timer);
    assert!(drain(&mut e)
        .iter()
        .any(|f| matches!(f, Effect::AcquireLock { .. })));
}

#[test]
fn network_failures_back_off_exponentially_with_a_cap_and_resume_online() {
    let (mut e, _, _) = signed_in(
        1,
        Config {
            backoff_base: 1_000,
            backoff_cap: 8_000,
            ..cfg()
        },
    );
    let mut now = T0 + TTL - 60_000;
    e.handle(now, Input::Timer);
    e.handle(now, lock_granted(&e));
    drain(&mut e);
    let mut delays = Vec::new();
    for _ in 0..6 {
        e.handle(now, refresh_failed(&e, None));
        let fx = drain(&mut e);
        assert!(events(&fx).contains(&Event::Error {
            code: ErrorCode::RefreshRetry
        }));
        let at = e.next_deadline().unwrap();
        delays.push(at - now);
        now = at;
        e.handle(now, Input::Timer);
        e.handle(now, lock_granted(&e));
        assert!(sends_refresh(&drain(&mut e)));
    }
    for (k, d) in delays.iter().enumerate() {
        let exp = (1_000u64 << k).min(8_000);
        assert!(
            *d >= exp / 2 && *d <= exp,
            "attempt {k}: delay {d} outside [{}, {exp}]",
            exp / 2
        );
    }
    // Retry-After is honoured; coming back online retries at once.
    e.handle(now, refresh_failed(&e, Some(60_000)));
    drain(&mut e);
    assert!(e.next_deadline().unwrap() >= now + 60_000);
    e.handle(now + 5, Input::Online(false));
    e.handle(now + 10, Input::Online(true));
    assert!(drain(&mut e)
        .iter()
        .any(|f| matches!(f, Effect::AcquireLock { .. })));
}

#[test]
fn a_definitive_rejection_ends_the_session_everywhere_with_its_reason() {
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    e.handle(due, Input::Timer);
    e.handle(due, lock_granted(&e));
    drain(&mut e);
    e.handle(due + 40, refresh_rejected(&e, LogoutReason::Reused));
    let fx = drain(&mut e);
    assert_eq!(
        events(&fx),
        vec![Event::Logout {
            reason: LogoutReason::Reused
        }]
    );
    assert!(fx.contains(&Effect::Wipe { tab_only: false }));
    assert!(
        !fx.iter().any(|f| matches!(f, Effect::SendLogout { .. })),
        "the session is already dead"
    );
    assert_eq!(
        broadcasts(&fx),
        vec![Msg::Logout {
            epoch: 1,
            reason: LogoutReason::Reused
        }]
    );
    assert_eq!(
        Shared::decode(&last_persist(&fx).unwrap()).unwrap().epoch,
        1
    );
    assert_eq!(e.state(), SessionState::LoggedOut);
    assert_eq!(e.access_token(), None);
}

#[test]
fn a_rejection_is_ignored_when_a_newer_login_overtook_the_request() {
    let mut e = Engine::new(cfg(), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    e.handle(T0, Input::Resume);
    e.handle(T0 + 250, Input::Timer);
    e.handle(T0 + 250, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
    login(&mut e, T0 + 300, tokens("fresh"));
    drain(&mut e);
    e.handle(T0 + 320, refresh_rejected(&e, LogoutReason::Revoked));
    assert!(events(&drain(&mut e)).is_empty());
    assert_eq!(e.access_token(), Some("fresh"));
}

#[test]
fn resume_without_a_session_stays_anonymous_quietly() {
    let mut e = Engine::new(cfg(), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    e.handle(T0, Input::Resume);
    assert!(matches!(
        broadcasts(&drain(&mut e))[..],
        [Msg::TokenRequest { tab: 1, attempt: 0 }]
    ));
    assert_eq!(e.next_deadline(), Some(T0 + 250));
    e.handle(T0 + 250, Input::Timer);
    e.handle(T0 + 250, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
    e.handle(T0 + 300, refresh_rejected(&e, LogoutReason::Revoked));
    let fx = drain(&mut e);
    assert!(events(&fx).is_empty());
    assert!(fx.contains(&Effect::ReleaseLock));
    assert_eq!(e.state(), SessionState::Anonymous);
}

#[test]
fn resume_is_answered_by_another_tab_without_a_request() {
    let (mut a, _, shared) = signed_in(1, cfg());
    let mut b = Engine::new(cfg(), 2, 9, T0 + 1_000);
    b.handle(T0 + 1_000, Input::Shared(Some(shared)));
    b.handle(T0 + 1_000, Input::Resume);
    let ask = drain(&mut b)
        .into_iter()
        .find_map(|f| {
            if let Effect::Broadcast(m) = f {
                Some(m)
            } else {
                None
            }
        })
        .unwrap();
    a.handle(T0 + 1_005, Input::Bus(ask));
    let answer = drain(&mut a)
        .into_iter()
        .find_map(|f| {
            if let Effect::Broadcast(m) = f {
                Some(m)
            } else {
                None
            }
        })
        .unwrap();
    b.handle(T0 + 1_010, Input::Bus(answer));
    assert!(matches!(events(&drain(&mut b))[..], [Event::Login { .. }]));
    b.handle(T0 + 1_250, Input::Timer);
    assert!(!sends_refresh(&drain(&mut b)));
    assert_eq!(b.access_token(), Some("a0"));
}

/// Tab A signs in and logs out; tab B starts after it (the shared record read, then the
/// resume). Returns both.
fn started_after_a_logout() -> (Engine, Engine) {
    let (mut a, _, _) = signed_in(1, cfg());
    a.handle(T0 + 10, Input::Logout { everywhere: false });
    let shared = last_persist(&drain(&mut a)).unwrap();
    let mut b = Engine::new(cfg(), 2, 9, T0 + 20);
    b.handle(T0 + 20, Input::Shared(Some(shared)));
    b.handle(T0 + 20, Input::Resume);
    (a, b)
}

#[test]
fn resume_after_a_logout_never_revives_the_session_from_the_cookie() {
    let (_a, mut b) = started_after_a_logout();
    drain(&mut b);
    b.handle(T0 + 10_000, Input::Timer);
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.state(), SessionState::Anonymous);
}

/// A tab opened (or reloaded) after a logout in another, still open, tab — the bus-only e2e
/// reload — settles its start at once: nothing pending for the driver's start to wait on, no
/// request, and the logged-out tab answers its token request with no token. (The Chromium
/// reload stall of that scenario was the e2e proxy's, not this: tests/e2e/front.test.mjs.)
#[test]
fn a_tab_started_after_a_logout_elsewhere_has_nothing_pending() {
    let (mut a, mut b) = started_after_a_logout();
    assert!(
        !b.resume_pending(),
        "the driver's start has nothing to wait for"
    );
    let fx = drain(&mut b);
    assert!(!sends_refresh(&fx));
    for f in &fx {
        if let Effect::Broadcast(m) = f {
            a.handle(T0 + 25, Input::Bus(m.clone()));
        }
    }
    let answers = broadcasts(&drain(&mut a));
    assert!(
        !answers.iter().any(|m| matches!(m, Msg::Token { .. })),
        "the logged-out tab has no token to give: {answers:?}"
    );
    assert!(!b.resume_pending());
    assert_eq!(b.state(), SessionState::Anonymous);
}

#[test]
fn user_logout_broadcasts_first_then_revokes_then_wipes() {
    let (mut e, _, _) = signed_in(1, cfg());
    e.handle(T0 + 10, Input::Logout { everywhere: true });
    let fx = drain(&mut e);
    let at = |p: &dyn Fn(&Effect) -> bool| fx.iter().position(p).unwrap();
    let persist = at(&|f| matches!(f, Effect::PersistShared(_)));
    let broadcast = at(&|f| matches!(f, Effect::Broadcast(_)));
    let send = at(
        &|f| matches!(f, Effect::SendLogout { everywhere: true, access_token: Some(t), .. } if t == "a0"),
    );
    let wipe = at(&|f| *f == Effect::Wipe { tab_only: false });
    let emit = at(&|f| matches!(f, Effect::Emit(Event::Logout { .. })));
    assert_eq!(
        (persist, broadcast),
        (0, 1),
        "the other tabs learn of the logout before anything waits on the server: {fx:?}"
    );
    assert!(broadcast < send, "broadcast before the revoke: {fx:?}");
    assert!(
        send < wipe,
        "the revoke is sent before the wipe drops its credential: {fx:?}"
    );
    assert!(wipe < emit, "the event reports a finished wipe: {fx:?}");
    assert_eq!(
        broadcasts(&fx),
        vec![Msg::Logout {
            epoch: 1,
            reason: LogoutReason::Everywhere
        }]
    );
    assert_eq!(
        events(&fx),
        vec![Event::Logout {
            reason: LogoutReason::Everywhere
        }]
    );
}

#[test]
fn token_mode_logout_presents_the_refresh_token_after_the_broadcast() {
    let mut e = Engine::new(cfg(), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    login(
        &mut e,
        T0,
        Tokens {
            access_token: "a0".into(),
            expires_in_ms: 300_000,
            refresh_token: Some("r0".into()),
            session: None,
            user: None,
        },
    );
    drain(&mut e);
    e.handle(T0 + 10, Input::Logout { everywhere: false });
    let fx = drain(&mut e);
    let broadcast = fx
        .iter()
        .position(|f| matches!(f, Effect::Broadcast(_)))
        .unwrap();
    let send = fx
        .iter()
        .position(|f| matches!(f, Effect::SendLogout { refresh_token: Some(r), .. } if r == "r0"))
        .unwrap();
    assert!(broadcast < send, "{fx:?}");
    assert_eq!(e.access_token(), None);
}

#[test]
fn a_tab_that_missed_the_broadcast_logs_out_from_the_persisted_epoch() {
    let (mut a, login, shared) = signed_in(1, cfg());
    let mut b = joined(2, &shared, login);
    a.handle(T0 + 10, Input::Logout { everywhere: false });
    let out = drain(&mut a);
    assert!(
        out.contains(&Effect::Wipe { tab_only: false }),
        "the tab where the session ended wipes what the origin shares"
    );
    let after = last_persist(&out).unwrap();
    // B slept through the bus message; it re-reads the record when it wakes.
    b.handle(T0 + 3_600_000, Input::Shared(Some(after)));
    let fx = drain(&mut b);
    assert_eq!(
        events(&fx),
        vec![Event::Logout {
            reason: LogoutReason::User
        }]
    );
    assert_eq!(
        fx.iter()
            .filter(|f| matches!(f, Effect::Wipe { .. }))
            .collect::<Vec<_>>(),
        vec![&Effect::Wipe { tab_only: true }],
        "B's own copies only: A wiped the rest when it told the others"
    );
    assert_eq!(b.access_token(), None);
}

#[test]
fn a_cleared_record_ends_the_session_and_the_epoch_is_written_back() {
    let (mut a, login, shared) = signed_in(1, cfg());
    let mut b = joined(2, &shared, login);
    a.handle(T0 + 10, Input::Logout { everywhere: false });
    let logout = broadcasts(&drain(&mut a)).pop().unwrap().encode();
    b.handle(T0 + 12, Input::Bus(logout));
    drain(&mut b);
    // Clear-Site-Data erased the record; a tab that knows the epoch writes it back.
    b.handle(T0 + 200, Input::Shared(None));
    let back = Shared::decode(&last_persist(&drain(&mut b)).unwrap()).unwrap();
    assert_eq!(back.epoch, 1);
    // A tab still holding a session when the record vanishes ends it.
    let (mut c, _, _) = signed_in(3, cfg());
    c.handle(T0 + 300, Input::Shared(None));
    assert_eq!(
        events(&drain(&mut c)),
        vec![Event::Logout {
            reason: LogoutReason::Cleared
        }]
    );
}

/// The activity message of the session [`signed_in`] began, at `at`.
fn activity_of_first_session(at: Millis) -> Msg {
    Msg::Activity(Activity {
        epoch: 0,
        session: T0,
        at,
    })
}

/// A signed-in tab (10 min idle timeout, activity published at most every 5 s) whose user was
/// active at `T0 + 10 s`.
fn active_with_throttle() -> Engine {
    let c = Config {
        idle_timeout: Some(600_000),
        activity_throttle: 5_000,
        ..cfg()
    };
    let (mut e, _, _) = signed_in(1, c);
    e.handle(T0 + 10_000, Input::Activity);
    e
}

#[test]
fn idle_warning_then_activity_then_deadline() {
    let c = Config {
        idle_timeout: Some(600_000),
        idle_warning: 60_000,
        ..cfg()
    };
    let (mut e, _, _) = signed_in(1, c);
    // Keep the token fresh so only the idle policy acts.
    e.handle(T0 + 540_000, Input::Timer);
    let fx = drain(&mut e);
    assert!(events(&fx).contains(&Event::IdleWarning {
        deadline: T0 + 600_000
    }));
    assert_eq!(e.state(), SessionState::IdleWarning);
    e.handle(T0 + 550_000, Input::Activity);
    let fx = drain(&mut e);
    assert_eq!(events(&fx), vec![Event::Active]);
    assert!(
        broadcasts(&fx).contains(&activity_of_first_session(T0 + 550_000)),
        "published at once"
    );
    assert_eq!(e.idle_deadline(), Some(T0 + 1_150_000));
    // The laptop sleeps; the timer fires two hours late: judged by the wall clock.
    e.handle(T0 + 7_200_000, Input::Timer);
    let fx = drain(&mut e);
    assert_eq!(
        events(&fx)[..2],
        [
            Event::Idle,
            Event::Logout {
                reason: LogoutReason::Idle
            }
        ]
    );
    assert!(fx.iter().any(|f| matches!(
        f,
        Effect::SendLogout {
            everywhere: false,
            ..
        }
    )));
}

#[test]
fn activity_in_another_tab_extends_the_deadline_here() {
    let c = Config {
        idle_timeout: Some(600_000),
        ..cfg()
    };
    let (mut a, login, _) = signed_in(1, c.clone());
    let mut b = Engine::new(c, 2, 9, T0);
    b.handle(T0, Input::Bus(login));
    a.handle(T0 + 500_000, Input::Activity);
    let act = broadcasts(&drain(&mut a)).pop().unwrap().encode();
    b.handle(T0 + 500_010, Input::Bus(act));
    b.handle(T0 + 600_000, Input::Timer);
    assert!(!events(&drain(&mut b)).contains(&Event::Idle));
    assert_eq!(b.idle_deadline(), Some(T0 + 1_100_000));
}

#[test]
fn throttled_activity_is_published_by_a_trailing_update() {
    let mut e = active_with_throttle();
    assert_eq!(broadcasts(&drain(&mut e)).len(), 1);
    e.handle(T0 + 11_000, Input::Activity);
    e.handle(T0 + 12_000, Input::Activity);
    assert!(broadcasts(&drain(&mut e)).is_empty(), "throttled");
    assert_eq!(e.next_deadline(), Some(T0 + 15_000));
    e.handle(T0 + 15_000, Input::Timer);
    assert_eq!(
        broadcasts(&drain(&mut e)),
        vec![activity_of_first_session(T0 + 12_000)]
    );
}

#[test]
fn activity_reported_late_counts_from_when_it_happened_and_never_from_the_future() {
    let mut e = active_with_throttle();
    // The driver's sampler reports the last input it held back when its window ends.
    e.handle(T0 + 11_000, Input::ActivityAt(T0 + 10_700));
    assert_eq!(e.idle_deadline(), Some(T0 + 610_700));
    // An older report changes nothing; one from after `now` counts as `now`.
    e.handle(T0 + 12_000, Input::ActivityAt(T0 + 10_100));
    assert_eq!(e.idle_deadline(), Some(T0 + 610_700));
    e.handle(T0 + 13_000, Input::ActivityAt(T0 + 86_400_000));
    assert_eq!(e.idle_deadline(), Some(T0 + 613_000));
    // Published like any activity (the trailing update after the throttle).
    drain(&mut e);
    e.handle(T0 + 15_000, Input::Timer);
    assert_eq!(
        broadcasts(&drain(&mut e)),
        vec![activity_of_first_session(T0 + 13_000)]
    );
}

#[test]
fn the_absolute_lifetime_holds_regardless_of_activity() {
    let c = Config {
        idle_timeout: None,
        absolute_lifetime: Some(3_600_000),
        ..cfg()
    };
    let (mut e, _, _) = signed_in(1, c);
    e.handle(T0 + 3_599_999, Input::Activity);
    assert!(!events(&drain(&mut e))
        .iter()
        .any(|x| matches!(x, Event::Logout { .. })));
    e.handle(T0 + 3_600_000, Input::Activity);
    assert!(events(&drain(&mut e)).contains(&Event::Logout {
        reason: LogoutReason::Expired
    }));
}

#[test]
fn a_clock_jumping_backwards_neither_panics_nor_logs_out() {
    let (mut e, _, _) = signed_in(
        1,
        Config {
            idle_timeout: Some(600_000),
            ..cfg()
        },
    );
    e.handle(T0 - 86_400_000, Input::Timer);
    e.handle(0, Input::Activity);
    e.handle(u64::MAX, Input::Timer);
    assert_eq!(
        e.state(),
        SessionState::LoggedOut,
        "far future: past every deadline"
    );
}

#[test]
fn malformed_bus_messages_and_records_are_counted_and_ignored() {
    let (mut e, _, _) = signed_in(1, cfg());
    e.handle(T0 + 1, Input::Bus(vec![]));
    e.handle(T0 + 1, Input::Bus(vec![9, 1, 2]));
    e.handle(T0 + 1, Input::Bus(vec![1, 3, 0xff]));
    e.handle(T0 + 1, Input::Shared(Some(vec![1, 0, 0xff, 0xff])));
    e.handle(T0 + 1, Input::Restore(vec![1, 2, 3]));
    let fx = drain(&mut e);
    assert_eq!(
        events(&fx),
        vec![Event::Error {
            code: ErrorCode::RecordInvalid
        }]
    );
    assert_eq!(e.stats().bus_malformed, 3);
    assert_eq!(e.stats().shared_malformed, 1);
    assert_eq!(e.access_token(), Some("a0"));
}

#[test]
fn a_restored_record_resumes_and_an_expired_one_refreshes_at_once() {
    let (mut a, _, shared) = signed_in(
        1,
        Config {
            web_locks: true,
            ..cfg()
        },
    );
    a.handle(T0, Input::Activity);
    let rec = TokenRecord {
        user: None,
        access_token: "a0".into(),
        refresh_token: None,
        meta: a.token_meta().unwrap(),
    }
    .encode();
    let mut b = Engine::new(cfg(), 2, 9, T0 + TTL + 1);
    b.handle(T0 + TTL + 1, Input::Shared(Some(shared)));
    b.handle(T0 + TTL + 1, Input::Restore(rec));
    let fx = drain(&mut b);
    assert!(events(&fx).iter().any(|e| matches!(e, Event::Login { .. })));
    assert!(
        fx.iter().any(|f| matches!(f, Effect::AcquireLock { .. })),
        "expired: refresh now"
    );
}

#[test]
fn without_web_locks_claims_elect_one_refresher() {
    let c = Config {
        web_locks: false,
        ..cfg()
    };
    let (mut a, login, shared) = signed_in(1, c.clone());
    let mut b = Engine::new(c, 2, 9, T0);
    b.handle(T0, Input::Shared(Some(shared.clone())));
    b.handle(T0, Input::Bus(login));
    drain(&mut b);
    let due = T0 + TTL - 60_000;
    // Both claim at the same moment; storage keeps the max-merged record.
    a.handle(due, Input::Timer);
    b.handle(due, Input::Timer);
    let pa = last_persist(&drain(&mut a)).unwrap();
    let pb = last_persist(&drain(&mut b)).unwrap();
    let stored = merge(Some(&merge(Some(&shared), &pa)), &pb);
    a.handle(due + 100, Input::Shared(Some(stored.clone())));
    a.handle(due + 100, Input::Timer);
    b.handle(due + 100, Input::Shared(Some(stored)));
    b.handle(due + 100, Input::Timer);
    let (sa, sb) = (sends_refresh(&drain(&mut a)), sends_refresh(&drain(&mut b)));
    assert!(sa ^ sb, "exactly one tab refreshes (a: {sa}, b: {sb})");
}

#[test]
fn random_inputs_never_panic() {
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let c = Config {
            web_locks: round % 2 == 0,
            ..Config::default()
        };
        let mut e = Engine::new(c, round, round, T0);
        let mut now = T0;
        let mut bytes_seen: Vec<Vec<u8>> = vec![Msg::TokenRequest { tab: 3, attempt: 0 }.encode()];
        for _ in 0..200 {
            now = match next() % 10 {
                0 => next() % (T0 * 2),
                1 => u64::MAX - next() % 1_000,
                _ => now.saturating_add(next() % 400_000),
            };
            let pick = |k: u64| bytes_seen[(k % bytes_seen.len() as u64) as usize].clone();
            let mut mutated = pick(next());
            if !mutated.is_empty() && next() % 2 == 0 {
                let i = (next() % mutated.len() as u64) as usize;
                mutated[i] = next() as u8;
            }
            // Ids: the awaited one, or a stale / made-up one.
            let aw = e.awaiting();
            let pick_id = |k: u64, cur: Option<RequestId>| match k % 3 {
                0 => RequestId((k >> 8) as u32 % 5),
                _ => cur.unwrap_or_default(),
            };
            let input = match next() % 23 {
                0 => Input::Restore(mutated),
                1 => Input::Resume,
                2 => Input::LoginSucceeded {
                    id: pick_id(next(), aw.login),
                    tokens: Tokens {
                        access_token: "t".into(),
                        expires_in_ms: next() % 1_000_000,
                        refresh_token: None,
                        session: Some("s".into()),
                        user: None,
                    },
                },
                3 => Input::MfaRequired {
                    id: pick_id(next(), aw.login),
                },
                4 => Input::LoginFailed {
                    id: pick_id(next(), aw.login),
                },
                5 => Input::RefreshSucceeded {
                    id: pick_id(next(), aw.refresh),
                    tokens: Tokens {
                        access_token: "r".into(),
                        expires_in_ms: next(),
                        refresh_token: Some("x".into()),
                        session: (next() % 2 == 0).then(|| "s2".into()),
                        user: None,
                    },
                },
                6 => Input::RefreshRejected {
                    id: pick_id(next(), aw.refresh),
                    reason: [
                        LogoutReason::Revoked,
                        LogoutReason::Reused,
                        LogoutReason::Expired,
                    ][(next() % 3) as usize],
                },
                7 => Input::RefreshFailed {
                    id: pick_id(next(), aw.refresh),
                    retry_after: Some(next() % 100_000),
                },
                8 => Input::AccessRejected {
                    access_token: ["t", "r", "x"][(next() % 3) as usize].into(),
                },
                9 => Input::Bus(mutated),
                10 => Input::Shared(Some(mutated)),
                11 => Input::Shared(None),
                12 => Input::LockGranted {
                    id: pick_id(next(), aw.lock),
                },
                13 => Input::LockUnavailable {
                    id: pick_id(next(), aw.lock),
                },
                14 => Input::LockLost {
                    id: pick_id(next(), aw.lock),
                },
                15 => Input::Activity,
                16 => Input::StayActive,
                17 => Input::Logout {
                    everywhere: next() % 2 == 0,
                },
                18 => Input::Visibility(next() % 2 == 0),
                19 => Input::Online(next() % 2 == 0),
                20 => Input::LoginStarted,
                21 => Input::ActivityAt(match next() % 2 {
                    0 => next(),
                    _ => now.saturating_sub(next() % 10_000),
                }),
                _ => Input::Timer,
            };
            e.handle(now, input);
            while let Some(f) = e.poll_effect() {
                if let Effect::Broadcast(b) | Effect::PersistShared(b) | Effect::StoreToken(b) = f {
                    bytes_seen.push(b);
                }
            }
            let _ = e.next_deadline();
            if e.access_token().is_some() {
                assert!(matches!(
                    e.state(),
                    SessionState::Active | SessionState::IdleWarning
                ));
            }
        }
    }
}

#[test]
fn resume_during_another_tabs_refresh_waits_for_its_claim_then_retries() {
    let mut e = Engine::new(cfg(), 2, 9, T0);
    let busy = Shared {
        claim: Some(Claim {
            serial: 5,
            tab: 1,
            at: T0,
            until: T0 + 10_000,
            base: 0,
        }),
        ..Shared::default()
    };
    e.handle(T0, Input::Shared(Some(busy.encode())));
    e.handle(T0, Input::Resume);
    e.handle(T0 + 250, Input::Timer);
    e.handle(T0 + 250, lock_granted(&e));
    let fx = drain(&mut e);
    assert!(!sends_refresh(&fx), "the other tab's request is pending");
    assert!(fx.contains(&Effect::ReleaseLock));
    assert_eq!(e.next_deadline(), Some(T0 + 10_000));
    // The claimer died without an answer: this tab takes over.
    e.handle(T0 + 10_000, Input::Timer);
    e.handle(T0 + 10_000, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
}

#[test]
fn an_answer_delayed_past_the_timeout_is_still_taken() {
    // The tab froze right after sending; the answer waits in its queue and comes after the
    // engine has already timed the request out and asked for the lock again.
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    e.handle(due, Input::Timer);
    e.handle(due, lock_granted(&e));
    drain(&mut e);
    e.handle(due + 40_000, Input::Timer); // thawed: timed out -> backoff
    let fx = drain(&mut e);
    assert!(events(&fx).contains(&Event::Error {
        code: ErrorCode::RefreshRetry
    }));
    e.handle(due + 41_000, Input::Timer); // backoff over -> asks for the lock
    assert!(drain(&mut e)
        .iter()
        .any(|f| matches!(f, Effect::AcquireLock { .. })));
    e.handle(due + 41_001, refresh_ok(&e, tokens("late")));
    assert_eq!(
        e.access_token(),
        Some("late"),
        "the rotated token must not be dropped"
    );
    e.handle(due + 41_002, lock_granted(&e));
    let fx = drain(&mut e);
    assert!(
        !sends_refresh(&fx),
        "no second request with a superseded refresh token"
    );
    assert!(fx.contains(&Effect::ReleaseLock));
}

#[test]
fn a_thawing_tab_decides_idleness_only_after_rereading_the_shared_record() {
    let c = Config {
        idle_timeout: Some(600_000),
        ..cfg()
    };
    let (mut a, login, shared) = signed_in(1, c.clone());
    let mut b = Engine::new(c, 2, 9, T0);
    b.handle(T0, Input::Shared(Some(shared)));
    b.handle(T0, Input::Bus(login));
    drain(&mut b);
    // A stays active; B is frozen and misses it all.
    a.handle(T0 + 500_000, Input::Activity);
    let fresh = last_persist(&drain(&mut a)).unwrap();
    // B thaws after its own (stale) deadline; a queued event comes first.
    let thaw = T0 + 700_000;
    b.handle(
        thaw,
        Input::Bus(Msg::TokenRequest { tab: 9, attempt: 0 }.encode()),
    );
    let fx = drain(&mut b);
    assert!(!events(&fx)
        .iter()
        .any(|x| matches!(x, Event::Idle | Event::Logout { .. })));
    assert_eq!(
        b.next_deadline(),
        Some(thaw + 1),
        "asks for a timer right away"
    );
    b.handle(thaw + 1, Input::Shared(Some(fresh)));
    b.handle(thaw + 1, Input::Timer);
    assert!(!events(&drain(&mut b))
        .iter()
        .any(|x| matches!(x, Event::Idle | Event::Logout { .. })));
    assert_eq!(b.access_token(), Some("a0"));
    assert_eq!(b.idle_deadline(), Some(T0 + 1_100_000));
}

#[test]
fn an_idle_expired_session_is_ended_not_resumed_by_a_new_tab() {
    let c = Config {
        idle_timeout: Some(600_000),
        ..cfg()
    };
    let (_a, _, shared) = signed_in(1, c.clone());
    // Every tab closed; a new one opens an hour later.
    let later = T0 + 3_600_000;
    let mut b = Engine::new(c, 2, 9, later);
    b.handle(later, Input::Shared(Some(shared)));
    b.handle(later, Input::Resume);
    let fx = drain(&mut b);
    assert!(fx.iter().any(|f| matches!(
        f,
        Effect::SendLogout {
            everywhere: false,
            ..
        }
    )));
    assert_eq!(
        Shared::decode(&last_persist(&fx).unwrap()).unwrap().reason,
        Some(LogoutReason::Idle)
    );
    assert!(events(&fx).is_empty());
    b.handle(later + 1_000, Input::Timer);
    assert!(!drain(&mut b)
        .iter()
        .any(|f| matches!(f, Effect::AcquireLock { .. } | Effect::SendRefresh { .. })));
    assert_eq!(b.state(), SessionState::Anonymous);
}

#[test]
fn login_started_dates_the_session_from_the_request() {
    let mut e = Engine::new(cfg(), 1, 7, T0);
    e.handle(T0, Input::LoginStarted);
    login(&mut e, T0 + 30_000, tokens("a0")); // frozen meanwhile
    let meta = e.token_meta().unwrap();
    assert_eq!(meta.stamp.session, T0);
    assert_eq!(
        meta.expires_at,
        T0 + TTL,
        "conservative: counted from the request"
    );
}

#[test]
fn a_refresh_that_fails_after_the_network_came_back_is_retried_at_once() {
    // The network drops and returns while the refresh is out; the request then fails (it went
    // out on the dead network). No later `online` event will cut the backoff short: the retry
    // is due at once. A request sent after the return that fails backs off as usual.
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    e.handle(due, Input::Timer);
    e.handle(due, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
    e.handle(due + 10, Input::Online(false));
    e.handle(due + 20, Input::Online(true));
    assert!(drain(&mut e).is_empty(), "nothing to retry yet");
    e.handle(due + 30, refresh_failed(&e, None));
    let mut fx = drain(&mut e);
    if let Some(at) = e.next_deadline().filter(|&at| at <= due + 30) {
        e.handle(at, Input::Timer);
        fx.extend(drain(&mut e));
    }
    assert!(
        fx.iter().any(|f| matches!(f, Effect::AcquireLock { .. })),
        "retried at once: {fx:?}, next deadline {:?}",
        e.next_deadline()
    );
    // This attempt went out after the return: its failure waits for the backoff.
    e.handle(due + 30, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
    e.handle(due + 40, refresh_failed(&e, None));
    drain(&mut e);
    assert!(
        e.next_deadline().unwrap() >= due + 40 + cfg().backoff_base,
        "the second failure backs off"
    );
}

#[test]
fn a_spurious_online_event_does_not_cut_the_backoff_short() {
    let (mut e, _, _) = signed_in(1, cfg());
    let due = T0 + TTL - 60_000;
    e.handle(due, Input::Timer);
    e.handle(due, lock_granted(&e));
    e.handle(due + 10, refresh_failed(&e, Some(20_000)));
    drain(&mut e);
    e.handle(due + 20, Input::Online(true));
    assert!(drain(&mut e).is_empty());
    assert!(e.next_deadline().unwrap() >= due + 20_010);
}

#[test]
fn a_tab_that_cannot_get_the_newest_token_refreshes_itself_in_cookie_mode_only() {
    for token_mode in [false, true] {
        let mut e = Engine::new(cfg(), 2, 9, T0);
        let rt = token_mode.then(|| String::from("rt0"));
        login(
            &mut e,
            T0,
            Tokens {
                access_token: "a0".into(),
                expires_in_ms: TTL,
                refresh_token: rt,
                session: None,
                user: None,
            },
        );
        drain(&mut e);
        // Another tab refreshed (the record says so) but its broadcast never arrived, and the
        // tab that holds the new token is gone.
        let mut newer = e.token_meta().unwrap();
        newer.stamp.serial += 1;
        newer.stamp.tab = 1;
        newer.issued_at = T0 + TTL - 60_000;
        newer.expires_at = T0 + 2 * TTL - 60_000;
        let rec = Shared {
            token: Some(newer),
            ..Shared::default()
        };
        e.handle(T0 + TTL - 59_000, Input::Shared(Some(rec.encode())));
        drain(&mut e);
        let mut now = T0 + TTL;
        let mut sent = false;
        for _ in 0..12 {
            e.handle(now, Input::Timer);
            let fx = drain(&mut e);
            if fx.iter().any(|f| matches!(f, Effect::AcquireLock { .. })) {
                e.handle(now, lock_granted(&e));
                sent |= sends_refresh(&drain(&mut e));
            }
            now = e.next_deadline().unwrap_or(now + 1_000).max(now + 1);
        }
        assert_eq!(sent, !token_mode, "token_mode={token_mode}");
    }
}

#[test]
fn default_timings_respect_the_protocol_assumptions() {
    let c = Config::default();
    assert!(
        c.lock_wait > c.request_timeout,
        "a live lock holder finishes before others steal"
    );
    assert!(
        c.request_timeout + c.backoff_base < 30_000,
        "a lost answer is retried within the server's grace window"
    );
    assert!(c.idle_warning < c.idle_timeout.unwrap());
    assert!(
        c.activity_throttle < c.idle_warning,
        "published activity clears a warning in time"
    );
}

#[test]
fn token_mode_ends_the_session_when_the_newest_refresh_token_is_lost() {
    let mut e = Engine::new(cfg(), 2, 9, T0);
    let rt = Some(String::from("rt0"));
    login(
        &mut e,
        T0,
        Tokens {
            access_token: "a0".into(),
            expires_in_ms: TTL,
            refresh_token: rt,
            session: None,
            user: None,
        },
    );
    drain(&mut e);
    // Another tab rotated the refresh token, then crashed before anyone got it.
    let mut newer = e.token_meta().unwrap();
    newer.stamp.serial += 1;
    newer.stamp.tab = 1;
    newer.issued_at = T0 + TTL - 60_000;
    newer.expires_at = T0 + 2 * TTL - 60_000;
    e.handle(
        newer.issued_at + 1,
        Input::Shared(Some(
            Shared {
                token: Some(newer),
                ..Shared::default()
            }
            .encode(),
        )),
    );
    drain(&mut e);
    let mut now = newer.issued_at + 1;
    let mut reason = None;
    while now < T0 + 3 * TTL && reason.is_none() {
        now = e.next_deadline().unwrap_or(now + 1_000).max(now + 1);
        e.handle(now, Input::Timer);
        let fx = drain(&mut e);
        assert!(
            !sends_refresh(&fx),
            "never presents its superseded refresh token"
        );
        reason = events(&fx).into_iter().find_map(|x| {
            if let Event::Logout { reason } = x {
                Some(reason)
            } else {
                None
            }
        });
    }
    assert_eq!(reason, Some(LogoutReason::Lost));
    assert!(
        now >= newer.expires_at,
        "not before the holder could have refreshed it"
    );
}

#[test]
fn claim_merging_is_symmetric_and_first_come_first_served() {
    let c = |tab, at, until, base| Claim {
        serial: 1,
        tab,
        at,
        until,
        base,
    };
    let cases = [
        (c(1, 100, 5_100, 7), c(2, 200, 5_200, 7), 0), // overlapping: the earlier wins
        (c(2, 100, 5_100, 7), c(1, 100, 5_100, 7), 1), // same time: lower tab id
        (c(1, 100, 5_100, 7), c(2, 6_000, 11_000, 7), 1), // made after the first expired
        (c(1, 900, 5_900, 7), c(2, 100, 5_100, 8), 1), // about a newer token
        (c(1, 100, 5_100, 7), c(1, 300, 9_000, 7), 1), // own re-claim (backoff)
    ];
    for (a, b, winner) in cases {
        let w = if winner == 0 { a } else { b };
        for (x, y) in [(a, b), (b, a)] {
            let mut s = Shared {
                claim: Some(x),
                ..Shared::default()
            };
            s.merge(&Shared {
                claim: Some(y),
                ..Shared::default()
            });
            assert_eq!(s.claim, Some(w));
        }
    }
}

#[test]
fn a_logout_seen_while_a_login_is_pending_wins_over_its_late_answer() {
    let mut e = Engine::new(cfg(), 1, 7, T0);
    e.handle(T0, Input::LoginStarted);
    // The tab froze; meanwhile another tab logged out (epoch 1).
    let after = Shared {
        epoch: 1,
        reason: Some(LogoutReason::User),
        ..Shared::default()
    };
    e.handle(T0 + 60_000, Input::Shared(Some(after.encode())));
    login(&mut e, T0 + 60_001, tokens("stale"));
    assert!(drain(&mut e)
        .iter()
        .all(|f| !matches!(f, Effect::Broadcast(_) | Effect::StoreToken(_))));
    assert_eq!(e.access_token(), None);
    // A new login afterwards works.
    e.handle(T0 + 70_000, Input::LoginStarted);
    login(&mut e, T0 + 70_100, tokens("fresh"));
    assert_eq!(e.access_token(), Some("fresh"));
}

#[test]
fn a_tab_alone_resumes_without_the_join_wait_and_knows_when_the_resume_settled() {
    let first = |fx: &[Effect]| {
        fx.iter()
            .any(|f| matches!(f, Effect::AcquireLock { .. } | Effect::SendRefresh { .. }))
    };
    // Not alone: the join wait first (another tab may answer with its token).
    let mut b = Engine::new(cfg(), 2, 9, T0);
    b.handle(T0, Input::Shared(None));
    b.handle(T0, Input::Resume);
    assert!(!first(&drain(&mut b)));
    assert!(b.resume_pending());
    // Alone: straight to the refresh.
    let mut a = Engine::new(cfg(), 1, 7, T0);
    a.set_alone(true);
    a.handle(T0, Input::Shared(None));
    a.handle(T0, Input::Resume);
    let fx = drain(&mut a);
    assert!(first(&fx), "{fx:?}");
    assert!(a.resume_pending());
    if fx.iter().any(|f| matches!(f, Effect::AcquireLock { .. })) {
        a.handle(T0 + 1, lock_granted(&a));
        assert!(drain(&mut a)
            .iter()
            .any(|f| matches!(f, Effect::SendRefresh { .. })));
        assert!(a.resume_pending(), "pending until the refresh is answered");
    }
    // No live cookie: definitively anonymous, the resume has settled.
    a.handle(T0 + 30, refresh_rejected(&a, LogoutReason::Revoked));
    drain(&mut a);
    assert!(!a.resume_pending());
    assert_eq!(a.state(), SessionState::Anonymous);
    // A retryable failure settles it too (anonymous for now, retrying in the background).
    let mut c = Engine::new(cfg(), 3, 5, T0);
    c.set_alone(true);
    c.handle(T0, Input::Shared(None));
    c.handle(T0, Input::Resume);
    c.handle(T0 + 1, lock_granted(&c));
    drain(&mut c);
    c.handle(T0 + 30, refresh_failed(&c, None));
    drain(&mut c);
    assert!(!c.resume_pending());
}

/// Drives `e` (no Web Locks) through timers until it sends a refresh, feeding it only the
/// shared records `store` holds; returns the time it sent.
fn until_it_refreshes(e: &mut Engine, store: &mut Vec<u8>, mut now: Millis) -> Millis {
    for _ in 0..20 {
        e.handle(now, Input::Shared(Some(store.clone())));
        e.handle(now, Input::Timer);
        let fx = drain(e);
        if let Some(p) = last_persist(&fx) {
            *store = merge(Some(store), &p);
        }
        if sends_refresh(&fx) {
            return now;
        }
        now = e.next_deadline().unwrap_or(now + 100).max(now + 1);
    }
    panic!("no refresh sent");
}

#[test]
fn a_resuming_tab_keeps_its_own_answer_when_the_newer_token_it_saw_cannot_reach_it() {
    // Seen in Chromium without BroadcastChannel or Web Locks, under load: two tabs resumed
    // from the cookie at once and both refreshed (the server answered the second within its
    // grace window). The tab whose answer came second had meanwhile read the first one's token
    // in the shared record, dropped its own answer as older, asked the bus for the newer
    // token — which no bus could bring — and stayed anonymous.
    let c = Config {
        web_locks: false,
        ..cfg()
    };
    let (_a, _bus, shared) = signed_in(1, c.clone());
    // Tab ids order the stamps: the tab answered first has the larger one.
    let (mut first, mut second) = (Engine::new(c.clone(), 9, 3, T0), Engine::new(c, 4, 5, T0));
    let now = T0 + 1_000;
    for e in [&mut first, &mut second] {
        e.set_alone(true);
        e.handle(now, Input::Shared(Some(shared.clone())));
        e.handle(now, Input::Resume);
        drain(e);
    }
    // Each saw only its own claim before its settle time (the other's write came late).
    let (mut s1, mut s2) = (shared.clone(), shared.clone());
    let t1 = until_it_refreshes(&mut first, &mut s1, now);
    let t2 = until_it_refreshes(&mut second, &mut s2, now);
    let issued = Tokens {
        session: Some("s1".into()),
        ..tokens("a1")
    };
    first.handle(t1 + 20, refresh_ok(&first, issued.clone()));
    let stored = merge(Some(&s2), &last_persist(&drain(&mut first)).unwrap());
    assert_eq!(first.state(), SessionState::Active);
    // The second tab reads the first one's token in the record, then its own answer arrives.
    second.handle(t2 + 30, Input::Shared(Some(stored)));
    second.handle(t2 + 40, refresh_ok(&second, issued));
    drain(&mut second);
    assert_eq!(second.state(), SessionState::Active);
    assert_eq!(second.access_token(), Some("a1"));
}

/// A tab without Web Locks and without a bus, signed in with a token of `ttl` at T0, that
/// then read in the shared record a newer token another tab obtained at `T0 + newer_at`
/// (whose bus message cannot reach it). Returns the engine and the record.
fn behind_without_a_bus(ttl: Millis, newer_at: Millis) -> (Engine, Vec<u8>) {
    let c = Config {
        web_locks: false,
        refresh_lead: 1_500,
        ..cfg()
    };
    let mut e = Engine::new(c, 2, 9, T0);
    e.handle(T0, Input::Shared(None));
    login(
        &mut e,
        T0,
        Tokens {
            expires_in_ms: ttl,
            ..tokens("a0")
        },
    );
    let mut store = last_persist(&drain(&mut e)).unwrap();
    let mut newer = e.token_meta().unwrap();
    newer.stamp.serial += 1;
    newer.stamp.tab = 1;
    newer.issued_at = T0 + newer_at;
    newer.expires_at = T0 + newer_at + ttl;
    let rec = Shared {
        token: Some(newer),
        ..Shared::default()
    };
    store = merge(Some(&store), &rec.encode());
    e.handle(T0 + newer_at + 10, Input::Shared(Some(store.clone())));
    drain(&mut e);
    (e, store)
}

#[test]
fn a_401_for_a_token_that_ran_out_behind_a_silent_bus_refreshes_at_once() {
    // Seen in WebKitGTK without BroadcastChannel or Web Locks (4 tabs, 4 s tokens): another
    // tab had refreshed, this tab's own token ran out, and its API call got 401 back. The 401
    // proves the token is dead; asking a bus that never answers three times over before
    // refreshing from the cookie — or waiting for the newer token's own due time, which only
    // one of the tabs refreshes at — left the call failing.
    let ttl = 4_000;
    let (mut e, mut store) = behind_without_a_bus(ttl, 3_900);
    let at = T0 + ttl + 100;
    e.handle(at, Input::Shared(Some(store.clone())));
    e.handle(
        at,
        Input::AccessRejected {
            access_token: "a0".into(),
        },
    );
    drain(&mut e);
    assert!(e.refreshing(), "the 401 forced a refresh");
    let sent = until_it_refreshes(&mut e, &mut store, at);
    let c = Config::default();
    assert!(
        sent - at <= c.join_wait * 4 + c.claim_settle,
        "refresh sent {} ms after the 401",
        sent - at
    );
}

#[test]
fn a_401_once_a_forced_token_is_due_forces_again() {
    // A token that a forced refresh produced is not forced again by a 401 (the 401 is about
    // permissions) — but only while it is fresh: once it is due for its own refresh, a 401
    // is its expiry, and the call must wait for the new token, not return the 401.
    let ttl = 4_000;
    let (mut e, _bus, _shared) = signed_in(
        2,
        Config {
            refresh_lead: 1_500,
            ..cfg()
        },
    );
    let at = T0 + 2_500;
    e.handle(
        at,
        Input::AccessRejected {
            access_token: "a0".into(),
        },
    );
    drain(&mut e);
    e.handle(at, Input::Timer);
    drain(&mut e);
    e.handle(at + 1, lock_granted(&e));
    assert!(sends_refresh(&drain(&mut e)));
    e.handle(
        at + 20,
        refresh_ok(
            &e,
            Tokens {
                expires_in_ms: ttl,
                ..tokens("a1")
            },
        ),
    );
    drain(&mut e);
    assert_eq!(e.access_token(), Some("a1"));
    // Fresh: a 401 is about something else.
    e.handle(
        at + 100,
        Input::AccessRejected {
            access_token: "a1".into(),
        },
    );
    drain(&mut e);
    assert!(!e.refreshing(), "a fresh forced token is not forced again");
    // Past its expiry (its scheduled refresh did not happen: a throttled background tab).
    let late = at + 20 + ttl + 50;
    e.handle(
        late,
        Input::AccessRejected {
            access_token: "a1".into(),
        },
    );
    drain(&mut e);
    assert!(
        e.refreshing(),
        "a 401 for a forced token that ran out forces a refresh"
    );
}

/// Tab `id` that joined a signed-in tab's session: it read the shared record `shared`, then
/// took the `login` message.
fn joined(id: u64, shared: &[u8], login: Vec<u8>) -> Engine {
    let mut e = Engine::new(cfg(), id, 9, T0);
    e.handle(T0, Input::Shared(Some(shared.to_vec())));
    e.handle(T0, Input::Bus(login));
    drain(&mut e);
    e
}

/// The first message `fx` broadcasts.
fn first_broadcast(fx: &[Effect]) -> Vec<u8> {
    fx.iter()
        .find_map(|f| match f {
            Effect::Broadcast(b) => Some(b.clone()),
            _ => None,
        })
        .unwrap()
}

/// Tabs A and C hold a session; while C is frozen (it runs nothing, its messages queue), A logs
/// out and then `relogin`s (a new session). C thaws: the driver reads the shared record, then
/// the queued messages arrive. Returns C's effects from the thaw on.
fn thaw_after_logout(relogin: bool) -> (Engine, Vec<Effect>) {
    let (mut a, login_msg, mut stored) = signed_in(1, cfg());
    let mut c = joined(3, &stored, login_msg);
    assert_eq!(c.access_token(), Some("a0"));
    a.handle(T0 + 10, Input::Logout { everywhere: false });
    let out = drain(&mut a);
    stored = merge(Some(&stored), &last_persist(&out).unwrap());
    let mut queued = vec![first_broadcast(&out)];
    if relogin {
        login(&mut a, T0 + 20, tokens("b0"));
        let fx = drain(&mut a);
        stored = merge(Some(&stored), &last_persist(&fx).unwrap());
        queued.push(first_broadcast(&fx));
    }
    c.handle(T0 + 30, Input::Shared(Some(stored)));
    for m in queued {
        c.handle(T0 + 30, Input::Bus(m));
    }
    let fx = drain(&mut c);
    (c, fx)
}

#[test]
fn a_tab_thawing_after_a_logout_and_a_new_login_wipes_only_its_own_copies() {
    let (c, fx) = thaw_after_logout(true);
    assert_eq!(
        events(&fx)[0],
        Event::Logout {
            reason: LogoutReason::User
        },
        "the old session's end is reported"
    );
    let wipes: Vec<&Effect> = fx
        .iter()
        .filter(|f| matches!(f, Effect::Wipe { .. }))
        .collect();
    assert_eq!(
        wipes,
        vec![&Effect::Wipe { tab_only: true }],
        "the new session's vault record, cookies and DPoP key stay"
    );
    assert_eq!(c.access_token(), Some("b0"), "C joins the new session");
    assert_eq!(c.state(), SessionState::Active);
}

#[test]
fn a_tab_thawing_after_a_logout_alone_wipes_only_its_own_copies() {
    // A wiped what the origin shares when it logged out; C cannot tell from its view of the
    // shared record whether a session began since (that view may lag), so it never wipes it.
    let (c, fx) = thaw_after_logout(false);
    assert!(fx.contains(&Effect::Wipe { tab_only: true }));
    assert!(!fx.contains(&Effect::Wipe { tab_only: false }));
    assert_eq!(c.access_token(), None);
    assert_eq!(c.state(), SessionState::LoggedOut);
}

#[test]
fn a_logout_message_read_before_the_new_sessions_record_leaves_the_origin_to_it() {
    // The run that found it (session 10, e2e frozen.test.mjs): C thawed and read the shared
    // record before another tab's `localStorage` write of the new login had reached it (such
    // writes arrive asynchronously), then took the queued logout message as the end of the only
    // session: it wiped the origin's Web Storage and cookies under the new session.
    let (mut a, login_msg, stored) = signed_in(1, cfg());
    let mut c = joined(3, &stored, login_msg);
    a.handle(T0 + 10, Input::Logout { everywhere: false });
    let logout = first_broadcast(&drain(&mut a));
    login(&mut a, T0 + 20, tokens("b0"));
    let relogin = first_broadcast(&drain(&mut a));
    // C's view: the record as it was before the logout (stale), then both messages.
    c.handle(T0 + 30, Input::Bus(logout));
    let fx = drain(&mut c);
    assert!(fx.contains(&Effect::Wipe { tab_only: true }), "{fx:?}");
    assert!(!fx.contains(&Effect::Wipe { tab_only: false }), "{fx:?}");
    c.handle(T0 + 30, Input::Bus(relogin));
    assert_eq!(c.access_token(), Some("b0"), "C joins the new session");
}

#[test]
fn a_tab_that_finds_the_shared_record_gone_wipes_everything_itself() {
    // Nobody else wiped: site data cleared under a live session (or a script cleared storage).
    let (mut c, _, _) = signed_in(3, cfg());
    c.handle(T0 + 300, Input::Shared(None));
    let fx = drain(&mut c);
    assert!(fx.contains(&Effect::Wipe { tab_only: false }), "{fx:?}");
}

/// Another tab logs out while this tab's resume refresh is in flight (seen by bus message or
/// shared record); the refresh's answer then carries the ended session's tokens. The resume
/// is decided (signed out), not left pending: the driver's `Session.start()` settles on
/// `resume_pending` and would otherwise wait out its 30 s bound.
#[test]
fn a_logout_during_the_resume_refresh_decides_the_resume() {
    for by_bus in [true, false] {
        let (mut a, _, shared) = signed_in(1, cfg());
        let mut b = Engine::new(cfg(), 2, 9, T0 + 20);
        b.set_alone(true);
        b.handle(T0 + 20, Input::Shared(Some(shared.clone())));
        b.handle(T0 + 20, Input::Resume);
        let mut now = T0 + 20;
        while b.awaiting().refresh.is_none() && now < T0 + 10_000 {
            drain(&mut b);
            if b.awaiting().lock.is_some() {
                b.handle(now, lock_granted(&b));
            } else {
                now += 50;
                b.handle(now, Input::Timer);
            }
        }
        drain(&mut b);
        let id = b.awaiting().refresh.expect("the resume's refresh is out");
        a.handle(now, Input::Logout { everywhere: false });
        let out = drain(&mut a);
        let stored = merge(Some(&shared), &last_persist(&out).unwrap());
        if by_bus {
            b.handle(now + 5, Input::Bus(first_broadcast(&out)));
        } else {
            b.handle(now + 5, Input::Shared(Some(stored)));
        }
        drain(&mut b);
        b.handle(
            now + 10,
            Input::RefreshSucceeded {
                id,
                tokens: tokens("late"),
            },
        );
        drain(&mut b);
        assert_eq!(
            b.access_token(),
            None,
            "by_bus={by_bus}: the ended session is not adopted"
        );
        assert!(
            !b.resume_pending(),
            "by_bus={by_bus}: the resume is decided, not left pending"
        );
    }
}
