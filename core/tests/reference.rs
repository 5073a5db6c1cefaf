//! `docs/reference.md` keeps up with the model: each `pub fn` of an inherent `impl` in
//! `core/src/model/*.rs` and `core/src/stack.rs` (the attributes on `Ref<T>` included) appears
//! as `.name(` or `::name(` in the page's section for its type, and each method the first
//! column of a section's tables names exists on that section's types. A text scan: nothing on
//! the page is compiled (the rustdoc's doctests are).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `impl Resource` and `impl Declared` are the engine's view of a stack (its graph edges,
/// filled-in values), not something a stack file writes.
const NOT_IN_THE_PAGE: &[&str] = &["Resource", "Declared"];

/// A method found in the source.
struct Method {
    owner: String,
    name: String,
    public: bool,
    file: String,
    line: usize,
}

/// `src` with comments, string and character literals blanked out (newlines kept), so that
/// braces and `fn` inside them do not count.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        blank(&mut out, c[i]);
                        blank(&mut out, c[i + 1]);
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        blank(&mut out, c[i]);
                        blank(&mut out, c[i + 1]);
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        blank(&mut out, c[i]);
                        i += 1;
                    }
                }
            }
            'r' if !ident_before && c[i + 1..].iter().find(|&&x| x != '#') == Some(&'"') => {
                let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
                let closing: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let start = i + 2 + hashes;
                let end = (start..c.len())
                    .find(|&j| c[j..].starts_with(&closing))
                    .map_or(c.len(), |j| j + closing.len());
                (i..end).for_each(|j| blank(&mut out, c[j]));
                i = end;
            }
            '"' => {
                blank(&mut out, c[i]);
                i += 1;
                while i < c.len() && c[i] != '"' {
                    let skip = if c[i] == '\\' { 2 } else { 1 };
                    (i..(i + skip).min(c.len())).for_each(|j| blank(&mut out, c[j]));
                    i += skip;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            // A character literal (`'{'`, `'\n'`, `'\''`); a lifetime (`'a`) is left as it is.
            '\'' if c.get(i + 1) == Some(&'\\') || c.get(i + 2) == Some(&'\'') => {
                let first_after = if c[i + 1] == '\\' { i + 3 } else { i + 2 };
                let end = (first_after..c.len())
                    .find(|&j| c[j] == '\'')
                    .map_or(c.len(), |j| j + 1);
                (i..end).for_each(|j| blank(&mut out, c[j]));
                i = end;
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// The index just past the `}` matching the `{` at `open`.
fn block_end(code: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, b) in code.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether an item can start at `at`: the code before it ends an item or an attribute, so
/// `impl Into<String>` in a signature is not an `impl` block.
fn item_start(code: &[u8], at: usize) -> bool {
    code[..at]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|b| matches!(b, b'}' | b';' | b'{' | b']'))
}

/// Positions where the keyword `word` starts.
fn keyword_at(code: &[u8], word: &str) -> Vec<usize> {
    let w = word.as_bytes();
    (0..code.len().saturating_sub(w.len()))
        .filter(|&i| {
            code[i..].starts_with(w)
                && (i == 0 || !is_ident(code[i - 1]))
                && !is_ident(code[i + w.len()])
        })
        .collect()
}

/// The type an inherent impl's header names, as the page's sections do: `Vpc` for `impl Vpc`,
/// `DbInstance` for `impl Ref<DbInstance>`, `Ref` for `impl<T: ResourceKind> Ref<T>`; and
/// for a trait impl's header, the type after `for`.
fn owner(header: &str) -> String {
    let header = header.rsplit(" for ").next().unwrap_or(header);
    let mut rest = header.trim_start_matches("impl").trim_start();
    if rest.starts_with('<') {
        let mut depth = 0;
        let end = rest
            .char_indices()
            .find(|&(_, ch)| {
                depth += match ch {
                    '<' => 1,
                    '>' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i + 1);
        rest = &rest[end..];
    }
    let ty: String = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    let ty = ty.split(" where ").next().unwrap_or_default();
    let last = |s: &str| s.rsplit("::").next().unwrap_or(s).to_string();
    let base = last(ty.split('<').next().unwrap_or(ty).trim());
    match ty.split_once('<') {
        Some(("Ref", arg)) => {
            let arg = last(arg.trim_end_matches('>').trim());
            if arg.len() == 1 {
                base
            } else {
                arg
            }
        }
        _ => base,
    }
}

/// Every method of an impl of `src`, with its owner; trait impls' methods count as not public
/// (they exist, but need no line of their own).
fn methods(file: &str, src: &str) -> Vec<Method> {
    let code = code_only(src);
    let bytes = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let tests: Vec<(usize, usize)> = keyword_at(bytes, "mod")
        .into_iter()
        .filter(|&at| code[..at].trim_end().ends_with("#[cfg(test)]"))
        .filter_map(|at| code[at..].find('{').map(|o| (at, block_end(bytes, at + o))))
        .collect();
    let mut found = Vec::new();
    for at in keyword_at(bytes, "impl") {
        if !item_start(bytes, at) || tests.iter().any(|&(s, e)| s < at && at < e) {
            continue;
        }
        let Some(open) = code[at..].find('{').map(|o| at + o) else {
            continue;
        };
        let header = code[at..open]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let is_trait = header.contains(" for ");
        let owner = owner(&header);
        let end = block_end(bytes, open);
        let body = &bytes[open + 1..end - 1];
        for f in keyword_at(body, "fn") {
            // Only the impl's own items, not functions nested in their bodies.
            let depth: i32 = body[..f]
                .iter()
                .map(|b| match b {
                    b'{' => 1,
                    b'}' => -1,
                    _ => 0,
                })
                .sum();
            if depth != 0 {
                continue;
            }
            let name: String = code[open + 1 + f + 2..]
                .trim_start()
                .bytes()
                .take_while(|&b| is_ident(b))
                .map(char::from)
                .collect();
            if name.is_empty() {
                continue; // a `fn(..)` pointer type in a signature
            }
            let before = code[open + 1..open + 1 + f].trim_end();
            let qualifiers = before
                .rsplit([';', '}', '{', ']'])
                .next()
                .unwrap_or_default();
            let public = !is_trait
                && qualifiers
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w == "pub");
            found.push(Method {
                owner: owner.clone(),
                name,
                public,
                file: file.to_string(),
                line: line_of(open + 1 + f),
            });
        }
    }
    found
}

fn sources() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join("model"))
        .expect("core/src/model is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files.push(src.join("stack.rs"));
    files
}

fn model_methods() -> Vec<Method> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    sources()
        .iter()
        .flat_map(|p| {
            let src = std::fs::read_to_string(p).expect("a source file is readable");
            let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
            methods(&name, &src)
        })
        .filter(|m| !NOT_IN_THE_PAGE.contains(&m.owner.as_str()))
        .collect()
}

/// The page's sections for types: each heading naming types in backticks (`` `Vpc` ``,
/// `` `Ref<T>` ``) owns the text up to the next heading.
fn sections(page: &str) -> Vec<(BTreeSet<String>, String)> {
    let mut out: Vec<(BTreeSet<String>, String)> = Vec::new();
    for line in page.lines() {
        if line.starts_with('#') {
            let types = line
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|code| code.split('<').next().unwrap_or(code).to_string())
                .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
                .collect();
            out.push((types, String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out.retain(|(types, _)| !types.is_empty());
    out
}

/// Whether `text` names the method `name` as a call: `.name(` or `::name(`.
fn names_call(text: &str, name: &str) -> bool {
    let call = format!("{name}(");
    text.match_indices(&call).any(|(at, _)| {
        let before = &text[..at];
        before.ends_with('.') || before.ends_with("::")
    })
}

/// The method a table row's first cell names: `` | `Vpc::new(cidr)` | `` gives `new`.
fn row_method(line: &str) -> Option<&str> {
    let cell = line.strip_prefix('|')?.split('|').next()?.trim();
    let code = cell.strip_prefix('`')?.split('`').next()?;
    let head = &code[..code.find('(')?];
    let start = head
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    Some(&head[start..]).filter(|n| !n.is_empty())
}

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reference.md");
    std::fs::read_to_string(path).expect("docs/reference.md is readable")
}

fn missing_from(page: &str, methods: &[Method]) -> Vec<String> {
    let sections = sections(page);
    methods
        .iter()
        .filter(|m| m.public)
        .filter(|m| {
            !sections
                .iter()
                .any(|(types, text)| types.contains(&m.owner) && names_call(text, &m.name))
        })
        .map(|m| format!("{}::{} ({}:{})", m.owner, m.name, m.file, m.line))
        .collect()
}

fn unknown_in(page: &str, methods: &[Method]) -> Vec<String> {
    let mut known: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in methods {
        known.entry(&m.owner).or_default().insert(&m.name);
    }
    let mut out = Vec::new();
    for (types, text) in sections(page) {
        for line in text.lines() {
            let Some(name) = row_method(line) else {
                continue;
            };
            if !types
                .iter()
                .any(|t| known.get(t.as_str()).is_some_and(|k| k.contains(name)))
            {
                let list: Vec<&str> = types.iter().map(String::as_str).collect();
                out.push(format!("`{name}` in the section of {}", list.join(", ")));
            }
        }
    }
    out
}

#[test]
fn every_public_method_of_the_model_is_in_the_reference() {
    let methods = model_methods();
    assert!(
        methods.len() > 100,
        "the scan found only {} methods",
        methods.len()
    );
    let missing = missing_from(&page(), &methods);
    assert!(
        missing.is_empty(),
        "docs/reference.md does not list these public methods (as `.name(` or `::name(` in \
         the section of their type):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_method_the_reference_lists_exists() {
    let unknown = unknown_in(&page(), &model_methods());
    assert!(
        unknown.is_empty(),
        "docs/reference.md lists methods its types do not have:\n  {}",
        unknown.join("\n  ")
    );
}

#[test]
fn the_scan_reads_through_formatting() {
    let src = r##"
        impl<T: ResourceKind> Ref<T> {
            pub fn physical_id(&self) -> Output { todo() }
        }
        /* impl Ghost { pub fn in_a_comment() {} } */
        impl Ref<crate::model::DbInstance> {
            // pub fn commented_out() {}
            pub fn endpoint(&self) -> Output {
                let brace = '}';
                let text = "pub fn in_a_string() { }";
                let raw = r#"}"#;
                fn helper<'a>(s: &'a str) -> &'a str { s }
                helper(text)
            }

            pub(crate) fn internal(&self) {}

            pub
            fn
            spread_over<S: Into<String>>(
                self,
            ) -> Self {
                self
            }
        }
        impl Default for MetadataOptions {
            fn default() -> Self { todo() }
        }
        #[cfg(test)]
        mod tests {
            impl Vpc { pub fn only_in_tests() {} }
        }
    "##;
    let found: Vec<(String, String, bool)> = methods("x.rs", src)
        .into_iter()
        .map(|m| (m.owner, m.name, m.public))
        .collect();
    let expected = [
        ("Ref", "physical_id", true),
        ("DbInstance", "endpoint", true),
        ("DbInstance", "internal", false),
        ("DbInstance", "spread_over", true),
        ("MetadataOptions", "default", false),
    ];
    let expected: Vec<(String, String, bool)> = expected
        .iter()
        .map(|(o, n, p)| (o.to_string(), n.to_string(), *p))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn a_method_missing_from_the_page_is_named() {
    let src = "impl Vpc {\n    pub fn new() {}\n    pub fn dns_support() {}\n}\n";
    let methods = methods("core/src/model/network.rs", src);
    let page = "### `Vpc`\n\n| `Vpc::new(cidr)` | a VPC |\n\n### `Subnet`\n\n`.dns_support(on)`\n";
    assert_eq!(
        missing_from(page, &methods),
        ["Vpc::dns_support (core/src/model/network.rs:3)"]
    );
    let page = "### `Vpc`\n\n| `Vpc::new(cidr)` | a VPC |\n| `.dns_hostnames(on)` | |\n";
    assert_eq!(
        unknown_in(page, &methods),
        ["`dns_hostnames` in the section of Vpc"]
    );
}
