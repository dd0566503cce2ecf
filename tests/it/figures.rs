//! Figure records: every reliability test writes
//! `target/reliability/<test>.json` with `{test, seed, n, violations, figures}`
//! (RELIABILITY.md lists them and how to reproduce each).

use serde_json::{json, Value};

/// Writes the record of `test` and returns `violations` for asserting.
pub(crate) fn record(test: &str, seed: u64, n: u64, violations: u64, figures: Value) -> u64 {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("..").join("reliability");
    let body = json!({"test": test, "seed": seed, "n": n, "violations": violations, "figures": figures});
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{test}.json")), format!("{body:#}\n"));
    }
    violations
}

/// The seed of a randomised test: `ORDERDOCK_SEED` when set (the soak tier,
/// or replaying a failure), else a fixed one, so CI runs are repeatable.
pub(crate) fn seed() -> u64 {
    std::env::var("ORDERDOCK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x0D0C_5EED)
}

/// A proptest runner with `cases` cases, seeded from [`seed`].
pub(crate) fn runner(cases: u32) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Cases per property: `PROPTEST_CASES` when set (the soak tier), else `default`.
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so a failing seed replays.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
