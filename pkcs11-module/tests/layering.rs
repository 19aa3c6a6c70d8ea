//! The safe core of the module stays layered (issue 16): no import cycle among its files.
//!
//! Each top-level module of `src/` (a file `src/x.rs` with its subdirectory `src/x/`) is one
//! node; an edge goes from a node to every other node its code names as `crate::y` (comments
//! and doc links are not code). `ffi/` (the C ABI, which calls every safe file) and `lib.rs`
//! are left out. A cycle fails the test with the files it goes through.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name → the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The `crate::x` module names used by `code` (comments skipped).
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::X, b};`: the first segment of each item.
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The graph of `files` ((top-level module, code) pairs), edges to `excluded` modules and
/// self-edges dropped.
fn graph(files: &[(String, String)], excluded: &[&str]) -> Graph {
    let mut g = Graph::new();
    for (module, code) in files {
        let deps = g.entry(module.clone()).or_default();
        for u in uses(code) {
            if u != *module && !excluded.contains(&u.as_str()) {
                deps.insert(u);
            }
        }
    }
    g
}

/// A cycle of `g` (its nodes in order, the first repeated at the end), if there is one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &str,
        g: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(n).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Open => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut c = path[start..].to_vec();
                c.push(n.to_owned());
                return Some(c);
            }
            Mark::New => {}
        }
        marks.insert(n.to_owned(), Mark::Open);
        path.push(n.to_owned());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(n.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The safe-core files as (top-level module, code).
fn safe_core() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap_or(&f);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned())
            .unwrap_or_default();
        if first == "lib" || first == "ffi" {
            continue;
        }
        let code = std::fs::read_to_string(&f).unwrap_or_default();
        out.push((first, code));
    }
    out
}

#[test]
fn no_import_cycle_among_the_safe_core_files() {
    let files = safe_core();
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();
    // The layers the crate docs describe are all there: the check does see the files.
    for m in [
        "state", "token", "objects", "ops", "slot", "session", "object", "sign",
    ] {
        assert!(modules.contains(m), "src/{m}.rs not found (found {modules:?})");
    }
    let g = graph(&files, &["ffi"]);
    assert!(
        g.get("sign").is_some_and(|d| d.contains("state")),
        "the parser misses `crate::` paths: {g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("import cycle among the safe-core files: {}", c.join(" → "));
    }
}

#[test]
fn the_check_finds_a_cycle() {
    let files = [
        (
            "state".to_owned(),
            "use crate::slot::Slot;\n// crate::sign in a comment".to_owned(),
        ),
        ("slot".to_owned(), "use crate::{token::Token, error};".to_owned()),
        (
            "token".to_owned(),
            "fn f() { crate::state::module(); }".to_owned(),
        ),
        ("sign".to_owned(), "use crate::state::Module;".to_owned()),
    ];
    let c = cycle(&graph(&files, &[])).expect("a cycle state → slot → token → state");
    assert_eq!(c.first(), c.last());
    assert!(c.contains(&"token".to_owned()) && c.contains(&"slot".to_owned()));
    let acyclic = [
        (
            "sign".to_owned(),
            "use crate::state::Module; use crate::token;".to_owned(),
        ),
        ("state".to_owned(), "use crate::token::Token;".to_owned()),
        ("token".to_owned(), "// use crate::sign;".to_owned()),
    ];
    assert_eq!(cycle(&graph(&acyclic, &[])), None);
}
