//! Loading a stack from a file: a `.rs` stack file (compiled once into a small cached program
//! that prints the stack's JSON) or a `.json` file written by `infra synth`.
//!
//! The generated program lives in a cache directory (`$INFRA_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/infra`, else `~/.cache/infra`):
//!
//! ```text
//! CACHE/stacks/SOURCE/{Cargo.toml, Cargo.lock, src/main.rs}   one tiny project per stack file version
//! CACHE/target/                                               shared, so infra-core compiles once
//! CACHE/bin/SOURCE.inputs                                     the other files its last build read
//! CACHE/bin/KEY                                               a built program; present = cache hit
//! ```
//!
//! `main.rs` includes the user's file with `#[path = "/abs/file.rs"] mod stack_file;`, so
//! compiler errors point at the user's file and line. SOURCE hashes the file's bytes and path and
//! this infra's version and executable. The file may pull in others (`mod common;`,
//! `#[path]`, `include!`, `include_str!`): after a build, the files the compiler read (cargo's
//! dep-info) are listed in `SOURCE.inputs`, and KEY hashes SOURCE with each listed file's path
//! and content. A later run reads the list, hashes those files and runs `bin/KEY` when it
//! exists, without invoking cargo at all; an edit to any of them makes a new KEY, so a build.
//!
//! `--var KEY=VALUE` values ([`Var`]) reach the program at run time as `INFRA_VAR_KEY`
//! environment variables ([`Stack::var`]), so they never change what is compiled.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use infra_core::stack::{StackJsonError, VAR_ENV_PREFIX};
use infra_core::Stack;
use sha2::{Digest, Sha256};

/// Where infra-core's sources are: the generated project depends on them by path.
const CORE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core");
/// The lock file infra itself was built with, so stack programs use the same (already
/// downloaded) dependency versions and build without network access.
const WORKSPACE_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

/// Errors loading a stack file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read stack file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{}` is not a stack file: expected a `.rs` file defining `pub fn stack() -> Stack`, or a `.json` file written by `infra synth`",
        path.display()
    )]
    Extension { path: PathBuf },
    #[error("`{}` does not define `pub fn stack() -> infra_core::Stack`", path.display())]
    MissingStackFn { path: PathBuf },
    #[error("`{}` is not a stack written by `infra synth`", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: StackJsonError,
    },
    #[error(
        "no cache directory for compiled stack files: set INFRA_CACHE_DIR, XDG_CACHE_HOME or HOME"
    )]
    NoCacheDir,
    #[error("cannot write the build of `{}` under `{}`", path.display(), cache.display())]
    Cache {
        path: PathBuf,
        cache: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run `{}` to compile `{}` (is a Rust toolchain installed?)", cargo.to_string_lossy(), path.display())]
    Cargo {
        path: PathBuf,
        cargo: OsString,
        #[source]
        source: io::Error,
    },
    #[error("could not compile stack file `{}`", path.display())]
    Compile { path: PathBuf },
    #[error("cannot run the compiled program of `{}`", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`stack()` in `{}` failed ({status}){}", path.display(), indent_stderr(stderr))]
    Run {
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("the stack JSON printed by `{}` is not valid", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: StackJsonError,
    },
    #[error(
        "`--var` does not apply to `{}`: a `.json` stack was evaluated when `infra synth` wrote it; pass the `.rs` stack file with `--var` instead",
        path.display()
    )]
    VarsOnJson { path: PathBuf },
}

/// One `--var KEY=VALUE`: read by the stack file with `Stack::var("KEY")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    pub key: String,
    pub value: String,
}

/// A `--var` that is not `KEY=VALUE` with a valid key.
#[derive(Debug, thiserror::Error)]
pub enum VarError {
    #[error("expected KEY=VALUE, found `{text}`")]
    NoEquals { text: String },
    #[error("`{key}` is not a valid variable name: use ASCII letters, digits and `_`, not starting with a digit (`[A-Za-z_][A-Za-z0-9_]*`)")]
    Key { key: String },
}

