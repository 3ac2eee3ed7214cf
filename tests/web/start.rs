//! Start-up in a real browser: a tab with no other live tab of its channel (none holds the
//! `tessera:tab:<channel>` Web Lock) resumes from the cookie at once instead of waiting
//! `joinWaitMs` for an answer nobody could give; a tab with a live peer joins it over the bus;
//! and `start()` resolves only once the resume is settled (restored, or definitively anonymous).

use crate::support::*;
use wasm_bindgen_test::*;

fn opts(extra: &str, ch: &str) -> String {
    let mut o = String::from("{ ");
    o.push_str(extra);
    o.push_str(" channel: '");
    o.push_str(ch);
    o.push_str("' }");
    o
}

#[wasm_bindgen_test]
async fn a_tab_alone_skips_the_join_wait_and_start_waits_for_the_refresh() {
    // A join wait of 10 minutes: had start() waited it, it would end (after its 30 s cap)
    // anonymous with no refresh sent. The refresh answer is slow: start() must wait for it.
    let st = server("{ refreshDelay: 300 }");
    let ch = channel("start-alone");
    let s = start(&opts("joinWaitMs: 600000,", &ch)).await;
    assert_eq!(
        count(&st, "refreshCount"),
        1,
        "the cookie refresh went out without the join wait"
    );
    assert_eq!(
        s.state(),
        "active",
        "start() resolved after the refresh answered"
    );
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn with_join_wait_zero_start_resolves_only_after_the_resume_settled() {
    for i in 0..3 {
        let st = server("{ refreshDelay: 200 }");
        let s = start(&opts("joinWaitMs: 0,", &channel("start-zero"))).await;
        assert_eq!(
            s.state(),
            "active",
            "round {i}: resolved before the refresh answered"
        );
        assert_eq!(count(&st, "refreshCount"), 1);
        s.dispose();
    }
    // No live cookie: definitively anonymous when start() resolves (the answer came).
    let st = server("{ refreshDelay: 200, refreshStatus: 401, refreshCode: 'refresh_invalid' }");
    let s = start(&opts("joinWaitMs: 0,", &channel("start-zero-anon"))).await;
    assert_eq!(count(&st, "refreshCount"), 1);
    let refresh_answered = eval("__srv.calls.filter((c) => c.path === '/auth/refresh').length");
    assert_eq!(refresh_answered.as_f64(), Some(1.0));
    assert_eq!(s.state(), "anonymous");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_tab_with_a_live_peer_joins_it_over_the_bus_without_a_refresh() {
    let st = server("{}");
    let ch = channel("start-peer");
    let a = start(&opts("resume: false,", &ch)).await;
    login_alice(&a).await;
    // `a` holds the tab lock: `b` is not alone, asks over the bus, and `a` answers.
    let b = start(&opts("joinWaitMs: 2000,", &ch)).await;
    assert_eq!(b.state(), "active", "joined the peer's session");
    assert_eq!(
        count(&st, "refreshCount"),
        0,
        "no cookie refresh: the peer's token was adopted"
    );
    a.dispose();
    b.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn a_disposed_tab_no_longer_counts_as_alive() {
    let ch = channel("start-gone");
    let _st = server("{}");
    let a = start(&opts("resume: false,", &ch)).await;
    let held = "navigator.locks.query().then((q) => q.held.map((l) => l.name).join(','))";
    let names = wait(eval(held).into()).await.unwrap().as_string().unwrap();
    assert!(
        names.contains(&ch),
        "a live tab holds its lock once started: {names}"
    );
    a.dispose();
    let mut names = String::new();
    for _ in 0..50 {
        names = wait(eval(held).into()).await.unwrap().as_string().unwrap();
        if !names.contains(&ch) {
            break;
        }
        sleep(20).await;
    }
    assert!(!names.contains(&ch), "released on dispose: {names}");
    // Once every tab of the channel is gone, the next tab is alone.
    let st = server("{}");
    let c = start(&opts("joinWaitMs: 600000,", &ch)).await;
    assert_eq!(
        count(&st, "refreshCount"),
        1,
        "alone after the peers were disposed"
    );
    assert_eq!(c.state(), "active");
    c.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn contradictory_options_reject_start_with_invalid_options_naming_the_option() {
    for (options, named) in [
        (
            "{ lockWaitMs: 1000, requestTimeoutMs: 5000, resume: false }",
            "lockWaitMs",
        ),
        ("{ refreshLeadMs: 0, resume: false }", "refreshLeadMs"),
        (
            "{ idleTimeoutMs: 5000, activityThrottleMs: 5000, resume: false }",
            "activityThrottleMs",
        ),
        ("{ idleTimeoutMs: -1, resume: false }", "idleTimeoutMs"),
    ] {
        let err = match tessera::Session::start_async(obj(options)).await {
            Ok(s) => {
                s.dispose();
                panic!("{options}: started")
            }
            Err(e) => e,
        };
        assert_eq!(
            get(&err, "code").as_string().as_deref(),
            Some("invalid_options"),
            "{options}"
        );
        let message = get(&err, "message").as_string().unwrap_or_default();
        assert!(message.contains(named), "{options}: {message}");
    }
}
