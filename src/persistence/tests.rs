use super::*;

fn put(kind: &'static str, id: &str, bytes: &[u8]) -> WriteOp {
    WriteOp::PutSnapshot { kind, id: id.to_owned(), bytes: bytes.to_vec() }
}

#[tokio::test]
async fn committed_batches_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let store = Store::open(&path).unwrap();
        let mut batch = WriteBatch::new();
        batch.push(put("order", "a", b"1")).push(WriteOp::PutOutbox { key: 7, bytes: vec![9] });
        batch.push(WriteOp::MarkOpen { kind: "order", id: "a".to_owned() });
        store.commit(batch).await.unwrap();
        store.close();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.snapshot("order", "a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.outbox().unwrap(), vec![(7, vec![9])]);
    assert_eq!(store.open_ids("order").unwrap(), vec!["a".to_owned()]);
    assert!(store.open_ids("bin").unwrap().is_empty());
    store.close();
}

#[tokio::test]
async fn parts_read_back_with_their_own_snapshot_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let part =
        |id: &str, part: u128, byte: u8| WriteOp::PutPart { kind: "bin", id: id.to_owned(), part, bytes: vec![byte] };
    let mut batch = WriteBatch::new();
    // "a" and "a-1": one id is a prefix of the other, their parts stay apart.
    batch.push(put("bin", "a", b"A")).push(put("bin", "a-1", b"A1")).push(put("bin", "b", b"B"));
    batch.push(part("a", 2, 12)).push(part("a", 1, 11)).push(part("a-1", 1, 21)).push(part("a", 3, 13));
    batch.push(put("order", "a", b"O"));
    store.commit(batch).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::DeletePart { kind: "bin", id: "a".to_owned(), part: 3 });
    store.commit(batch).await.unwrap();

    let a = Record { id: "a".to_owned(), snapshot: b"A".to_vec(), parts: vec![(1, vec![11]), (2, vec![12])] };
    let a1 = Record { id: "a-1".to_owned(), snapshot: b"A1".to_vec(), parts: vec![(1, vec![21])] };
    let b = Record { id: "b".to_owned(), snapshot: b"B".to_vec(), parts: vec![] };
    assert_eq!(store.record("bin", "a").unwrap(), Some(a.clone()));
    assert_eq!(store.record("bin", "a-1").unwrap(), Some(a1.clone()));
    assert_eq!(store.record("bin", "c").unwrap(), None);
    assert_eq!(store.records("bin").unwrap(), vec![a, a1, b]);
    assert_eq!(store.records("order").unwrap().len(), 1);

    let mut batch = WriteBatch::new();
    batch.push(part("ghost", 1, 1));
    store.commit(batch).await.unwrap();
    assert!(
        matches!(store.records("bin"), Err(StoreError::Corrupt { .. })),
        "a part without its snapshot is damage, not data"
    );
    store.close();
}

#[test]
fn part_keys_sort_by_number_across_aggregates() {
    // Holds written together carry neighbouring numbers: their keys sit
    // together whatever bin they are in.
    let mut written = vec![keys::part("bin", "b-2", 7), keys::part("bin", "a", 8), keys::part("bin", "b-10", 6)];
    written.sort();
    assert_eq!(written, vec![keys::part("bin", "b-10", 6), keys::part("bin", "b-2", 7), keys::part("bin", "a", 8)]);
    let prefix = keys::kind_prefix(keys::PART, "bin");
    let key = keys::part("bin", "b-2", 7);
    assert_eq!(keys::split_part(&key[prefix.len()..]), Some((7, b"b-2".as_slice())));
}

#[tokio::test]
async fn parts_of_the_first_layout_are_rekeyed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    // A store as the earlier layout wrote it: parts keyed (kind, id, number).
    let old_key = |id: &str, part: u128| {
        let mut key = vec![keys::PART_BY_ID];
        key.extend_from_slice(b"bin\0");
        key.extend_from_slice(id.as_bytes());
        key.push(0);
        key.extend_from_slice(&part.to_be_bytes());
        key
    };
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(tables::RECORDS).unwrap();
            for (id, snapshot) in [("a", b"A"), ("b", b"B")] {
                table.insert(keys::named(keys::SNAPSHOT, "bin", id).as_slice(), snapshot.as_slice()).unwrap();
            }
            table.insert(old_key("a", 2).as_slice(), [12].as_slice()).unwrap();
            table.insert(old_key("a", 1).as_slice(), [11].as_slice()).unwrap();
            table.insert(old_key("b", 1).as_slice(), [21].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let a = Record { id: "a".to_owned(), snapshot: b"A".to_vec(), parts: vec![(1, vec![11]), (2, vec![12])] };
    let b = Record { id: "b".to_owned(), snapshot: b"B".to_vec(), parts: vec![(1, vec![21])] };
    assert_eq!(store.records("bin").unwrap(), vec![a.clone(), b]);
    // A part deleted in the new layout is gone: no old row brings it back.
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::DeletePart { kind: "bin", id: "a".to_owned(), part: 2 });
    store.commit(batch).await.unwrap();
    store.close();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.record("bin", "a").unwrap(), Some(Record { parts: vec![(1, vec![11])], ..a }));
    store.close();
}

