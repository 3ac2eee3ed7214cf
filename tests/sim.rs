//! Multi-tab simulation of the session engine.
//!
//! N tabs (1–32) of one origin share a virtual clock, a bus that delays, reorders, duplicates
//! and drops messages, `localStorage` (the shared record, reliable storage events, a vault), a
//! lock with Web Locks semantics (FIFO, bounded wait, steal, released when a tab dies), a cookie
//! jar, and a simulated server that rotates refresh tokens with reuse detection and the grace
//! rule of tessera-server (the immediate predecessor, within a short window, gets the
//! already-issued successor). Tabs open, close, crash, sleep (alone or the whole laptop), go
//! offline, and their users act. Each seed is one random schedule; after every step the
//! protocol properties listed here are checked:
//!
//! 1. one expiry ⇒ one refresh request per refresh token; a second presentation only after
//!    the first answer was lost or its tab died/slept, answered by the grace rule (10 s, the server's default);
//!    the protocol never trips reuse detection. A reuse *is* excused (and counted) when the
//!    answer carrying the successor was lost — or, in token mode, is stuck in a frozen tab —
//!    and the environment (offline, sleep) delayed the next request past the grace window;
//! 2. logout in any tab ⇒ every live tab without a token, and the vault empty, within one bus
//!    hop (or when it wakes);
//! 3. no idle logout before the deadline of the origin-wide true last activity (minus one
//!    `activity_throttle`: activity in a tab that died before publishing it); no tab signed in
//!    after the deadline once it re-read the shared record (timer slack: 2 ms);
//! 4. no tab goes back to an older token than one it has seen (by stamp, and by the server's
//!    rotation order within a family); no logout whose reason did not happen;
//! 5. nothing panics (also fed garbage bus messages and storage records).
//!
//! Plus liveness at the end of each run: no awake, online, signed-in tab holds a token that
//! expired more than two minutes ago. Each seed also varies cookie vs token mode, Web Locks
//! vs the claims fallback, a persistent vault vs memory only, MFA logins, 401s on API calls,
//! `Clear-Site-Data` on logout, and the order in which a thawing tab handles its queued events.
//!
//! `TESSERA_SIM_SEEDS=N` runs N seeds (default 10,000), from `TESSERA_SIM_FIRST` (default 0);
//! `TESSERA_SIM_SEED=S` replays one seed with its full trace. A failure prints the seed and a
//! readable trace (its last 400 lines).
#![cfg(not(target_arch = "wasm32"))]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use tessera::core::{
    merge_shared, Config, Effect, Engine, Event, Input, LogoutReason, Millis, Msg, RequestId,
    SessionState, Shared, Stamp, Tokens,
};

