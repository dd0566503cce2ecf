//! Criterion benches of the core: pure transitions, snapshot encode/decode,
//! durable commits through the group-commit writer, reservations on one hot
//! bin through its actor, and the end-to-end embedded saga-3.
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
    let line = OrderLine {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: Quantity::new(1).unwrap(),
        unit_price: Money::new(1000, Currency::EUR).unwrap(),
    };
    let ship_to = Address::new("Ada", "1 Main St", "London", "N1", "GB").unwrap();
    NewOrder::priced(OrderId::from_raw(n), CustomerId::from_raw(1), vec![line], ship_to).unwrap()
}

fn transitions(c: &mut Criterion) {
    let mut group = c.benchmark_group("transitions");
    group.bench_function("order_place_cancel_void", |b| {
        b.iter(|| {
            let placed = Order::place(new_order(7), Authorization::Approved("auth".into()), NOW).next;
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
    let order = Order::place(new_order(7), Authorization::Approved("auth".into()), NOW).next;
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

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Reservations of one unit each on one hot SKU in one bin, `concurrent` at
/// a time, through the bin actor (each durable before it is answered).
fn hot_bin(c: &mut Criterion) {
    use orderdock::events::{BinCode, BinId, WarehouseId};
    use orderdock::fulfillment::warehouse::Warehouse;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, bin, sku) = runtime.block_on(async {
        let engine = orderdock::Engine::start(orderdock::Config::new(dir.path())).await.unwrap();
        let warehouse = WarehouseId::parse("wh-hot").unwrap();
        let code = BinCode::parse("HOT").unwrap();
        let created = Warehouse::new(warehouse.clone(), "Hot", 0, [code.clone()].into()).unwrap();
        engine.fulfillment().create_warehouse(created).await.unwrap();
        let bin = BinId::new(warehouse, code);
        let sku = Sku::parse("HOT-SKU").unwrap();
        engine.fulfillment().bins().receive(&bin, &sku, 1_000_000).await.unwrap();
        (engine, bin, sku)
    });
    let sizes: &[usize] = if ci() { &[1, 64] } else { &[1, 64, 256] };
    let mut group = c.benchmark_group("hot_bin");
    group.measurement_time(Duration::from_secs(5)).sample_size(10);
    let mut next = 0u128;
    for &concurrent in sizes {
        group.throughput(Throughput::Elements(concurrent as u64));
        group.bench_with_input(BenchmarkId::new("reserve", concurrent), &concurrent, |b, &concurrent| {
            b.iter(|| {
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..concurrent)
                        .map(|_| {
                            next += 1;
                            let (bins, bin, sku) = (engine.fulfillment().bins(), bin.clone(), sku.clone());
                            let id = ReservationId::from_raw(next);
                            tokio::spawn(async move { bins.reserve(&bin, id, &sku, 1).await })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap().unwrap().unwrap();
                    }
                })
            })
        });
    }
    group.finish();
    runtime.block_on(engine.shutdown());
}

/// The saga-3 workload end to end on an embedded engine (placement → shipment
/// created, durable), run by the `orderdock load` command in a child process.
/// Each iteration is one run of `orders` orders; the time counted is the
/// run's order phase as the command reports it (not the process start, the
/// engine start or the stocking).
fn saga3(c: &mut Criterion) {
    let (orders, sizes): (u64, &[usize]) = if ci() { (200, &[16]) } else { (2_000, &[1, 64, 256]) };
    let mut group = c.benchmark_group("saga3_embedded");
    group.measurement_time(Duration::from_secs(10)).sample_size(10);
    for &concurrency in sizes {
        let orders = if concurrency == 1 { orders / 10 } else { orders };
        group.throughput(Throughput::Elements(orders));
        group.bench_with_input(BenchmarkId::new("orders", concurrency), &concurrency, |b, &concurrency| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let data = tempfile::tempdir().unwrap();
                    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderdock"))
                        .args(["load", "--workload", "saga-3", "--json", "--data-dir"])
                        .arg(data.path())
                        .args(["--orders", &orders.to_string(), "--concurrency", &concurrency.to_string()])
                        .env("ORDERDOCK_LOG", "warn")
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                    assert_eq!(report["completed"].as_u64(), Some(orders), "{report}");
                    total += Duration::from_secs_f64(report["elapsed_sec"].as_f64().unwrap());
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, transitions, snapshots, group_commit, hot_bin, saga3);
criterion_main!(benches);
