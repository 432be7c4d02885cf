//! No two modules of `crates/http` import each other, directly or through
//! others: the crate's modules form a layered graph (resources below the
//! document that assembles them, middleware and the route table above).
//!
//! The test reads `src/**/*.rs`, follows every `crate::`, `super::` and
//! `self::` path (in `use` trees and in code), and builds, for each module,
//! the graph of its child modules: an edge `a → b` when something in `a`
//! (or below it) names something in `b` (or below it). A path through a
//! re-export (`crate::ApiError`, `crate::extract::CurrentUser`) counts as a
//! use of the module the name comes from. A module and its own submodules
//! may refer to each other (they are one unit); siblings may not, in a
//! circle. The failure names the circle and, for each step, where it is.
//!
//! The reader is a small lexer, not a Rust parser: it skips comments,
//! strings and char literals, and tracks inline `mod name { … }` blocks.
//! It fails loudly on a `crate::` path it cannot resolve rather than
//! silently missing an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// Tokens with their line numbers; comments, strings and chars dropped.
fn lex(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            'r' | 'b' if raw_string_start(&chars, i).is_some() => {
                let (hashes, body) = raw_string_start(&chars, i).expect("checked");
                i = body;
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    if at(i) == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
                if at(i + 1) == '\\' {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push((Token::Ident(chars[start..i].iter().collect()), line));
            }
            ':' if at(i + 1) == ':' => {
                tokens.push((Token::PathSep, line));
                i += 2;
            }
            '{' => {
                tokens.push((Token::Open, line));
                i += 1;
            }
            '}' => {
                tokens.push((Token::Close, line));
                i += 1;
            }
            ',' => {
                tokens.push((Token::Comma, line));
                i += 1;
            }
            ';' => {
                tokens.push((Token::Semi, line));
                i += 1;
            }
            '*' => {
                tokens.push((Token::Star, line));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                tokens.push((Token::Other, line));
                i += 1;
            }
        }
    }
    tokens
}

/// `r"`, `r#"`, `br"`…: the number of `#` and where the body starts.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    // Not the end of an identifier such as `for` or `bar`.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// One path as written (`crate::a::{b, c::D}` gives two), with its line.
#[derive(Debug)]
struct Reference {
    /// The module the path is written in (file and inline modules).
    from: ModPath,
    /// `crate`, `super` (one per `super`) or `self`, then the segments.
    start: Start,
    segments: Vec<String>,
    line: usize,
    /// Written in a `pub use` at the top of the module: a re-export.
    reexport: Option<String>,
}

#[derive(Debug, Clone)]
enum Start {
    Crate,
    Super(usize),
    SelfModule,
}

/// Expands the use tree or path at `tokens[i]` (just after `crate::` etc.)
/// into full segment lists; returns them and the index after the tree.
fn use_tree(
    tokens: &[(Token, usize)],
    mut i: usize,
    prefix: &[String],
) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(i).map(|t| &t.0) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                i += 1;
                if tokens.get(i).map(|t| &t.0) == Some(&Token::PathSep) {
                    i += 1;
                    continue;
                }
                // `as alias`: the path is what it names.
                return (vec![path], i);
            }
            Some(Token::Star) => return (vec![path], i + 1),
            Some(Token::Open) => {
                i += 1;
                let mut all = Vec::new();
                loop {
                    match tokens.get(i).map(|t| &t.0) {
                        Some(Token::Close) => return (all, i + 1),
                        Some(Token::Comma) => i += 1,
                        None => return (all, i),
                        _ => {
                            let (mut paths, next) = use_tree(tokens, i, &path);
                            all.append(&mut paths);
                            // Skip `as alias` and anything else up to `,` or `}`.
                            i = next;
                            while !matches!(
                                tokens.get(i).map(|t| &t.0),
                                Some(Token::Comma | Token::Close) | None
                            ) {
                                i += 1;
                            }
                        }
                    }
                }
            }
            _ => return (vec![path], i),
        }
    }
}

