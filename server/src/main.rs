//! `tessera-server` binary: parse flags/env, open the store, serve.

use std::io::Write as _;
use std::net::SocketAddr;

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
    let state = AppState::from_config(config).await?;
    tracing::info!(store = state.store().kind(), "store ready");
    let _housekeeping = tessera_server::spawn_housekeeping(state.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "tessera-server listening on http://{addr}/")?;
        out.flush()?;
    }
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
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
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "user {username} saved in the {} store",
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