/// Adds a line to the trace, formatting only when tracing (replays of a failing seed).
macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {
        if $sim.trace.is_some() {
            let line = format!($($arg)*);
            $sim.log(line);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness (test-only; the engine itself gets entropy passed in).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario parameters.

/// Which safeguard a non-vacuity test switches off.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unsafe {
    None,
    Lock,
    Epoch,
    SharedActivity,
    AdoptOlder,
    /// Trust far-future timestamps from other tabs and storage.
    Clocks,
    /// Trust logout epochs however far they jump.
    Counters,
}

/// Largest constant clock skew of a tab against true time (either way). Kept under the
/// claims fallback's settle time (100 ms), which orders claims by their time; larger
/// differences are clock jumps.
const SKEW_MAX: Millis = 40;
/// How far a tab's clock may jump (either way) while it is wrong.
const JUMP_MAX: Millis = 365 * 24 * 3_600_000;

/// tessera-server's default `--refresh-grace` (10 s).
const GRACE: Millis = 10_000;
const MIN: Millis = 60_000;

struct Params {
    tabs_initial: usize,
    tabs_max: usize,
    duration: Millis,
    access_ttl: Millis,
    p_drop: f64,
    p_dup: f64,
    bus_delay_max: Millis,
    p_answer_lost: f64,
    vault: bool,
    web_locks: bool,
    /// Token mode: the refresh token travels in bodies and over the bus instead of a cookie.
    token_mode: bool,
    config: Config,
}

impl Params {
    fn random(rng: &mut Rng, unsafe_: Unsafe) -> Params {
        let idle = rng.range(3, 12) * MIN;
        let mut config = Config {
            idle_timeout: if rng.chance(0.85) { Some(idle) } else { None },
            idle_warning: rng.range(10, 60) * 1_000,
            absolute_lifetime: if rng.chance(0.3) {
                Some(rng.range(20, 60) * MIN)
            } else {
                None
            },
            refresh_lead: rng.range(10, 60) * 1_000,
            ..Config::default()
        };
        config.web_locks = !rng.chance(0.25);
        match unsafe_ {
            Unsafe::None => {}
            Unsafe::Lock => config.faults.disable_lock = true,
            Unsafe::Epoch => config.faults.disable_epoch = true,
            Unsafe::SharedActivity => config.faults.disable_shared_activity = true,
            Unsafe::AdoptOlder => config.faults.adopt_older = true,
            Unsafe::Clocks => config.faults.trust_clocks = true,
            Unsafe::Counters => config.faults.trust_counters = true,
        }
        let tabs_max = if rng.chance(0.1) {
            32
        } else {
            rng.range(1, 8) as usize
        };
        Params {
            tabs_initial: rng.range(1, tabs_max as u64) as usize,
            tabs_max,
            duration: rng.range(15, 45) * MIN,
            access_ttl: rng.range(1, 6) * MIN,
            p_drop: if rng.chance(0.5) {
                0.0
            } else {
                rng.range(1, 25) as f64 / 100.0
            },
            p_dup: rng.range(0, 10) as f64 / 100.0,
            bus_delay_max: rng.range(1, 50),
            p_answer_lost: if rng.chance(0.5) {
                0.0
            } else {
                rng.range(1, 15) as f64 / 100.0
            },
            vault: rng.chance(0.4),
            web_locks: config.web_locks,
            token_mode: rng.chance(0.3),
            config,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Token {
    family: u32,
    gen: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Revoked {
    No,
    ByUser,
    ByReuse,
}

struct Family {
    current: u32,
    rotated_at: Millis,
    revoked: Revoked,
    /// Presentations per generation: (request id, time).
    presented: BTreeMap<u32, Vec<(usize, Millis)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    Delivered,
    Lost,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    Refresh,
    Logout { everywhere: bool },
    Login,
}

struct Request {
    /// The engine's id for it (its answer carries it back).
    rid: RequestId,
    tab: usize,
    /// The tab slot's incarnation.
    gen: u32,
    kind: ReqKind,
    /// Whether, when it was sent, an earlier request presenting the same cookie had its answer
    /// lost or its tab dead or asleep (property 1's only excuse for a second presentation).
    excused_dup: bool,
    cookie: Option<Token>,
    fate: Fate,
}

#[derive(Clone)]
enum Answer {
    RefreshOk(Token),
    RefreshRejected(LogoutReason),
    Failed,
    LoginOk(Token),
    /// Password accepted, TOTP code required.
    Mfa,
    /// The login request failed (offline).
    LoginFailed,
    LogoutDone,
}

enum Ev {
    /// An input for a tab (queued while it sleeps).
    Deliver {
        tab: usize,
        gen: u32,
        input: SimInput,
    },
    /// A request reaches the server.
    Arrive { req: usize },
    /// An answer reaches the browser (cookie jar), then the tab.
    Answer { req: usize, answer: Answer },
    /// A waiting lock request times out.
    LockTimeout { tab: usize, gen: u32, ticket: u64 },
    /// A scheduled property check.
    Check(Check),
    /// A scripted action.
    Act(Action),
}

#[derive(Clone)]
enum SimInput {
    Bus(Vec<u8>),
    StorageEvent,
    LockGranted(RequestId),
    LockUnavailable(RequestId),
    LockLost(RequestId),
    Http(Answer, RequestId),
    /// `online` / `offline` (queued while the tab is frozen, like any event).
    Online(bool),
    /// A `storage` event for the vault record (another tab rewrote it).
    VaultEvent,
}

#[derive(Clone, Copy)]
enum Check {
    /// Property 2: a logout with `epoch` happened; the tab must be out by now (or at wake).
    LoggedOut { tab: usize, gen: u32, epoch: u64 },
}

#[derive(Clone, Copy)]
enum Action {
    Activity,
    StayActive,
    Login,
    Logout,
    Open,
    Close,
    Crash,
    Sleep,
    LaptopSleep,
    Offline,
    Garbage,
    /// The page calls an API with the current bearer token (401 if expired or revoked).
    ApiCall,
    /// The tab is hidden and shown again (focus), without being frozen.
    Focus,
    /// The MFA step of a login completes.
    MfaDone {
        tab: usize,
        gen: u32,
    },
    Wake {
        tab: usize,
        gen: u32,
    },
    Online {
        tab: usize,
        gen: u32,
    },
    LaptopWake,
    /// A tab's clock jumps ahead (up to a year) and is set back (corrected) later.
    ClockJump,
    ClockFix {
        tab: usize,
        gen: u32,
    },
    /// A well-formed but forged message on the bus, or record in storage: far-future times,
    /// an implausible logout epoch.
    Forge,
}

struct Tab {
    engine: Engine,
    /// `engine.next_deadline()` as of its last input (it only changes when fed).
    deadline: Option<Millis>,
    /// Incarnation counter: events for an earlier incarnation of this slot are void.
    gen: u32,
    alive: bool,
    asleep: bool,
    online: bool,
    inbox: VecDeque<SimInput>,
    /// Highest stamp of a token delivered to this tab (property 4).
    seen: Option<Stamp>,
    /// Highest generation held per family (property 4, server-side order).
    held_gen: BTreeMap<u32, u32>,
    /// When it last opened or woke.
    awake_since: Millis,
    /// When it last got an input after which the shared record is fresh.
    last_fresh: Millis,
    /// Pending property-2 checks to run when it wakes.
    wake_checks: Vec<u64>,
    /// The next login of this tab asks for a TOTP code.
    mfa_next: bool,
    /// Its clock minus true time: a small constant skew, or a jump while `jumped`.
    offset: i64,
    /// Its constant skew.
    skew: i64,
    /// Its clock jumped and is not corrected yet.
    jumped: bool,
}

struct Lock {
    /// Tab slot, incarnation, and the engine's id of the request that obtained it.
    holder: Option<(usize, u32, RequestId)>,
    /// Tab slot, incarnation, ticket, request id.
    queue: VecDeque<(usize, u32, u64, RequestId)>,
    next_ticket: u64,
}

struct Sim {
    p: Params,
    rng: Rng,
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<(Millis, u64, usize)>>,
    events: Vec<Option<Ev>>,
    tabs: Vec<Tab>,
    storage: Option<Vec<u8>>,
    vault: Option<Vec<u8>>,
    jar: Option<Token>,
    families: Vec<Family>,
    requests: Vec<Request>,
    lock: Lock,
    laptop_asleep: bool,
    /// Origin-wide true last activity (for property 3), and the session it belongs to.
    true_activity: Millis,
    /// The same, counting only activity in tabs whose clock was right (activity in a tab
    /// whose clock jumped cannot be dated by anyone: it may be lost, never invented).
    datable_activity: Millis,
    /// When the last scheduled wake / back-online happens (the run goes on long enough after
    /// it for the end-of-run liveness check to be fair).
    recovered_by: Millis,
    /// Last time the user asked to log out (no login right after, see `act_login`).
    last_logout_req: Millis,
    trace: Option<Vec<String>>,
    violation: Option<String>,
    stats: SimStats,
    next_tab_id: u64,
}

#[derive(Default, Clone, Copy)]
struct SimStats {
    /// A seed in which an excused reuse happened (for inspection with `TESSERA_SIM_SEED`).
    excused_seed: Option<u64>,
    refreshes: u64,
    grace_answers: u64,
    excused_reuse: u64,
    logouts_checked: u64,
    idle_logouts: u64,
    steps: u64,
    feeds: u64,
    /// Clock jumps, and idle logouts by tabs whose clock had jumped ahead.
    jumps: u64,
    jump_logouts: u64,
    /// Forged messages and records, and values the engines found implausible.
    forged: u64,
}

fn fmt_token(t: Token) -> String {
    format!("F{}g{}", t.family, t.gen)
}

fn parse_token(s: &str) -> Option<Token> {
    let rest = s.strip_prefix('F')?;
    let (f, g) = rest.split_once('g')?;
    Some(Token {
        family: f.parse().ok()?,
        gen: g.parse().ok()?,
    })
}

/// A bus message or stored record, decoded for the trace.
fn decoded<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, E>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("garbage({e:?})"),
    }
}

impl Sim {
    fn new(seed: u64, unsafe_: Unsafe, trace: bool) -> Sim {
        let mut rng = Rng(seed);
        let p = Params::random(&mut rng, unsafe_);
        let mut sim = Sim {
            p,
            rng,
            now: 1_764_000_000_000,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            tabs: Vec::new(),
            storage: None,
            vault: None,
            jar: None,
            families: Vec::new(),
            requests: Vec::new(),
            lock: Lock {
                holder: None,
                queue: VecDeque::new(),
                next_ticket: 0,
            },
            laptop_asleep: false,
            true_activity: 0,
            datable_activity: 0,
            last_logout_req: 0,
            recovered_by: 0,
            trace: if trace { Some(Vec::new()) } else { None },
            violation: None,
            stats: SimStats::default(),
            next_tab_id: 1,
        };
        sim.log(format!(
            "seed {seed}: tabs {}..{} ttl={}s idle={:?}s warn={}s abs={:?}s lead={}s drop={} dup={} answer_lost={} vault={} web_locks={} token_mode={}",
            sim.p.tabs_initial,
            sim.p.tabs_max,
            sim.p.access_ttl / 1000,
            sim.p.config.idle_timeout.map(|t| t / 1000),
            sim.p.config.idle_warning / 1000,
            sim.p.config.absolute_lifetime.map(|t| t / 1000),
            sim.p.config.refresh_lead / 1000,
            sim.p.p_drop,
            sim.p.p_dup,
            sim.p.p_answer_lost,
            sim.p.vault,
            sim.p.web_locks,
            sim.p.token_mode
        ));
        sim
    }

    fn log(&mut self, line: String) {
        if let Some(t) = &mut self.trace {
            t.push(format!(
                "{:>9.3}s {line}",
                (self.now - 1_764_000_000_000) as f64 / 1000.0
            ));
        }
    }

    fn fail(&mut self, what: String) {
        if self.violation.is_none() {
            trace!(self, "VIOLATION: {what}");
            self.violation = Some(what);
        }
    }

    fn schedule(&mut self, at: Millis, ev: Ev) {
        self.seq += 1;
        self.events.push(Some(ev));
        self.queue
            .push(Reverse((at, self.seq, self.events.len() - 1)));
    }

    /// Tab `i`'s clock now (true time plus its skew, or its jump).
    fn tab_now(&self, i: usize) -> Millis {
        self.now.saturating_add_signed(self.tabs[i].offset)
    }

    /// The true time at which tab `i`'s clock reads `t`.
    fn true_time(&self, i: usize, t: Millis) -> Millis {
        t.saturating_add_signed(-self.tabs[i].offset)
    }

    /// The slack property 3 allows between tabs' clocks: two skews (sender ahead, receiver
    /// behind) and the tolerance a far-ahead value is clamped to.
    fn clock_slack(&self) -> Millis {
        2 * SKEW_MAX + tessera::core::wire::shared::CLOCK_TOLERANCE
    }

    fn alive_awake(&self, i: usize) -> bool {
        self.tabs[i].alive && !self.tabs[i].asleep
    }

    // -- the schedule -------------------------------------------------------------------------

    fn script(&mut self) {
        for _ in 0..self.p.tabs_initial {
            self.open_tab();
        }
        // The first user logs in shortly after start.
        let t = self.now + self.rng.range(100, 5_000);
        self.schedule(t, Ev::Act(Action::Login));
        // A random mixture of actions over the run, then a calm tail with no faults.
        let end = self.now + self.p.duration;
        let mut t = self.now;
        // The user works in bursts separated by breaks (some longer than the idle timeout).
        loop {
            t += self.rng.range(1_000, 40_000);
            if t >= end {
                break;
            }
            let roll = self.rng.range(0, 1000);
            let a = match roll {
                0..=549 => Action::Activity,
                550..=579 => Action::StayActive,
                580..=629 => Action::Login,
                630..=654 => Action::Logout,
                655..=704 => Action::Open,
                705..=729 => Action::Close,
                730..=749 => Action::Crash,
                750..=799 => Action::Sleep,
                800..=809 => Action::LaptopSleep,
                810..=859 => Action::Offline,
                860..=879 => Action::Garbage,
                880..=929 => Action::ApiCall,
                930..=949 => Action::Focus,
                950..=959 => Action::ClockJump,
                960..=974 => Action::Forge,
                _ => {
                    // A break: no action for a while.
                    t += self.rng.range(1, 15) * MIN;
                    continue;
                }
            };
            self.schedule(t, Ev::Act(a));
        }
    }

    fn run(&mut self) {
        self.script();
        let end = self.now + self.p.duration;
        let mut hard_end = end + 30 * MIN;
        let mut steps = 0u32;
        while self.violation.is_none() {
            steps += 1;
            if steps > 400_000 {
                self.fail("simulation did not settle (livelock?)".into());
                break;
            }
            // The next thing: an event, or the earliest tab timer.
            let next_ev = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = (0..self.tabs.len())
                .filter(|&i| self.alive_awake(i))
                .filter_map(|i| {
                    self.tabs[i]
                        .deadline
                        .map(|d| (self.true_time(i, d).max(self.now), i))
                })
                .min();
            let take_timer = match (next_ev, next_timer) {
                (None, None) => break,
                (Some(e), Some((t, _))) => t <= e,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            if take_timer {
                let (t, i) = next_timer.unwrap_or((self.now, 0));
                hard_end = hard_end.max(self.recovered_by + 10 * MIN);
                if t > hard_end {
                    break;
                }
                self.now = t;
                self.timer(i);
            } else {
                let Some(Reverse((t, _, idx))) = self.queue.pop() else {
                    break;
                };
                hard_end = hard_end.max(self.recovered_by + 10 * MIN);
                if t > hard_end {
                    break;
                }
                self.now = self.now.max(t);
                if let Some(ev) = self.events[idx].take() {
                    self.event(ev);
                }
            }
            self.check_always();
        }
        self.stats.steps += u64::from(steps);
        if self.violation.is_none() {
            self.check_end();
        }
    }

    // -- feeding tabs -------------------------------------------------------------------------

    fn feed(&mut self, i: usize, input: Input) {
        if let Some(tr) = &self.trace {
            let _ = tr;
            let name = match &input {
                Input::Bus(b) => format!("Bus({})", decoded(Msg::decode(b))),
                Input::Shared(Some(b)) => format!("Shared({})", decoded(Shared::decode(b))),
                Input::Restore(_) => "Restore".into(),
                other => format!("{other:?}"),
            };
            let id = self.tabs[i].engine.tab_id();
            trace!(self, "tab{i}(t{id}) <- {name}");
        }
        let now = self.now;
        self.stats.feeds += 1;
        if matches!(
            input,
            Input::Timer | Input::Shared(_) | Input::LockGranted { .. } | Input::Visibility(true)
        ) {
            self.tabs[i].last_fresh = now;
        }
        let tab_now = self.tab_now(i);
        self.tabs[i].engine.handle(tab_now, input);
        self.tabs[i].deadline = self.tabs[i].engine.next_deadline();
        self.drain(i);
        self.check_tab(i);
    }

    fn timer(&mut self, i: usize) {
        let s = self.storage.clone();
        self.feed(i, Input::Shared(s));
        self.feed(i, Input::Timer);
    }

    fn deliver(&mut self, i: usize, input: SimInput) {
        if !self.tabs[i].alive {
            return;
        }
        if self.tabs[i].asleep {
            self.tabs[i].inbox.push_back(input);
            return;
        }
        match input {
            SimInput::Bus(b) => {
                if let Ok(Msg::Token { meta, .. }) = Msg::decode(&b) {
                    // Property 4 bookkeeping: the tab has now seen this token.
                    let seen = &mut self.tabs[i].seen;
                    if seen.is_none_or(|s| meta.stamp > s) {
                        *seen = Some(meta.stamp);
                    }
                }
                self.feed(i, Input::Bus(b));
            }
            SimInput::StorageEvent => {
                let s = self.storage.clone();
                self.feed(i, Input::Shared(s));
            }
            SimInput::LockGranted(id) => {
                let s = self.storage.clone();
                self.feed(i, Input::Shared(s));
                self.feed(i, Input::LockGranted { id });
            }
            SimInput::LockUnavailable(id) => self.feed(i, Input::LockUnavailable { id }),
            SimInput::LockLost(id) => self.feed(i, Input::LockLost { id }),
            SimInput::Online(o) => self.feed(i, Input::Online(o)),
            SimInput::VaultEvent => {
                if let Some(v) = self.vault.clone() {
                    self.feed(i, Input::Restore(v));
                }
            }
            SimInput::Http(a, id) => {
                let tokens = |s: &Sim, t: Token| Tokens {
                    access_token: fmt_token(t),
                    expires_in_ms: s.p.access_ttl,
                    refresh_token: s.p.token_mode.then(|| fmt_token(t)),
                    session: Some(format!("F{}", t.family)),
                    user: None,
                };
                let input = match a {
                    Answer::RefreshOk(t) => Input::RefreshSucceeded {
                        id,
                        tokens: tokens(self, t),
                    },
                    Answer::RefreshRejected(reason) => Input::RefreshRejected { id, reason },
                    Answer::Failed => Input::RefreshFailed {
                        id,
                        retry_after: None,
                    },
                    Answer::LoginOk(t) => {
                        // A login is user activity.
                        self.true_activity = self.true_activity.max(self.now);
                        self.datable_activity = self.datable_activity.max(self.now);
                        Input::LoginSucceeded {
                            id,
                            tokens: tokens(self, t),
                        }
                    }
                    Answer::Mfa => Input::MfaRequired { id },
                    Answer::LoginFailed => Input::LoginFailed { id },
                    Answer::LogoutDone => Input::LogoutAnswered { id },
                };
                self.feed(i, input);
            }
        }
    }

    fn drain(&mut self, i: usize) {
        while let Some(effect) = self.tabs[i].engine.poll_effect() {
            if self.trace.is_some() {
                let d = match &effect {
                    Effect::Broadcast(b) => format!("Broadcast({})", decoded(Msg::decode(b))),
                    Effect::PersistShared(b) => {
                        format!("PersistShared({})", decoded(Shared::decode(b)))
                    }
                    Effect::StoreToken(_) => "StoreToken".into(),
                    other => format!("{other:?}"),
                };
                trace!(self, "tab{i}    -> {d}");
            }
            self.perform(i, effect);
        }
    }

    fn perform(&mut self, i: usize, effect: Effect) {
        let gen = self.tabs[i].gen;
        match effect {
            Effect::SendLogin { id } => {
                if std::mem::take(&mut self.tabs[i].mfa_next) {
                    // Password accepted, TOTP code required; the user types it a bit later.
                    let at = self.now + self.rng.range(50, 400);
                    self.schedule(
                        at,
                        Ev::Deliver {
                            tab: i,
                            gen,
                            input: SimInput::Http(Answer::Mfa, id),
                        },
                    );
                    let at = at + self.rng.range(2_000, 30_000);
                    self.schedule(at, Ev::Act(Action::MfaDone { tab: i, gen }));
                } else {
                    let jar = self.jar;
                    self.send(i, ReqKind::Login, jar, id);
                }
            }
            Effect::SendRefresh { id, refresh_token } => {
                self.stats.refreshes += 1;
                let presented = self.presented(refresh_token);
                self.send(i, ReqKind::Refresh, presented, id);
            }
            Effect::SendLogout {
                id,
                everywhere,
                refresh_token,
                ..
            } => {
                self.last_logout_req = self.now;
                let presented = self.presented(refresh_token);
                self.send(i, ReqKind::Logout { everywhere }, presented, id);
            }
            Effect::AcquireLock { id, wait, steal } => self.lock_request(i, gen, id, wait, steal),
            Effect::ReleaseLock => {
                if self.lock.holder.is_some_and(|(t, g, _)| (t, g) == (i, gen)) {
                    self.lock.holder = None;
                    self.lock_grant_next();
                }
            }
            Effect::Broadcast(bytes) => {
                if let Ok(Msg::Logout { epoch, .. }) = Msg::decode(&bytes) {
                    self.logout_happened(i, epoch);
                }
                for j in 0..self.tabs.len() {
                    if j == i || !self.tabs[j].alive {
                        continue;
                    }
                    if self.rng.chance(self.p.p_drop) {
                        continue;
                    }
                    let copies = if self.rng.chance(self.p.p_dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        let at = self.now + self.rng.range(0, self.p.bus_delay_max);
                        let g = self.tabs[j].gen;
                        self.schedule(
                            at,
                            Ev::Deliver {
                                tab: j,
                                gen: g,
                                input: SimInput::Bus(bytes.clone()),
                            },
                        );
                    }
                }
            }
            Effect::PersistShared(bytes) => {
                let writer_now = self.tab_now(i);
                self.storage = Some(merge_shared(self.storage.as_deref(), &bytes, writer_now));
                self.storage_event(i);
            }
            Effect::StoreToken(bytes) => {
                if self.p.vault {
                    self.vault = Some(bytes);
                    for j in 0..self.tabs.len() {
                        if j != i && self.tabs[j].alive {
                            let at = self.now + self.rng.range(0, 20);
                            let g = self.tabs[j].gen;
                            self.schedule(
                                at,
                                Ev::Deliver {
                                    tab: j,
                                    gen: g,
                                    input: SimInput::VaultEvent,
                                },
                            );
                        }
                    }
                }
            }
            // A tab-only wipe leaves what the origin shares (the vault) to the newer session.
            Effect::Wipe { tab_only } => {
                if !tab_only {
                    self.vault = None;
                }
            }
            Effect::Emit(ev) => self.on_event(i, ev),
        }
    }

    fn storage_event(&mut self, from: usize) {
        for j in 0..self.tabs.len() {
            if j != from && self.tabs[j].alive {
                let at = self.now + self.rng.range(0, 20);
                let g = self.tabs[j].gen;
                self.schedule(
                    at,
                    Ev::Deliver {
                        tab: j,
                        gen: g,
                        input: SimInput::StorageEvent,
                    },
                );
            }
        }
    }

    fn on_event(&mut self, i: usize, ev: Event) {
        match ev {
            Event::Logout { reason } => {
                let allowed = match reason {
                    LogoutReason::User | LogoutReason::Everywhere | LogoutReason::Idle => true,
                    LogoutReason::Expired => self.p.config.absolute_lifetime.is_some(),
                    // Another tab's logout carries its reason; a revocation must come from
                    // the server for a real reason (a user logout), never from the protocol.
                    LogoutReason::Revoked | LogoutReason::Reused => {
                        self.families.iter().any(|f| f.revoked == Revoked::ByUser)
                            || self.stats.excused_reuse > 0
                    }
                    LogoutReason::Cleared => self.last_logout_req > 0,
                    // Token mode only: the newest refresh token died with a crashed tab.
                    LogoutReason::Lost => self.p.token_mode,
                    _ => false,
                };
                if !allowed {
                    self.fail(format!(
                        "tab{i}: false logout with reason {}",
                        reason.as_str()
                    ));
                }
                if reason == LogoutReason::Idle {
                    self.stats.idle_logouts += 1;
                }
            }
            Event::Idle => {
                // Property 3: an idle logout only after the deadline of the true last activity
                // (± one throttle interval for activity a tab had not published yet).
                if self.tabs[i].jumped {
                    // A tab whose clock jumped ahead may idle out (no monotonic clock here);
                    // what it must not do is move anybody else's deadline.
                    self.stats.jump_logouts += 1;
                } else if let Some(timeout) = self.p.config.idle_timeout {
                    let slack = self.p.config.activity_throttle + 2 * SKEW_MAX;
                    if self.now + slack < self.datable_activity + timeout {
                        let early = self.datable_activity + timeout - self.now;
                        self.fail(format!(
                            "tab{i}: idle logout {early} ms before the deadline (last activity {} ms ago)",
                            self.now - self.datable_activity
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    // -- network and server -------------------------------------------------------------------

    /// The refresh token a request presents: the cookie, or in token mode the body's token.
    fn presented(&self, body: Option<String>) -> Option<Token> {
        if self.p.token_mode {
            body.as_deref().and_then(parse_token)
        } else {
            self.jar
        }
    }

    fn send(&mut self, i: usize, kind: ReqKind, cookie: Option<Token>, rid: RequestId) {
        let gen = self.tabs[i].gen;
        let id = self.requests.len();
        let excused_dup = kind == ReqKind::Refresh
            && cookie.is_some()
            && (0..id).any(|r| {
                self.requests[r].kind == ReqKind::Refresh
                    && self.requests[r].cookie == cookie
                    && self.excused(r)
            });
        self.requests.push(Request {
            rid,
            tab: i,
            gen,
            kind,
            cookie,
            fate: Fate::Pending,
            excused_dup,
        });
        if !self.tabs[i].online {
            // fetch fails at once.
            self.requests[id].fate = Fate::Delivered;
            let at = self.now + 1;
            self.schedule(
                at,
                Ev::Deliver {
                    tab: i,
                    gen,
                    input: SimInput::Http(
                        if kind == ReqKind::Login {
                            Answer::LoginFailed
                        } else {
                            Answer::Failed
                        },
                        rid,
                    ),
                },
            );
            return;
        }
        let at = self.now + self.rng.range(2, 150);
        self.schedule(at, Ev::Arrive { req: id });
    }

    fn arrive(&mut self, id: usize) {
        let now = self.now;
        let answer = match self.requests[id].kind {
            ReqKind::Login => {
                let family = self.families.len() as u32;
                self.families.push(Family {
                    current: 0,
                    rotated_at: now,
                    revoked: Revoked::No,
                    presented: BTreeMap::new(),
                });
                Answer::LoginOk(Token { family, gen: 0 })
            }
            ReqKind::Logout { everywhere } => {
                if everywhere {
                    for f in &mut self.families {
                        if f.revoked == Revoked::No {
                            f.revoked = Revoked::ByUser;
                        }
                    }
                } else if let Some(c) = self.requests[id].cookie {
                    let f = &mut self.families[c.family as usize];
                    if f.revoked == Revoked::No {
                        f.revoked = Revoked::ByUser;
                    }
                }
                Answer::LogoutDone
            }
            ReqKind::Refresh => self.server_refresh(id),
        };
        let lost = self.rng.chance(self.p.p_answer_lost);
        let at = now + self.rng.range(2, 150);
        if lost {
            self.requests[id].fate = Fate::Lost;
            trace!(self, "net: answer to request {id} is lost");
            // Half of the lost answers surface as a network error, half hang (request timeout).
            if self.rng.chance(0.5) && self.requests[id].kind == ReqKind::Refresh {
                let (tab, gen, rid) = (
                    self.requests[id].tab,
                    self.requests[id].gen,
                    self.requests[id].rid,
                );
                self.schedule(
                    at,
                    Ev::Deliver {
                        tab,
                        gen,
                        input: SimInput::Http(Answer::Failed, rid),
                    },
                );
            }
        } else {
            self.schedule(at, Ev::Answer { req: id, answer });
        }
    }

    fn server_refresh(&mut self, id: usize) -> Answer {
        let now = self.now;
        let Some(tok) = self.requests[id].cookie else {
            return Answer::RefreshRejected(LogoutReason::Revoked);
        };
        let tab = self.requests[id].tab;
        let fi = tok.family as usize;
        self.families[fi]
            .presented
            .entry(tok.gen)
            .or_default()
            .push((id, now));
        let presentations = self.families[fi].presented[&tok.gen].clone();
        if self.families[fi].revoked != Revoked::No {
            return Answer::RefreshRejected(LogoutReason::Revoked);
        }
        let current = self.families[fi].current;
        let answer = if tok.gen == current {
            self.families[fi].current += 1;
            self.families[fi].rotated_at = now;
            Answer::RefreshOk(Token {
                family: tok.family,
                gen: current + 1,
            })
        } else if tok.gen + 1 == current && now - self.families[fi].rotated_at <= GRACE {
            self.stats.grace_answers += 1;
            Answer::RefreshOk(Token {
                family: tok.family,
                gen: current,
            })
        } else {
            // Reuse detection: the whole family is revoked.
            let immediate = tok.gen + 1 == current;
            self.families[fi].revoked = Revoked::ByReuse;
            let first = presentations.first().map(|p| p.0);
            if immediate && self.successor_lost(tok) {
                // The answer carrying the successor was lost (or is stuck in a frozen tab) and
                // the next request came after the grace window: an environment failure.
                self.stats.excused_reuse += 1;
                trace!(
                    self,
                    "server: reuse of {} outside grace after a lost answer (excused)",
                    fmt_token(tok)
                );
            } else {
                self.fail(format!(
                    "property 1: request {id} from tab{tab} presented superseded refresh token {} (current g{current}, first presented by request {first:?}) -> family revoked",
                    fmt_token(tok)
                ));
            }
            return Answer::RefreshRejected(LogoutReason::Reused);
        };
        // Property 1: a second presentation of the same token is allowed only when the answer
        // to an earlier one was lost, or its tab died or slept before handling it.
        if presentations.len() > 1 && !self.requests[id].excused_dup {
            {
                let (r0, t0) = presentations[0];
                let t0tab = self.requests[r0].tab;
                self.fail(format!(
                    "property 1: refresh token {} presented {} times (request {r0} by tab{t0tab} at {} ms, now request {id} by tab{tab}) while the first answer was handled normally",
                    fmt_token(tok),
                    presentations.len(),
                    t0 - 1_764_000_000_000
                ));
            }
        }
        answer
    }

    /// Whether the answer of request `r` was lost or never handled by a live, awake tab.
    fn excused(&self, r: usize) -> bool {
        let req = &self.requests[r];
        let here = self.tabs[req.tab].gen == req.gen && self.alive_awake(req.tab);
        match req.fate {
            Fate::Lost => true,
            Fate::Pending => !here,
            Fate::Delivered => false,
        }
    }

    fn net_error(&mut self, id: usize, processed: bool) {
        trace!(
            self,
            "net: request {id} fails in flight (laptop asleep; processed by server: {processed})"
        );
        if processed {
            self.requests[id].fate = Fate::Lost;
        }
        let (tab, gen, rid) = (
            self.requests[id].tab,
            self.requests[id].gen,
            self.requests[id].rid,
        );
        if self.requests[id].kind == ReqKind::Refresh {
            self.schedule(
                self.now,
                Ev::Deliver {
                    tab,
                    gen,
                    input: SimInput::Http(Answer::Failed, rid),
                },
            );
        }
    }

    /// Whether the answer carrying `tok`'s successor never reached a live, awake tab: lost on
    /// the network, or (token mode: the successor exists only in that tab's memory) stuck in a
    /// tab that froze or died before handling it.
    fn successor_lost(&self, tok: Token) -> bool {
        self.families[tok.family as usize]
            .presented
            .get(&tok.gen)
            .is_some_and(|p| p.iter().any(|&(r, _)| self.excused(r)))
    }

    fn answer(&mut self, id: usize, answer: Answer) {
        // The browser's network stack applies Set-Cookie even when the tab is frozen or gone.
        match &answer {
            Answer::RefreshOk(t) | Answer::LoginOk(t)
                if !self.p.token_mode
                    && self
                        .jar
                        .is_none_or(|c| c.family != t.family || c.gen < t.gen) =>
            {
                self.jar = Some(*t);
            }
            Answer::LogoutDone => {
                // Expired cookie + Clear-Site-Data: "cookies", "storage".
                self.jar = None;
                self.storage = None;
                self.vault = None;
                self.log("server: Clear-Site-Data (cookies, storage)".into());
                self.storage_event(usize::MAX);
            }
            _ => {}
        }
        let (tab, gen, rid) = (
            self.requests[id].tab,
            self.requests[id].gen,
            self.requests[id].rid,
        );
        if self.tabs[tab].alive && self.tabs[tab].gen == gen {
            if !self.tabs[tab].asleep {
                self.requests[id].fate = Fate::Delivered;
            }
            self.schedule(
                self.now,
                Ev::Deliver {
                    tab,
                    gen,
                    input: SimInput::Http(answer, rid),
                },
            );
        } else {
            self.requests[id].fate = Fate::Lost;
        }
    }

    // -- the lock (Web Locks semantics) ---------------------------------------------------------

    fn lock_request(&mut self, i: usize, gen: u32, id: RequestId, wait: Millis, steal: bool) {
        // A new request replaces the tab's earlier one (as the browser driver does).
        self.lock
            .queue
            .retain(|&(t, g, _, _)| !(t == i && g == gen));
        if steal {
            if let Some((h, hg, hid)) = self.lock.holder.take() {
                if (h, hg) != (i, gen) {
                    self.schedule(
                        self.now,
                        Ev::Deliver {
                            tab: h,
                            gen: hg,
                            input: SimInput::LockLost(hid),
                        },
                    );
                }
            }
            self.lock.holder = Some((i, gen, id));
            self.schedule(
                self.now,
                Ev::Deliver {
                    tab: i,
                    gen,
                    input: SimInput::LockGranted(id),
                },
            );
            return;
        }
        if self.lock.holder.is_none() {
            self.lock.holder = Some((i, gen, id));
            self.schedule(
                self.now,
                Ev::Deliver {
                    tab: i,
                    gen,
                    input: SimInput::LockGranted(id),
                },
            );
            return;
        }
        self.lock.next_ticket += 1;
        let ticket = self.lock.next_ticket;
        self.lock.queue.push_back((i, gen, ticket, id));
        self.schedule(
            self.now + wait,
            Ev::LockTimeout {
                tab: i,
                gen,
                ticket,
            },
        );
    }

    fn lock_grant_next(&mut self) {
        while self.lock.holder.is_none() {
            let Some((i, gen, _, id)) = self.lock.queue.pop_front() else {
                return;
            };
            if self.tabs[i].alive && self.tabs[i].gen == gen {
                self.lock.holder = Some((i, gen, id));
                self.schedule(
                    self.now,
                    Ev::Deliver {
                        tab: i,
                        gen,
                        input: SimInput::LockGranted(id),
                    },
                );
            }
        }
    }

    fn lock_drop_tab(&mut self, i: usize) {
        let gen = self.tabs[i].gen;
        self.lock
            .queue
            .retain(|&(t, g, _, _)| !(t == i && g == gen));
        if self.lock.holder.is_some_and(|(t, g, _)| (t, g) == (i, gen)) {
            self.lock.holder = None;
            self.lock_grant_next();
        }
    }

    // -- events and actions ---------------------------------------------------------------------

    fn event(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { tab, gen, input } => {
                if self.tabs[tab].gen == gen {
                    self.deliver(tab, input);
                }
            }
            // While the laptop sleeps the network is down: requests and answers in flight are
            // lost and surface as network errors when it wakes.
            Ev::Arrive { req } => {
                if self.laptop_asleep {
                    self.net_error(req, false);
                } else {
                    self.arrive(req);
                }
            }
            Ev::Answer { req, answer } => {
                if self.laptop_asleep {
                    self.net_error(req, true);
                } else {
                    self.answer(req, answer);
                }
            }
            Ev::LockTimeout { tab, gen, ticket } => {
                let timed_out = self.lock.queue.iter().find(|q| q.2 == ticket).map(|q| q.3);
                if let Some(id) = timed_out {
                    self.lock.queue.retain(|&(_, _, t, _)| t != ticket);
                    self.schedule(
                        self.now,
                        Ev::Deliver {
                            tab,
                            gen,
                            input: SimInput::LockUnavailable(id),
                        },
                    );
                }
            }
            Ev::Check(c) => self.check(c),
            Ev::Act(a) => self.act(a),
        }
    }

    fn random_tab(&mut self, pred: impl Fn(&Sim, usize) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.tabs.len()).filter(|&i| pred(self, i)).collect();
        if candidates.is_empty() {
            None
        } else {
            Some(candidates[self.rng.pick(candidates.len())])
        }
    }

    fn open_tab(&mut self) {
        let live = self.tabs.iter().filter(|t| t.alive).count();
        if live >= self.p.tabs_max {
            return;
        }
        let id = self.next_tab_id;
        self.next_tab_id += 1;
        let seed = self.rng.next();
        let skew = self.rng.range(0, 2 * SKEW_MAX) as i64 - SKEW_MAX as i64;
        let engine = Engine::new(
            self.p.config.clone(),
            id,
            seed,
            self.now.saturating_add_signed(skew),
        );
        // Reuse a dead slot or add one.
        let slot = match (0..self.tabs.len()).find(|&i| !self.tabs[i].alive) {
            Some(s) => {
                let g = self.tabs[s].gen + 1;
                self.tabs[s] = Tab::new(engine, g, skew);
                s
            }
            None => {
                self.tabs.push(Tab::new(engine, 0, skew));
                self.tabs.len() - 1
            }
        };
        trace!(self, "tab{slot}(t{id}) opens");
        self.tabs[slot].awake_since = self.now;
        let s = self.storage.clone();
        self.feed(slot, Input::Shared(s));
        if let Some(v) = self.vault.clone() {
            self.feed(slot, Input::Restore(v));
        }
        self.feed(slot, Input::Resume);
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Activity | Action::StayActive => {
                if self.laptop_asleep {
                    return;
                }
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i)) else {
                    return;
                };
                let signed_in = self.tabs[i].engine.access_token().is_some();
                if signed_in {
                    self.true_activity = self.true_activity.max(self.now);
                    if !self.tabs[i].jumped {
                        self.datable_activity = self.datable_activity.max(self.now);
                    }
                }
                let input = if matches!(a, Action::StayActive) {
                    Input::StayActive
                } else {
                    Input::Activity
                };
                self.feed(i, input);
            }
            Action::Login => {
                // No login right after a logout request (its Clear-Site-Data would wipe the new
                // session's cookie: a real race of the server contract, not of the engine).
                if self.laptop_asleep || self.now < self.last_logout_req + 2_000 {
                    return;
                }
                let Some(i) = self.random_tab(|s, i| {
                    s.alive_awake(i)
                        && s.tabs[i].online
                        && !s.tabs[i].jumped
                        && s.tabs[i].engine.access_token().is_none()
                }) else {
                    return;
                };
                trace!(self, "user logs in in tab{i}");
                // Some users need a TOTP code after the password.
                self.tabs[i].mfa_next = self.rng.chance(0.2);
                self.feed(i, Input::LoginStarted);
            }
            Action::Logout => {
                if self.laptop_asleep {
                    return;
                }
                let Some(i) = self.random_tab(|s, i| {
                    s.alive_awake(i) && s.tabs[i].engine.access_token().is_some()
                }) else {
                    return;
                };
                let everywhere = self.rng.chance(0.2);
                trace!(self, "user logs out in tab{i} (everywhere={everywhere})");
                self.feed(i, Input::Logout { everywhere });
            }
            Action::Open => {
                if !self.laptop_asleep {
                    self.open_tab();
                }
            }
            Action::Close | Action::Crash => {
                let Some(i) = self.random_tab(|s, i| s.tabs[i].alive) else {
                    return;
                };
                trace!(
                    self,
                    "tab{i} {}",
                    if matches!(a, Action::Close) {
                        "closes"
                    } else {
                        "crashes"
                    }
                );
                self.lock_drop_tab(i);
                self.tabs[i].alive = false;
                // Its pending requests: answers go nowhere (cookies still apply).
            }
            Action::Sleep => {
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i)) else {
                    return;
                };
                let dur = if self.rng.chance(0.7) {
                    self.rng.range(1_000, 60_000)
                } else {
                    self.rng.range(1, 30) * MIN
                };
                trace!(self, "tab{i} sleeps for {} s", dur / 1000);
                self.tabs[i].asleep = true;
                let g = self.tabs[i].gen;
                self.recovered_by = self.recovered_by.max(self.now + dur);
                self.schedule(self.now + dur, Ev::Act(Action::Wake { tab: i, gen: g }));
            }
            Action::LaptopSleep => {
                if self.laptop_asleep {
                    return;
                }
                let dur = self.rng.range(1, 40) * MIN;
                trace!(self, "laptop sleeps for {} min", dur / MIN);
                self.laptop_asleep = true;
                for i in 0..self.tabs.len() {
                    if self.tabs[i].alive {
                        self.tabs[i].asleep = true;
                    }
                }
                self.recovered_by = self.recovered_by.max(self.now + dur);
                self.schedule(self.now + dur, Ev::Act(Action::LaptopWake));
            }
            Action::LaptopWake => {
                self.log("laptop wakes".into());
                self.laptop_asleep = false;
                for i in 0..self.tabs.len() {
                    if self.tabs[i].alive && self.tabs[i].asleep {
                        self.wake(i);
                    }
                }
            }
            Action::Wake { tab, gen } => {
                if self.tabs[tab].gen == gen
                    && self.tabs[tab].alive
                    && self.tabs[tab].asleep
                    && !self.laptop_asleep
                {
                    self.wake(tab);
                }
            }
            Action::Offline => {
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i) && s.tabs[i].online) else {
                    return;
                };
                let dur = self.rng.range(1_000, 5 * MIN);
                trace!(self, "tab{i} offline for {} s", dur / 1000);
                self.tabs[i].online = false;
                self.feed(i, Input::Online(false));
                let g = self.tabs[i].gen;
                self.recovered_by = self.recovered_by.max(self.now + dur);
                self.schedule(self.now + dur, Ev::Act(Action::Online { tab: i, gen: g }));
            }
            Action::Online { tab, gen } => {
                if self.tabs[tab].gen == gen && self.tabs[tab].alive {
                    self.tabs[tab].online = true;
                    self.deliver(tab, SimInput::Online(true));
                }
            }
            Action::ApiCall => {
                let Some(i) = self.random_tab(|s, i| {
                    s.alive_awake(i)
                        && s.tabs[i].online
                        && s.tabs[i].engine.access_token().is_some()
                }) else {
                    return;
                };
                let tok = self.tabs[i].engine.access_token().and_then(parse_token);
                let expired = self.tabs[i]
                    .engine
                    .token_meta()
                    .is_none_or(|m| m.expires_at <= self.tab_now(i));
                let revoked = tok.is_none_or(|t| {
                    self.families
                        .get(t.family as usize)
                        .is_none_or(|f| f.revoked != Revoked::No)
                });
                if expired || revoked {
                    trace!(self, "tab{i}: API call answered 401");
                    let access_token = self.tabs[i].engine.access_token().unwrap_or("").into();
                    self.feed(i, Input::AccessRejected { access_token });
                }
            }
            Action::Focus => {
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i)) else {
                    return;
                };
                self.feed(i, Input::Visibility(false));
                let s = self.storage.clone();
                self.feed(i, Input::Shared(s));
                self.feed(i, Input::Visibility(true));
            }
            Action::ClockJump => {
                // The claims fallback (no Web Locks) orders claims by time: it assumes the
                // tabs' clocks agree within its settle time. With a clock a year off it can
                // let two tabs refresh at once (a documented limit), so jumps run with Web
                // Locks only.
                if !self.p.web_locks {
                    return;
                }
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i) && !s.tabs[i].jumped) else {
                    return;
                };
                // Forward (the clock runs ahead), then corrected: the correction is the
                // backward jump. (A clock set back while its tab writes the shared record is
                // a known limit: the writer's merge drops what lies in its future.)
                let by = self.rng.range(MIN, JUMP_MAX) as i64;
                let dur = self.rng.range(1_000, 5 * MIN);
                trace!(
                    self,
                    "tab{i}: clock jumps by {} s for {} s",
                    by / 1000,
                    dur / 1000
                );
                self.stats.jumps += 1;
                self.tabs[i].offset = self.tabs[i].skew + by;
                self.tabs[i].jumped = true;
                let g = self.tabs[i].gen;
                self.recovered_by = self.recovered_by.max(self.now + dur);
                self.schedule(self.now + dur, Ev::Act(Action::ClockFix { tab: i, gen: g }));
            }
            Action::ClockFix { tab, gen } => {
                if self.tabs[tab].gen == gen && self.tabs[tab].alive {
                    trace!(self, "tab{tab}: clock corrected");
                    self.tabs[tab].offset = self.tabs[tab].skew;
                    self.tabs[tab].jumped = false;
                    self.tabs[tab].awake_since = self.now;
                    if !self.tabs[tab].asleep {
                        // The time change re-arms the page's timer.
                        let s = self.storage.clone();
                        self.feed(tab, Input::Shared(s));
                        self.feed(tab, Input::Timer);
                    }
                }
            }
            Action::Forge => {
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i)) else {
                    return;
                };
                self.stats.forged += 1;
                let now = self.tab_now(i);
                // Beyond any plausible time for the whole run (a forged value that is only a
                // minute ahead becomes indistinguishable from a real one a minute later:
                // forging "the user is active now" is not something a tab can detect).
                let far = now + self.rng.range(2 * 24 * 60 * MIN, JUMP_MAX);
                let known =
                    Shared::decode(self.storage.as_deref().unwrap_or(&[])).map_or(0, |s| s.epoch);
                let stamp = self.tabs[i].engine.token_meta().map(|m| m.stamp);
                let claim = tessera::core::Claim {
                    serial: self.rng.range(0, 1_000),
                    tab: 0xf0_f0,
                    at: now,
                    until: far,
                    base: self.tabs[i].engine.token_meta().map_or(0, |m| m.issued_at),
                };
                let activity = tessera::core::Activity {
                    epoch: stamp.map_or(known, |s| s.epoch),
                    session: stamp.map_or(0, |s| s.session),
                    at: far,
                };
                let epoch = known + tessera::core::MAX_EPOCH_STEP + self.rng.range(1, 1 << 40);
                let kind = self.rng.pick(4);
                if kind == 0 && stamp.is_some() {
                    // Forged activity (a far-future time) counts as activity now, once: as if
                    // the user had acted (a tab cannot tell). What it must not do is count as
                    // activity a year from now. It reaches one tab only, so it need not keep
                    // the others alive.
                    self.true_activity = self.true_activity.max(self.now);
                }
                match kind {
                    0 => self.feed(i, Input::Bus(Msg::Activity(activity).encode())),
                    1 => self.feed(i, Input::Bus(Msg::Claim(claim).encode())),
                    2 => {
                        let reason = LogoutReason::Revoked;
                        self.feed(i, Input::Bus(Msg::Logout { epoch, reason }.encode()));
                    }
                    _ => {
                        // Written straight into storage (no merge, no sanitising).
                        let mut rec = Shared::decode(self.storage.as_deref().unwrap_or(&[]))
                            .unwrap_or_default();
                        // (Not activity: a far-future activity in the record is dated by each
                        // tab when it first reads it — a tab opened an hour later counts it an
                        // hour later. Forging "the user is active" in storage cannot be told
                        // from the real thing; see the README's known limits.)
                        rec.merge(&Shared {
                            epoch: if self.rng.chance(0.3) {
                                epoch
                            } else {
                                rec.epoch
                            },
                            claim: Some(claim),
                            ..Shared::default()
                        });
                        trace!(self, "storage forged: {rec:?}");
                        self.storage = Some(rec.encode());
                        self.storage_event(usize::MAX);
                    }
                }
            }
            Action::MfaDone { tab, gen } => {
                if self.tabs[tab].gen == gen
                    && self.alive_awake(tab)
                    && self.tabs[tab].engine.state() == SessionState::MfaRequired
                {
                    self.feed(tab, Input::LoginStarted);
                }
            }
            Action::Garbage => {
                // Property 5: hostile or corrupt input from another tab or from storage.
                let Some(i) = self.random_tab(|s, i| s.alive_awake(i)) else {
                    return;
                };
                let mut bytes = match self.rng.pick(3) {
                    0 => Msg::TokenRequest { tab: 1, attempt: 0 }.encode(),
                    1 => Msg::Logout {
                        epoch: 1,
                        reason: LogoutReason::User,
                    }
                    .encode(),
                    _ => self.storage.clone().unwrap_or_default(),
                };
                let n = self.rng.range(1, 4);
                for _ in 0..n {
                    if bytes.is_empty() {
                        bytes.push(self.rng.next() as u8);
                    }
                    let at = self.rng.pick(bytes.len());
                    bytes[at] = self.rng.next() as u8;
                }
                if self.rng.chance(0.5) {
                    bytes.truncate(self.rng.pick(bytes.len() + 1));
                }
                // Only malformed bytes: a well-formed forged message is out of scope (same origin).
                if Msg::decode(&bytes).is_err() {
                    self.feed(i, Input::Bus(bytes.clone()));
                }
                if Shared::decode(&bytes).is_err() {
                    self.feed(i, Input::Shared(Some(bytes)));
                }
            }
        }
    }

    fn wake(&mut self, i: usize) {
        trace!(self, "tab{i} wakes");
        self.tabs[i].asleep = false;
        self.tabs[i].awake_since = self.now;
        // A thawing tab runs its queued events and its visibility change in either order.
        let visibility_first = self.rng.chance(0.5);
        if visibility_first {
            let s = self.storage.clone();
            self.feed(i, Input::Shared(s));
            self.feed(i, Input::Visibility(true));
        }
        while let Some(input) = self.tabs[i].inbox.pop_front() {
            if !self.tabs[i].alive || self.tabs[i].asleep {
                break;
            }
            self.deliver(i, input);
        }
        if !visibility_first && self.tabs[i].alive {
            let s = self.storage.clone();
            self.feed(i, Input::Shared(s));
            self.feed(i, Input::Visibility(true));
        }
        // Deferred property-2 checks: the tab has handled its wake.
        let pending = std::mem::take(&mut self.tabs[i].wake_checks);
        for epoch in pending {
            self.check_logged_out(i, epoch);
        }
    }

    // -- properties -----------------------------------------------------------------------------

    /// A tab broadcast a logout with `epoch`: schedule property-2 checks for every live tab.
    fn logout_happened(&mut self, from: usize, epoch: u64) {
        let hop = self.p.bus_delay_max.max(20) + 1;
        for j in 0..self.tabs.len() {
            if j != from && self.tabs[j].alive {
                let g = self.tabs[j].gen;
                self.schedule(
                    self.now + hop,
                    Ev::Check(Check::LoggedOut {
                        tab: j,
                        gen: g,
                        epoch,
                    }),
                );
            }
        }
    }

    fn check(&mut self, c: Check) {
        match c {
            Check::LoggedOut { tab, gen, epoch } => {
                if self.tabs[tab].gen != gen || !self.tabs[tab].alive {
                    return;
                }
                if self.tabs[tab].asleep {
                    self.tabs[tab].wake_checks.push(epoch);
                } else {
                    self.check_logged_out(tab, epoch);
                }
            }
        }
    }

    fn check_logged_out(&mut self, i: usize, epoch: u64) {
        self.stats.logouts_checked += 1;
        if let Some(meta) = self.tabs[i].engine.token_meta() {
            if meta.stamp.epoch < epoch {
                self.fail(format!(
                    "property 2: tab{i} still holds a token of epoch {} after the logout to epoch {epoch}",
                    meta.stamp.epoch
                ));
            }
        }
        if let Some(v) = &self.vault {
            if let Ok(r) = tessera::core::TokenRecord::decode(v) {
                if r.meta.stamp.epoch < epoch {
                    self.fail(format!(
                        "property 2: the vault still holds a token of epoch {} after logout",
                        r.meta.stamp.epoch
                    ));
                }
            }
        }
    }

    /// Checked after every input to tab `i`.
    fn check_tab(&mut self, i: usize) {
        let tab = &self.tabs[i];
        let Some(meta) = tab.engine.token_meta() else {
            return;
        };
        // Property 4: never an older token than one seen.
        if let Some(seen) = tab.seen {
            if meta.stamp < seen && meta.stamp.epoch >= seen.epoch {
                let (m, s) = (format!("{:?}", meta.stamp), format!("{seen:?}"));
                self.fail(format!(
                    "property 4: tab{i} holds token {m} after seeing {s}"
                ));
                return;
            }
        }
        // Property 4, server order: within a family the generation never goes back.
        if let Some(tok) = tab.engine.access_token().and_then(parse_token) {
            let prev = self.tabs[i].held_gen.get(&tok.family).copied();
            if let Some(p) = prev {
                if tok.gen < p {
                    self.fail(format!(
                        "property 4: tab{i} went back from {} to {}",
                        fmt_token(Token {
                            family: tok.family,
                            gen: p
                        }),
                        fmt_token(tok)
                    ));
                    return;
                }
            }
            self.tabs[i]
                .held_gen
                .insert(tok.family, tok.gen.max(prev.unwrap_or(0)));
        }
        // Property 3, the other half: nobody stays signed in past the idle deadline of the
        // true last activity once it re-read the shared record (a fresh input).
        if let Some(timeout) = self.p.config.idle_timeout {
            let slack = self.clock_slack();
            if self.tabs[i].engine.access_token().is_some()
                && !self.tabs[i].jumped
                && self.tabs[i].last_fresh == self.now
                && self.now > self.true_activity.max(meta.stamp.session) + timeout + slack
            {
                let late = self.now - self.true_activity.max(meta.stamp.session) - timeout;
                self.fail(format!(
                    "property 3: tab{i} still signed in {late} ms after the idle deadline"
                ));
            }
        }
        let _ = SessionState::Active;
    }

    /// Checked after every step: awake tabs are never signed in past the deadline.
    fn check_always(&mut self) {
        let Some(timeout) = self.p.config.idle_timeout else {
            return;
        };
        for i in 0..self.tabs.len() {
            if !self.alive_awake(i) {
                continue;
            }
            let Some(meta) = self.tabs[i].engine.token_meta() else {
                continue;
            };
            if self.tabs[i].engine.access_token().is_none() {
                continue;
            }
            // A tab acts on its own timer at the deadline, or — thawing after it — on the timer
            // it asks for right away.
            if self.tabs[i].jumped {
                continue;
            }
            let deadline = self.true_activity.max(meta.stamp.session) + timeout;
            if self.now > deadline.max(self.tabs[i].awake_since) + 2 + self.clock_slack() {
                let late = self.now - deadline;
                self.fail(format!(
                    "property 3: awake tab{i} still signed in {late} ms after the idle deadline"
                ));
                return;
            }
        }
    }

    /// After the run (and a calm tail without actions): every live tab converged.
    /// A signed-in tab may hold an expired token only briefly: while it waits for the newest
    /// one over a lossy bus (asking again with backoff) or retries a lost answer.
    fn check_end(&mut self) {
        const BOUND: Millis = 2 * MIN;
        let live: Vec<usize> = (0..self.tabs.len())
            .filter(|&i| self.alive_awake(i))
            .collect();
        for &i in &live {
            if let Some(meta) = self.tabs[i].engine.token_meta() {
                if self.tabs[i].engine.access_token().is_some()
                    && self.tabs[i].online
                    && meta.expires_at + BOUND <= self.now
                {
                    let ago = self.now - meta.expires_at;
                    self.fail(format!(
                        "liveness: tab{i} ends with a token that expired {ago} ms ago"
                    ));
                }
            }
        }
    }
}

