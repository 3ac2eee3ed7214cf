//! SQLite store: the embedded, persistent default. One file, WAL journal, schema migrations
//! tracked in `PRAGMA user_version`, one writer connection plus a few readers. Each
//! operation runs on tokio's blocking pool; rotation is one `BEGIN IMMEDIATE` transaction.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::*;

const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE,
                         password_hash TEXT NOT NULL, totp_secret TEXT);
     CREATE TABLE sessions (sid TEXT PRIMARY KEY, user_id TEXT NOT NULL, username TEXT NOT NULL,
                            created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,
                            expires_at INTEGER NOT NULL, mfa INTEGER NOT NULL,
                            user_agent TEXT NOT NULL, address TEXT NOT NULL,
                            revoked_at INTEGER, revoke_reason TEXT, vault_key BLOB,
                            generation INTEGER NOT NULL, prev_rotated_at INTEGER, prev_sealed BLOB);
     CREATE INDEX sessions_by_user ON sessions(user_id);
     CREATE TABLE refresh_tokens (hash TEXT PRIMARY KEY, sid TEXT NOT NULL, generation INTEGER NOT NULL);
     CREATE INDEX refresh_by_sid ON refresh_tokens(sid);
     CREATE TABLE session_events (id INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL,
                                  at INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
     CREATE INDEX events_by_sid ON session_events(sid);
     CREATE TABLE ephemeral (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER NOT NULL);",
    // v2: housekeeping scans by expiry
    "CREATE INDEX sessions_by_expiry ON sessions(expires_at);
     CREATE INDEX ephemeral_by_expiry ON ephemeral(expires_at);",
    // v3: bounded growth. A refresh token names its family, so a session keeps two token
    // hashes (current, grace predecessor) instead of one row per rotation. Sessions from
    // before (whose tokens carry no family) cannot be refreshed any more: they are revoked
    // and their vault keys destroyed; their users sign in again once.
    "ALTER TABLE sessions ADD COLUMN family TEXT;
     ALTER TABLE sessions ADD COLUMN token_hash TEXT;
     ALTER TABLE sessions ADD COLUMN prev_hash TEXT;
     ALTER TABLE sessions ADD COLUMN prev_client TEXT;
     CREATE UNIQUE INDEX sessions_by_family ON sessions(family);
     CREATE INDEX sessions_grace ON sessions(prev_rotated_at) WHERE prev_sealed IS NOT NULL;
     CREATE INDEX sessions_vault_idle ON sessions(last_seen) WHERE vault_key IS NOT NULL;
     CREATE INDEX sessions_vault_abs ON sessions(expires_at) WHERE vault_key IS NOT NULL;
     CREATE INDEX sessions_by_user_created ON sessions(user_id, created_at, sid);
     UPDATE sessions SET revoked_at = COALESCE(revoked_at, CAST(strftime('%s','now') AS INTEGER)),
                         revoke_reason = COALESCE(revoke_reason, 'upgrade'),
                         vault_key = NULL, prev_sealed = NULL;
     DROP TABLE refresh_tokens;",
    // v4: the liveness read introspection and bearer checks make per request
    // (`session_status`) answered from one index: one B-tree descent and no table row
    // (the sid index alone needs a second descent into the table for the four columns)
    "CREATE INDEX sessions_status ON sessions(sid, last_seen, expires_at, revoked_at, mfa);",
    // v5: the grace rule also answers older tokens the same client superseded within the
    // window (`GraceEntry::encode_all`; cleared with `prev_sealed`)
    "ALTER TABLE sessions ADD COLUMN prev_chain TEXT;",
];

const SESSION_COLS: &str = "sid, user_id, username, created_at, last_seen, expires_at, mfa, \
    user_agent, address, revoked_at, revoke_reason, vault_key, generation, prev_rotated_at, prev_sealed";

/// The liveness read ([`SessionStore::session_status`]), on the covering index of migration
/// v4, named: without statistics the planner would take the unique sid index and then read
/// the table row too.
const STATUS_SQL: &str = "SELECT last_seen, expires_at, revoked_at IS NOT NULL, mfa \
    FROM sessions INDEXED BY sessions_status WHERE sid = ?1";

type Conn = Arc<Mutex<Connection>>;

/// The SQLite backend.
pub struct SqliteStore {
    writer: Conn,
    readers: Vec<Conn>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string())
}

