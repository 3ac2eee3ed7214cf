//! One named test per defect reproduced in the engine before its re-layering. Each runs its scenario twice: as shipped
//! (the defect must be gone) and with the one safeguard that fixes it switched off
//! (`core::Faults`, test-only feature) — there the old behaviour must come back, which shows
//! the test can fail and what the safeguard prevents.
#![cfg(not(target_arch = "wasm32"))]
use tessera::core::*;

const T0: Millis = 1_764_000_000_000;
const TTL: Millis = 300_000;
const YEAR: Millis = 365 * 24 * 3_600_000;

fn cfg(faults: Faults) -> Config {
    Config {
        refresh_jitter: 0,
        faults,
        ..Config::default()
    }
}

fn tokens(name: &str, ttl: Millis, session: &str) -> Tokens {
    Tokens {
        access_token: name.into(),
        expires_in_ms: ttl,
        refresh_token: None,
        session: Some(session.into()),
        user: None,
    }
}

fn drain(e: &mut Engine) -> Vec<Effect> {
    std::iter::from_fn(|| e.poll_effect()).collect()
}

fn refreshes(fx: &[Effect]) -> usize {
    fx.iter()
        .filter(|f| matches!(f, Effect::SendRefresh { .. }))
        .count()
}

/// Logs in through the login request; returns the effects of the answer.
fn login(e: &mut Engine, now: Millis, t: Tokens) -> Vec<Effect> {
    e.handle(now, Input::LoginStarted);
    let Some(Effect::SendLogin { id }) = e.poll_effect() else {
        panic!("LoginStarted asks for the login request")
    };
    drain(e);
    e.handle(now, Input::LoginSucceeded { id, tokens: t });
    drain(e)
}

/// Drives a due refresh through the lock; returns the SendRefresh id, if one went out.
fn refresh_now(e: &mut Engine, now: Millis) -> Option<RequestId> {
    e.handle(now, Input::Timer);
    let mut fx = drain(e);
    if let Some(id) = e.awaiting().lock {
        e.handle(now, Input::LockGranted { id });
        fx.extend(drain(e));
    }
    fx.iter().find_map(|f| match f {
        Effect::SendRefresh { id, .. } => Some(*id),
        _ => None,
    })
}

fn answer(e: &mut Engine, now: Millis, id: RequestId, t: Tokens) -> Vec<Effect> {
    e.handle(now, Input::RefreshSucceeded { id, tokens: t });
    drain(e)
}

// -------------------------------------------------------------------------------------------
// Answers are matched to requests by guesswork.

