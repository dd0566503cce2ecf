//! Schemathesis against the OpenAPI document (RELIABILITY.md T11), PR tier:
//! `scripts/schemathesis` with this build's binary, a fixed seed and 20
//! examples per operation, every check. The document must match what the
//! server does: 0 failures. `scripts/soak` runs it with more examples.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::helpers::TestResult;

/// Examples per operation and phase in the PR tier (`SCHEMATHESIS_EXAMPLES` overrides).
const EXAMPLES: u32 = 20;

#[test]
fn schemathesis_finds_no_failure() -> TestResult {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    anyhow::ensure!(
        root.join("target/schemathesis-venv/bin/schemathesis").exists(),
        "Schemathesis is not installed in target/schemathesis-venv: run scripts/test-deps"
    );
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(EXAMPLES);
    let seed = crate::figures::seed();
    let output = Command::new(root.join("scripts/schemathesis"))
        .current_dir(&root)
        .env("ORDERDOCK_BIN", env!("CARGO_BIN_EXE_orderdock"))
        .args(["--max-examples", &examples.to_string(), "--seed", &seed.to_string(), "--no-color"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // "Test cases:\n  1481 generated, 1481 passed, 30 skipped" or "..., 8 found 8 unique failures, ..."
    let summary = stdout.lines().skip_while(|l| !l.starts_with("Test cases:")).nth(1).unwrap_or_default().trim();
    let number_before = |word: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(word).and_then(|n| n.trim().split(' ').next()?.parse().ok()))
            .unwrap_or(0)
    };
    let generated = number_before(" generated");
    let failures = summary
        .split(", ")
        .find_map(|part| part.split(" found ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or(u64::from(!output.status.success()));
    crate::figures::record(
        "schemathesis_api",
        seed,
        generated,
        failures,
        json!({"examples_per_operation": examples, "cases": generated, "failures": failures, "summary": summary}),
    );
    anyhow::ensure!(
        output.status.success() && failures == 0 && generated > 0,
        "Schemathesis failed ({summary}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