#[tokio::test]
async fn many_concurrent_commits_are_grouped_and_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut tasks = Vec::new();
    for i in 0..500u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = WriteBatch::new();
            batch.push(put("bin", &format!("{i:04}"), &i.to_le_bytes()));
            store.commit(batch).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.snapshots("bin").unwrap().len(), 500);
    let stats = store.stats().unwrap();
    assert_eq!(stats.batches, 500);
    assert!(stats.commits <= stats.batches);
    store.close();
}

#[tokio::test]
async fn a_commit_lands_every_batch_queued_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut queued = Vec::new();
    for i in 0..50u32 {
        let mut batch = WriteBatch::new();
        batch.push(put("bin", &format!("{i:04}"), &i.to_le_bytes()));
        queued.push(store.enqueue(batch).await.unwrap());
    }
    let mut last = WriteBatch::new();
    last.push(put("order", "after", b"x"));
    store.commit(last).await.unwrap();
    // Durable after the later commit, without waiting on any of them.
    assert_eq!(store.snapshots("bin").unwrap().len(), 50);
    for pending in queued {
        pending.durable().await.unwrap();
    }
    store.close();
}

#[tokio::test]
async fn settled_waits_for_queued_and_fire_and_forget_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut batch = WriteBatch::new();
    batch.push(put("bin", "queued", b"1"));
    let pending = store.enqueue(batch).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::PutOutbox { key: 1, bytes: vec![1] });
    store.submit(batch);
    store.settled().await.unwrap();
    assert_eq!(store.snapshot("bin", "queued").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.outbox().unwrap(), vec![(1, vec![1])]);
    pending.durable().await.unwrap();
    // A lone fire-and-forget write still lands, without anyone to carry it.
    let mut batch = WriteBatch::new();
    batch.push(WriteOp::DeleteOutbox { key: 1 });
    store.submit(batch);
    let mut polls = 0;
    while !store.outbox().unwrap().is_empty() {
        polls += 1;
        assert!(polls < 1_000, "a fire-and-forget write never landed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    store.close();
}

#[tokio::test]
async fn lazy_writes_ride_with_the_next_urgent_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut lazy = Vec::new();
    for i in 0..3u32 {
        let mut batch = WriteBatch::new();
        batch.push(put("shipment", &format!("{i}"), b"lazy"));
        lazy.push(store.enqueue_as(batch, Urgency::Lazy).await.unwrap());
    }
    let mut urgent = WriteBatch::new();
    urgent.push(put("order", "now", b"urgent"));
    store.commit(urgent).await.unwrap();
    // Queued before it, the lazy batches are on disk when the urgent one is.
    assert_eq!(store.snapshots("shipment").unwrap().len(), 3);
    for pending in lazy {
        pending.durable().await.unwrap();
    }
    // Alone, a lazy write still lands (after LAZY_AWAITED_DELAY).
    let mut batch = WriteBatch::new();
    batch.push(put("shipment", "alone", b"lazy"));
    store.enqueue_as(batch, Urgency::Lazy).await.unwrap().durable().await.unwrap();
    assert_eq!(store.snapshot("shipment", "alone").unwrap(), Some(b"lazy".to_vec()));
    store.close();
}

