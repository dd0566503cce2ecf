//! The architecture's rules, checked on the source: the two contexts never
//! import each other, and only `src/persistence` names redb.

use std::path::Path;

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source tree") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    let mut bad = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("utf-8 source");
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) && !line.trim_start().starts_with("//") {
                bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    bad
}

#[test]
fn ecommerce_never_imports_fulfillment() {
    let bad =
        offenders("src/ecommerce", &["crate::fulfillment", "orderdock::fulfillment", "super::super::fulfillment"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn fulfillment_never_imports_ecommerce() {
    let bad = offenders("src/fulfillment", &["crate::ecommerce", "orderdock::ecommerce", "super::super::ecommerce"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn only_persistence_names_redb() {
    for dir in ["src/ecommerce", "src/fulfillment", "src/events", "src/actors"] {
        let bad = offenders(dir, &["redb::"]);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn events_and_persistence_know_no_context() {
    for dir in ["src/events", "src/persistence"] {
        let bad = offenders(dir, &["crate::ecommerce", "crate::fulfillment"]);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn production_never_imports_the_load_tool() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    assert!(
        !lib.lines().any(|line| line.trim_start().starts_with("pub mod load")),
        "the library declares the load tool"
    );
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut bad = Vec::new();
    for file in files {
        let relative = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).expect("under the manifest").to_owned();
        // The load tool itself, a module of the binary (`src/main.rs`).
        if relative.starts_with("src/load") || relative == Path::new("src/main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("utf-8 source");
        for (n, line) in text.lines().enumerate() {
            if (line.contains("crate::load") || line.contains("super::load")) && !line.trim_start().starts_with("//") {
                bad.push(format!("{}:{}: {}", relative.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn no_source_file_is_over_700_lines() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).expect("utf-8 source").lines().count();
            (lines > 700).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

/// The body lengths of the functions in `text` that are not test code, by
/// their braces (the source is rustfmt-formatted: a function's closing brace
/// stands at its signature's indentation).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("async ");
        let Some(name) = signature.strip_prefix("fn ") else { continue };
        let indent = line.len() - trimmed.len();
        // The body ends at the first `}` at the signature's indentation; a
        // declaration without a body (in a trait) meets the next item, or
        // the end of its block, first.
        let mut closing = None;
        for (offset, later) in lines[n + 1..].iter().enumerate() {
            let rest = later.trim_start();
            let at = later.len() - rest.len();
            if rest.is_empty() || at > indent {
                continue;
            }
            if at < indent {
                break;
            }
            if rest.starts_with('}') {
                closing = Some(offset);
                break;
            }
            if !(rest.starts_with(')') || rest.starts_with("where") || rest.starts_with('{')) {
                break;
            }
        }
        if let Some(end) = closing {
            let name = name.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or_default();
            found.push((name.to_owned(), end + 2));
        }
    }
    found
}

#[test]
fn no_function_is_over_80_lines() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut long = Vec::new();
    for file in files.iter().filter(|file| !file.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(file).expect("utf-8 source");
        for (name, lines) in function_lengths(&text) {
            if lines > 80 {
                long.push(format!("{}: {name} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "{long:#?}");
}
