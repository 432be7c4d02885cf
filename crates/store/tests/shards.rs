//! A pool split into shards: each handle opens and reuses connections of its
//! own shard only, and the status adds every shard up.

use projects_store::{PoolStatus, Store, StoreConfig};
use projects_testkit::TestDb;

fn sharded(db: &TestDb, pool_size: usize, shards: usize) -> Store {
    let mut config = StoreConfig::new(db.url());
    config.pool_size = pool_size;
    config.shards = shards;
    Store::connect(&config).expect("valid")
}

#[tokio::test]
async fn each_shard_opens_its_own_connections_and_the_status_adds_them_up() {
    let db = TestDb::new().await;
    let store = sharded(&db, 5, 2);
    assert_eq!(store.shard_count(), 2);
    assert_eq!(store.status().max_size, 5, "the shards share the pool size");

    assert!(store.shard(0).ready().await.expect("ready"));
    assert!(store.shard(0).ready().await.expect("ready"));
    assert_eq!(store.status().size, 1, "shard 0 reuses its idle connection");

    // Shard 1 cannot borrow shard 0's idle connection: it opens its own.
    assert!(store.shard(1).ready().await.expect("ready"));
    assert_eq!(
        store.status(),
        PoolStatus {
            max_size: 5,
            size: 2,
            available: 2,
            waiting: 0
        }
    );
    // Indexes wrap: a third worker would share shard 0.
    assert!(store.shard(2).ready().await.expect("ready"));
    assert_eq!(store.status().size, 2);
    store.close();
}

#[tokio::test]
async fn there_are_never_more_shards_than_connections() {
    let db = TestDb::new().await;
    let store = sharded(&db, 2, 8);
    assert_eq!(store.shard_count(), 2);
    assert_eq!(store.status().max_size, 2);
    let single = sharded(&db, 3, 0);
    assert_eq!(single.shard_count(), 1);
    assert_eq!(single.status().max_size, 3);
}
