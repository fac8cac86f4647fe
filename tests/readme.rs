//! README examples are tests: every ```` ```console ```` block of README.md is run with the built `convmat`
//! and its shown output checked. (The ```` ```python ```` blocks run in `crates/python/tests/test_readme.py`,
//! the ```` ```rust ```` blocks as doc tests of the root crate.)
//!
//! The convention, for whoever writes a README section (README's Development section says the same):
//!
//! - In a console block, a line `$ convmat ARGS` is a command; a command too long for one line goes on
//!   in lines indented by four spaces. Arguments are split as a POSIX shell splits them (single and
//!   double quotes, backslash escapes); no pipes, redirections or variables.
//! - The lines after a command, up to the next `$ ` line or the end of the block, are what it prints:
//!   stdout, then stderr. `[..]` in a line matches any text within that line (timings, paths); a line
//!   `...` alone matches any number of lines (output cut short). Trailing spaces and blank lines at the
//!   end do not count. A command whose shown output starts with `error: ` must exit with status 2, any
//!   other with 0.
//! - Commands run in a scratch directory, one per README, in README order (a command may read what an
//!   earlier block wrote): it holds links to the repository's `examples/`, `benches/`, `crates/` and
//!   `tests/` folders and an empty `docs/`. Input files are those shipped under `examples/` (made by
//!   `examples/make_examples.py`) or `benches/data/`, never files a Python block writes.
//! - An HTML comment on the line right before a block's opening fence marks it: `<!-- readme: skip WHY -->`
//!   runs nothing (WHY says why: minutes of computation, a cluster, a file made by hand);
//!   `<!-- requires: torch onnx -->` names the optional Python packages a python block needs (skipped
//!   where one is missing; `pip install "./crates/python[examples]"` installs them all).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One command of a console block, with the README line it starts on.
#[derive(Debug)]
struct Example {
    line: usize,
    args: Vec<String>,
    expected: Vec<String>,
}

/// The console blocks' commands, in README order (skipped blocks left out).
fn examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```console") {
            i += 1;
            continue;
        }
        let skip = i > 0 && lines[i - 1].trim_start().starts_with("<!-- readme: skip");
        let mut block: Vec<Example> = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            if let Some(cmd) = lines[i].strip_prefix("$ ") {
                let line = i + 1;
                let mut text = cmd.to_string();
                while i + 1 < lines.len() && lines[i + 1].starts_with("    ") {
                    i += 1;
                    text.push(' ');
                    text.push_str(lines[i].trim_start());
                }
                block.push(Example { line, args: split(&text), expected: Vec::new() });
            } else if let Some(c) = block.last_mut() {
                c.expected.push(lines[i].to_string());
            } else {
                panic!("README.md:{}: console output before any `$ ` command", i + 1);
            }
            i += 1;
        }
        if !skip {
            out.extend(block);
        }
        i += 1;
    }
    out
}

/// Splits a command as a POSIX shell does (quotes and backslashes; nothing else is special).
fn split(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                cur.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut cur));
                }
                in_word = false;
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        args.push(cur);
    }
    args
}

/// Does `line` match `pattern`, where `[..]` matches any text?
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (k, part) in parts.iter().enumerate() {
        if k + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Do the printed lines match the shown ones, where a line `...` matches any number of lines?
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => (0..=actual.len()).any(|k| lines_match(rest, &actual[k..])),
        Some((e, rest)) => actual.first().is_some_and(|a| line_matches(e, a)) && lines_match(rest, &actual[1..]),
    }
}

fn trimmed(lines: &mut Vec<String>) {
    for l in lines.iter_mut() {
        *l = l.trim_end().to_string();
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
}

/// The scratch directory the commands run in: links to the repository's example folders, an empty `docs/`.
fn scratch(root: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["examples", "benches", "crates", "tests"] {
        std::os::unix::fs::symlink(root.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn every_console_example_prints_what_readme_shows() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = scratch(&root);
    let mut failures = Vec::new();
    let all = examples(&readme);
    assert!(all.len() >= 10, "only {} console examples found: is the parser broken?", all.len());
    for ex in all {
        assert_eq!(
            ex.args.first().map(String::as_str),
            Some("convmat"),
            "README.md:{}: only `$ convmat` commands run",
            ex.line
        );
        let out = Command::new(env!("CARGO_BIN_EXE_convmat"))
            .args(&ex.args[1..])
            .current_dir(dir.path())
            .env_remove("RUST_BACKTRACE")
            .env("COLUMNS", "150")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let mut actual: Vec<String> = text.lines().map(String::from).collect();
        trimmed(&mut actual);
        let mut expected = ex.expected.clone();
        trimmed(&mut expected);
        let want = if expected.first().is_some_and(|l| l.starts_with("error: ")) { 2 } else { 0 };
        let refs: Vec<&str> = actual.iter().map(String::as_str).collect();
        if out.status.code() != Some(want) || !lines_match(&expected, &refs) {
            failures.push(format!(
                "README.md:{}: $ {}\n  exit {:?} (want {want})\n--- shown\n{}\n--- printed\n{}",
                ex.line,
                ex.args.join(" "),
                out.status.code(),
                expected.join("\n"),
                actual.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{} README example(s) drifted:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn the_runner_reads_the_convention() {
    assert_eq!(
        split(r#"svd --layer "Conv2d(3, 8, 3, padding_mode='reflect')" 'a b' c\ d"#),
        ["svd", "--layer", "Conv2d(3, 8, 3, padding_mode='reflect')", "a b", "c d"]
    );
    assert!(line_matches("built in [..] s, written in [..] s", "built in 0.002 s, written in 0.013 s"));
    assert!(!line_matches("built in [..] s", "built in 0.002 ms"));
    assert!(line_matches("[..]", "anything"));
    let shown: Vec<String> = ["a", "...", "z"].map(String::from).to_vec();
    assert!(lines_match(&shown, &["a", "b", "c", "z"]));
    assert!(lines_match(&shown, &["a", "z"]));
    assert!(!lines_match(&shown, &["a", "b"]));
    let readme = "x\n<!-- readme: skip slow -->\n```console\n$ convmat a\nout\n```\n```console\n$ convmat b\n    --c\nout b\n```\n";
    let ex = examples(readme);
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert_eq!(
        (ex[0].line, &ex[0].args[..], &ex[0].expected[..]),
        (8, &["convmat".to_string(), "b".into(), "--c".into()][..], &["out b".to_string()][..])
    );
}
