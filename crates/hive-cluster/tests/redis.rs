//! The link against a real `redis-server` (started on a free port, killed and restarted):
//! changes reach every other replica, fast; a replica that joins reads the holds in force;
//! with Redis down publishing never blocks, and sharing resumes when it is back.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use hive_cluster::{Cluster, ClusterSettings};
use hive_core::{ApplyShared, ModelId, ShareState, SharedChange};
use hive_sim::RedisServer;
use tokio::{
    sync::mpsc,
    time::{Instant, timeout},
};

/// A replica's local state: two models, and what it holds off now; every change applied
/// is passed on to the test.
struct Fleet {
    applied: mpsc::UnboundedSender<(Instant, SharedChange)>,
    holding: Vec<SharedChange>,
}

impl ApplyShared for Fleet {
    fn apply(&self, change: SharedChange) -> Option<u64> {
        let _ = self.applied.send((Instant::now(), change));
        None
    }

    fn model(&self, name: &str) -> Option<ModelId> {
        ["gpt-4o", "claude-4-sonnet"]
            .contains(&name)
            .then(|| ModelId::new(name))
    }

    fn holding(&self) -> Vec<SharedChange> {
        self.holding.clone()
    }

    fn models(&self) -> Vec<ModelId> {
        vec![ModelId::new("gpt-4o"), ModelId::new("claude-4-sonnet")]
    }
}

struct Replica {
    cluster: Cluster,
    applied: mpsc::UnboundedReceiver<(Instant, SharedChange)>,
}

fn replica(redis: &RedisServer, prefix: &str, name: &str, holding: Vec<SharedChange>) -> Replica {
    let settings = ClusterSettings::new(redis.url(), prefix)
        .unwrap()
        .replica(name)
        .unwrap();
    let cluster = Cluster::start(settings);
    let (tx, applied) = mpsc::unbounded_channel();
    cluster.attach(Arc::new(Fleet {
        applied: tx,
        holding,
    }));
    Replica { cluster, applied }
}

/// Waits until every replica's link is up (and has been up `times` times).
async fn connected(replicas: &[&Replica], times: u64) {
    timeout(Duration::from_secs(15), async {
        while !replicas.iter().all(|r| {
            let s = r.cluster.status();
            s.connected && s.connects >= times
        }) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let seen: Vec<_> = replicas.iter().map(|r| r.cluster.status()).collect();
        panic!("links not up: {seen:?}")
    });
}

async fn next(replica: &mut Replica) -> (Instant, SharedChange) {
    timeout(Duration::from_secs(10), replica.applied.recv())
        .await
        .expect("a change within 10 s")
        .expect("the fleet is alive")
}