impl FromStr for Var {
    type Err = VarError;

    /// `KEY=VALUE`, split at the first `=`; the value may be empty or hold more `=`.
    fn from_str(text: &str) -> Result<Var, VarError> {
        let (key, value) = text.split_once('=').ok_or_else(|| VarError::NoEquals {
            text: text.to_string(),
        })?;
        let mut chars = key.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(VarError::Key {
                key: key.to_string(),
            });
        }
        Ok(Var {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

fn indent_stderr(stderr: &str) -> String {
    let text = stderr.trim_end();
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::from(":");
    for line in text.lines() {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

/// What loading reports while it works: the CLI prints these, an embedder may ignore them.
pub trait LoadReporter {
    /// A stack file is being compiled (it was not in the cache).
    fn compiling(&self, _path: &Path) {}
    /// The compiler's diagnostics for the user's file (warnings on success, errors on failure),
    /// with the generated project's noise removed.
    fn compiler_output(&self, _text: &str) {}
    /// What the stack program wrote on stderr (`eprintln!` in `stack()`) when it succeeded; a
    /// failure carries it in [`LoadError::Run`] instead.
    fn program_stderr(&self, _path: &Path, _text: &str) {}
}

/// A [`LoadReporter`] that drops everything.
pub struct Quiet;

impl LoadReporter for Quiet {}

/// Loads stack files, compiling `.rs` ones through a cache.
#[derive(Clone, Debug)]
pub struct Loader {
    cache_dir: PathBuf,
    cargo: OsString,
    color: bool,
    vars: Vec<Var>,
}

impl Loader {
    /// A loader with the cache directory from the environment (`$INFRA_CACHE_DIR`,
    /// `$XDG_CACHE_HOME/infra`, `~/.cache/infra`) and cargo from `$CARGO` or `PATH`.
    pub fn from_env() -> Result<Loader, LoadError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let cache_dir = if let Some(dir) = non_empty("INFRA_CACHE_DIR") {
            PathBuf::from(dir)
        } else if let Some(dir) = non_empty("XDG_CACHE_HOME") {
            PathBuf::from(dir).join("infra")
        } else if let Some(home) = non_empty("HOME") {
            PathBuf::from(home).join(".cache").join("infra")
        } else {
            return Err(LoadError::NoCacheDir);
        };
        Ok(Loader {
            cache_dir,
            cargo: non_empty("CARGO").unwrap_or_else(|| "cargo".into()),
            color: false,
            vars: Vec::new(),
        })
    }

    /// Use this cache directory.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Loader {
        self.cache_dir = dir.into();
        self
    }

    /// Ask cargo for coloured diagnostics.
    pub fn with_color(mut self, color: bool) -> Loader {
        self.color = color;
        self
    }

    /// Run `.rs` stack files with these `--var` values (a later one wins for a repeated key).
    /// A `.json` stack refuses them: it was evaluated when it was written.
    pub fn with_vars(mut self, vars: impl IntoIterator<Item = Var>) -> Loader {
        self.vars = vars.into_iter().collect();
        self
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Load the stack in `path`: `.json` is parsed, `.rs` compiled (or taken from the cache)
    /// and run.
    pub fn load(&self, path: &Path, reporter: &dyn LoadReporter) -> Result<Stack, LoadError> {
        let read = |p: &Path| {
            fs::read(p).map_err(|source| LoadError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                if !self.vars.is_empty() {
                    return Err(LoadError::VarsOnJson {
                        path: path.to_path_buf(),
                    });
                }
                let bytes = read(path)?;
                let text = String::from_utf8_lossy(&bytes);
                Stack::from_json(&text).map_err(|source| LoadError::Json {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Some("rs") => {
                let bytes = read(path)?;
                let binary = self.compiled(path, &bytes, reporter)?;
                self.run(path, &binary, reporter)
            }
            _ => Err(LoadError::Extension {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The cached program for this version of the file and of every file it includes,
    /// compiling it when missing.
    fn compiled(
        &self,
        path: &Path,
        bytes: &[u8],
        reporter: &dyn LoadReporter,
    ) -> Result<PathBuf, LoadError> {
        let absolute = fs::canonicalize(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let source = cache_key(&absolute, bytes);
        if let Some(binary) = self.cached(&source) {
            return Ok(binary);
        }
        if !String::from_utf8_lossy(bytes).contains("fn stack") {
            return Err(LoadError::MissingStackFn {
                path: path.to_path_buf(),
            });
        }
        reporter.compiling(path);
        let cache_error = |source: io::Error| LoadError::Cache {
            path: path.to_path_buf(),
            cache: self.cache_dir.clone(),
            source,
        };
        let project = self
            .write_project(&absolute, &source)
            .map_err(cache_error)?;
        let started = SystemTime::now();
        let built = self.build(path, &absolute, &project, &source, reporter)?;
        let dep_info = fs::read_to_string(built.with_extension("d")).map_err(cache_error)?;
        let inputs = included_files(&dep_info, &project, &absolute);
        // A file edited while cargo ran may or may not be in the build: run what was built,
        // but do not remember it under the new contents. The next run builds again.
        if modified_since(inputs.iter().chain([&absolute]), started) {
            return Ok(built);
        }
        let Ok(key) = inputs_key(&source, &inputs) else {
            // An input vanished since the build: nothing to key the program by.
            return Ok(built);
        };
        let binary = self.binary(&key);
        let staging = binary.with_extension(format!("tmp{}", std::process::id()));
        fs::copy(&built, &staging).map_err(cache_error)?;
        fs::rename(&staging, &binary).map_err(cache_error)?;
        write_atomic(&self.inputs_list(&source), &inputs_text(&inputs)).map_err(cache_error)?;
        Ok(binary)
    }

    /// The program built from this stack file when every file its last build read is
    /// unchanged; no cargo, only reading and hashing those files.
    fn cached(&self, source: &str) -> Option<PathBuf> {
        let listed = fs::read_to_string(self.inputs_list(source)).ok()?;
        let inputs: Vec<PathBuf> = listed.lines().map(PathBuf::from).collect();
        let binary = self.binary(&inputs_key(source, &inputs).ok()?);
        binary.is_file().then_some(binary)
    }

    fn binary(&self, key: &str) -> PathBuf {
        self.cache_dir
            .join("bin")
            .join(format!("{key}{}", std::env::consts::EXE_SUFFIX))
    }

    fn inputs_list(&self, source: &str) -> PathBuf {
        self.cache_dir.join("bin").join(format!("{source}.inputs"))
    }

    /// The generated project that includes the stack file; its directory.
    fn write_project(&self, absolute: &Path, source: &str) -> io::Result<PathBuf> {
        let project = self.cache_dir.join("stacks").join(source);
        fs::create_dir_all(project.join("src"))?;
        fs::create_dir_all(self.cache_dir.join("bin"))?;
        write_atomic(
            &project.join("Cargo.toml"),
            &manifest(&package_name(source)),
        )?;
        write_atomic(&project.join("src/main.rs"), &main_rs(absolute))?;
        if !project.join("Cargo.lock").exists() {
            write_atomic(&project.join("Cargo.lock"), WORKSPACE_LOCK)?;
        }
        Ok(project)
    }

    /// `cargo build` the generated project, showing the compiler's diagnostics for the user's
    /// files; the built program's path, with cargo's dep-info (`.d`) beside it.
    fn build(
        &self,
        path: &Path,
        absolute: &Path,
        project: &Path,
        source: &str,
        reporter: &dyn LoadReporter,
    ) -> Result<PathBuf, LoadError> {
        let name = package_name(source);
        let target = self.cache_dir.join("target");
        let mut cargo = Command::new(&self.cargo);
        cargo
            .arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .arg(if self.color {
                "--color=always"
            } else {
                "--color=never"
            });
        // When infra itself runs under cargo (tests, `cargo run`), do not inherit its build
        // settings: the generated project has its own target directory and manifest.
        for var in [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_MANIFEST_DIR",
        ] {
            cargo.env_remove(var);
        }
        let output = cargo.output().map_err(|source| LoadError::Cargo {
            path: path.to_path_buf(),
            cargo: self.cargo.clone(),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = filter_cargo_output(&stderr, &name, absolute, path);
        if !shown.trim().is_empty() {
            reporter.compiler_output(&shown);
        }
        if !output.status.success() {
            return Err(LoadError::Compile {
                path: path.to_path_buf(),
            });
        }
        Ok(target
            .join("debug")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
    }

    /// Run the program with the `--var` values as `INFRA_VAR_*` (and no other `INFRA_VAR_*`
    /// from infra's own environment, so `--var` is the only source of them).
    fn run(
        &self,
        path: &Path,
        binary: &Path,
        reporter: &dyn LoadReporter,
    ) -> Result<Stack, LoadError> {
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(VAR_ENV_PREFIX) {
                command.env_remove(name);
            }
        }
        for var in &self.vars {
            command.env(format!("{VAR_ENV_PREFIX}{}", var.key), &var.value);
        }
        let output = command.output().map_err(|source| LoadError::Spawn {
            path: path.to_path_buf(),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(LoadError::Run {
                path: path.to_path_buf(),
                status: output.status.to_string(),
                stderr: stderr.into_owned(),
            });
        }
        if !stderr.trim().is_empty() {
            reporter.program_stderr(path, &stderr);
        }
        Stack::from_json(&String::from_utf8_lossy(&output.stdout)).map_err(|source| {
            LoadError::Output {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// Hex key of one version of a stack file, for one build of infra.
fn cache_key(absolute: &Path, bytes: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"infra ");
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    // A rebuilt infra may carry a changed infra-core: its stack programs are rebuilt too.
    let exe_stamp = std::env::current_exe()
        .and_then(fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hash.update(exe_stamp.to_le_bytes());
    hash.update([0]);
    hash.update(absolute.to_string_lossy().as_bytes());
    hash.update([0]);
    hash.update(bytes);
    hex::encode(&hash.finalize()[..12])
}

/// Hex key of a stack file's version (`source`, from [`cache_key`]) together with the current
/// contents of the other files it includes. Fails when one cannot be read.
fn inputs_key(source: &str, inputs: &[PathBuf]) -> io::Result<String> {
    let mut hash = Sha256::new();
    hash.update(source.as_bytes());
    for input in inputs {
        hash.update([0]);
        hash.update(input.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(Sha256::digest(fs::read(input)?));
    }
    Ok(hex::encode(&hash.finalize()[..12]))
}

fn inputs_text(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| format!("{}\n", p.to_string_lossy()))
        .collect()
}

/// Whether any of `files` changed after `since` (or cannot be read any more).
fn modified_since<'a>(files: impl IntoIterator<Item = &'a PathBuf>, since: SystemTime) -> bool {
    files.into_iter().any(|file| {
        fs::metadata(file)
            .and_then(|m| m.modified())
            .map_or(true, |modified| modified > since)
    })
}

/// The files of a build's dep-info that the stack file brought in: everything the compiler
/// read except the generated project, the stack file itself (already in its key) and
/// infra-core (which changes only with infra, already in the key).
fn included_files(dep_info: &str, project: &Path, stack_file: &Path) -> Vec<PathBuf> {
    let core = fs::canonicalize(CORE_PATH).unwrap_or_else(|_| PathBuf::from(CORE_PATH));
    let mut files: Vec<PathBuf> = dep_info_files(dep_info)
        .into_iter()
        .map(|file| project.join(file))
        .filter(|file| {
            !file.starts_with(project) && !file.starts_with(&core) && file.as_path() != stack_file
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The prerequisites of the first rule of a Makefile-style dep-info file (`target: a.rs
/// b\ c.rs`), with escaped spaces unescaped. Relative paths stay relative.
fn dep_info_files(dep_info: &str) -> Vec<PathBuf> {
    let Some(rule) = dep_info.lines().find(|line| !line.trim().is_empty()) else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => word.push(chars.next().unwrap_or(' ')),
            ' ' | '\t' => words.extend((!word.is_empty()).then(|| std::mem::take(&mut word))),
            _ => word.push(c),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    // Targets end with `:` (a Windows path has `C:` too, but not at its end).
    let prerequisites = words
        .iter()
        .position(|w| w.ends_with(':'))
        .map_or(&words[..0], |i| &words[i + 1..]);
    prerequisites.iter().map(PathBuf::from).collect()
}

fn package_name(source: &str) -> String {
    format!("infra-stack-{source}")
}

fn manifest(name: &str) -> String {
    format!(
        r#"# Generated by infra: the program that prints one stack file's JSON.
[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
infra-core = {{ path = {core:?} }}

[profile.dev]
debug = false

[workspace]
"#,
        core = CORE_PATH
    )
}

fn main_rs(absolute: &Path) -> String {
    format!(
        r#"// Generated by infra: prints the stack's JSON.
#[path = {path:?}]
mod stack_file;

fn main() {{
    println!("{{}}", stack_file::stack().to_json());
}}
"#,
        path = absolute.to_string_lossy()
    )
}

/// Write through a temporary file and a rename, so a concurrent reader (another `infra` on the
/// same stack file) never sees half a file.
fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    if fs::read_to_string(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    let staging = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&staging, contents)?;
    fs::rename(&staging, path)
}

/// Cargo's stderr without the generated project's noise, with the user's path as they typed it.
fn filter_cargo_output(stderr: &str, package: &str, absolute: &Path, shown_as: &Path) -> String {
    let absolute = absolute.to_string_lossy();
    let shown_as = shown_as.to_string_lossy();
    let mut out = String::new();
    for line in stderr.lines() {
        let plain = strip_ansi(line);
        let trimmed = plain.trim_start();
        let noise = [
            "Compiling ",
            "Finished ",
            "Blocking waiting",
            "Locking ",
            "Adding ",
            "Updating ",
            "Downloading ",
            "Downloaded ",
        ]
        .iter()
        .any(|prefix| trimmed.starts_with(prefix))
            || (trimmed.contains(package)
                && (trimmed.starts_with("error: could not compile")
                    || trimmed.starts_with("warning: `")));
        if noise {
            continue;
        }
        out.push_str(&line.replace(absolute.as_ref(), &shown_as));
        out.push('\n');
    }
    out
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_drops_cargo_noise_and_shows_the_users_path() {
        let stderr = "\
   Compiling infra-core v0.1.0 (/src/core)
   Compiling infra-stack-abc v0.0.0 (/cache/stacks/abc)
error[E0425]: cannot find value `vpcc` in this scope
  --> /home/me/stacks/shop.rs:12:20
   |
12 |     s.add(\"a\", Subnet::public(&vpcc, \"10.0.1.0/24\", \"ap-northeast-2a\"));
   |                                 ^^^^ help: a local variable with a similar name exists: `vpc`

error: could not compile `infra-stack-abc` (bin \"infra-stack-abc\") due to 1 previous error
";
        let shown = filter_cargo_output(
            stderr,
            "infra-stack-abc",
            Path::new("/home/me/stacks/shop.rs"),
            Path::new("stacks/shop.rs"),
        );
        assert_eq!(
            shown,
            "\
error[E0425]: cannot find value `vpcc` in this scope
  --> stacks/shop.rs:12:20
   |
12 |     s.add(\"a\", Subnet::public(&vpcc, \"10.0.1.0/24\", \"ap-northeast-2a\"));
   |                                 ^^^^ help: a local variable with a similar name exists: `vpc`

"
        );
    }

    #[test]
    fn strip_ansi_keeps_the_text() {
        assert_eq!(
            strip_ansi("\x1b[1m\x1b[32m   Compiling\x1b[0m x"),
            "   Compiling x"
        );
    }

    #[test]
    fn cache_key_changes_with_content_and_path() {
        let a = cache_key(Path::new("/s/a.rs"), b"fn stack() {}");
        assert_eq!(a, cache_key(Path::new("/s/a.rs"), b"fn stack() {}"));
        assert_ne!(a, cache_key(Path::new("/s/a.rs"), b"fn stack() { }"));
        assert_ne!(a, cache_key(Path::new("/s/b.rs"), b"fn stack() {}"));
    }

    #[test]
    fn dep_info_lists_the_prerequisites_with_escaped_spaces_unescaped() {
        let dep_info = "/c/target/debug/infra-stack-ab: /c/stacks/ab/src/main.rs /home/me/my\\ stacks/shop.rs /home/me/my\\ stacks/common.rs\n\n/home/me/my\\ stacks/common.rs:\n";
        assert_eq!(
            dep_info_files(dep_info),
            [
                "/c/stacks/ab/src/main.rs",
                "/home/me/my stacks/shop.rs",
                "/home/me/my stacks/common.rs"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            dep_info_files("C:\\t\\infra-stack-ab.exe: C:\\s\\shop.rs src\\main.rs"),
            ["C:\\s\\shop.rs", "src\\main.rs"].map(PathBuf::from)
        );
        assert_eq!(
            dep_info_files("/t/my\\ target/x: a.rs"),
            [PathBuf::from("a.rs")]
        );
        assert!(dep_info_files("").is_empty());
    }

    #[test]
    fn included_files_leave_out_the_project_the_stack_file_and_infra_core() {
        let core = fs::canonicalize(CORE_PATH).unwrap();
        let dep_info = format!(
            "/c/target/debug/infra-stack-ab: src/main.rs /s/shop.rs {} /s/net/common.rs /s/a.txt /s/a.txt\n",
            core.join("src/lib.rs").display()
        );
        assert_eq!(
            included_files(
                &dep_info,
                Path::new("/c/stacks/ab"),
                Path::new("/s/shop.rs")
            ),
            ["/s/a.txt", "/s/net/common.rs"].map(PathBuf::from)
        );
    }

    #[test]
    fn the_key_changes_when_an_included_file_changes() {
        let dir = std::env::temp_dir().join(format!("infra-stack-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let common = dir.join("common.rs");
        fs::write(&common, "pub const CIDR: &str = \"10.0.0.0/16\";\n").unwrap();
        let inputs = [common.clone()];
        let before = inputs_key("source", &inputs).unwrap();
        assert_eq!(before, inputs_key("source", &inputs).unwrap());
        assert_ne!(before, inputs_key("other", &inputs).unwrap());
        fs::write(&common, "pub const CIDR: &str = \"10.1.0.0/16\";\n").unwrap();
        assert_ne!(before, inputs_key("source", &inputs).unwrap());
        fs::remove_file(&common).unwrap();
        assert!(inputs_key("source", &inputs).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vars_are_key_equals_value_with_a_valid_key() {
        let var: Var = "env=prod=1".parse().unwrap();
        assert_eq!((var.key.as_str(), var.value.as_str()), ("env", "prod=1"));
        let empty: Var = "_X9=".parse().unwrap();
        assert_eq!((empty.key.as_str(), empty.value.as_str()), ("_X9", ""));
        for bad in ["1x=y", "=y", "a-b=c", "é=1"] {
            let error = bad.parse::<Var>().unwrap_err().to_string();
            let key = bad.split_once('=').unwrap().0;
            assert!(
                error.contains(&format!("`{key}` is not a valid")),
                "{error}"
            );
            assert!(error.contains("[A-Za-z_][A-Za-z0-9_]*"), "{error}");
        }
        assert_eq!(
            "env".parse::<Var>().unwrap_err().to_string(),
            "expected KEY=VALUE, found `env`"
        );
    }

    #[test]
    fn generated_main_includes_the_file_by_absolute_path() {
        let main = main_rs(Path::new("/home/me/my \"stacks\"/shop.rs"));
        assert!(main.contains(r#"#[path = "/home/me/my \"stacks\"/shop.rs"]"#));
        assert!(main.contains("stack_file::stack().to_json()"));
    }
}
