//! Idle tracking with short timeouts in a real page: the warning, "stay signed in",
//! activity shared between tabs, and the idle logout.

use crate::support::*;
use wasm_bindgen_test::*;

fn opts(ch: &str) -> String {
    let mut o = String::from(
        "{ resume: false, idleTimeoutMs: 600, idleWarningMs: 300, activityThrottleMs: 50, channel: '",
    );
    o.push_str(&channel(ch));
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn warning_then_idle_logout_without_activity() {
    let _st = server("{}");
    let s = start(&opts("idle-a")).await;
    let warn = Recorder::on(&s, "idle-warning");
    let idle = Recorder::on(&s, "idle");
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    assert!(until(1000, || warn.len() == 1).await, "warning fires");
    assert_eq!(s.state(), "idle-warning");
    let rem = get(&warn.events()[0], "remainingMs").as_f64().unwrap();
    assert!(rem > 0.0 && rem <= 300.0, "remainingMs {rem}");
    assert!(until(1000, || logout.len() == 1).await, "idle logout fires");
    assert_eq!(idle.len(), 1);
    assert_eq!(
        get(&logout.events()[0], "reason").as_string().as_deref(),
        Some("idle")
    );
    assert_eq!(s.state(), "logged-out");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn stay_active_answers_the_warning() {
    let _st = server("{}");
    let s = start(&opts("idle-b")).await;
    let warn = Recorder::on(&s, "idle-warning");
    let active = Recorder::on(&s, "active");
    let logout = Recorder::on(&s, "logout");
    login_alice(&s).await;
    assert!(until(1000, || warn.len() == 1).await);
    s.stay_active();
    assert!(
        until(200, || active.len() == 1).await,
        "active after stay signed in"
    );
    assert_eq!(s.state(), "active");
    assert_eq!(logout.len(), 0);
    s.dispose();
    restore_fetch();
}

// Activity from real (trusted) input is proven in Playwright (tests/e2e/idle.test.mjs moves
// the mouse and presses keys through the browser); synthetic DOM events from a script do not
// count (tests/web_lifecycle.rs).

#[wasm_bindgen_test]
async fn activity_in_one_tab_keeps_the_other_alive() {
    let _st = server("{}");
    let ch = channel("idle-d");
    let mk = |ch: &str| {
        let mut o = String::from("{ resume: false, idleTimeoutMs: 800, idleWarningMs: 200, activityThrottleMs: 50, channel: '");
        o.push_str(ch);
        o.push_str("' }");
        o
    };
    let a = start(&mk(&ch)).await;
    let b = start(&mk(&ch)).await;
    login_alice(&a).await;
    assert!(until(500, || b.state() == "active").await);
    let b_logout = Recorder::on(&b, "logout");
    // Only `a` sees activity (stay signed in = activity in a; synthetic DOM events would
    // reach both sessions of this page).
    for _ in 0..8 {
        a.stay_active();
        sleep(200).await;
    }
    assert_eq!(b_logout.len(), 0, "b stayed signed in on a's activity");
    assert!(
        until(2000, || b_logout.len() == 1).await,
        "both end at the deadline"
    );
    assert_eq!(a.state(), "logged-out");
    a.dispose();
    b.dispose();
    restore_fetch();
}