/// A late 401 for a token that was already replaced forced a second refresh.
fn late_401(faults: Faults) -> usize {
    let mut e = Engine::new(cfg(faults), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    login(&mut e, T0, tokens("a0", TTL, "s1"));
    let due = T0 + TTL - 60_000;
    let id = refresh_now(&mut e, due).expect("due refresh");
    answer(&mut e, due + 50, id, tokens("a1", TTL, "s1"));
    assert_eq!(e.access_token(), Some("a1"));
    // A request sent with a0 before the refresh comes back 401.
    e.handle(
        due + 60,
        Input::AccessRejected {
            access_token: "a0".into(),
        },
    );
    let mut fx = drain(&mut e);
    if let Some(id) = e.awaiting().lock {
        e.handle(due + 60, Input::LockGranted { id });
        fx.extend(drain(&mut e));
    }
    // Well past the rate limit, still nothing due.
    e.handle(due + 10_000, Input::Timer);
    fx.extend(drain(&mut e));
    if let Some(id) = e.awaiting().lock {
        e.handle(due + 10_000, Input::LockGranted { id });
        fx.extend(drain(&mut e));
    }
    refreshes(&fx)
}

#[test]
fn a_late_401_for_a_replaced_token_changes_nothing() {
    assert_eq!(late_401(Faults::default()), 0);
    let off = Faults {
        any_401_forces: true,
        ..Faults::default()
    };
    assert_eq!(late_401(off), 1, "without the safeguard: a second refresh");
}

/// An endpoint answering 401 for a permission reason rotated the refresh token on every call.
fn permission_401(faults: Faults) -> usize {
    let mut e = Engine::new(cfg(faults), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    login(&mut e, T0, tokens("a0", TTL, "s1"));
    let mut sent = 0;
    let mut now = T0 + 10_000;
    // The application calls the endpoint every 5 s for a minute; it always answers 401.
    for k in 0..12 {
        let access_token = e.access_token().unwrap().to_string();
        e.handle(now, Input::AccessRejected { access_token });
        drain(&mut e);
        if let Some(id) = e.awaiting().lock {
            e.handle(now, Input::LockGranted { id });
            let fx = drain(&mut e);
            if let Some(id) = fx.iter().find_map(|f| match f {
                Effect::SendRefresh { id, .. } => Some(*id),
                _ => None,
            }) {
                sent += 1;
                answer(
                    &mut e,
                    now + 50,
                    id,
                    tokens(&format!("a{}", k + 1), TTL, "s1"),
                );
            }
        }
        now += 5_000;
    }
    sent
}

#[test]
fn a_permission_401_does_not_rotate_the_refresh_token_on_every_call() {
    assert_eq!(
        permission_401(Faults::default()),
        1,
        "one forced refresh, then no more"
    );
    let off = Faults {
        any_401_forces: true,
        ..Faults::default()
    };
    assert!(
        permission_401(off) >= 10,
        "without the safeguard: one per call"
    );
}

/// `expires_in: 0` was accepted and produced 20 refresh requests in 3 s. A driver loop: the
/// lock is granted at once, every refresh answered 150 ms later with `expires_in: 0`.
fn zero_expires_in(faults: Faults) -> usize {
    let mut e = Engine::new(cfg(faults), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    login(&mut e, T0, tokens("a0", 0, "s1"));
    let mut sent = 0;
    let mut in_flight: Option<(RequestId, Millis)> = None;
    let mut granted = None;
    let mut t = T0;
    while t < T0 + 3_000 {
        t += 10;
        e.handle(t, Input::Timer);
        if let Some((id, at)) = in_flight {
            if t >= at {
                in_flight = None;
                let n = format!("a{sent}");
                e.handle(
                    t,
                    Input::RefreshSucceeded {
                        id,
                        tokens: tokens(&n, 0, "s1"),
                    },
                );
            }
        }
        if let Some(id) = e.awaiting().lock {
            if granted != Some(id) {
                granted = Some(id);
                e.handle(t, Input::LockGranted { id });
            }
        }
        for f in drain(&mut e) {
            if let Effect::SendRefresh { id, .. } = f {
                sent += 1;
                in_flight = Some((id, t + 150));
            }
        }
    }
    sent
}

#[test]
fn expires_in_zero_does_not_cause_a_refresh_storm() {
    assert!(zero_expires_in(Faults::default()) <= 1);
    let off = Faults {
        trust_expires_in: true,
        no_rate_limit: true,
        ..Faults::default()
    };
    assert!(
        zero_expires_in(off) >= 15,
        "without the floor and the rate limit: a storm"
    );
    // Either safeguard alone bounds it.
    for one in [
        Faults {
            trust_expires_in: true,
            ..Faults::default()
        },
        Faults {
            no_rate_limit: true,
            ..Faults::default()
        },
    ] {
        assert!(zero_expires_in(one) <= 2, "{one:?}");
    }
}

// -------------------------------------------------------------------------------------------
// A refresh answer is never checked against the session it belongs to.

/// Tab 1 resumes (refresh with Alice's cookie) while tab 2 logs in as Bob; the shared record
/// names Bob's session when Alice's answer arrives. Returns tab 1's token, if any.
fn alice_and_bob(faults: Faults) -> (Option<String>, Stats) {
    let c = Config {
        join_wait: 0,
        ..cfg(faults)
    };
    // Tab 1 has the higher tab id, so its stamp wins a tie with Bob's.
    let mut t1 = Engine::new(c.clone(), 9, 7, T0);
    let mut t2 = Engine::new(c, 2, 8, T0);
    t1.handle(T0, Input::Shared(None));
    t2.handle(T0, Input::Shared(None));
    t1.set_alone(true);
    t1.handle(T0, Input::Resume);
    drain(&mut t1);
    let id = refresh_now(&mut t1, T0 + 1).expect("the resume refreshes");
    // Bob logs in in tab 2; tab 1 sees the shared record (a storage event) before the bus.
    let fx = login(&mut t2, T0 + 20, tokens("bob0", TTL, "bob-session"));
    let shared = fx
        .iter()
        .rev()
        .find_map(|f| match f {
            Effect::PersistShared(b) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    t1.handle(T0 + 30, Input::Shared(Some(shared)));
    drain(&mut t1);
    answer(&mut t1, T0 + 40, id, tokens("alice1", TTL, "alice-session"));
    (t1.access_token().map(String::from), t1.stats())
}

#[test]
fn alices_refresh_answer_is_not_adopted_as_bobs_session() {
    let (token, stats) = alice_and_bob(Faults::default());
    assert_eq!(token, None, "Alice's tokens refused");
    assert_eq!(stats.foreign_session, 1, "and reported");
    let off = Faults {
        ignore_session: true,
        ..Faults::default()
    };
    assert_eq!(
        alice_and_bob(off).0.as_deref(),
        Some("alice1"),
        "without the safeguard: Alice's tokens adopted in Bob's session"
    );
}

// -------------------------------------------------------------------------------------------
// Values from other tabs and storage are trusted without bounds.

/// A clock that ran a year ahead while the user was active; later (clock right again) a new
/// session with a 60 s idle timeout, then 10 idle minutes. Returns tab B's state.
fn year_ahead(faults: Faults) -> SessionState {
    let c = Config {
        idle_timeout: Some(60_000),
        idle_warning: 10_000,
        activity_throttle: 1_000,
        ..cfg(faults)
    };
    let mut storage: Option<Vec<u8>> = None;
    let persist = |fx: &[Effect], now: Millis, storage: &mut Option<Vec<u8>>| {
        for f in fx {
            if let Effect::PersistShared(b) = f {
                *storage = Some(merge_shared(storage.as_deref(), b, now));
            }
        }
    };
    // Tab A: signed in; its clock jumps a year ahead while the user works.
    let mut a = Engine::new(c.clone(), 1, 7, T0);
    a.handle(T0, Input::Shared(None));
    let fx = login(&mut a, T0, tokens("a0", TTL, "s1"));
    persist(&fx, T0, &mut storage);
    a.handle(T0 + YEAR, Input::StayActive);
    let fx = drain(&mut a);
    persist(&fx, T0 + YEAR, &mut storage);
    // The clock is right again; the user logs out (wherever the epoch goes, the stored
    // activity stays a year ahead: merges keep the maximum).
    let now = T0 + 20_000;
    a.handle(now, Input::Logout { everywhere: false });
    let fx = drain(&mut a);
    persist(&fx, T0 + YEAR, &mut storage);
    // Tab B: a new session, then nobody touches anything for 10 minutes.
    let mut b = Engine::new(c, 2, 8, now);
    b.handle(now, Input::Shared(storage.clone()));
    let fx = login(&mut b, now + 1_000, tokens("b0", TTL, "s2"));
    persist(&fx, now + 1_000, &mut storage);
    let mut t = now + 1_000;
    while t < now + 600_000 {
        t += 5_000;
        b.handle(t, Input::Shared(storage.clone()));
        b.handle(t, Input::Timer);
        drain(&mut b);
    }
    b.state()
}

#[test]
fn a_clock_a_year_ahead_does_not_keep_a_later_session_alive() {
    assert_eq!(year_ahead(Faults::default()), SessionState::LoggedOut);
    // Two safeguards each prevent it: activity tied to its session, and far-future stored
    // values dropped. Only with both off does the defect come back.
    for one in [
        Faults {
            activity_across_sessions: true,
            ..Faults::default()
        },
        Faults {
            trust_clocks: true,
            ..Faults::default()
        },
    ] {
        assert_eq!(year_ahead(one), SessionState::LoggedOut, "{one:?}");
    }
    let off = Faults {
        activity_across_sessions: true,
        trust_clocks: true,
        ..Faults::default()
    };
    assert_eq!(
        year_ahead(off),
        SessionState::Active,
        "without the safeguards: still active after 10 idle minutes"
    );
}

/// A stored logout counter of `u64::MAX`: a later logout in tab A must reach tab B.
#[test]
fn a_stored_logout_counter_of_u64_max_does_not_stop_later_logouts() {
    // A well-formed record (version 2, tag 0) whose epoch is u64::MAX: nine 0xff bytes and
    // 0x01 (LEB128), then no reason, token, claim or activity.
    let mut forged = vec![2u8, 0];
    forged.extend([0xff; 9]);
    forged.extend([0x01, 0, 0, 0, 0]);
    assert_eq!(Shared::default().encode(), vec![2, 0, 0, 0, 0, 0, 0]);
    let mut storage = Some(forged);
    assert!(
        Shared::decode(storage.as_ref().unwrap()).is_err(),
        "an implausible counter is not decoded"
    );
    let c = cfg(Faults::default());
    let mut a = Engine::new(c.clone(), 1, 7, T0);
    let mut b = Engine::new(c, 2, 8, T0);
    a.handle(T0, Input::Shared(storage.clone()));
    b.handle(T0, Input::Shared(storage.clone()));
    let fx = login(&mut a, T0 + 10, tokens("a0", TTL, "s1"));
    for f in &fx {
        match f {
            Effect::PersistShared(p) => {
                storage = Some(merge_shared(storage.as_deref(), p, T0 + 10));
            }
            Effect::Broadcast(m) => b.handle(T0 + 11, Input::Bus(m.clone())),
            _ => {}
        }
    }
    drain(&mut b);
    assert_eq!(b.access_token(), Some("a0"));
    a.handle(T0 + 100, Input::Logout { everywhere: false });
    for f in drain(&mut a) {
        if let Effect::Broadcast(m) = f {
            b.handle(T0 + 101, Input::Bus(m));
        }
    }
    assert_eq!(b.state(), SessionState::LoggedOut);
    assert_eq!(b.access_token(), None);
}

/// A forged, well-formed logout message a million epochs ahead is ignored (and counted).
#[test]
fn an_implausible_logout_epoch_from_the_bus_is_ignored() {
    let run = |faults: Faults| {
        let mut e = Engine::new(cfg(faults), 1, 7, T0);
        e.handle(T0, Input::Shared(None));
        login(&mut e, T0, tokens("a0", TTL, "s1"));
        let forged = Msg::Logout {
            epoch: MAX_EPOCH_STEP + 5,
            reason: LogoutReason::Revoked,
        };
        e.handle(T0 + 10, Input::Bus(forged.encode()));
        drain(&mut e);
        (e.state(), e.stats().implausible)
    };
    assert_eq!(run(Faults::default()), (SessionState::Active, 1));
    let off = Faults {
        trust_counters: true,
        ..Faults::default()
    };
    assert_eq!(run(off).0, SessionState::LoggedOut);
}

/// A claim whose expiry lies far in the future must not block refreshes.
#[test]
fn a_far_future_claim_does_not_block_refreshes() {
    let run = |faults: Faults| {
        let c = Config {
            web_locks: false,
            ..cfg(faults)
        };
        let mut e = Engine::new(c, 1, 7, T0);
        e.handle(T0, Input::Shared(None));
        let fx = login(&mut e, T0, tokens("a0", TTL, "s1"));
        let base = fx
            .iter()
            .find_map(|f| match f {
                Effect::PersistShared(b) => Shared::decode(b).ok()?.token,
                _ => None,
            })
            .unwrap()
            .issued_at;
        let forged = Msg::Claim(Claim {
            serial: 99,
            tab: 666,
            at: T0 + 1,
            until: T0 + YEAR,
            base,
        });
        e.handle(T0 + 5, Input::Bus(forged.encode()));
        drain(&mut e);
        // Past expiry, settle the claim round.
        let mut sent = 0;
        let mut t = T0 + TTL - 60_000;
        for _ in 0..20 {
            e.handle(t, Input::Timer);
            sent += refreshes(&drain(&mut e));
            t += 200;
        }
        sent
    };
    assert_eq!(run(Faults::default()), 1);
    let off = Faults {
        trust_clocks: true,
        ..Faults::default()
    };
    assert_eq!(run(off), 0, "without the bound: no tab ever refreshes");
}

// -------------------------------------------------------------------------------------------
// Options are not validated.

/// Two tabs, `idleTimeoutMs: 5000`, the user active in tab A every second; tab B must not
/// log everybody out. `resolve`: whether the config went through `Config::resolve`.
fn short_idle(resolve: bool) -> SessionState {
    let mut c = Config {
        idle_timeout: Some(5_000),
        refresh_jitter: 0,
        ..Config::default()
    };
    if resolve {
        c = c.resolve(&[Setting::IdleTimeout]).unwrap();
    } else {
        c.idle_warning = 1_000; // keep it below the timeout; the throttle stays 5 s
    }
    let mut a = Engine::new(c.clone(), 1, 7, T0);
    let mut b = Engine::new(c, 2, 8, T0);
    a.handle(T0, Input::Shared(None));
    b.handle(T0, Input::Shared(None));
    let mut storage: Option<Vec<u8>> = None;
    let mut bus_to_b = Vec::new();
    for f in login(&mut a, T0, tokens("a0", TTL, "s1")) {
        match f {
            Effect::PersistShared(p) => storage = Some(merge_shared(storage.as_deref(), &p, T0)),
            Effect::Broadcast(m) => bus_to_b.push(m),
            _ => {}
        }
    }
    for m in bus_to_b.drain(..) {
        b.handle(T0 + 1, Input::Bus(m));
    }
    drain(&mut b);
    let mut t = T0;
    while t < T0 + 30_000 {
        t += 250;
        // Tab B's timer may fire just before tab A handles the user's input.
        b.handle(t, Input::Shared(storage.clone()));
        b.handle(t, Input::Timer);
        drain(&mut b);
        if (t - T0).is_multiple_of(1_000) {
            a.handle(t, Input::Activity);
        }
        a.handle(t, Input::Timer);
        for f in drain(&mut a) {
            match f {
                Effect::PersistShared(p) => storage = Some(merge_shared(storage.as_deref(), &p, t)),
                Effect::Broadcast(m) => b.handle(t, Input::Bus(m)),
                _ => {}
            }
        }
        drain(&mut b);
    }
    b.state()
}

#[test]
fn with_a_5_s_idle_timeout_activity_in_one_tab_keeps_the_other_alive() {
    assert!(matches!(
        short_idle(true),
        SessionState::Active | SessionState::IdleWarning
    ));
    assert_eq!(
        short_idle(false),
        SessionState::LoggedOut,
        "with the default 5 s throttle the other tab logs out"
    );
}

#[test]
fn contradictory_or_zero_options_are_refused_naming_the_option() {
    let cases: [(Config, &[Setting], &str); 5] = [
        (
            Config {
                lock_wait: 5_000,
                request_timeout: 5_000,
                ..Config::default()
            },
            &[Setting::LockWait, Setting::RequestTimeout],
            "lockWaitMs",
        ),
        (
            Config {
                refresh_lead: 0,
                ..Config::default()
            },
            &[Setting::RefreshLead],
            "refreshLeadMs",
        ),
        (
            Config {
                request_timeout: 0,
                ..Config::default()
            },
            &[Setting::RequestTimeout],
            "requestTimeoutMs",
        ),
        (
            Config {
                idle_timeout: Some(60_000),
                idle_warning: 60_000,
                ..Config::default()
            },
            &[Setting::IdleTimeout, Setting::IdleWarning],
            "idleWarningMs",
        ),
        (
            Config {
                idle_timeout: Some(5_000),
                activity_throttle: 5_000,
                ..Config::default()
            },
            &[Setting::IdleTimeout, Setting::ActivityThrottle],
            "activityThrottleMs",
        ),
    ];
    for (c, given, option) in cases {
        let e = c.resolve(given).unwrap_err();
        assert_eq!(e.setting.option(), option, "{e:?}");
    }
    // Derived defaults follow the explicit values instead of contradicting them.
    let c = Config {
        request_timeout: 10_000,
        ..Config::default()
    }
    .resolve(&[Setting::RequestTimeout])
    .unwrap();
    assert!(c.lock_wait > c.request_timeout);
    assert!(Config::default().resolve(&[]).is_ok());
}

// -------------------------------------------------------------------------------------------
// The initial online state is an input.

#[test]
fn a_tab_that_starts_offline_does_not_churn_refresh_retries() {
    let mut e = Engine::new(cfg(Faults::default()), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    e.handle(T0, Input::Online(false));
    e.set_alone(true);
    e.handle(T0, Input::Resume);
    let mut fx = drain(&mut e);
    let mut t = T0;
    for _ in 0..60 {
        t += 1_000;
        e.handle(t, Input::Timer);
        fx.extend(drain(&mut e));
    }
    assert_eq!(refreshes(&fx), 0);
    assert!(!fx.iter().any(|f| matches!(f, Effect::AcquireLock { .. })));
    // Online: the resume goes ahead at once.
    e.handle(t + 1, Input::Online(true));
    assert!(drain(&mut e)
        .iter()
        .any(|f| matches!(f, Effect::AcquireLock { .. })));
}

#[test]
fn going_online_cuts_the_backoff_short() {
    let mut e = Engine::new(cfg(Faults::default()), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    login(&mut e, T0, tokens("a0", TTL, "s1"));
    let due = T0 + TTL - 60_000;
    let id = refresh_now(&mut e, due).unwrap();
    e.handle(due + 10, Input::Online(false));
    e.handle(
        due + 20,
        Input::RefreshFailed {
            id,
            retry_after: Some(60_000),
        },
    );
    drain(&mut e);
    assert!(e.next_deadline().unwrap() >= due + 60_000);
    e.handle(due + 1_000, Input::Online(true));
    assert!(drain(&mut e)
        .iter()
        .any(|f| matches!(f, Effect::AcquireLock { .. })));
}

/// Answers to superseded requests are counted and change nothing.
#[test]
fn an_answer_with_a_superseded_id_is_counted_and_ignored() {
    let mut e = Engine::new(cfg(Faults::default()), 1, 7, T0);
    e.handle(T0, Input::Shared(None));
    e.handle(T0, Input::LoginStarted);
    let Some(Effect::SendLogin { id: first }) = e.poll_effect() else {
        panic!()
    };
    e.handle(T0 + 5, Input::LoginStarted); // the user submitted again
    drain(&mut e);
    e.handle(
        T0 + 10,
        Input::LoginSucceeded {
            id: first,
            tokens: tokens("old", TTL, "s0"),
        },
    );
    assert_eq!(e.access_token(), None);
    assert_eq!(e.stats().superseded, 1);
    let due = T0 + TTL;
    let second = e.awaiting().login.unwrap();
    e.handle(
        T0 + 20,
        Input::LoginSucceeded {
            id: second,
            tokens: tokens("new", TTL, "s1"),
        },
    );
    assert_eq!(e.access_token(), Some("new"));
    let id = refresh_now(&mut e, due).unwrap();
    e.handle(
        due + 5,
        Input::RefreshFailed {
            id: RequestId(id.0.wrapping_add(100)),
            retry_after: None,
        },
    );
    assert_eq!(e.stats().superseded, 2);
    assert_eq!(
        e.awaiting().refresh,
        Some(id),
        "the real request is still awaited"
    );
}