fn gpt() -> ModelId {
    ModelId::new("gpt-4o")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opening_reaches_every_other_replica_within_100ms_at_p99() {
    let redis = RedisServer::start().unwrap();
    let a = replica(&redis, "hive:t1", "a", vec![]);
    let mut b = replica(&redis, "hive:t1", "b", vec![]);
    let mut c = replica(&redis, "hive:t1", "c", vec![]);
    connected(&[&a, &b, &c], 1).await;
    let mut lags = Vec::new();
    for n in 0..200u64 {
        let change = SharedChange::BreakerOpened {
            model: gpt(),
            open_for: Duration::from_secs(30 + n),
        };
        let sent = Instant::now();
        a.cluster.publish(change);
        for other in [&mut b, &mut c] {
            let (at, got) = next(other).await;
            let SharedChange::BreakerOpened { model, open_for } = got else {
                panic!("{got:?}")
            };
            assert_eq!(model, gpt());
            assert!(open_for <= Duration::from_secs(30 + n));
            assert!(open_for > Duration::from_secs(29 + n), "{open_for:?}");
            lags.push(at - sent);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lags.sort();
    let p99 = lags[lags.len() * 99 / 100];
    eprintln!(
        "propagation over {} deliveries: p50 {:?}, p99 {:?}, max {:?}",
        lags.len(),
        lags[lags.len() / 2],
        p99,
        lags[lags.len() - 1]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    // Each counter is bumped just after its effect: read them once they settle.
    timeout(Duration::from_secs(5), async {
        loop {
            let (sa, sb) = (a.cluster.status(), b.cluster.status());
            if sa.published == 200 && sa.skipped == 200 && sb.applied == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{:?} {:?}", a.cluster.status(), b.cluster.status()));
    let (sa, sb) = (a.cluster.status(), b.cluster.status());
    assert_eq!(sa.applied, 0, "a replica does not apply its own changes");
    assert_eq!(sb.dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_joins_later_reads_the_holds_in_force_and_not_the_ended_ones() {
    let redis = RedisServer::start().unwrap();
    let a = replica(&redis, "hive:t2", "a", vec![]);
    connected(&[&a], 1).await;
    let claude = ModelId::new("claude-4-sonnet");
    a.cluster.publish(SharedChange::CoolDown {
        model: gpt(),
        wait: Duration::from_secs(10),
    });
    a.cluster.publish(SharedChange::BreakerOpened {
        model: claude,
        open_for: Duration::from_secs(60),
    });
    a.cluster
        .publish(SharedChange::BreakerClosed { model: claude });
    timeout(Duration::from_secs(5), async {
        while a.cluster.status().published < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let joined = Instant::now();
    let mut d = replica(&redis, "hive:t2", "d", vec![]);
    let (_, got) = next(&mut d).await;
    let SharedChange::CoolDown { model, wait } = got else {
        panic!("{got:?}")
    };
    assert_eq!(model, gpt());
    assert!(
        wait <= Duration::from_secs(10) && wait > Duration::from_secs(8),
        "{wait:?}"
    );
    assert!(joined.elapsed() < Duration::from_secs(5));
    // Claude's break ended (closed): its hold is gone. (The joiner may read gpt-4o's hold
    // twice — when it connects and when its fleet is attached —: applying a hold twice
    // changes nothing.)
    while let Ok(Some((_, got))) = timeout(Duration::from_millis(300), d.applied.recv()).await {
        assert!(
            matches!(got, SharedChange::CoolDown { model, .. } if model == gpt()),
            "only the hold in force: {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_publishing_never_blocks_and_sharing_resumes_when_it_is_back() {
    let mut redis = RedisServer::start().unwrap();
    let held = SharedChange::BreakerOpened {
        model: gpt(),
        open_for: Duration::from_secs(20),
    };
    let a = replica(&redis, "hive:t3", "a", vec![held]);
    let mut b = replica(&redis, "hive:t3", "b", vec![]);
    connected(&[&a, &b], 1).await;
    // On connecting, a told b what it holds.
    let (_, got) = next(&mut b).await;
    assert!(matches!(got, SharedChange::BreakerOpened { .. }), "{got:?}");

    redis.kill();
    timeout(Duration::from_secs(5), async {
        while a.cluster.status().connected || b.cluster.status().connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both replicas see the link down");
    let started = Instant::now();
    for _ in 0..2000 {
        a.cluster
            .publish(SharedChange::BreakerClosed { model: gpt() });
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "2000 publishes took {took:?}"
    );

    redis.restart().unwrap();
    connected(&[&a, &b], 2).await;
    // Redis came back empty: a tells b again what it holds (b may hear it twice: on the
    // channel, and from its key when b catches up; applying a hold twice changes nothing).
    let (_, got) = next(&mut b).await;
    assert!(matches!(got, SharedChange::BreakerOpened { .. }), "{got:?}");
    a.cluster
        .publish(SharedChange::BreakerClosed { model: gpt() });
    loop {
        let (_, got) = next(&mut b).await;
        if got == (SharedChange::BreakerClosed { model: gpt() }) {
            break;
        }
        assert!(matches!(got, SharedChange::BreakerOpened { .. }), "{got:?}");
    }
    assert!(
        a.cluster.status().dropped > 0,
        "what was published while down was dropped"
    );
}

/// `rediss://` to a Redis behind a private CA: shared with the CA given, refused (the link
/// stays down, nothing shared) with the public roots only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_behind_a_private_ca_is_reached_with_its_certificate() {
    let redis = RedisServer::start_tls().unwrap();
    assert!(redis.url().starts_with("rediss://"));
    let ca = redis.ca_pem().unwrap().to_owned();
    let with_ca = |name: &str| {
        let settings = ClusterSettings::new(redis.url(), "hive:tls")
            .unwrap()
            .replica(name)
            .unwrap()
            .root_certificates(ca.clone())
            .unwrap();
        let cluster = Cluster::start(settings);
        let (tx, applied) = mpsc::unbounded_channel();
        cluster.attach(Arc::new(Fleet {
            applied: tx,
            holding: vec![],
        }));
        Replica { cluster, applied }
    };
    let a = with_ca("a");
    let mut b = with_ca("b");
    connected(&[&a, &b], 1).await;
    a.cluster
        .publish(SharedChange::BreakerClosed { model: gpt() });
    assert_eq!(
        next(&mut b).await.1,
        SharedChange::BreakerClosed { model: gpt() }
    );

    let untrusting = replica(&redis, "hive:tls", "c", vec![]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = untrusting.cluster.status();
    assert!(!status.connected && status.connects == 0, "{status:?}");
    assert!(matches!(
        ClusterSettings::new(redis.url(), "hive")
            .unwrap()
            .root_certificates("not a PEM"),
        Err(hive_cluster::ClusterError::Certificates)
    ));
}
