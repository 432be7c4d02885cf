//! The job queue against a real PostgreSQL: the outbox commits or rolls back
//! with its transaction, several workers (each on a runtime and a pool of
//! its own, as separate instances would be) share the work without a job
//! running twice, an abandoned lease is taken over, failures back off and
//! end dead, and periodic jobs run once per period across workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projects_store::{
    Backoff, ClaimedJob, JobFailure, JobHandler, JobState, NewJob, Periodic, Store, StoreConfig,
    Worker, WorkerConfig,
};
use projects_testkit::TestDb;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

/// Records every delivery, by job id, across workers.
#[derive(Debug, Clone, Default)]
struct Recorder {
    deliveries: Arc<Mutex<HashMap<Uuid, u32>>>,
}

impl Recorder {
    fn count(&self) -> usize {
        self.deliveries
            .lock()
            .unwrap()
            .values()
            .map(|n| *n as usize)
            .sum()
    }
}

/// What the test handler does with a job.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Succeed,
    Fail,
    Hang,
}

#[derive(Debug, Clone)]
struct TestHandler {
    recorder: Recorder,
    behaviour: Behaviour,
}

impl JobHandler for TestHandler {
    async fn handle(&self, job: &ClaimedJob) -> Result<(), JobFailure> {
        match self.behaviour {
            Behaviour::Succeed => {
                *self
                    .recorder
                    .deliveries
                    .lock()
                    .unwrap()
                    .entry(job.id)
                    .or_default() += 1;
                Ok(())
            }
            Behaviour::Fail => Err(JobFailure::transient("the receiver refused it")),
            Behaviour::Hang => {
                *self
                    .recorder
                    .deliveries
                    .lock()
                    .unwrap()
                    .entry(job.id)
                    .or_default() += 1;
                std::future::pending().await
            }
        }
    }
}

fn config(lease: Duration) -> WorkerConfig {
    WorkerConfig {
        lease,
        poll_interval: Duration::from_millis(50),
        batch: 8,
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
        },
        periodic: Vec::new(),
        shutdown_grace: Duration::ZERO,
    }
}

/// A worker on a thread with its own runtime and its own pool: as far from
/// the others as a separate process, except for the shared recorder.
struct RemoteWorker {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl RemoteWorker {
    fn start(url: &str, handler: TestHandler, config: WorkerConfig) -> Self {
        let (stop, stopped) = watch::channel(false);
        let url = url.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut store_config = StoreConfig::new(url);
                store_config.pool_size = 3;
                let store = Store::connect(&store_config).unwrap();
                Worker::new(store.clone(), handler, config)
                    .run(stopped)
                    .await;
                store.close();
            });
        });
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.send(true).unwrap();
        self.thread.join().unwrap();
    }
}

