//! Criterion benches of the engine's unit costs, for the cost model in
//! BENCHMARKS.md ("Where the time goes"): what an actor spawn and a call cost
//! in ractor, and what a redb commit costs by the number of rows it writes
//! and by how close together their keys are.
//!
//! `cargo bench --bench costs` (fewer iterations when `CI` is set).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use redb::{Database, Durability, TableDefinition};

/// Actors (and tasks calling them) in flight at once: the saga-3 concurrency.
const IN_FLIGHT: usize = 256;

struct Counter;

enum CounterMsg {
    Add(RpcReplyPort<u64>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<CounterMsg>, (): ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<CounterMsg>,
        message: CounterMsg,
        total: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        let CounterMsg::Add(reply) = message;
        *total += 1;
        let _ = reply.send(*total);
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn measurement<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    let seconds = if std::env::var_os("CI").is_some() { 1 } else { 3 };
    group.measurement_time(Duration::from_secs(seconds)).sample_size(10);
    group
}

/// A named actor spawned, stopped and awaited, and a call answered, each
/// [`IN_FLIGHT`] at a time on two workers (as the engine runs them).
fn actors(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = measurement(c, "actor");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    let mut round = 0u64;
    group.bench_function("spawn_stop", |b| {
        b.iter(|| {
            round += 1;
            runtime.block_on(async {
                let tasks: Vec<_> = (0..IN_FLIGHT)
                    .map(|i| {
                        tokio::spawn(async move {
                            let (actor, handle) =
                                Actor::spawn(Some(format!("bench-{round}-{i}")), Counter, ()).await.unwrap();
                            actor.stop(None);
                            handle.await.unwrap();
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
        });
    });
    let actors: Vec<ActorRef<CounterMsg>> = runtime
        .block_on(async {
            futures_util::future::join_all((0..IN_FLIGHT).map(|_| Actor::spawn(None, Counter, ()))).await
        })
        .into_iter()
        .map(|spawned| spawned.unwrap().0)
        .collect();
    group.bench_function("call", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let tasks: Vec<_> = actors
                    .iter()
                    .map(|actor| {
                        let actor = actor.clone();
                        tokio::spawn(async move { ractor::call!(actor, CounterMsg::Add).unwrap() })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
        });
    });
    group.finish();
    for actor in actors {
        actor.stop(None);
    }
}

const ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rows");
/// Rows in the table before measuring: a store some way into a run.
const PREFILLED: u128 = 200_000;

/// One redb commit of `rows` rows of 200 bytes into a table of
/// [`PREFILLED`] rows with time-ordered keys (as the engine's ids are):
/// clustered (every key new and next to the last, one leaf for many rows)
/// or scattered (keys spread over the table, a leaf each), and fsync'd
/// (`Durability::Immediate`) or not (`None`: the CPU of the B-tree alone).
fn commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder().create(dir.path().join("costs.redb")).unwrap();
    let value = [7u8; 200];
    let step: u128 = 1 << 60;
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(ROWS).unwrap();
        for n in 1..=PREFILLED {
            table.insert(&(n * step).to_be_bytes()[..], &value[..]).unwrap();
        }
    }
    txn.commit().unwrap();
    let mut next = PREFILLED * step;
    let mut spread = 0u128;
    let mut salt = 0u128;
    let mut group = measurement(c, "redb_commit");
    for (durability, label) in [(Durability::None, "none"), (Durability::Immediate, "immediate")] {
        for rows in [1u64, 20, 200] {
            group.throughput(Throughput::Elements(rows));
            for scattered in [false, true] {
                let name = format!("{label}/{}", if scattered { "scattered" } else { "clustered" });
                group.bench_with_input(BenchmarkId::new(name, rows), &rows, |b, &rows| {
                    b.iter(|| {
                        let mut txn = db.begin_write().unwrap();
                        txn.set_durability(durability).unwrap();
                        {
                            let mut table = txn.open_table(ROWS).unwrap();
                            for _ in 0..rows {
                                let key = if scattered {
                                    // A new key between two old rows, far from the last one.
                                    spread = (spread + 7_919) % PREFILLED;
                                    salt += 1;
                                    spread * step + salt
                                } else {
                                    next += 1;
                                    next
                                };
                                table.insert(&key.to_be_bytes()[..], &value[..]).unwrap();
                            }
                        }
                        txn.commit().unwrap();
                    });
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, actors, commits);
criterion_main!(benches);