#[tokio::test]
async fn each_kind_of_record_reads_back_alone_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut batch = WriteBatch::new();
    // Kinds that prefix one another, and ids that sort differently as numbers.
    for (kind, id) in [("order", "b"), ("order", "a"), ("order_x", "a"), ("orde", "z"), ("order", "a\u{0}b")] {
        batch.push(put(kind, id, id.as_bytes()));
        batch.push(WriteOp::MarkOpen { kind, id: id.to_owned() });
    }
    for (order, step) in [(2u128, 5u128), (1, 9), (2, 1), (3, 0), (2, u128::MAX)] {
        batch.push(WriteOp::AppendStep { order, step, bytes: vec![order as u8, step as u8] });
    }
    for event in [300u128, 2, u128::MAX] {
        batch.push(WriteOp::PutOutbox { key: event, bytes: vec![1] });
    }
    batch.push(WriteOp::PutIdempotency { key: "k2".to_owned(), bytes: vec![2] });
    batch.push(WriteOp::PutIdempotency { key: "k1".to_owned(), bytes: vec![1] });
    store.commit(batch).await.unwrap();

    let ids = |rows: Vec<(String, Vec<u8>)>| rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(store.snapshots("order").unwrap()), ["a", "a\u{0}b", "b"]);
    assert_eq!(ids(store.snapshots("order_x").unwrap()), ["a"]);
    assert_eq!(ids(store.snapshots("orde").unwrap()), ["z"]);
    assert_eq!(ids(store.snapshots_after("order", Some("a"), 1).unwrap()), ["a\u{0}b"]);
    assert_eq!(ids(store.snapshots_after("order", Some("a\u{0}b"), 10).unwrap()), ["b"]);
    assert_eq!(store.open_ids("order").unwrap(), ["a", "a\u{0}b", "b"]);
    assert_eq!(ids(store.open_snapshots("order_x").unwrap()), ["a"]);
    assert_eq!(store.snapshot("order", "b").unwrap(), Some(b"b".to_vec()));
    assert_eq!(store.snapshot("order", "c").unwrap(), None);
    let steps: Vec<u128> = store.steps(2).unwrap().into_iter().map(|(step, _)| step).collect();
    assert_eq!(steps, [1, 5, u128::MAX]);
    assert_eq!(store.steps(4).unwrap(), vec![]);
    let outbox: Vec<u128> = store.outbox().unwrap().into_iter().map(|(event, _)| event).collect();
    assert_eq!(outbox, [2, 300, u128::MAX]);
    assert_eq!(ids(store.idempotency_records().unwrap()), ["k1", "k2"]);
    assert_eq!(store.idempotency("k2").unwrap(), Some(vec![2]));
    let stats = store.stats().unwrap();
    assert_eq!((stats.outbox_len, stats.open_len), (3, 5));

    let mut batch = WriteBatch::new();
    batch.push(WriteOp::MarkClosed { kind: "order", id: "a".to_owned() });
    batch.push(WriteOp::DeleteOutbox { key: 300 });
    batch.push(WriteOp::DeleteIdempotency { key: "k1".to_owned() });
    store.commit(batch).await.unwrap();
    assert_eq!(store.open_ids("order").unwrap(), ["a\u{0}b", "b"]);
    assert_eq!(store.outbox().unwrap().len(), 2);
    assert_eq!(store.idempotency("k1").unwrap(), None);
    store.close();
}

#[test]
fn a_store_of_the_first_layout_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let old: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("snapshots_v1");
            txn.open_table(old).unwrap().insert(("order", "1"), b"x".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    match Store::open(&path) {
        Err(StoreError::Corrupt { detail, .. }) => assert!(detail.contains("older Orderdock"), "{detail}"),
        other => panic!("an old layout must be refused, got {other:?}"),
    }
    // Refusing changed nothing: the old records are there, and no new table was made.
    let db = Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let names: Vec<String> = txn.list_tables().unwrap().map(|t| t.name().to_owned()).collect();
    assert_eq!(names, ["snapshots_v1"]);
    let old: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("snapshots_v1");
    let table = txn.open_table(old).unwrap();
    assert_eq!(table.get(("order", "1")).unwrap().map(|v| v.value().to_vec()), Some(b"x".to_vec()));
}

#[test]
fn the_first_key_after_a_prefix() {
    assert_eq!(keys::after_prefix(&[1, 2]), Some(vec![1, 3]));
    assert_eq!(keys::after_prefix(&[1, 255]), Some(vec![2]));
    assert_eq!(keys::after_prefix(&[255, 255]), None);
}

#[tokio::test]
async fn commits_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    store.close();
    let mut batch = WriteBatch::new();
    batch.push(put("order", "a", b"1"));
    assert_eq!(store.commit(batch).await, Err(StoreError::Closed));
}

#[test]
fn garbage_and_empty_files_fail_stop() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(Store::open(&empty), Err(StoreError::Corrupt { .. })));
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0xA5; 8192]).unwrap();
    assert!(Store::open(&garbage).is_err());
}