/// The references of one file whose module path is `module`.
fn references(module: &ModPath, text: &str) -> Vec<Reference> {
    let tokens = lex(text);
    let mut found = Vec::new();
    // Inline modules: (name, brace depth at which its block opened).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = (&tokens[i].0, tokens[i].1);
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some((Token::Ident(name), _)), Some((Token::Open, _))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                }
            }
            Token::Ident(word)
                if (word == "crate" || word == "super" || word == "self")
                    && tokens.get(i + 1).map(|t| &t.0) == Some(&Token::PathSep)
                    // Not the tail of a longer path (`a::self`).
                    && (i == 0 || tokens[i - 1].0 != Token::PathSep) =>
            {
                let mut from = module.clone();
                from.extend(inline.iter().map(|(name, _)| name.clone()));
                let mut j = i;
                let start = match word.as_str() {
                    "crate" => {
                        j += 2;
                        Start::Crate
                    }
                    "self" => {
                        j += 2;
                        Start::SelfModule
                    }
                    _ => {
                        let mut n = 0;
                        while tokens.get(j).map(|t| &t.0) == Some(&Token::Ident("super".into()))
                            && tokens.get(j + 1).map(|t| &t.0) == Some(&Token::PathSep)
                        {
                            n += 1;
                            j += 2;
                        }
                        Start::Super(n)
                    }
                };
                // A `pub use` at the module's top level re-exports.
                let is_reexport = depth == inline.len()
                    && i >= 2
                    && tokens[i - 1].0 == Token::Ident("use".into())
                    && matches!(&tokens[i - 2].0, Token::Ident(w) if w == "pub")
                    || (i >= 5
                        && tokens[i - 1].0 == Token::Ident("use".into())
                        && tokens[i - 2].0 == Token::Other
                        && tokens[i - 5].0 == Token::Ident("pub".into()));
                let (paths, next) = use_tree(&tokens, j, &[]);
                for segments in paths {
                    let reexport = is_reexport.then(|| segments.last().cloned()).flatten();
                    found.push(Reference {
                        from: from.clone(),
                        start: start.clone(),
                        segments,
                        line,
                        reexport,
                    });
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Re-exports written without a leading `self::` (`pub use app::{app, configure};`
/// in `lib.rs`, `pub use json::ValidatedJson;` in `extract/mod.rs`): name → module.
fn plain_reexports(
    module: &ModPath,
    text: &str,
    files: &BTreeSet<ModPath>,
) -> Vec<(String, ModPath)> {
    let tokens = lex(text);
    let mut found = Vec::new();
    let mut depth = 0usize;
    for i in 0..tokens.len() {
        match &tokens[i].0 {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            Token::Ident(word) if word == "use" && depth == 0 && i >= 1 => {
                let public = matches!(&tokens[i - 1].0, Token::Ident(w) if w == "pub")
                    || (i >= 4
                        && tokens[i - 1].0 == Token::Other
                        && tokens[i - 4].0 == Token::Ident("pub".into()));
                let Some((Token::Ident(first), _)) = tokens.get(i + 1) else {
                    continue;
                };
                let mut child = module.clone();
                child.push(first.clone());
                if !public || !files.contains(&child) {
                    continue;
                }
                let (paths, _) = use_tree(&tokens, i + 1, &[]);
                for segments in paths {
                    let mut full = module.clone();
                    full.extend(segments.iter().cloned());
                    let name = segments.last().cloned().unwrap_or_default();
                    found.push((name, longest_file_prefix(&full, files)));
                }
            }
            _ => {}
        }
    }
    found
}

fn longest_file_prefix(path: &[String], files: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| files.contains(prefix))
        .unwrap_or_default()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// An edge between two sibling modules, and where it was written.
type Graph = BTreeMap<ModPath, BTreeMap<ModPath, String>>;

/// The graph of every module's children, from the crate's sources.
fn sibling_graphs(src: &Path) -> Result<BTreeMap<ModPath, Graph>, Vec<String>> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let sources: BTreeMap<ModPath, (PathBuf, String)> = paths
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            (module_of(src, &file), (file, text))
        })
        .collect();
    let files: BTreeSet<ModPath> = sources.keys().cloned().collect();

    // Every reference, and the re-exports of each module (name → module).
    let mut all = Vec::new();
    let mut reexports: BTreeMap<(ModPath, String), ModPath> = BTreeMap::new();
    for (module, (file, text)) in &sources {
        for (name, target) in plain_reexports(module, text, &files) {
            reexports.insert((module.clone(), name), target);
        }
        for reference in references(module, text) {
            all.push((file.clone(), reference));
        }
    }
    let absolute = |reference: &Reference| -> Option<ModPath> {
        let mut base = match reference.start {
            Start::Crate => Vec::new(),
            Start::SelfModule => reference.from.clone(),
            Start::Super(n) => {
                let keep = reference.from.len().checked_sub(n)?;
                reference.from[..keep].to_vec()
            }
        };
        base.extend(reference.segments.iter().cloned());
        Some(base)
    };
    for (_, reference) in &all {
        if let (Some(name), Some(full)) = (&reference.reexport, absolute(reference)) {
            let target = longest_file_prefix(&full, &files);
            reexports.insert((reference.from.clone(), name.clone()), target);
        }
    }
    // Follows re-exports: `crate::ApiError` is `error`'s.
    let resolve = |full: &ModPath| -> ModPath {
        let mut target = longest_file_prefix(full, &files);
        for _ in 0..8 {
            let Some(name) = full.get(target.len()) else {
                break;
            };
            match reexports.get(&(target.clone(), name.clone())) {
                Some(next) if *next != target => target = next.clone(),
                _ => break,
            }
        }
        target
    };

    let mut unresolved = Vec::new();
    let mut graphs: BTreeMap<ModPath, Graph> = BTreeMap::new();
    for (file, reference) in &all {
        if reference.reexport.is_some() {
            // A re-export is the parent speaking for its child.
            continue;
        }
        let Some(full) = absolute(reference) else {
            unresolved.push(format!(
                "{}:{}: `super` above the crate",
                file.display(),
                reference.line
            ));
            continue;
        };
        let target = resolve(&full);
        // `crate::X` must name a module or something a module re-exports.
        if matches!(reference.start, Start::Crate) && target.is_empty() {
            unresolved.push(format!(
                "{}:{}: cannot tell which module `crate::{}` is in",
                file.display(),
                reference.line,
                reference.segments.join("::")
            ));
            continue;
        }
        let from = longest_file_prefix(&reference.from, &files);
        let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
        // A module and its own submodules are one unit.
        if common == from.len() || common == target.len() {
            continue;
        }
        let parent = from[..common].to_vec();
        let a = from[..=common].to_vec();
        let b = target[..=common].to_vec();
        graphs
            .entry(parent)
            .or_default()
            .entry(a)
            .or_default()
            .entry(b)
            .or_insert_with(|| {
                format!(
                    "{}:{} (`{}`)",
                    file.strip_prefix(src.parent().expect("crate dir"))
                        .unwrap_or(file)
                        .display(),
                    reference.line,
                    full.join("::")
                )
            });
    }
    if unresolved.is_empty() {
        Ok(graphs)
    } else {
        Err(unresolved)
    }
}

