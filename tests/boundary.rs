//! The Wasm ↔ JS boundary is declared once (`src/boundary.rs` and the engine's lists) and the
//! JS performer and the `.d.ts` agree with it: this test reads the performer's modules
//! (`src/browser/js/`, bundled into `src/browser/session.js`) and the TypeScript declarations
//! in `src/browser/types.rs` and fails on any disagreement (a renumbered input, an effect kind
//! JS does not handle, a state, logout reason, error code or event name missing from one side
//! or extra on the other).

use std::collections::BTreeSet;

use tessera::boundary::{
    code_number, reason_number, EFFECTS, EVENT_NAMES, INPUTS, JS_ERROR_EVENT_CODES, NUMS,
    WEB_LOCKS_OPTION,
};
use tessera::core::{ErrorCode, Event, LogoutReason, SessionState, Setting};

fn read(path: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every module of the JS performer, concatenated (the sources, not the generated bundle).
fn performer() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/browser/js");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("src/browser/js")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains("export function start("),
        "the entry module is among {files:?}"
    );
    all
}

/// Every `NAME = <integer>` binding of the `const` declaration whose first name is `first`.
fn js_consts(js: &str, first: &str) -> Vec<(String, u8)> {
    let start = js
        .find(&format!("const {first} = "))
        .unwrap_or_else(|| panic!("no `const {first}` in boundary.js"));
    let decl = &js[start + "const ".len()..];
    let decl = &decl[..decl.find(';').expect("a `;` ends the declaration")];
    decl.split(',')
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("not `NAME = n`: {pair}"));
            let value = value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {pair}"));
            (name.trim().to_owned(), value)
        })
        .collect()
}

/// The string literals of a TypeScript union `type <name> = "a" | "b" ...;`.
fn ts_union(dts: &str, name: &str) -> BTreeSet<String> {
    let start = dts
        .find(&format!("type {name} ="))
        .unwrap_or_else(|| panic!("no `type {name}` in the .d.ts"));
    let body = &dts[start..];
    let body = &body[..body.find(';').expect("a `;` ends the type")];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The property names of a TypeScript `interface <name> { key: ...; }` (top level only).
fn ts_keys(dts: &str, name: &str) -> BTreeSet<String> {
    let start = dts
        .find(&format!("interface {name} {{"))
        .unwrap_or_else(|| panic!("no `interface {name}`"));
    let body = &dts[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("/**") && !l.starts_with('*'))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        })
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .collect()
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &'static str) -> BTreeSet<String> {
    items.iter().map(|i| name(i).to_owned()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn owned(table: &[(&str, u8)]) -> Vec<(String, u8)> {
    table.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
}

#[test]
fn input_kinds_of_the_performer_are_the_declared_ones() {
    let js = read("src/browser/js/boundary.js");
    assert_eq!(js_consts(&js, "RESTORE"), owned(INPUTS));
    // Numbers unique, so no two inputs can be confused.
    assert_eq!(
        INPUTS.iter().map(|(_, v)| v).collect::<BTreeSet<_>>().len(),
        INPUTS.len()
    );
}

#[test]
fn effect_kinds_of_the_performer_are_the_declared_ones_and_each_is_performed() {
    assert_eq!(
        js_consts(&read("src/browser/js/boundary.js"), "FX_REFRESH"),
        owned(EFFECTS)
    );
    let js = read("src/browser/js/driver.js");
    assert_eq!(
        EFFECTS
            .iter()
            .map(|(_, v)| v)
            .collect::<BTreeSet<_>>()
            .len(),
        EFFECTS.len()
    );
    for (name, _) in EFFECTS {
        assert!(
            js.contains(&format!("case {name}:")),
            "driver.js performs no `case {name}:`"
        );
    }
    // The switch names its cases: a bare number could drift from the declaration unseen.
    let perform = &js[js.find("#perform(e) {").expect("#perform in driver.js")..];
    let perform = &perform[..perform.find("\n  }\n").unwrap()];
    for line in perform.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("case ") {
            assert!(
                !rest.starts_with(|c: char| c.is_ascii_digit()),
                "a numbered effect case: {t}"
            );
        }
    }
}

