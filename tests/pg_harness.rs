//! The private PostgreSQL test cluster (tests/support/pg.rs) itself: it starts, keeps rows
//! across a stop and restart on the same port, and leaves nothing behind when dropped. Needs
//! Debian's PostgreSQL server (`.ci/install-postgres.sh`).

#[path = "support/pg.rs"]
mod pg;

use std::time::Instant;

#[test]
fn cluster_starts_survives_a_restart_and_cleans_up() {
    let started = Instant::now();
    let cluster = pg::PgCluster::start();
    eprintln!("PgCluster::start took {:?}", started.elapsed());
    let dir = cluster.dir();
    assert!(
        dir.is_dir(),
        "{} exists while the cluster runs",
        dir.display()
    );
    assert_eq!(
        cluster.url(),
        format!("postgres://maildlp@127.0.0.1:{}/maildlp", cluster.port())
    );
    assert!(
        pg::tcp_accepts(cluster.port()),
        "the server listens on its port"
    );

    let out = cluster.psql("create table t(x int); insert into t values (42); select x from t");
    assert!(out.contains("42"), "psql output: {out:?}");
    let owner =
        cluster.psql("select pg_get_userbyid(datdba) from pg_database where datname = 'maildlp'");
    assert_eq!(
        owner.trim(),
        "maildlp",
        "the database belongs to the maildlp role"
    );

    cluster.stop();
    assert!(!cluster.is_running(), "pg_ctl status after stop");
    assert!(
        !pg::tcp_accepts(cluster.port()),
        "nothing accepts connections on port {} after stop",
        cluster.port()
    );
    cluster.stop(); // stopping a stopped server is harmless

    let port = cluster.port();
    let restarted = Instant::now();
    cluster.restart();
    eprintln!("PgCluster::restart took {:?}", restarted.elapsed());
    assert_eq!(cluster.port(), port);
    assert!(
        pg::tcp_accepts(port),
        "the server listens again on port {port}"
    );
    assert_eq!(
        cluster.psql("select x from t").trim(),
        "42",
        "the row survived the restart"
    );

    drop(cluster);
    assert!(!dir.exists(), "{} is removed on drop", dir.display());
    assert!(!pg::tcp_accepts(port), "the server is gone after drop");
}

#[test]
fn concurrent_clusters_get_their_own_directories_and_ports() {
    let clusters: Vec<pg::PgCluster> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(pg::PgCluster::start)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("start a cluster"))
            .collect()
    });
    for (i, c) in clusters.iter().enumerate() {
        c.psql(&format!(
            "create table mine(n int); insert into mine values ({i})"
        ));
    }
    for (i, c) in clusters.iter().enumerate() {
        assert_eq!(c.psql("select n from mine").trim(), i.to_string());
        for other in &clusters[i + 1..] {
            assert_ne!(c.port(), other.port());
            assert_ne!(c.dir(), other.dir());
        }
    }
    let dirs: Vec<_> = clusters.iter().map(|c| c.dir()).collect();
    drop(clusters);
    for dir in dirs {
        assert!(!dir.exists(), "{} is removed on drop", dir.display());
    }
}