fn row_to_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        sid: r.get(0)?,
        user_id: r.get(1)?,
        username: r.get(2)?,
        created_at: r.get(3)?,
        last_seen: r.get(4)?,
        expires_at: r.get(5)?,
        mfa: r.get::<_, i64>(6)? != 0,
        user_agent: r.get(7)?,
        address: r.get(8)?,
        revoked_at: r.get(9)?,
        revoke_reason: r.get(10)?,
        vault_key: r.get(11)?,
        generation: r.get(12)?,
        prev_rotated_at: r.get(13)?,
        prev_sealed: r.get(14)?,
        events: Vec::new(),
    })
}

pub(crate) fn load_session(c: &Connection, sid: &str) -> rusqlite::Result<Option<SessionRecord>> {
    c.prepare_cached(&format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE sid = ?1"
    ))?
    .query_row([sid], row_to_session)
    .optional()
}

fn revoke(c: &Connection, sid: &str, reason: &str, now: i64) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?2, revoke_reason = ?3, vault_key = NULL \
             WHERE sid = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![sid, now, reason])?;
    Ok(n > 0)
}

fn insert_session(c: &Connection, s: &SessionRecord, t: &TokenRef) -> rusqlite::Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO sessions ({SESSION_COLS}, family, token_hash) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
    ))?
    .execute(params![
        s.sid,
        s.user_id,
        s.username,
        s.created_at,
        s.last_seen,
        s.expires_at,
        s.mfa as i64,
        s.user_agent,
        s.address,
        s.revoked_at,
        s.revoke_reason,
        s.vault_key,
        s.generation,
        s.prev_rotated_at,
        s.prev_sealed,
        t.family,
        t.hash,
    ])?;
    Ok(())
}

/// The session a token's family names, with its token hashes.
fn find_by_family(
    c: &Connection,
    family: &str,
) -> rusqlite::Result<Option<(SessionRecord, TokenState)>> {
    c.prepare_cached(&format!(
        "SELECT {SESSION_COLS}, token_hash, prev_hash, prev_client, prev_chain FROM sessions \
         WHERE family = ?1"
    ))?
    .query_row([family], |r| {
        let s = row_to_session(r)?;
        let t = TokenState {
            cur: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
            prev: r.get(16)?,
            prev_client: r.get(17)?,
            older: r
                .get::<_, Option<String>>(18)?
                .map_or_else(Vec::new, |c| GraceEntry::decode_all(&c)),
        };
        Ok((s, t))
    })
    .optional()
}

/// Revokes the user's live sessions beyond the newest `max - 1` others of `keep`.
fn enforce_limit(
    c: &Connection,
    user_id: &str,
    keep: &str,
    now: i64,
    limits: &SessionLimits,
) -> rusqlite::Result<Vec<String>> {
    let offset = limits.max_per_user.saturating_sub(1).min(i64::MAX as usize) as i64;
    let victims: Vec<String> = c
        .prepare_cached(
            "SELECT sid FROM sessions WHERE user_id = ?1 AND sid <> ?2 AND revoked_at IS NULL \
             AND expires_at > ?3 AND last_seen + ?4 > ?3 \
             ORDER BY created_at DESC, sid DESC LIMIT -1 OFFSET ?5",
        )?
        .query_map(params![user_id, keep, now, limits.idle, offset], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    for sid in &victims {
        revoke(c, sid, "session_limit", now)?;
    }
    Ok(victims)
}

fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
    // the last transactions. See the README for the trade-off.
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    // overwrite deleted content (old token hashes, shredded vault keys) instead of leaving
    // it in free pages of the file
    c.pragma_update(None, "secure_delete", "ON")?;
    Ok(())
}