#[test]
fn the_numbers_the_performer_reads_are_the_declared_ones_by_name() {
    assert_eq!(
        js_consts(&read("src/browser/js/boundary.js"), "NUM_DEADLINE"),
        owned(NUMS)
    );
    assert_eq!(
        NUMS.iter().map(|(_, v)| v).collect::<BTreeSet<_>>().len(),
        NUMS.len()
    );
    // `num(…)` always by name: a bare number could drift from the declaration unseen.
    let js = performer();
    for (i, _) in js.match_indices(".num(") {
        let arg = js[i + ".num(".len()..].trim_start();
        assert!(
            !arg.starts_with(|c: char| c.is_ascii_digit()),
            "a numbered `num` call: {}",
            &js[i..(i + 30).min(js.len())]
        );
    }
}

#[test]
fn state_names_of_the_performer_follow_the_engine_states_in_order() {
    let js = read("src/browser/js/boundary.js");
    let start = js.find("const STATES = [").expect("STATES in boundary.js");
    let list = &js[start..];
    let list = &list[..list.find(']').unwrap()];
    let js_states: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    let rust: Vec<&str> = SessionState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(js_states, rust);
    let dts = read("src/browser/types.rs");
    assert_eq!(ts_union(&dts, "SessionState"), set(&rust));
}

#[test]
fn option_names_of_the_performer_follow_the_settings_in_order() {
    let js = read("src/browser/js/boundary.js");
    let start = js
        .find("const OPTIONS = [")
        .expect("OPTIONS in boundary.js");
    let list = &js[start..];
    let list = &list[..list.find(']').unwrap()];
    let js_options: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    let mut rust: Vec<&str> = Setting::ALL.iter().map(|s| s.option()).collect();
    for (i, s) in Setting::ALL.into_iter().enumerate() {
        assert_eq!(
            s as usize, i,
            "{s:?}: its number is its place in Setting::ALL"
        );
    }
    assert_eq!(usize::from(WEB_LOCKS_OPTION), rust.len());
    rust.push("webLocks");
    assert_eq!(js_options, rust);
    // Each is an option of the `.d.ts`.
    let dts = read("src/browser/types.rs");
    let declared = ts_keys(&dts, "SessionOptions");
    for o in rust {
        assert!(
            declared.contains(&format!("{o}?")),
            "{o} is not an option of SessionOptions"
        );
    }
}

#[test]
fn event_texts_of_the_performer_follow_the_engines_reasons_and_codes_in_order() {
    let js = read("src/browser/js/boundary.js");
    let texts = js_string_array(&js, "TEXTS");
    for (i, r) in LogoutReason::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(reason_number(r)), i, "{r:?}");
        assert_eq!(texts[i], r.as_str());
    }
    let n = LogoutReason::ALL.len();
    for (i, c) in ErrorCode::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(code_number(c)), n + i, "{c:?}");
        assert_eq!(texts[n + i], c.as_str());
    }
    assert_eq!(texts.len(), n + ErrorCode::ALL.len());
}

#[test]
fn logout_reasons_of_the_dts_are_the_engines() {
    let dts = read("src/browser/types.rs");
    assert_eq!(
        ts_union(&dts, "LogoutReason"),
        names(&LogoutReason::ALL, |r| r.as_str())
    );
}

#[test]
fn error_event_codes_of_the_dts_are_the_engines_and_the_performers() {
    let dts = read("src/browser/types.rs");
    let js = performer();
    let mut expected = names(&ErrorCode::ALL, |c| c.as_str());
    expected.extend(set(&JS_ERROR_EVENT_CODES));
    assert_eq!(ts_union(&dts, "ErrorEventCode"), expected);
    for code in JS_ERROR_EVENT_CODES {
        assert!(
            js.contains(&format!("\"{code}\"")),
            "the performer never raises {code}"
        );
    }
}

