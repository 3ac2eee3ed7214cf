//! `tessera-server` binary: parse flags/env, open the store, serve.

use std::io::Write as _;

use clap::Parser as _;
use tessera_server::config::Command;
use tessera_server::{app, AppState, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

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
    let mut config = config;
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
    let _housekeeping = tessera_server::spawn_housekeeping(state.clone());
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "tessera-server listening on http://{addr}/")?;
        out.flush()?;
    }
    tessera_server::serve::serve(listener, app(state), limits, shutdown()).await?;
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