pub(crate) fn migrate(c: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = c.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    ///
    /// # Errors
    /// When the file cannot be opened or a migration fails.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() {
            return Err(StoreError::Config("sqlite:// needs a file path".into()));
        }
        // Secrets at rest: the database (and so its WAL and shared-memory files, which
        // SQLite creates with the database's mode) is readable by its owner only.
        let fs_err = |e: std::io::Error| StoreError::Config(format!("{}: {e}", path.display()));
        crate::fsmode::create_owner_only(path).map_err(fs_err)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            crate::fsmode::restrict_to_owner(Path::new(&p)).map_err(fs_err)?;
        }
        let mut w = Connection::open(path).map_err(err)?;
        configure(&w).map_err(err)?;
        migrate(&mut w).map_err(err)?;
        let mut readers = Vec::new();
        for _ in 0..2 {
            let r = Connection::open(path).map_err(err)?;
            r.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(err)?;
            r.pragma_update(None, "secure_delete", "ON").map_err(err)?;
            // Page cache of a reader: up to 8 MiB (SQLite's default is 2 MiB), so the
            // liveness index (about 8 MB per 100,000 sessions) stays mostly in memory instead
            // of costing a `pread` per introspection. Bounded: two readers, at most 16 MiB.
            r.pragma_update(None, "cache_size", -8192).map_err(err)?;
            readers.push(Arc::new(Mutex::new(r)));
        }
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(w)),
            readers,
            next: AtomicUsize::new(0),
        })
    }

    async fn run<R, F>(conn: Conn, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut g = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut g).map_err(err)
        })
        .await
        .map_err(|e| StoreError::Sqlite(format!("blocking task failed: {e}")))?
    }

    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        Self::run(self.writer.clone(), f).await
    }

    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        // Point reads on an idle reader connection take microseconds (WAL readers never wait
        // for the writer), less than a hop to the blocking pool: run them inline. Only when
        // every reader is busy does the read go to the blocking pool and queue there.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            let conn = &self.readers[(start + i) % self.readers.len()];
            if let Ok(mut g) = conn.try_lock() {
                return f(&mut g).map_err(err);
            }
        }
        let i = start % self.readers.len();
        Self::run(self.readers[i].clone(), f).await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.write(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
        .await
    }
    async fn put_meta_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                [&key, &value],
            )?;
            c.query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
        })
        .await
    }
    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [&key, &value],
            )
            .map(|_| ())
        })
        .await
    }
    async fn compare_and_set_meta(
        &self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> StoreResult<bool> {
        let (key, expected, value) = (key.to_string(), expected.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "UPDATE meta SET value = ?3 WHERE key = ?1 AND value = ?2",
                [&key, &expected, &value],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn upsert_user(&self, u: &UserRecord) -> StoreResult<()> {
        let u = u.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO users (id, username, password_hash, totp_secret) VALUES (?1,?2,?3,?4) \
                 ON CONFLICT(username) DO UPDATE SET password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret",
                params![u.id, u.username, u.password_hash, u.totp_secret],
            )
            .map(|_| ())
        })
        .await
    }
    async fn find_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let username = username.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, username, password_hash, totp_secret FROM users WHERE username = ?1",
            )?
            .query_row([username], |r| {
                Ok(UserRecord {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                    totp_secret: r.get(3)?,
                })
            })
            .optional()
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, username, totp_secret IS NOT NULL FROM users ORDER BY username",
            )?;
            let rows = st.query_map([], |r| {
                Ok(UserSummary {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    totp: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let username = username.to_string();
        self.write(move |c| c.execute("DELETE FROM users WHERE username = ?1", [username]))
            .await
            .map(|n| n == 1)
    }
    async fn count_live_sessions(&self, now: i64, idle: i64) -> StoreResult<u64> {
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?1 \
                 AND last_seen > ?1 - ?2",
                params![now, idle],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| n.max(0) as u64)
    }

    async fn create_session(
        &self,
        s: &SessionRecord,
        token: &TokenRef,
        limits: &SessionLimits,
    ) -> StoreResult<Vec<String>> {
        let (s, t, limits) = (s.clone(), token.clone(), *limits);
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_session(&tx, &s, &t)?;
            let revoked = enforce_limit(&tx, &s.user_id, &s.sid, s.created_at, &limits)?;
            tx.commit()?;
            Ok(revoked)
        })
        .await
    }
    async fn create_sessions(&self, batch: &[(SessionRecord, TokenRef)]) -> StoreResult<()> {
        let batch = batch.to_vec();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (s, t) in &batch {
                insert_session(&tx, s, t)?;
            }
            tx.commit()
        })
        .await
    }
    async fn get_session(&self, sid: &str) -> StoreResult<Option<SessionRecord>> {
        let sid = sid.to_string();
        self.read(move |c| load_session(c, &sid)).await
    }
    async fn session_status(&self, sid: &str) -> StoreResult<Option<SessionStatus>> {
        let sid = sid.to_string();
        self.read(move |c| {
            c.prepare_cached(STATUS_SQL)?
                .query_row([&sid], |r| {
                    Ok(SessionStatus {
                        last_seen: r.get(0)?,
                        expires_at: r.get(1)?,
                        revoked: r.get(2)?,
                        mfa: r.get::<_, i64>(3)? != 0,
                    })
                })
                .optional()
        })
        .await
    }
    async fn list_sessions_page(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<SessionPage> {
        let user_id = user_id.to_string();
        let (ct, csid) = match cursor.map(parse_cursor).transpose()? {
            Some((t, sid)) => (t, Some(sid)),
            None => (i64::MAX, None),
        };
        let fetch = limit.saturating_add(1).min(i64::MAX as usize) as i64;
        self.read(move |c| {
            let mut out: Vec<SessionRecord> = c
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE user_id = ?1 \
                     AND (?4 IS NULL OR created_at < ?2 OR (created_at = ?2 AND sid < ?4)) \
                     ORDER BY created_at DESC, sid DESC LIMIT ?3"
                ))?
                .query_map(params![&user_id, ct, fetch, csid], row_to_session)?
                .collect::<Result<_, _>>()?;
            let more = out.len() > limit;
            out.truncate(limit);
            let mut ev = c.prepare_cached(
                "SELECT at, kind, detail FROM session_events WHERE sid = ?1 ORDER BY id",
            )?;
            for s in &mut out {
                s.events = ev
                    .query_map([&s.sid], |r| {
                        Ok(SessionEvent {
                            at: r.get(0)?,
                            kind: r.get(1)?,
                            detail: r.get(2)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
            }
            let next = if more {
                out.last().map(page_cursor)
            } else {
                None
            };
            Ok(SessionPage {
                sessions: out,
                next,
            })
        })
        .await
    }
    async fn token_records(&self, sid: &str) -> StoreResult<usize> {
        let sid = sid.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT (family IS NOT NULL) + (token_hash IS NOT NULL) + (prev_hash IS NOT NULL) \
                 + COALESCE(length(prev_chain) - length(replace(prev_chain, char(10), '')) + 1, 0) \
                 FROM sessions WHERE sid = ?1",
                [sid],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|n| n.unwrap_or(0) as usize)
        })
        .await
    }
    async fn lookup_refresh(
        &self,
        token: &TokenRef,
        now: i64,
        grace: i64,
        client: &str,
    ) -> StoreResult<Option<(SessionRecord, TokenPosition)>> {
        let token = token.clone();
        let client = client.to_string();
        self.read(move |c| {
            Ok(find_by_family(c, &token.family)?.map(|(s, t)| {
                let p = position_for(&s, &t, &token.hash, now, grace, &client);
                (s, p)
            }))
        })
        .await
    }
    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        let req = req.clone();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some((mut s, t)) = find_by_family(&tx, &req.presented.family)? else {
                return Ok(RotateOutcome::Unknown);
            };
            let sid = s.sid.clone();
            let out = match decide(&s, &t, &req) {
                Decision::Revoked => RotateOutcome::Revoked,
                Decision::Expired => {
                    revoke(&tx, &sid, "expired", req.now)?;
                    RotateOutcome::Expired
                }
                Decision::Reuse => {
                    revoke(&tx, &sid, "refresh_reused", req.now)?;
                    RotateOutcome::Reused { sid }
                }
                Decision::Grace(chain) => RotateOutcome::Grace { session: s, chain },
                Decision::Rotate => {
                    let older = t.older_after_rotation(&s, req.now, req.grace);
                    let older = (!older.is_empty()).then(|| GraceEntry::encode_all(&older));
                    s.generation += 1;
                    s.prev_rotated_at = Some(req.now);
                    s.prev_sealed = Some(req.sealed_successor.clone());
                    s.last_seen = req.now;
                    tx.prepare_cached(
                        "UPDATE sessions SET generation = ?2, prev_rotated_at = ?3, prev_sealed = ?4, \
                         last_seen = ?3, prev_hash = token_hash, token_hash = ?5, prev_client = ?6, \
                         prev_chain = ?7 WHERE sid = ?1",
                    )?
                    .execute(params![
                        sid,
                        s.generation,
                        req.now,
                        req.sealed_successor,
                        req.new_hash,
                        req.client,
                        older
                    ])?;
                    RotateOutcome::Rotated(s)
                }
            };
            tx.commit()?;
            Ok(out)
        })
        .await
    }
    async fn revoke_session(&self, sid: &str, reason: &str, now: i64) -> StoreResult<bool> {
        let (sid, reason) = (sid.to_string(), reason.to_string());
        self.write(move |c| revoke(c, &sid, &reason, now)).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<usize> {
        let (user_id, reason) = (user_id.to_string(), reason.to_string());
        self.write(move |c| {
            c.execute(
                "UPDATE sessions SET revoked_at = ?2, revoke_reason = ?3, vault_key = NULL \
                 WHERE user_id = ?1 AND revoked_at IS NULL",
                params![user_id, now, reason],
            )
        })
        .await
    }
    async fn update_client(
        &self,
        sid: &str,
        ua: &str,
        addr: &str,
        event: Option<&SessionEvent>,
    ) -> StoreResult<()> {
        let (sid, ua, addr, event) = (
            sid.to_string(),
            ua.to_string(),
            addr.to_string(),
            event.cloned(),
        );
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE sessions SET user_agent = ?2, address = ?3 WHERE sid = ?1",
                params![sid, ua, addr],
            )?;
            if let Some(e) = event {
                tx.execute(
                    "INSERT INTO session_events (sid, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                    params![sid, e.at, e.kind, e.detail],
                )?;
                tx.execute(
                    "DELETE FROM session_events WHERE sid = ?1 AND id NOT IN \
                     (SELECT id FROM session_events WHERE sid = ?1 ORDER BY id DESC LIMIT ?2)",
                    params![sid, MAX_EVENTS_PER_SESSION as i64],
                )?;
            }
            tx.commit()
        })
        .await
    }

    async fn put_ephemeral(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO ephemeral (key, value, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                params![key, value, expires_at],
            )
            .map(|_| ())
        })
        .await
    }
    async fn get_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.write(move |c| {
            c.query_row(
                "SELECT value FROM ephemeral WHERE key = ?1 AND expires_at > ?2",
                params![key, now],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }
    async fn take_ephemeral(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v: Option<String> = tx
                .query_row(
                    "SELECT value FROM ephemeral WHERE key = ?1 AND expires_at > ?2",
                    params![key, now],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute("DELETE FROM ephemeral WHERE key = ?1", [&key])?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        let key = key.to_string();
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM ephemeral WHERE expires_at <= ?1", [now])?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO ephemeral (key, value, expires_at) VALUES (?1, '1', ?2)",
                params![key, expires_at],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }
    async fn advance_counter(
        &self,
        key: &str,
        value: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let key = key.to_string();
        self.write(move |c| {
            let n = c.execute(
                "INSERT INTO ephemeral (key, value, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
                 WHERE ephemeral.expires_at <= ?4 \
                    OR CAST(ephemeral.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                params![key, value.to_string(), expires_at, now],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn shred(&self, now: i64, idle: i64, grace: i64) -> StoreResult<usize> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = tx.execute(
                "UPDATE sessions SET vault_key = NULL WHERE vault_key IS NOT NULL AND last_seen <= ?1",
                [now - idle],
            )?;
            n += tx.execute(
                "UPDATE sessions SET vault_key = NULL WHERE vault_key IS NOT NULL AND expires_at <= ?1",
                [now],
            )?;
            n += tx.execute(
                "UPDATE sessions SET prev_sealed = NULL, prev_chain = NULL \
                 WHERE prev_sealed IS NOT NULL AND prev_rotated_at < ?1",
                [now - grace],
            )?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn purge_expired(&self, now: i64, retention: i64) -> StoreResult<usize> {
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let cutoff = now - retention;
            tx.execute(
                "DELETE FROM session_events WHERE sid IN (SELECT sid FROM sessions WHERE expires_at < ?1)",
                [cutoff],
            )?;
            let n = tx.execute("DELETE FROM sessions WHERE expires_at < ?1", [cutoff])?;
            tx.execute("DELETE FROM ephemeral WHERE expires_at <= ?1", [now])?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-request liveness read touches one index and no table row, and answers from
    /// it what the table holds (revocation included, at once).
    #[tokio::test]
    async fn liveness_read_is_one_covering_index_lookup() {
        let path = std::env::temp_dir().join(format!(
            "tessera-status-plan-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let store = SqliteStore::open(&path).expect("open");
        let plan: Vec<String> = {
            let c = store.readers[0].lock().expect("reader");
            let mut q = c
                .prepare(&format!("EXPLAIN QUERY PLAN {STATUS_SQL}"))
                .expect("plan");
            q.query_map(["x"], |r| r.get::<_, String>(3))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("plan rows")
        };
        assert_eq!(
            plan,
            ["SEARCH sessions USING COVERING INDEX sessions_status (sid=?)"],
            "{plan:?}"
        );

        let user = UserRecord {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: "x".into(),
            totp_secret: None,
        };
        let s = SessionRecord::new("sid-1".into(), &user, 1_000, 3_600, true);
        let t = TokenRef {
            family: "fam-1".into(),
            hash: "hash-1".into(),
        };
        store
            .create_sessions(&[(s.clone(), t)])
            .await
            .expect("create");
        let status = store.session_status("sid-1").await.expect("read");
        assert_eq!(status, Some(SessionStatus::from(&s)));
        assert!(store
            .revoke_session("sid-1", "logout", 1_001)
            .await
            .expect("revoke"));
        let status = store
            .session_status("sid-1")
            .await
            .expect("read")
            .expect("row");
        assert!(status.revoked);
        assert_eq!(store.session_status("nope").await.expect("read"), None);
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}
