//! The admin subcommands of the real binary on a SQLite store, checked through a server
//! on the same file.

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use common::binary;
use serde_json::json;

fn run(db: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args([
            "--store",
            db,
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("output")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_totp_and_session_revocation_from_the_command_line() {
    let db = common::TempDb::new("admin");
    let url = db.url();
    stdout(&run(&url, &["migrate"], ""));
    stdout(&run(
        &url,
        &["user-add", "--username", "carol"],
        "first-password\n",
    ));
    let c = reqwest::Client::new();
    let login = |pw: &'static str| {
        let c = c.clone();
        move |base: String| async move {
            binary::post(
                &c,
                format!("{base}auth/login"),
                json!({"username": "carol", "password": pw, "mode": "token"}),
                None,
            )
            .await
            .expect("request")
        }
    };
    let srv = binary::start(&url, &[]);
    let (s, body, _) = login("first-password")(srv.url.clone()).await;
    assert_eq!(s, 200, "{body}");
    let rt = body["refresh_token"].as_str().expect("rt").to_string();

    // user-passwd: the new password works, the old one does not, the session is revoked
    let out = stdout(&run(
        &url,
        &["user-passwd", "--username", "carol"],
        "second-password\n",
    ));
    assert!(out.contains("1 session(s) revoked"), "{out}");
    let (s, body, _) = binary::post(
        &c,
        format!("{}auth/refresh", srv.url),
        json!({"refresh_token": rt}),
        None,
    )
    .await
    .expect("request");
    assert_eq!((s, body["code"].as_str()), (401, Some("session_revoked")));
    assert_eq!(login("first-password")(srv.url.clone()).await.0, 401);
    assert_eq!(login("second-password")(srv.url.clone()).await.0, 200);

    // sessions revoke --user
    let out = stdout(&run(&url, &["sessions", "revoke", "--user", "carol"], ""));
    assert!(out.contains("1 session(s) of carol revoked"), "{out}");

    // totp-enroll: the next login asks for a code; the URI names the secret; a QR follows
    let out = stdout(&run(&url, &["totp-enroll", "--username", "carol"], ""));
    let first_uri = out.lines().next().expect("uri").to_string();
    assert!(
        first_uri.starts_with("otpauth://totp/tessera:carol?secret="),
        "{out}"
    );
    assert!(out.lines().count() > 10, "a QR code follows the URI");
    let (s, body, _) = login("second-password")(srv.url.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(body["mfa_required"], true);
    // totp-reset: a different secret
    let out = stdout(&run(&url, &["totp-reset", "--username", "carol"], ""));
    assert_ne!(out.lines().next(), Some(first_uri.as_str()));

    // unknown user and short password are clean failures
    let o = run(
        &url,
        &["user-passwd", "--username", "nobody"],
        "long-enough-pw\n",
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no user"),
        "{o:?}"
    );
    let o = run(&url, &["user-passwd", "--username", "carol"], "short\n");
    assert!(!o.status.success());
}

#[test]
fn demo_refuses_a_public_listen_address_without_demo_public() {
    let o = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args(["--demo", "--listen", "0.0.0.0:0", "--store", "memory://"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--demo-public"),
        "{o:?}"
    );
}

/// The lines of `user-list` as (name, totp, live sessions), header skipped.
fn user_list(db: &str) -> Vec<(String, String, usize)> {
    stdout(&run(db, &["user-list"], ""))
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{l:?}");
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().expect("count"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_list_and_user_del_from_the_command_line() {
    let db = common::TempDb::new("admin-del");
    let url = db.url();
    stdout(&run(
        &url,
        &["user-add", "--username", "carol"],
        "carol-password\n",
    ));
    stdout(&run(
        &url,
        &["user-add", "--username", "dave", "--totp"],
        "dave-password-1\n",
    ));
    let srv = binary::start(&url, &[]);
    let c = reqwest::Client::new();
    let login = |user: &'static str, pw: &'static str| {
        let (c, base) = (c.clone(), srv.url.clone());
        async move {
            binary::post(
                &c,
                format!("{base}auth/login"),
                json!({"username": user, "password": pw, "mode": "token"}),
                None,
            )
            .await
            .expect("request")
        }
    };
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (s, body, _) = login("carol", "carol-password").await;
        assert_eq!(s, 200, "{body}");
        tokens.push(body["refresh_token"].as_str().expect("rt").to_string());
    }
    // one of carol's sessions logs out: not live any more
    let (s, body, _) = binary::post(
        &c,
        format!("{}auth/logout", srv.url),
        json!({"refresh_token": tokens[1]}),
        None,
    )
    .await
    .expect("request");
    assert!(s == 200 || s == 204, "{s} {body}");

    let list = user_list(&url);
    let names: Vec<&str> = list.iter().map(|(n, _, _)| n.as_str()).collect();
    // the demo server seeded alice and bob into the same file
    assert_eq!(names, ["alice", "bob", "carol", "dave"], "{list:?}");
    let row = |n: &str| list.iter().find(|r| r.0 == n).cloned().expect("row");
    assert_eq!(row("carol"), ("carol".into(), "no".into(), 1));
    assert_eq!(row("dave"), ("dave".into(), "yes".into(), 0));
    assert_eq!(row("bob").1, "yes");
    // no secret, no hash in the listing
    let raw = stdout(&run(&url, &["user-list"], ""));
    assert!(!raw.contains("argon2") && !raw.contains("otpauth"), "{raw}");

    // user-del: the live session is revoked, the user is gone, the name is unknown
    let out = stdout(&run(&url, &["user-del", "--username", "carol"], ""));
    assert!(
        out.contains("user carol deleted; 1 session(s) revoked"),
        "{out}"
    );
    let (s, body, _) = binary::post(
        &c,
        format!("{}auth/refresh", srv.url),
        json!({"refresh_token": tokens[0]}),
        None,
    )
    .await
    .expect("request");
    assert_eq!(
        (s, body["code"].as_str()),
        (401, Some("session_revoked")),
        "{body}"
    );
    assert_eq!(login("carol", "carol-password").await.0, 401);
    let names: Vec<String> = user_list(&url).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["alice", "bob", "dave"]);

    // an unknown user is a clean failure with a non-zero exit code, and changes nothing
    for args in [
        &["user-del", "--username", "carol"][..],
        &["user-del", "--username", "nobody"][..],
    ] {
        let o = run(&url, args, "");
        assert!(!o.status.success(), "{o:?}");
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no user"),
            "{o:?}"
        );
    }
    assert_eq!(user_list(&url).len(), 3);
}

/// The `secret=` parameter of an `otpauth://` URI.
fn uri_secret(uri: &str) -> String {
    uri.split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .expect("secret parameter")
        .to_string()
}

/// Signs `user` in (token mode) with `password` and the TOTP `code`: the MFA step's status.
async fn mfa_login(c: &reqwest::Client, base: &str, user: &str, code: &str) -> (u16, String) {
    let (s, body, _) = binary::post(
        c,
        format!("{base}auth/login"),
        json!({"username": user, "password": "erin-password", "mode": "token"}),
        None,
    )
    .await
    .expect("request");
    assert_eq!((s, &body["mfa_required"]), (200, &json!(true)), "{body}");
    let token = body["mfa_token"].as_str().expect("mfa_token").to_string();
    let (s, body, _) = binary::post(
        c,
        format!("{base}auth/mfa"),
        json!({"mfa_token": token, "code": code}),
        None,
    )
    .await
    .expect("request");
    (s, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_totp_secret_starts_with_a_clean_replay_guard() {
    use tessera_server::totp::Totp;
    let db = common::TempDb::new("admin-totp");
    let url = db.url();
    let out = stdout(&run(
        &url,
        &["user-add", "--username", "erin", "--totp"],
        "erin-password\n",
    ));
    let first = Totp::from_base32(&uri_secret(out.lines().nth(1).expect("uri"))).expect("totp");
    let srv = binary::start(&url, &[]);
    let c = reqwest::Client::new();
    let t0 = common::wall_now();
    let (s, body) = mfa_login(&c, &srv.url, "erin", &first.code_at(t0)).await;
    assert_eq!(s, 200, "{body}");
    // the same code again: the replay guard refuses it
    let (s, _) = mfa_login(&c, &srv.url, "erin", &first.code_at(t0)).await;
    assert_eq!(s, 401);

    // totp-reset: the URI is the one totp-rs builds for the new secret ...
    let out = stdout(&run(&url, &["totp-reset", "--username", "erin"], ""));
    let uri = out.lines().next().expect("uri");
    let second = Totp::from_base32(&uri_secret(uri)).expect("totp");
    assert_eq!(
        second.otpauth_uri("tessera", "erin").expect("uri").as_str(),
        uri
    );
    // ... the old secret is dead, and the new secret's code for the step already used
    // with the old one is accepted (the guard was reset with the secret)
    let (s, _) = mfa_login(&c, &srv.url, "erin", &first.code_at(t0 + 30)).await;
    assert_eq!(s, 401);
    let (s, body) = mfa_login(&c, &srv.url, "erin", &second.code_at(t0)).await;
    assert_eq!(s, 200, "a fresh secret's code at the same step: {body}");
    let (s, _) = mfa_login(&c, &srv.url, "erin", &second.code_at(t0)).await;
    assert_eq!(s, 401, "and the guard works again for the new secret");

    // user-del forgets the guard too: a user re-created under the same name starts clean
    stdout(&run(&url, &["user-del", "--username", "erin"], ""));
    let out = stdout(&run(
        &url,
        &["user-add", "--username", "erin", "--totp"],
        "erin-password\n",
    ));
    let third = Totp::from_base32(&uri_secret(out.lines().nth(1).expect("uri"))).expect("totp");
    let (s, body) = mfa_login(&c, &srv.url, "erin", &third.code_at(t0)).await;
    assert_eq!(s, 200, "{body}");
}

/// Introspection reads only the session's liveness from the store on every call (no vault
/// key, no cache): a revocation written by another process on the same SQLite file — the
/// admin CLI's `user-passwd` and `sessions revoke` — is reported `active: false` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_reports_revocations_made_by_another_process_at_once() {
    const SECRET: &str = "introspection-secret-for-admin-tests-0123456789";
    let db = common::TempDb::new("admin-introspect");
    let url = db.url();
    stdout(&run(&url, &["migrate"], ""));
    let srv = binary::start_with_env(&url, &[], &[("TESSERA_INTROSPECTION_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let login = || async {
        let (s, body, _) = binary::post(
            &c,
            format!("{}auth/login", srv.url),
            json!({"username": "alice", "password": "tessera-demo", "mode": "token"}),
            None,
        )
        .await
        .expect("login");
        assert_eq!(s, 200, "{body}");
        body["access_token"].as_str().expect("at").to_string()
    };
    let active = |at: String| {
        let c = c.clone();
        let url = format!("{}auth/introspect", srv.url);
        async move {
            let r = c
                .post(url)
                .bearer_auth(SECRET)
                .json(&json!({ "token": at }))
                .send()
                .await
                .expect("introspect");
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.expect("json")["active"].clone()
        }
    };

    let at = login().await;
    assert_eq!(active(at.clone()).await, true);
    let out = stdout(&run(
        &url,
        &["user-passwd", "--username", "alice"],
        "another-password\n",
    ));
    assert!(out.contains("session(s) revoked"), "{out}");
    assert_eq!(active(at).await, false, "after user-passwd");
    stdout(&run(
        &url,
        &["user-passwd", "--username", "alice"],
        "tessera-demo\n",
    ));

    let at = login().await;
    assert_eq!(active(at.clone()).await, true);
    stdout(&run(&url, &["sessions", "revoke", "--user", "alice"], ""));
    assert_eq!(active(at).await, false, "after sessions revoke");
}
