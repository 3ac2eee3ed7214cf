//! Silent refresh across tabs: with several sessions on one channel (real BroadcastChannel,
//! real Web Locks), one expiry causes exactly one refresh request, and every session ends
//! up with the new token.

use crate::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

fn opts(ch: &str, locks: bool) -> String {
    let mut o =
        String::from("{ resume: false, refreshLeadMs: 1000, refreshJitterMs: 0, webLocks: ");
    o.push_str(if locks { "true" } else { "false" });
    o.push_str(", channel: '");
    o.push_str(ch);
    o.push_str("' }");
    o
}

async fn one_refresh_per_expiry(locks: bool) {
    // 5 s: the engine's floor for `expires_in` (a shorter lifetime is taken as 5 s).
    let st = server("{ expiresIn: 5 }");
    let ch = channel("refresh");
    let tabs = [
        start(&opts(&ch, locks)).await,
        start(&opts(&ch, locks)).await,
        start(&opts(&ch, locks)).await,
    ];
    let refreshes: Vec<Recorder> = tabs.iter().map(|t| Recorder::on(t, "refresh")).collect();
    login_alice(&tabs[0]).await;
    assert!(until(1000, || tabs.iter().all(|t| t.state() == "active")).await);
    // Expiry at +5 s, refresh due at +4 s: wait past it.
    assert!(
        until(5500, || count(&st, "refreshCount") >= 1).await,
        "a refresh happened"
    );
    sleep(400).await;
    assert_eq!(
        count(&st, "refreshCount"),
        1,
        "exactly one refresh for one expiry"
    );
    assert!(
        until(1000, || refreshes.iter().all(|r| r.len() == 1)).await,
        "every tab got the new token"
    );
    for t in &tabs {
        let res = wait(t.fetch("/api/me".into(), JsValue::UNDEFINED))
            .await
            .unwrap();
        assert_eq!(
            get(&res, "status").as_f64(),
            Some(200.0),
            "each tab holds the new token"
        );
    }
    assert_eq!(count(&st, "apiCount"), 3, "no 401 retries were needed");
    for t in &tabs {
        t.dispose();
    }
    restore_fetch();
}

#[wasm_bindgen_test]
async fn one_expiry_one_refresh_with_web_locks() {
    one_refresh_per_expiry(true).await;
}

#[wasm_bindgen_test]
async fn one_expiry_one_refresh_with_bus_claims() {
    one_refresh_per_expiry(false).await;
}

#[wasm_bindgen_test]
async fn retryable_failures_back_off_and_report() {
    let st = server("{ expiresIn: 5, refreshStatus: 503, refreshCode: 'internal' }");
    let ch = channel("refresh-503");
    let s = start(&opts(&ch, true)).await;
    let errors = Recorder::on(&s, "error");
    login_alice(&s).await;
    assert!(
        until(5500, || errors.len() >= 1).await,
        "error event for the failed refresh"
    );
    assert_eq!(errors.codes()[0], "refresh_retry");
    assert_eq!(
        s.state(),
        "active",
        "a retryable failure does not end the session"
    );
    let n = count(&st, "refreshCount");
    assert!((1..=3).contains(&n), "backoff, not a hot loop: {n}");
    s.dispose();
    restore_fetch();
}

#[wasm_bindgen_test]
async fn resume_joins_a_session_held_by_the_cookie() {
    let st = server("{}");
    let mut o = String::from("{ channel: '");
    o.push_str(&channel("resume"));
    o.push_str("' }");
    let s = start(&o).await;
    assert_eq!(
        s.state(),
        "active",
        "start resolves after the cookie refresh answered"
    );
    assert_eq!(count(&st, "refreshCount"), 1);
    s.dispose();
    // No session on the server: the tab stays anonymous, without a logout event.
    let st = server("{ refreshStatus: 401, refreshCode: 'refresh_invalid' }");
    let s = start(&o.replace("resume", "resume2")).await;
    let logout = Recorder::on(&s, "logout");
    sleep(50).await;
    assert_eq!(s.state(), "anonymous");
    assert_eq!(count(&st, "refreshCount"), 1);
    assert_eq!(logout.len(), 0);
    s.dispose();
    restore_fetch();
}

/// A refresh that failed on the network backs off; the `online` event resumes it at once.
#[wasm_bindgen_test]
async fn online_event_resumes_a_backed_off_refresh() {
    let st = server(
        "{ expiresIn: 5, routes: { '/auth/refresh': (req, st, json, issue) => {
             st.refreshCount++;
             if (st.refreshCount === 1) throw new TypeError('Failed to fetch');
             return json(200, issue()); } } }",
    );
    let mut o =
        String::from("{ resume: false, refreshLeadMs: 1000, refreshJitterMs: 0, channel: '");
    o.push_str(&channel("online"));
    o.push_str("' }");
    let s = start(&o).await;
    let refreshed = Recorder::on(&s, "refresh");
    login_alice(&s).await;
    assert!(
        until(5500, || count(&st, "refreshCount") == 1).await,
        "first refresh failed"
    );
    eval("window.dispatchEvent(new Event('offline')); window.dispatchEvent(new Event('online'))");
    assert!(
        until(300, || refreshed.len() == 1).await,
        "online retried at once, not after the backoff"
    );
    assert_eq!(count(&st, "refreshCount"), 2);
    s.dispose();
    restore_fetch();
}
