//! Criterion benches of the core: pure transitions, snapshot encode/decode,
//! and durable commits through the group-commit writer.
//!
//! `cargo bench --bench core` (smaller sizes when `CI` is set).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use orderdock::ecommerce::order::state::{Authorization, NewOrder, Order, OrderLine, PaymentOp};
use orderdock::events::{Address, Currency, CustomerId, Money, OrderId, Quantity, ReservationId, Sku, Timestamp};
use orderdock::fulfillment::bin::Bin;
use orderdock::persistence::{codec, Store, WriteBatch, WriteOp};

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn new_order(n: u128) -> NewOrder {
    NewOrder {
        id: OrderId::from_raw(n),
        customer_id: CustomerId::from_raw(1),
        lines: vec![OrderLine {
            sku: Sku::parse("SKU-1").unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::new(1000, Currency::EUR).unwrap(),
        }],
        ship_to: Address::new("Ada", "1 Main St", "London", "N1", "GB").unwrap(),
    }
}

fn transitions(c: &mut Criterion) {
    let mut group = c.benchmark_group("transitions");
    group.bench_function("order_place_cancel_void", |b| {
        b.iter(|| {
            let placed = Order::place(new_order(7), Authorization::Approved("auth".into()), NOW).unwrap().next;
            let mut confirmed = placed.request_cancel(NOW).unwrap().1.next;
            confirmed = confirmed.payment_result(&PaymentOp::Void, Ok(()), NOW).next;
            std::hint::black_box(confirmed)
        })
    });
    let sku = Sku::parse("SKU-1").unwrap();
    let stocked = Bin::new("wh/A-01".parse().unwrap()).receive(&sku, 1_000_000).unwrap();
    group.bench_function("bin_reserve_release", |b| {
        b.iter(|| {
            let reserved = stocked.reserve(ReservationId::from_raw(1), &sku, 1).unwrap();
            std::hint::black_box(reserved.release(ReservationId::from_raw(1)))
        })
    });
    group.finish();
}

fn snapshots(c: &mut Criterion) {
    let order = Order::place(new_order(7), Authorization::Approved("auth".into()), NOW).unwrap().next;
    let bytes = codec::encode(1, &order).unwrap();
    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("order_encode", |b| b.iter(|| codec::encode(1, std::hint::black_box(&order)).unwrap()));
    group.bench_function("order_decode", |b| {
        b.iter(|| codec::decode::<Order>(1, "bench", std::hint::black_box(&bytes)).unwrap())
    });
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    let sizes: &[usize] = if std::env::var_os("CI").is_some() { &[1, 100] } else { &[1, 10, 100, 1_000, 10_000] };
    let mut group = c.benchmark_group("group_commit");
    group.measurement_time(Duration::from_secs(5)).sample_size(10);
    for &concurrent in sizes {
        group.throughput(Throughput::Elements(concurrent as u64));
        group.bench_with_input(BenchmarkId::new("durable_batches", concurrent), &concurrent, |b, &concurrent| {
            b.iter_batched(
                || {
                    (0..concurrent)
                        .map(|i| {
                            let mut batch = WriteBatch::new();
                            batch.push(WriteOp::PutSnapshot {
                                kind: "order",
                                id: format!("{i:06}"),
                                bytes: vec![7; 200],
                            });
                            batch
                        })
                        .collect::<Vec<_>>()
                },
                |batches| {
                    runtime.block_on(async {
                        let tasks: Vec<_> = batches
                            .into_iter()
                            .map(|batch| {
                                let store = store.clone();
                                tokio::spawn(async move { store.commit(batch).await })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap().unwrap();
                        }
                    })
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
    store.close();
}

criterion_group!(benches, transitions, snapshots, group_commit);
criterion_main!(benches);