impl Tab {
    fn new(engine: Engine, gen: u32, skew: i64) -> Tab {
        Tab {
            deadline: engine.next_deadline(),
            engine,
            gen,
            alive: true,
            asleep: false,
            online: true,
            inbox: VecDeque::new(),
            seen: None,
            held_gen: BTreeMap::new(),
            awake_since: 0,
            last_fresh: 0,
            wake_checks: Vec::new(),
            mfa_next: false,
            offset: skew,
            skew,
            jumped: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running seeds.

struct Outcome {
    violation: Option<String>,
    stats: SimStats,
}

fn run_seed(seed: u64, unsafe_: Unsafe) -> Outcome {
    let result = std::panic::catch_unwind(|| {
        let mut sim = Sim::new(seed, unsafe_, false);
        sim.run();
        (sim.violation, sim.stats)
    });
    match result {
        Ok((violation, stats)) => Outcome { violation, stats },
        Err(_) => Outcome {
            violation: Some("property 5: panic".into()),
            stats: SimStats::default(),
        },
    }
}

/// The trace of one seed, its last `keep` lines (and its header line).
fn trace_of(seed: u64, unsafe_: Unsafe, keep: usize) -> String {
    let mut sim = Sim::new(seed, unsafe_, true);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run()));
    let mut lines = sim.trace.take().unwrap_or_default();
    if r.is_err() {
        lines.push("PANIC".into());
    }
    let n = lines.len();
    let from = n.saturating_sub(keep);
    let mut out = String::new();
    if from > 0 {
        out.push_str(&lines[0]);
        out.push_str(&format!("\n  … {from} earlier lines …\n"));
    }
    for l in &lines[from..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn seeds_from_env(default: u64) -> u64 {
    std::env::var("TESSERA_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `count` seeds starting at `first` on all cores; returns the first failing seed.
fn sweep(first: u64, count: u64, unsafe_: Unsafe) -> (Option<(u64, String)>, SimStats, u64) {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            std::thread::spawn(move || {
                let mut stats = SimStats::default();
                let mut fail: Option<(u64, String)> = None;
                let mut ran = 0;
                let mut s = first + k;
                while s < first + count {
                    let o = run_seed(s, unsafe_);
                    ran += 1;
                    stats.refreshes += o.stats.refreshes;
                    stats.grace_answers += o.stats.grace_answers;
                    stats.excused_reuse += o.stats.excused_reuse;
                    stats.logouts_checked += o.stats.logouts_checked;
                    stats.idle_logouts += o.stats.idle_logouts;
                    stats.steps += o.stats.steps;
                    stats.feeds += o.stats.feeds;
                    stats.jumps += o.stats.jumps;
                    stats.jump_logouts += o.stats.jump_logouts;
                    stats.forged += o.stats.forged;
                    if o.stats.excused_reuse > 0 && stats.excused_seed.is_none() {
                        stats.excused_seed = Some(s);
                    }
                    if let Some(v) = o.violation {
                        fail = Some((s, v));
                        break;
                    }
                    s += threads;
                }
                (fail, stats, ran)
            })
        })
        .collect();
    let mut total = SimStats::default();
    let mut first_fail: Option<(u64, String)> = None;
    let mut ran = 0;
    for h in handles {
        let (f, st, r) = h.join().expect("sim thread");
        ran += r;
        total.refreshes += st.refreshes;
        total.grace_answers += st.grace_answers;
        total.excused_reuse += st.excused_reuse;
        total.logouts_checked += st.logouts_checked;
        total.idle_logouts += st.idle_logouts;
        total.steps += st.steps;
        total.feeds += st.feeds;
        total.jumps += st.jumps;
        total.jump_logouts += st.jump_logouts;
        total.forged += st.forged;
        total.excused_seed = total.excused_seed.or(st.excused_seed);
        if let Some(f) = f {
            if first_fail.as_ref().is_none_or(|(s, _)| f.0 < *s) {
                first_fail = Some(f);
            }
        }
    }
    (first_fail, total, ran)
}

#[test]
fn protocol_properties_hold_for_every_seed() {
    if let Some(seed) = std::env::var("TESSERA_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        println!("{}", trace_of(seed, Unsafe::None, usize::MAX));
        let o = run_seed(seed, Unsafe::None);
        assert!(
            o.violation.is_none(),
            "seed {seed}: {}",
            o.violation.unwrap_or_default()
        );
        return;
    }
    let count = seeds_from_env(10_000);
    let started = std::time::Instant::now();
    let first = std::env::var("TESSERA_SIM_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (fail, stats, ran) = sweep(first, count, Unsafe::None);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sim: {ran} seeds in {secs:.1} s; {} refresh requests, {} grace answers, {} excused reuses (e.g. seed {:?}), {} logout checks, {} idle logouts; {} clock jumps ({} idle logouts by a jumped tab), {} forgeries; {} steps, {} engine inputs",
        stats.refreshes, stats.grace_answers, stats.excused_reuse, stats.excused_seed, stats.logouts_checked, stats.idle_logouts, stats.jumps, stats.jump_logouts, stats.forged, stats.steps, stats.feeds
    );
    if let Some((seed, what)) = fail {
        panic!(
            "seed {seed} violates: {what}\nreplay: TESSERA_SIM_SEED={seed} cargo test --test sim -- --nocapture\n{}",
            trace_of(seed, Unsafe::None, 400)
        );
    }
}

fn find_violation(unsafe_: Unsafe, expect: &str, budget: u64) {
    let (fail, _, ran) = sweep(1_000_000, budget, unsafe_);
    match fail {
        Some((seed, what)) => {
            println!("with the safeguard off, seed {seed} (after ~{ran} seeds): {what}");
            // The end of its trace, to show the simulator explains what it finds.
            let trace = trace_of(seed, unsafe_, 12);
            let lines: Vec<&str> = trace.lines().collect();
            for l in &lines[lines.len().saturating_sub(12)..] {
                println!("    {l}");
            }
            assert!(what.contains(expect), "seed {seed}: expected a '{expect}' violation, got: {what}");
        }
        None => panic!("the simulator found no violation in {budget} seeds with the safeguard off: it is vacuous"),
    }
}

#[test]
fn without_the_lock_the_simulator_finds_double_refreshes() {
    find_violation(Unsafe::Lock, "property 1", 3_000);
}

#[test]
fn without_the_logout_epoch_the_simulator_finds_tabs_that_miss_a_logout() {
    find_violation(Unsafe::Epoch, "property 2", 3_000);
}

#[test]
fn without_shared_activity_the_simulator_finds_false_idle_logouts() {
    find_violation(Unsafe::SharedActivity, "idle logout", 3_000);
}

#[test]
fn adopting_older_tokens_is_found() {
    find_violation(Unsafe::AdoptOlder, "property 4", 3_000);
}

#[test]
fn trusting_far_future_times_is_found() {
    find_violation(Unsafe::Clocks, "", 3_000);
}

#[test]
fn trusting_implausible_logout_epochs_is_found() {
    find_violation(Unsafe::Counters, "false logout", 3_000);
}