#[test]
fn every_code_the_performer_rejects_with_is_declared() {
    let dts = read("src/browser/types.rs");
    let js = performer();
    let declared = ts_union(&dts, "SessionErrorCode");
    let mut seen = 0;
    for part in js.split("error(\"").skip(1) {
        let code = &part[..part.find('"').unwrap()];
        assert!(
            declared.contains(code),
            "the performer rejects with `{code}`, missing from SessionErrorCode"
        );
        seen += 1;
    }
    assert!(
        seen >= 6,
        "found only {seen} `error(\"…\")` calls: has the performer changed shape?"
    );
    let rust = read("src/browser/mod.rs");
    for part in rust.split("reject(\"").skip(1) {
        let code = &part[..part.find('"').unwrap()];
        assert!(
            declared.contains(code),
            "mod.rs rejects with `{code}`, missing from SessionErrorCode"
        );
    }
}

#[test]
fn event_names_of_the_dts_are_the_engines() {
    let all = [
        Event::Login {
            user: None,
            expires_at: 0,
        },
        Event::Refresh { expires_at: 0 },
        Event::IdleWarning { deadline: 0 },
        Event::Active,
        Event::Idle,
        Event::Logout {
            reason: LogoutReason::User,
        },
        Event::Error {
            code: ErrorCode::RefreshRetry,
        },
    ];
    assert_eq!(names(&all, |e| e.name()), set(&EVENT_NAMES));
    // An event crosses as its number: the place of its name in EVENT_NAMES and in the
    // performer's EVENTS.
    for e in &all {
        assert_eq!(EVENT_NAMES[usize::from(e.number())], e.name(), "{e:?}");
    }
    let js = read("src/browser/js/boundary.js");
    assert_eq!(js_string_array(&js, "EVENTS"), EVENT_NAMES);
    let dts = read("src/browser/types.rs");
    assert_eq!(ts_keys(&dts, "SessionEvents"), set(&EVENT_NAMES));
}

/// The string literals of the JS array `const <name> = Object.freeze([...])`, in order.
fn js_string_array(js: &str, name: &str) -> Vec<String> {
    let start = js
        .find(&format!("const {name} = "))
        .unwrap_or_else(|| panic!("no `const {name}`"));
    let body = &js[start..];
    let body = &body[body.find('[').expect("an array") + 1..body.find(']').expect("its end")];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_framework_bindings_share_the_engines_events_and_states() {
    // One list and one set of types for `tessera/react`, `tessera/vue` and `tessera/svelte`.
    let js = read("src/bindings/events.js");
    let events = js_string_array(&js, "SESSION_EVENTS");
    assert_eq!(
        events.iter().cloned().collect::<BTreeSet<_>>(),
        set(&EVENT_NAMES)
    );
    assert_eq!(events.len(), EVENT_NAMES.len(), "no event listed twice");
    let dts = read("src/bindings/events.d.ts");
    assert_eq!(ts_union(&dts, "SessionEventName"), set(&EVENT_NAMES));
    assert_eq!(
        ts_union(&dts, "SessionStateName"),
        names(&SessionState::ALL, |s| s.as_str())
    );
    for entry in ["react", "vue", "svelte"] {
        let js = read(&format!("src/{entry}/index.js"));
        assert!(
            js.contains("from \"../bindings/events.js\"") && !js.contains("Object.freeze([\""),
            "src/{entry}/index.js takes the shared list and keeps no copy"
        );
        let dts = read(&format!("src/{entry}/index.d.ts"));
        assert!(
            dts.contains("from \"../bindings/events.js\"")
                && !dts.contains("type SessionEventName ="),
            "src/{entry}/index.d.ts takes the shared types and keeps no copy"
        );
    }
}