fn job(n: usize) -> NewJob {
    NewJob::new("test", json!({ "n": n }), 3)
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_enqueues_nothing_and_a_committed_one_does() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut connection = store.connection().await.unwrap();
    let tx = connection.begin().await.unwrap();
    let rolled_back = tx.enqueue(&job(1)).await.unwrap();
    tx.rollback().await.unwrap();
    // Dropped without a commit: rolled back too.
    let tx = connection.begin().await.unwrap();
    let dropped = tx.enqueue(&job(2)).await.unwrap();
    drop(tx);
    let tx = connection.begin().await.unwrap();
    let committed = tx.enqueue(&job(3)).await.unwrap();
    tx.commit().await.unwrap();
    drop(connection);

    assert!(store.jobs().find(rolled_back).await.is_err());
    assert!(store.jobs().find(dropped).await.is_err());
    let found = store.jobs().find(committed).await.unwrap();
    assert_eq!(found.state, JobState::Queued);
    assert_eq!(found.payload, json!({ "n": 3 }));
    assert_eq!(store.jobs().stats().await.unwrap().queued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_and_three_workers_deliver_each_exactly_once() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut connection = store.connection().await.unwrap();
    let tx = connection.begin().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..1000 {
        ids.push(tx.enqueue(&job(n)).await.unwrap());
    }
    tx.commit().await.unwrap();
    drop(connection);

    let recorder = Recorder::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let handler = TestHandler {
                recorder: recorder.clone(),
                behaviour: Behaviour::Succeed,
            };
            RemoteWorker::start(db.url(), handler, config(Duration::from_secs(60)))
        })
        .collect();
    wait_until("every job done", Duration::from_secs(120), || async {
        let stats = store.jobs().stats().await.unwrap();
        stats.queued == 0 && stats.running == 0
    })
    .await;
    let elapsed = started.elapsed();
    for worker in workers {
        worker.stop();
    }
    let deliveries = recorder.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1000, "some job was not delivered");
    let repeated: Vec<_> = deliveries.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    for id in &ids {
        assert!(deliveries.contains_key(id));
    }
    let done = store.jobs().list_by_kind("test", 2000).await.unwrap();
    assert!(
        done.iter()
            .all(|job| job.state == JobState::Done && job.attempts == 1)
    );
    eprintln!("1000 jobs, 3 workers: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_died_is_delivered_by_another_after_the_lease() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = store.jobs().enqueue(&job(1)).await.unwrap();
    let lease = Duration::from_secs(1);

    // The first worker takes the job and hangs in it; then its whole
    // runtime is torn down without a word to the database, as a killed
    // process would be.
    let hung = Recorder::default();
    let (stop, stopped) = watch::channel(false);
    let url = db.url().to_owned();
    let handler = TestHandler {
        recorder: hung.clone(),
        behaviour: Behaviour::Hang,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.spawn(async move {
        let store = Store::connect(&StoreConfig::new(url)).unwrap();
        Worker::new(store, handler, config(lease))
            .run(stopped)
            .await;
    });
    wait_until(
        "the first worker to take the job",
        Duration::from_secs(10),
        || async { hung.count() == 1 },
    )
    .await;
    assert_eq!(
        store.jobs().find(id).await.unwrap().state,
        JobState::Running
    );
    runtime.shutdown_background();
    drop(stop);

    let recorder = Recorder::default();
    let taken_over = Instant::now();
    let second = RemoteWorker::start(
        db.url(),
        TestHandler {
            recorder: recorder.clone(),
            behaviour: Behaviour::Succeed,
        },
        config(lease),
    );
    wait_until(
        "the second worker to deliver",
        Duration::from_secs(10),
        || async { store.jobs().find(id).await.unwrap().state == JobState::Done },
    )
    .await;
    second.stop();
    assert_eq!(recorder.count(), 1);
    let record = store.jobs().find(id).await.unwrap();
    assert_eq!(record.attempts, 2, "the dead worker's attempt counts");
    eprintln!("taken over after {:?}", taken_over.elapsed());
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_dead_and_stays_visible() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = store.jobs().enqueue(&job(1)).await.unwrap();
    let worker = RemoteWorker::start(
        db.url(),
        TestHandler {
            recorder: Recorder::default(),
            behaviour: Behaviour::Fail,
        },
        config(Duration::from_secs(30)),
    );
    let mut saw_retrying = false;
    let started = Instant::now();
    loop {
        let stats = store.jobs().stats().await.unwrap();
        saw_retrying |= stats.retrying == 1;
        if stats.dead == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the job never died"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.stop();
    let record = store.jobs().find(id).await.unwrap();
    assert_eq!(record.state, JobState::Dead);
    assert_eq!(record.attempts, 3);
    assert_eq!(
        record.last_error.as_deref(),
        Some("the receiver refused it")
    );
    assert_eq!(store.jobs().dead(10).await.unwrap().len(), 1);
    let stats = store.jobs().stats().await.unwrap();
    assert_eq!((stats.queued, stats.running, stats.dead), (0, 0, 1));
    assert!(saw_retrying, "the metrics never showed the job retrying");
}

#[tokio::test]
async fn the_lease_holder_alone_may_finish_a_job() {
    let db = TestDb::new().await;
    let jobs = db.store().jobs();
    jobs.enqueue(&job(1)).await.unwrap();
    let first = jobs
        .claim(Duration::from_millis(200), 1)
        .await
        .unwrap()
        .remove(0);
    assert!(
        jobs.claim(Duration::from_secs(60), 1)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = jobs
        .claim(Duration::from_secs(60), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((first.id, second.attempt), (second.id, 2));
    // The first claim's lease is gone: its completion changes nothing.
    assert!(!jobs.complete(&first).await.unwrap());
    assert_eq!(
        jobs.fail(&first, "late", Duration::ZERO, false)
            .await
            .unwrap(),
        projects_store::FailOutcome::LeaseLost
    );
    assert!(jobs.complete(&second).await.unwrap());
}

#[tokio::test]
async fn a_stopping_worker_releases_the_job_it_could_not_finish() {
    let db = TestDb::new().await;
    let store = db.store();
    let id = store.jobs().enqueue(&job(1)).await.unwrap();
    let recorder = Recorder::default();
    let worker = RemoteWorker::start(
        db.url(),
        TestHandler {
            recorder: recorder.clone(),
            behaviour: Behaviour::Hang,
        },
        config(Duration::from_secs(60)),
    );
    wait_until("the job to start", Duration::from_secs(10), || async {
        recorder.count() == 1
    })
    .await;
    worker.stop();
    let record = store.jobs().find(id).await.unwrap();
    assert_eq!(record.state, JobState::Queued, "released, not left running");
    assert_eq!(record.attempts, 0, "a release costs no attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_runs_once_per_period_across_three_workers() {
    let db = TestDb::new().await;
    let store = db.store();
    let recorder = Recorder::default();
    let period = Duration::from_secs(1);
    let mut worker_config = config(Duration::from_secs(30));
    worker_config.periodic = vec![Periodic {
        job: NewJob::new("tick", json!({}), 1),
        period,
    }];
    let started = Instant::now();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            RemoteWorker::start(
                db.url(),
                TestHandler {
                    recorder: recorder.clone(),
                    behaviour: Behaviour::Succeed,
                },
                worker_config.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for worker in workers {
        worker.stop();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ticks = store.jobs().list_by_kind("tick", 100).await.unwrap();
    let delivered = recorder.count();
    // Every worker polls every 50 ms, so each period is seen by all three
    // many times; still one job per period, each delivered once.
    assert!(
        ticks.len() >= 4 && ticks.len() as f64 <= elapsed.ceil() + 1.0,
        "{} periodic jobs in {elapsed:.1} s",
        ticks.len()
    );
    assert_eq!(delivered, ticks.len(), "each period's job delivered once");
    let deliveries = recorder.deliveries.lock().unwrap();
    assert!(deliveries.values().all(|n| *n == 1));
}
