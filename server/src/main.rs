//! `tessera-server` binary: parse flags/env, open the store, serve.

use std::io::Write as _;

use clap::Parser as _;
use tessera_server::config::{Command, KeysCommand, SessionsCommand};
use tessera_server::{app, AppState, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    tessera_server::telemetry::init_logging(&config.log, config.log_format);

    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(Command::UserAdd { username, totp }) = config.command.clone() {
        return user_add(config, &username, totp).await;
    }
    match config.command.clone() {
        Some(Command::Keys {
            action: KeysCommand::Rotate,
        }) => return keys_rotate(config).await,
        Some(
            other @ (Command::UserPasswd { .. }
            | Command::UserDel { .. }
            | Command::UserList
            | Command::TotpEnroll { .. }
            | Command::TotpReset { .. }
            | Command::Sessions { .. }
            | Command::Migrate),
        ) => return admin(config, other).await,
        _ => {}
    }
    let listen = config.listen.clone();
    if config.demo {
        for (flag, dir) in [
            ("--www-dir", &config.www_dir),
            ("--pkg-dir", &config.pkg_dir),
        ] {
            if !dir.is_dir() {
                tracing::warn!("demo mode: {flag} {} is not a directory", dir.display());
            }
        }
    }
    let mut config = config;
    let drain = std::time::Duration::from_secs(config.shutdown_timeout);
    let metrics_listen = config.metrics_listen.clone();
    // Bind first: demo mode allows the loopback origin it actually listens on.
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    if config.demo {
        config.add_listen_origin(addr);
    }
    let limits = tessera_server::serve::Limits::from_config(&config);
    let state = AppState::from_config(config).await?;
    tracing::info!(store = state.store().kind(), "store ready");
    // background tasks: stopped (aborted) once the server has drained
    let reload = std::time::Duration::from_secs(state.config().keys_reload_interval);
    let mut background = vec![
        tessera_server::spawn_housekeeping(state.clone()),
        tessera_server::keyring::spawn_key_reload(state.clone(), reload),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(m) = metrics_listen {
        let ml = tokio::net::TcpListener::bind(&m)
            .await
            .map_err(|e| format!("cannot listen on {m} (--metrics-listen): {e}"))?;
        tracing::info!(addr = %ml.local_addr()?, "metrics listener");
        let router = tessera_server::routes::health::metrics_only(state.clone());
        let mut rx = stop_rx.clone();
        background.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.changed().await;
            };
            if let Err(e) = axum::serve(ml, router).with_graceful_shutdown(stop).await {
                tracing::warn!(error = %e, "metrics listener failed");
            }
        }));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "tessera-server listening on http://{addr}/")?;
        out.flush()?;
    }
    let mut rx = stop_rx.clone();
    let server = tokio::spawn(tessera_server::serve::serve(
        listener,
        app(state),
        limits,
        async move {
            let _ = rx.changed().await;
        },
    ));
    shutdown().await;
    let _ = stop_tx.send(true);
    match tokio::time::timeout(drain, server).await {
        Ok(Ok(Ok(()))) => tracing::info!("drained: every request in flight finished"),
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server error while draining"),
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => tracing::warn!(
            timeout_s = drain.as_secs(),
            "drain timeout: connections still open are cut"
        ),
    }
    for task in background {
        task.abort();
    }
    Ok(())
}

/// `tessera-server user-add --username NAME [--totp]`, password on stdin.
async fn user_add(
    config: Config,
    username: &str,
    totp: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    if username.is_empty() || username.len() > 256 {
        return Err("--username must be 1 to 256 characters".into());
    }
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.len() < 8 || password.len() > 1024 {
        return Err("the password (first line of stdin) must be 8 to 1024 characters".into());
    }
    let issuer = config.issuer.clone();
    let state = AppState::from_config(config).await?;
    let existing = state.store().find_user(username).await?;
    let secret = totp.then(tessera_server::totp::new_secret);
    // the URI (and its label check) before anything is written
    let uri = match &secret {
        Some(s) => {
            Some(tessera_server::totp::Totp::from_base32(s)?.otpauth_uri(&issuer, username)?)
        }
        None => None,
    };
    state
        .add_user(username, password, secret.as_deref())
        .await?;
    if let (Some(_), Some(u)) = (&secret, &existing) {
        // a new secret starts with a clean replay guard
        tessera_server::totp::forget_steps(state.store().as_ref(), &u.id, state.now()).await?;
    }
    // A password change ends every session of the user (ASVS 5.0 V7.4.3).
    let revoked = match existing {
        Some(u) => {
            state
                .store()
                .revoke_user_sessions(&u.id, "password_changed", state.now())
                .await?
        }
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "user {username} saved in the {} store ({revoked} existing sessions revoked)",
        state.store().kind()
    )?;
    if let Some(uri) = uri {
        writeln!(out, "{uri}")?;
    }
    Ok(())
}

/// The admin subcommands of [`tessera_server::admin`].
async fn admin(config: Config, command: Command) -> Result<(), Box<dyn std::error::Error>> {
    use tessera_server::admin;
    let password = match &command {
        Command::UserPasswd { .. } => Some(admin::password_from_stdin()?),
        _ => None,
    };
    let state = AppState::from_config(config).await?;
    let kind = state.store().kind();
    let mut out = std::io::stdout().lock();
    match command {
        Command::UserPasswd { username } => {
            let n =
                admin::user_passwd(&state, &username, password.as_deref().unwrap_or("")).await?;
            writeln!(
                out,
                "password of {username} changed; {n} session(s) revoked"
            )?;
        }
        Command::UserDel { username } => {
            let n = admin::user_del(&state, &username).await?;
            writeln!(out, "user {username} deleted; {n} session(s) revoked")?;
        }
        Command::UserList => {
            writeln!(out, "{:<32} {:<5} LIVE_SESSIONS", "USERNAME", "TOTP")?;
            for u in admin::user_list(&state).await? {
                writeln!(
                    out,
                    "{:<32} {:<5} {}",
                    u.username,
                    if u.totp { "yes" } else { "no" },
                    u.live_sessions
                )?;
            }
        }
        Command::TotpEnroll { username } | Command::TotpReset { username } => {
            let uri = admin::totp_set(&state, &username).await?;
            writeln!(out, "{uri}")?;
            writeln!(out, "{}", admin::qr_terminal(&uri)?)?;
        }
        Command::Sessions {
            action: SessionsCommand::Revoke { user },
        } => {
            let n = admin::sessions_revoke_user(&state, &user).await?;
            writeln!(out, "{n} session(s) of {user} revoked")?;
        }
        Command::Migrate => writeln!(out, "the {kind} store is up to date")?,
        _ => {}
    }
    Ok(())
}

/// `tessera-server keys rotate`: publish a new key that signs after the JWKS cache
/// lifetime plus one reload interval.
async fn keys_rotate(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let delay = tessera_server::keyring::JWKS_MAX_AGE
        + i64::try_from(config.keys_reload_interval).unwrap_or(i64::MAX / 4);
    let state = AppState::from_config(config).await?;
    let key = tessera_server::keyring::rotate(state.store().as_ref(), state.now(), delay).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "new signing key {} published; it signs from {} (in {delay} s)",
        key.kid, key.created_at
    )?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
