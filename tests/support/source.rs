//! The repository's own files, read by the tests that hold the code to its registries: a file,
//! and its code without comments with method chains on one line.

use std::path::PathBuf;

pub fn repository(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repository(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The code without comments, with method chains on one line (`a\n    .b(` is `a.b(`).
pub fn code(text: &str) -> String {
    let text: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    regex::Regex::new(r"\s*\n\s*\.")
        .unwrap()
        .replace_all(&text, ".")
        .into_owned()
}

/// The text from the `{` at or after `from` to its matching `}`.
pub fn block(text: &str, from: usize) -> &str {
    let open = from + text[from..].find('{').expect("a block");
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..=open + i];
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed block");
}
