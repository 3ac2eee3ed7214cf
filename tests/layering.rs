//! The core's module graph: the wire layer is a leaf, and no import circle exists.
//! (Read from the sources: `use super::X` / `crate::core::X` edges between files.)
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → modules it imports (by `super::m` / `crate::core::m`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut g = BTreeMap::new();
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            files.push((p.file_stem().unwrap().to_string_lossy().into_owned(), p));
        }
    }
    for e in std::fs::read_dir(root.join("wire")).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        files.push((format!("wire::{stem}"), p));
    }
    for (name, path) in files {
        let text = std::fs::read_to_string(&path).unwrap();
        // Only non-test code counts.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut deps = BTreeSet::new();
        let in_wire = name.starts_with("wire::");
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for (prefix, wire_rel) in [("super::", in_wire), ("crate::core::", false)] {
                let mut rest = line;
                while let Some(i) = rest.find(prefix) {
                    rest = &rest[i + prefix.len()..];
                    let m: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if m.is_empty() || m.chars().next().unwrap().is_uppercase() {
                        continue;
                    }
                    let dep = if wire_rel { format!("wire::{m}") } else { m };
                    if dep != name && dep != "wire::mod" {
                        deps.insert(dep);
                    }
                }
            }
        }
        g.insert(name, deps);
    }
    g
}

#[test]
fn the_wire_layer_imports_nothing_from_the_engine() {
    for (name, deps) in graph() {
        if name.starts_with("wire::") {
            for d in &deps {
                assert!(
                    d.starts_with("wire::") || d == "wire",
                    "{name} imports {d}: the wire layer must be a leaf"
                );
            }
        }
    }
}

#[test]
fn the_core_has_no_import_circle() {
    let g = graph();
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == n) {
            panic!("import circle: {} -> {n}", path[i..].join(" -> "));
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            let d = if d == "wire" { "wire::mod" } else { d.as_str() };
            visit(d, g, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        visit(n, &g, &mut Vec::new(), &mut done);
    }
}