/// A circle in `graph`, if there is one, as its modules in order.
fn find_cycle(graph: &Graph) -> Option<Vec<ModPath>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &ModPath,
        graph: &Graph,
        marks: &mut BTreeMap<ModPath, Mark>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node)
            && let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

fn name(module: &ModPath) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Every circle of the crate, described for a reader.
fn cycles(src: &Path) -> Vec<String> {
    let graphs = match sibling_graphs(src) {
        Ok(graphs) => graphs,
        Err(unresolved) => return unresolved,
    };
    let mut found = Vec::new();
    for (parent, graph) in &graphs {
        if let Some(cycle) = find_cycle(graph) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    format!(
                        "  {} → {}: {}",
                        name(&pair[0]),
                        name(&pair[1]),
                        graph[&pair[0]][&pair[1]]
                    )
                })
                .collect();
            found.push(format!(
                "modules under `{}` import each other in a circle:\n{}",
                name(parent),
                steps.join("\n")
            ));
        }
    }
    found
}

#[test]
fn no_module_of_the_http_crate_imports_another_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = cycles(&src);
    assert!(found.is_empty(), "{}", found.join("\n\n"));
}

/// The check can fail: a small crate whose modules do import each other,
/// through a re-export, a `super::` path and a use tree.
#[test]
fn a_circle_is_found_and_named() {
    let dir = std::env::temp_dir().join(format!("module-cycles-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).expect("a temporary directory");
    let write = |path: &str, text: &str| std::fs::write(src.join(path), text).expect("writable");
    write("lib.rs", "mod a;\nmod b;\nmod c;\npub use c::Thing;\n");
    write(
        "a.rs",
        "// crate::c in a comment is no edge\nuse crate::b::{x::{self}, y};\n",
    );
    write("b/mod.rs", "mod x;\nmod y;\npub use self::x::X;\n");
    write(
        "b/x.rs",
        "pub struct X;\nfn f() -> &'static str { \"crate::a\" }\n",
    );
    write("b/y.rs", "fn g() { let _ = crate::Thing; }\n");
    write("c.rs", "pub struct Thing;\nfn h() { super::a::f(); }\n");
    let found = cycles(&src);
    assert_eq!(found.len(), 1, "{found:?}");
    let cycle = &found[0];
    assert!(cycle.contains("under `crate`"), "{cycle}");
    for step in ["a → b", "b → c", "c → a"] {
        assert!(cycle.contains(step), "{step} missing from:\n{cycle}");
    }
    assert!(cycle.contains("src/b/y.rs:1 (`Thing`)"), "{cycle}");

    // Cut one edge and there is none; siblings inside `b` are checked too.
    write("c.rs", "pub struct Thing;\n");
    assert!(cycles(&src).is_empty(), "{:?}", cycles(&src));
    write("b/x.rs", "pub struct X;\nuse super::y::Y;\n");
    write("b/y.rs", "pub struct Y;\nuse crate::b::X;\n");
    let found = cycles(&src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("under `b`"), "{}", found[0]);
    assert!(
        found[0].contains("b::x → b::y") && found[0].contains("b::y → b::x"),
        "{}",
        found[0]
    );
    std::fs::remove_dir_all(&dir).expect("removable");
}
