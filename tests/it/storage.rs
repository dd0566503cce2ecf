//! Storage faults (RELIABILITY.md T5, I8): a store file damaged by flipped
//! bytes, overwritten ranges or truncation must fail to open with a clear
//! error or open with exactly the data that was committed — never panic,
//! never read back wrong or missing rows.

use std::collections::BTreeMap;
use std::path::Path;

use orderdock::persistence::{Store, StoreError, WriteBatch, WriteOp};
use serde_json::json;

use crate::figures;
use crate::helpers::TestResult;

/// Writes `rows` snapshots in several commits and returns what was written.
async fn build_store(path: &Path, rows: usize) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let store = Store::open(path)?;
    let mut written = BTreeMap::new();
    for chunk in 0..4 {
        let mut batch = WriteBatch::new();
        for n in (chunk * rows / 4)..((chunk + 1) * rows / 4) {
            let id = format!("ord_{n:06}");
            let bytes: Vec<u8> = (0..300).map(|i| ((n * 31 + i) % 251) as u8).collect();
            batch.push(WriteOp::PutSnapshot { kind: "order", id: id.clone(), bytes: bytes.clone() });
            written.insert(id, bytes);
        }
        store.commit(batch).await?;
    }
    store.close();
    Ok(written)
}

#[derive(Debug, Default)]
struct Outcomes {
    detected_at_open: u64,
    detected_at_read: u64,
    clean: u64,
    panics: u64,
    wrong_reads: u64,
}

/// Opens a damaged copy and classifies what happened.
fn probe(path: &Path, expected: &BTreeMap<String, Vec<u8>>, outcomes: &mut Outcomes) -> Option<String> {
    let opened = std::panic::catch_unwind(|| Store::open(path));
    let store = match opened {
        Err(_) => {
            outcomes.panics += 1;
            return Some("panic on open".into());
        }
        Ok(Err(StoreError::Corrupt { .. } | StoreError::Io(_))) => {
            outcomes.detected_at_open += 1;
            return None;
        }
        Ok(Err(other)) => return Some(format!("unexpected error kind: {other}")),
        Ok(Ok(store)) => store,
    };
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.snapshots("order")));
    store.close();
    match read {
        Err(_) => {
            outcomes.panics += 1;
            Some("panic on read".into())
        }
        Ok(Err(_)) => {
            outcomes.detected_at_read += 1;
            None
        }
        Ok(Ok(rows)) => {
            let rows: BTreeMap<String, Vec<u8>> = rows.into_iter().collect();
            if &rows == expected {
                outcomes.clean += 1;
                None
            } else {
                outcomes.wrong_reads += 1;
                Some(format!("silent wrong read: {} rows instead of {}", rows.len(), expected.len()))
            }
        }
    }
}

/// T5: damaged store files fail stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_corruption_failstop() -> TestResult {
    let mutations: u64 = std::env::var("ORDERDOCK_CORRUPTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let seed = figures::seed();
    let dir = tempfile::tempdir()?;
    let original = dir.path().join("original.redb");
    let expected = build_store(&original, 400).await?;
    let pristine = std::fs::read(&original)?;
    let damaged = dir.path().join("damaged.redb");
    let mut rng = figures::Rng::new(seed);
    let mut outcomes = Outcomes::default();
    let mut failures = Vec::new();
    for n in 0..mutations {
        let mut bytes = pristine.clone();
        let len = bytes.len() as u64;
        let kind = n % 3;
        match kind {
            0 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(len) as usize;
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let at = rng.below(len) as usize;
                let span = (1 + rng.below(512) as usize).min(bytes.len() - at);
                bytes[at..at + span].iter_mut().for_each(|b| *b = rng.next() as u8);
            }
            _ => bytes.truncate(rng.below(len) as usize),
        }
        std::fs::write(&damaged, &bytes)?;
        if let Some(failure) = probe(&damaged, &expected, &mut outcomes) {
            failures.push(format!("mutation {n} (kind {kind}): {failure}"));
        }
    }
    let violations = failures.len() as u64;
    let figures = json!({
        "mutations": mutations,
        "detected_at_open": outcomes.detected_at_open,
        "detected_at_read": outcomes.detected_at_read,
        "clean_opens_with_all_data": outcomes.clean,
        "panics": outcomes.panics,
        "silent_wrong_reads": outcomes.wrong_reads,
        "file_bytes": pristine.len(),
    });
    figures::record("redb_corruption_failstop", seed, mutations, violations, figures);
    assert!(
        failures.is_empty(),
        "{} of {mutations} damaged files misbehaved: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    Ok(())
}

/// A file that is not a store, and an empty one, are clear errors.
#[test]
fn foreign_and_empty_files_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    for (name, bytes) in [("empty.redb", &b""[..]), ("text.redb", &b"orders,stock\n1,2\n"[..])] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes)?;
        match Store::open(&path) {
            Err(StoreError::Corrupt { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    Ok(())
}
