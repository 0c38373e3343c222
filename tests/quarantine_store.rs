//! The quarantine store through its public API, on a real SQLite file and on a real
//! PostgreSQL (tests/support/pg.rs): hold, list with filters, show, delete, purge, the
//! append-only audit log, encryption at rest, the key check, damaged rows and group commit —
//! each scenario written once and run on both back ends — and then the milter in front of it:
//! two milter processes writing one PostgreSQL, PostgreSQL going away, a full disk under
//! SQLite. Every value is synthetic.

#[path = "support/pg.rs"]
mod pg;

use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::milter::client::{Client, Outcome, split_message};
use maildlp::policy::{self, Envelope, Policy};
use maildlp::quarantine::crypto::Key;
use maildlp::quarantine::store::{StoreError, now_ms};
use maildlp::quarantine::writer::Writer;
use maildlp::quarantine::{
    Details, HeldRecord, ListFilter, Mode, NewNotice, Status, Store, StoreUrl, Summary, new_id,
};
use maildlp::scan::Scanner;
use sqlx::{AnyPool, Row as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

/// A synthetic Social Security number (the detector finds it after "SSN:").
const SSN: &str = "536-22-4817";
/// A synthetic, Luhn-valid card number.
const CARD: &str = "4539 1488 0343 6467";
/// Message text that must never be readable in the database.
const PHRASE: &str = "harbour survey of the north quay";
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

// ---------------------------------------------------------------------------------------------
// The engine, messages and records
// ---------------------------------------------------------------------------------------------

struct Engine {
    scanner: Scanner,
    policy: Policy,
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| Engine {
    scanner: Scanner::new(Detector::new(&[]).expect("patterns"), Limits::default()),
    policy: Policy::default_policy().expect("the embedded policy"),
});

/// Scan `raw` with the real engine and the embedded policy, as the milter does.
fn details_of(raw: &[u8], sender: &str, rcpts: &[&str]) -> Details {
    let report = ENGINE.scanner.scan(raw);
    let verdict = policy::evaluate(
        &ENGINE.policy,
        &report,
        &Envelope {
            sender: Some(sender.to_string()),
            recipients: rcpts.iter().map(|r| r.to_string()).collect(),
        },
    );
    Details::new(&report, &verdict)
}

/// A message with the SSN in its body; ends with raw 8-bit bytes and no final newline, so a
/// byte-for-byte round trip means something.
fn ssn_message(tag: &str, from: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Pat Clerk <{from}>\r\nTo: Sam Vendor <sam@example.com>\r\n\
         Subject: Benefits enrolment {tag}\r\nMessage-ID: <{tag}@city.test>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello Sam,\r\nPlease update the record for Zo\u{eb} Park. Employee SSN: {SSN}.\r\n\
         The {PHRASE} follows in the next message.\r\n"
    )
    .into_bytes();
    m.extend_from_slice(b"trailer \xff\xfe\x00\x01 end");
    m
}

fn card_message(tag: &str, from: &str) -> Vec<u8> {
    format!(
        "From: Lee Works <{from}>\r\nTo: sam@example.com\r\nSubject: Supplies {tag}\r\n\
         Message-ID: <{tag}@works.test>\r\n\r\n\
         Visa card number: {CARD}, expires 12/29.\r\n"
    )
    .into_bytes()
}

/// The SSN message with 26 visible recipients: also `bcc_mass_mailing`.
fn mass_message(tag: &str, from: &str) -> Vec<u8> {
    let to: Vec<String> = (0..26)
        .map(|i| format!("resident{i}@example.com"))
        .collect();
    format!(
        "From: Operations <{from}>\r\nTo: {}\r\nSubject: Notice {tag}\r\n\
         Message-ID: <{tag}@city.test>\r\n\r\nFor the file: SSN: {SSN}.\r\n",
        to.join(", ")
    )
    .into_bytes()
}

/// A held record for `raw` as the milter would hand it over.
fn record(raw: &[u8], sender: &str, rcpts: &[&str], received_ms: i64) -> HeldRecord {
    HeldRecord {
        received_ms,
        mode: Mode::Store,
        queue_id: Some("4QTEST1".into()),
        client_addr: Some("192.0.2.10".into()),
        sender: sender.to_string(),
        recipients: rcpts.iter().map(|r| r.to_string()).collect(),
        details: details_of(raw, sender, rcpts),
        notices: Vec::new(),
    }
}

/// Seal and store one message; returns its id.
async fn hold(store: &Store, raw: &[u8], sender: &str, received_ms: i64) -> String {
    let id = new_id();
    let sealed =
        record(raw, sender, &["sam@example.com"], received_ms).seal(store.key(), id.clone(), raw);
    store.hold_batch(&[sealed]).await.expect("hold_batch");
    id
}

fn ids(rows: &[Summary]) -> Vec<String> {
    rows.iter().map(|s| s.id.clone()).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    memchr::memmem::find(haystack, needle.as_bytes()).is_some()
}

// ---------------------------------------------------------------------------------------------
// Back ends
// ---------------------------------------------------------------------------------------------

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "maildlp-qstore-{}-{name}-{}",
            std::process::id(),
            new_id()
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One PostgreSQL cluster for the tests that run at the same time; the last one to finish
/// stops it (a `Weak`, so that nothing outlives the tests).
static SHARED_PG: Mutex<Weak<pg::PgCluster>> = Mutex::new(Weak::new());

fn shared_pg() -> Arc<pg::PgCluster> {
    let mut slot = SHARED_PG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    let c = Arc::new(pg::PgCluster::start());
    *slot = Arc::downgrade(&c);
    c
}

enum Raw {
    Sqlite(PathBuf),
    Postgres(Arc<pg::PgCluster>, String),
}

/// A fresh, empty store of either back end, with a directory for its key file, and a way
/// around the store (plain SQL, the files) to see what is really in the database.
struct Db {
    url: StoreUrl,
    raw_url: String,
    raw: Raw,
    dir: TempDir,
}

impl Db {
    fn sqlite(name: &str) -> Db {
        let dir = TempDir::new(&format!("{name}-sqlite"));
        let file = dir.path().join("store").join("quarantine.db");
        Db {
            url: StoreUrl::sqlite(&file),
            raw_url: format!("sqlite:{}", file.display()),
            raw: Raw::Sqlite(file),
            dir,
        }
    }

    /// A new database in the shared cluster.
    fn postgres(name: &str) -> Db {
        let cluster = shared_pg();
        let database = format!("q_{name}");
        cluster.psql(&format!("CREATE DATABASE {database} OWNER maildlp"));
        let url = format!("postgres://maildlp@127.0.0.1:{}/{database}", cluster.port());
        Db {
            url: StoreUrl::parse(&url).expect("postgres url"),
            raw_url: url,
            raw: Raw::Postgres(cluster, database),
            dir: TempDir::new(&format!("{name}-postgres")),
        }
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("quarantine.key")
    }

    /// Open the store, creating its key the first time (as the milter does).
    async fn open(&self) -> Store {
        Store::open(&self.url, &self.key_file(), true)
            .await
            .unwrap_or_else(|e| panic!("open {:?}: {e}", self.url))
    }

    /// A second connection, past the store, as an administrator (or an intruder) would have.
    async fn raw_pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.raw_url)
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.raw_url))
    }

    async fn raw_count(&self, pool: &AnyPool, table: &str) -> i64 {
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(pool)
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    }
}

/// Run a scenario on a SQLite file and on PostgreSQL, as two tests.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(&super::Db::sqlite(stringify!($scenario))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(&super::Db::postgres(stringify!($scenario))).await;
            }
        }
    )*};
}

on_both_backends!(
    hold_list_show_delete,
    sealed_at_rest,
    audit_is_append_only,
    keys_and_damaged_rows,
    purge_expires_old_messages,
    group_commit_through_the_writer,
    console_accounts_sessions_and_counts,
);

// ---------------------------------------------------------------------------------------------
// 1. hold, list, show, content, delete, audit, ids
// ---------------------------------------------------------------------------------------------

async fn hold_list_show_delete(db: &Db) {
    let store = db.open().await;
    let now = now_ms();
    let rcpt = ["sam@example.com"];
    let a_msg = ssn_message("a", "pat@city.test");
    let b_msg = card_message("b", "lee@works.test");
    let c_msg = mass_message("c", "Ops@City.Test");
    let (a, b, c) = (new_id(), new_id(), new_id());
    let (ia, ib, ic) = (a.as_str(), b.as_str(), c.as_str());
    let a_rec = record(&a_msg, "pat@city.test", &rcpt, now - 3 * HOUR_MS);
    let a_details = a_rec.details.clone();
    assert_eq!(
        a_details.verdict.action,
        policy::Action::Quarantine,
        "{a_details:?}"
    );
    let c_rec = record(&c_msg, "Ops@City.Test", &rcpt, now - 60_000);
    assert!(
        c_rec
            .details
            .enforced_rules()
            .contains(&"bcc_mass_mailing".to_string()),
        "{:?}",
        c_rec.details.verdict
    );
    store
        .hold_batch(&[a_rec.seal(store.key(), a.clone(), &a_msg)])
        .await
        .expect("hold a");
    store
        .hold_batch(&[
            record(&b_msg, "lee@works.test", &rcpt, now - HOUR_MS).seal(
                store.key(),
                b.clone(),
                &b_msg,
            ),
            c_rec.seal(store.key(), c.clone(), &c_msg),
        ])
        .await
        .expect("hold b and c in one batch");

    // list, newest first, and its filters
    let list = |f: ListFilter| {
        let store = store.clone();
        async move { ids(&store.list(&f).await.expect("list")) }
    };
    let all = store.list(&ListFilter::default()).await.expect("list");
    assert_eq!(ids(&all), [ic, ib, ia]);
    let sa = &all[2];
    assert_eq!(sa.status, Status::Held);
    assert_eq!(sa.received_ms, now - 3 * HOUR_MS);
    assert_eq!(sa.sender, "pat@city.test");
    assert_eq!(sa.recipients, ["sam@example.com"]);
    assert_eq!(sa.kinds, ["us_ssn"]);
    assert!(sa.rules.contains(&"sensitive_info".to_string()), "{sa:?}");
    assert_eq!(sa.size, a_msg.len() as u64);
    assert_eq!(sa.mode, "store");
    assert_eq!(sa.queue_id.as_deref(), Some("4QTEST1"));
    assert_eq!(sa.client_addr.as_deref(), Some("192.0.2.10"));
    assert_eq!(sa.node, store.node());
    assert_eq!(sa.details.as_ref().expect("details open"), &a_details);
    assert_eq!(all[1].kinds, ["credit_card"]);

    let held = Some(Status::Held);
    assert_eq!(
        list(ListFilter {
            status: held,
            ..Default::default()
        })
        .await,
        [ic, ib, ia]
    );
    assert!(
        list(ListFilter {
            status: Some(Status::Deleted),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    let by_rule = |r: &str| ListFilter {
        rule: Some(r.into()),
        ..Default::default()
    };
    assert_eq!(list(by_rule("sensitive_info")).await, [ic, ib, ia]);
    assert_eq!(list(by_rule("bcc_mass_mailing")).await, [ic]);
    // A rule name matches whole, and LIKE's wildcards are plain characters.
    assert!(list(by_rule("sensitive")).await.is_empty());
    assert!(list(by_rule("sensitive%")).await.is_empty());
    assert!(list(by_rule("sensitive_inf_")).await.is_empty());
    let by_kind = |k: &str| ListFilter {
        kind: Some(k.into()),
        ..Default::default()
    };
    assert_eq!(list(by_kind("us_ssn")).await, [ic, ia]);
    assert_eq!(list(by_kind("credit_card")).await, [ib]);
    assert!(list(by_kind("iban")).await.is_empty());
    let by_sender = |g: &str| ListFilter {
        sender: Some(g.into()),
        ..Default::default()
    };
    // Case-insensitive: Ops@City.Test matches.
    assert_eq!(list(by_sender("*@city.test")).await, [ic, ia]);
    assert_eq!(list(by_sender("PAT@city.test")).await, [ia]);
    assert_eq!(list(by_sender("*@works.*")).await, [ib]);
    assert!(list(by_sender("p_t@city.test")).await.is_empty());
    assert!(list(by_sender("pat@city")).await.is_empty());
    assert_eq!(
        list(ListFilter {
            since_ms: Some(now - 2 * HOUR_MS),
            ..Default::default()
        })
        .await,
        [ic, ib]
    );
    assert_eq!(
        list(ListFilter {
            since_ms: Some(now - 3 * HOUR_MS),
            ..Default::default()
        })
        .await,
        [ic, ib, ia],
        "since is inclusive"
    );
    assert_eq!(
        list(ListFilter {
            before_ms: Some(now - 2 * HOUR_MS),
            ..Default::default()
        })
        .await,
        [ia]
    );
    assert_eq!(
        list(ListFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await,
        [ic]
    );
    assert_eq!(
        list(ListFilter {
            kind: Some("us_ssn".into()),
            sender: Some("*@city.test".into()),
            since_ms: Some(now - 4 * HOUR_MS),
            status: held,
            limit: Some(5),
            ..Default::default()
        })
        .await,
        [ic, ia]
    );

    // show: details with masked findings, a history with the hold
    let m = store.get(&a).await.expect("get a");
    assert_eq!(m.summary.id, a);
    assert_eq!(m.details, a_details);
    assert!(m.has_content);
    assert_eq!(m.details.subject, "Benefits enrolment a");
    assert_eq!(m.details.message_id.as_deref(), Some("a@city.test"));
    let ssn = m
        .details
        .findings
        .iter()
        .find(|f| f.kind == "us_ssn")
        .expect("an us_ssn finding");
    assert_eq!(ssn.location, "body");
    assert_eq!(ssn.masked, ["***-**-4817"]);
    let details_json = serde_json::to_string(&m.details).expect("json");
    assert!(!details_json.contains(SSN), "{details_json}");
    assert!(!details_json.contains("536-22"), "{details_json}");
    assert_eq!(m.history.len(), 1, "{:?}", m.history);
    let h = &m.history[0];
    assert_eq!(h.action, "hold");
    assert_eq!(h.actor, format!("maildlp@{}", store.node()));
    assert_eq!(h.message_id.as_deref(), Some(a.as_str()));
    assert!(h.reason.contains("sensitive_info"), "{h:?}");

    // content, byte for byte; reading it in full is audited
    assert_eq!(store.content(&a).await.expect("content"), a_msg);
    assert_eq!(store.content(&b).await.expect("content"), b_msg);
    assert_eq!(
        store
            .raw(&a, "alice", "checking the finding")
            .await
            .expect("raw"),
        a_msg
    );

    // delete: content erased, record kept
    store
        .transition(
            &a,
            Status::Deleted,
            false,
            "alice",
            "delete",
            "sent by mistake",
        )
        .await
        .expect("delete");
    match store.content(&a).await {
        Err(StoreError::NoContent { id, status }) => {
            assert_eq!(id, a);
            assert_eq!(status, "deleted");
        }
        other => panic!("content of a deleted message: {other:?}"),
    }
    assert!(matches!(
        store.raw(&a, "alice", "again").await,
        Err(StoreError::NoContent { .. })
    ));
    let deleted = store.get(&a).await.expect("get a deleted message");
    assert_eq!(deleted.summary.status, Status::Deleted);
    assert!(!deleted.has_content);
    assert_eq!(deleted.details, a_details, "details outlive the content");
    assert_eq!(
        list(ListFilter {
            status: Some(Status::Deleted),
            ..Default::default()
        })
        .await,
        [ia]
    );
    assert_eq!(list(ListFilter::default()).await, [ic, ib, ia]);
    assert_eq!(
        list(ListFilter {
            status: held,
            ..Default::default()
        })
        .await,
        [ic, ib]
    );

    // a second decision on the same message fails and changes nothing
    let audit_before = store.audit(0, None).await.expect("audit");
    for (to, keep, action) in [
        (Status::Released, true, "release"),
        (Status::Deleted, false, "delete"),
    ] {
        match store
            .transition(&a, to, keep, "bob", action, "second decision")
            .await
        {
            Err(StoreError::NotHeld { id, status }) => {
                assert_eq!(id, a);
                assert_eq!(status, "deleted");
            }
            other => panic!("{action} of a deleted message: {other:?}"),
        }
    }
    let after = store.get(&a).await.expect("get");
    assert_eq!(after.summary.status, Status::Deleted);
    assert_eq!(after.summary.status_ms, deleted.summary.status_ms);
    assert_eq!(after.history, deleted.history);
    assert_eq!(store.audit(0, None).await.expect("audit"), audit_before);

    // the audit log: every hold, the reading, the deletion, with actor and reason
    let log = store.audit(0, None).await.expect("audit");
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "{log:?}");
    let holds: BTreeSet<&str> = log
        .iter()
        .filter(|e| e.action == "hold")
        .filter_map(|e| e.message_id.as_deref())
        .collect();
    assert_eq!(holds, BTreeSet::from([a.as_str(), b.as_str(), c.as_str()]));
    let of_a: Vec<(&str, &str, &str)> = log
        .iter()
        .filter(|e| e.message_id.as_deref() == Some(a.as_str()))
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(of_a.len(), 3, "{of_a:?}");
    assert_eq!(of_a[0].0, "hold");
    assert_eq!(of_a[1], ("view_raw", "alice", "checking the finding"));
    assert_eq!(of_a[2], ("delete", "alice", "sent by mistake"));
    assert_eq!(
        deleted
            .history
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["hold", "view_raw", "delete"]
    );
    assert_eq!(store.audit(0, Some(2)).await.expect("audit").len(), 2);
    assert!(
        store
            .audit(now_ms() + HOUR_MS, None)
            .await
            .expect("audit")
            .is_empty()
    );

    // ids: a unique prefix resolves, an unknown id is not found, a shared prefix is ambiguous
    let all_ids = [a.clone(), b.clone(), c.clone()];
    let unique = (1..=a.len())
        .map(|n| &a[..n])
        .find(|p| all_ids.iter().filter(|i| i.starts_with(p)).count() == 1)
        .expect("a unique prefix");
    assert_eq!(store.resolve(unique).await.expect("resolve"), a);
    assert_eq!(
        store
            .resolve(&unique.to_ascii_uppercase())
            .await
            .expect("resolve"),
        a
    );
    assert_eq!(store.get(unique).await.expect("get").summary.id, a);
    assert_eq!(store.resolve(&b).await.expect("resolve"), b);
    for unknown in ["ffffffff-ffff", "not-an-id", "", "%", "0_"] {
        assert!(
            matches!(store.resolve(unknown).await, Err(StoreError::NotFound(_))),
            "{unknown:?}"
        );
    }
    assert!(matches!(
        store.get("ffffffff").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.content("ffffffff-0000-7000-8000-000000000000").await,
        Err(StoreError::NotFound(_))
    ));
    let shared = &a[..4];
    let sharing = all_ids.iter().filter(|i| i.starts_with(shared)).count();
    assert!(
        sharing >= 2,
        "ids made at once share their first 4 digits: {all_ids:?}"
    );
    match store.resolve(shared).await {
        Err(StoreError::Ambiguous { prefix, count }) => {
            assert_eq!(prefix, shared);
            assert_eq!(count, sharing);
        }
        other => panic!("resolve {shared:?}: {other:?}"),
    }
    assert!(matches!(
        store.get(shared).await,
        Err(StoreError::Ambiguous { .. })
    ));
    // A decision needs the full id: a prefix changes nothing.
    assert!(matches!(
        store
            .transition(&b[..8], Status::Deleted, false, "bob", "delete", "prefix")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get(&b).await.expect("get").summary.status,
        Status::Held
    );
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// 2. at rest: nothing of the message in clear
// ---------------------------------------------------------------------------------------------

async fn sealed_at_rest(db: &Db) {
    let store = db.open().await;
    let sender = "rest-check@city.test";
    let msg = ssn_message("rest", sender);
    let mut big = ssn_message("rest-big", sender);
    // Compressible and larger than a PostgreSQL page: goes through TOAST.
    for _ in 0..400 {
        big.extend_from_slice(format!("\r\nSSN: {SSN}; the {PHRASE}.").as_bytes());
    }
    let mut rec = record(&msg, sender, &["sam@example.com"], now_ms());
    rec.notices.push(NewNotice {
        kind: "incident".into(),
        message_id: None,
        recipient: "security@city.test".into(),
        subject: "maildlp incident report".into(),
        body: format!("Masked findings: ***-**-4817. Context: {PHRASE}."),
        suppressed: false,
    });
    let id = new_id();
    let big_id = new_id();
    store
        .hold_batch(&[
            rec.seal(store.key(), id.clone(), &msg),
            record(&big, sender, &["sam@example.com"], now_ms()).seal(
                store.key(),
                big_id.clone(),
                &big,
            ),
        ])
        .await
        .expect("hold");
    assert_eq!(store.content(&id).await.expect("content"), msg);
    assert_eq!(store.content(&big_id).await.expect("content"), big);
    // In clear nowhere: the SSN (with or without dashes), the text, the subject.
    let secrets = [
        SSN,
        "536224817",
        PHRASE,
        "Benefits enrolment rest",
        "Zo\u{eb}",
    ];
    let check = |what: &str, bytes: &[u8]| {
        for s in secrets {
            assert!(!contains(bytes, s), "{s:?} is in clear in {what}");
        }
    };

    match &db.raw {
        Raw::Sqlite(file) => {
            let files = |file: &Path| -> Vec<(String, Vec<u8>)> {
                ["", "-wal", "-shm", "-journal"]
                    .iter()
                    .filter_map(|suffix| {
                        let p = PathBuf::from(format!("{}{suffix}", file.display()));
                        std::fs::read(&p).ok().map(|b| (p.display().to_string(), b))
                    })
                    .collect()
            };
            let open_files = files(file);
            assert!(
                open_files.iter().any(|(_, b)| contains(b, sender)),
                "the envelope sender (metadata, in clear by design) is in the files read: \
                 they are the store's"
            );
            for (name, bytes) in &open_files {
                check(name, bytes);
            }
            // After closing (WAL checkpointed into the main file).
            store.close().await;
            let closed = files(file);
            assert!(closed.iter().any(|(_, b)| contains(b, sender)));
            for (name, bytes) in &closed {
                check(name, bytes);
            }
        }
        Raw::Postgres(cluster, database) => {
            // Every column of every table, as text (bytea as hex, decoded here).
            let mut seen_sender = false;
            for table in ["messages", "notices", "audit", "meta"] {
                // bytea comes out as \x and hex digits: decoded below.
                let out = cluster.psql(&format!("\\c {database}\nSELECT t::text FROM {table} t"));
                seen_sender |= out.contains(sender);
                check(&format!("table {table} (as text)"), out.as_bytes());
                for word in out.split(|c: char| !c.is_ascii_hexdigit()) {
                    if word.len() >= 32
                        && word.len() % 2 == 0
                        && let Some(bytes) = from_hex(word)
                    {
                        check(&format!("a value of table {table}"), &bytes);
                    }
                }
            }
            assert!(seen_sender, "the envelope sender is in the rows read");
            // And the server's files themselves, once flushed.
            cluster.psql("CHECKPOINT");
            let mut files = Vec::new();
            walk(&cluster.dir(), &mut files);
            let mut read = 0usize;
            let mut seen = false;
            for f in &files {
                if let Ok(bytes) = std::fs::read(f) {
                    read += 1;
                    seen |= contains(&bytes, sender);
                    check(&f.display().to_string(), &bytes);
                }
            }
            eprintln!("read {read} of {} PostgreSQL server files", files.len());
            if read > 0 {
                assert!(
                    seen,
                    "the sender is in the {read} server files read: they hold the store"
                );
            } else {
                eprintln!("the PostgreSQL data files are not readable here: checked rows only");
            }
            store.close().await;
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 3. the audit log is append-only
// ---------------------------------------------------------------------------------------------

async fn audit_is_append_only(db: &Db) {
    let store = db.open().await;
    let now = now_ms();
    let one = hold(
        &store,
        &ssn_message("one", "pat@city.test"),
        "pat@city.test",
        now,
    )
    .await;
    hold(
        &store,
        &ssn_message("two", "pat@city.test"),
        "pat@city.test",
        now,
    )
    .await;
    store
        .transition(&one, Status::Deleted, false, "alice", "delete", "duplicate")
        .await
        .expect("delete");
    let before = store.audit(0, None).await.expect("audit");
    assert_eq!(before.len(), 3);

    let pool = db.raw_pool().await;
    for sql in [
        "UPDATE audit SET reason = 'nothing happened'",
        "UPDATE audit SET actor = 'mallory' WHERE action = 'delete'",
        "UPDATE audit SET at_ms = 0 WHERE seq = (SELECT MAX(seq) FROM audit)",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE action = 'delete'",
        // SQLite's REPLACE deletes without DELETE triggers; PostgreSQL's TRUNCATE fires no
        // row trigger: both are refused by schema version 2.
        if db.url.backend() == maildlp::quarantine::store::Backend::Sqlite {
            "INSERT OR REPLACE INTO audit (seq, at_ms, actor, action, message_id, reason, node) \
             VALUES (1, 1, 'mallory', 'delete', 'm1', 'forged', 'n')"
        } else {
            "TRUNCATE audit"
        },
    ] {
        match sqlx::query(sql).execute(&pool).await {
            Ok(done) => panic!(
                "{sql}: the audit log accepted it ({} rows)",
                done.rows_affected()
            ),
            Err(e) => assert!(e.to_string().contains("append-only"), "{sql}: {e}"),
        }
    }
    // Inside a transaction too: the whole transaction fails.
    let mut tx = pool.begin().await.expect("begin");
    assert!(
        sqlx::query("DELETE FROM audit WHERE seq = 1")
            .execute(&mut *tx)
            .await
            .is_err()
    );
    drop(tx);

    assert_eq!(store.audit(0, None).await.expect("audit"), before);
    assert_eq!(db.raw_count(&pool, "audit").await, 3);
    let reasons: Vec<String> = sqlx::query("SELECT reason FROM audit ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("select")
        .iter()
        .map(|r| r.try_get("reason").expect("reason"))
        .collect();
    assert_eq!(
        reasons,
        before.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()
    );
    // Appending still works.
    store
        .append_audit("alice", "note", None, "reviewed the log")
        .await
        .expect("append");
    let after = store.audit(0, None).await.expect("audit");
    assert_eq!(after.len(), 4);
    assert_eq!(after[..3], before[..]);
    assert_eq!(
        (after[3].actor.as_str(), after[3].reason.as_str()),
        ("alice", "reviewed the log")
    );
    pool.close().await;
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// 4. the key check, and damaged rows
// ---------------------------------------------------------------------------------------------

/// Everything in the store, read past it: messages, audit and the key check row.
async fn everything(db: &Db, pool: &AnyPool) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT id, status, status_ms, details, content FROM messages ORDER BY id",
        "SELECT seq, action, actor, reason FROM audit ORDER BY seq",
        "SELECT name, value FROM meta ORDER BY name",
    ] {
        for row in sqlx::query(sql).fetch_all(pool).await.expect(sql) {
            let mut cols = Vec::new();
            for i in 0..row.len() {
                let v = row
                    .try_get::<Option<String>, _>(i)
                    .map(|s| format!("{s:?}"))
                    .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|n| format!("{n:?}")))
                    .or_else(|_| {
                        row.try_get::<Option<Vec<u8>>, _>(i)
                            .map(|b| format!("{b:?}"))
                    })
                    .unwrap_or_else(|e| panic!("{sql} column {i}: {e}"));
                cols.push(v);
            }
            out.push(cols.join("|"));
        }
    }
    assert!(!out.is_empty(), "{:?}", db.url);
    out
}

async fn keys_and_damaged_rows(db: &Db) {
    let store = db.open().await;
    let now = now_ms();
    let msgs: Vec<Vec<u8>> = (1..=3)
        .map(|i| ssn_message(&format!("k{i}"), "pat@city.test"))
        .collect();
    let mut ids = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        ids.push(hold(&store, m, "pat@city.test", now - i as i64 * 1000).await);
    }
    let pool = db.raw_pool().await;
    let state = everything(db, &pool).await;

    // Another key: refused, whether or not it may create one.
    let other = db.dir.path().join("other.key");
    Key::create(&other).expect("another key");
    for create in [false, true] {
        let err = Store::open(&db.url, &other, create)
            .await
            .expect_err("a store opened with another key");
        let text = err.to_string();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
        assert!(
            text.contains("not the key this quarantine store was created with"),
            "{text}"
        );
        assert!(text.contains(&other.display().to_string()), "{text}");
    }
    // A missing key for an existing store: an error that says how to get one; none is made.
    let missing = db.dir.path().join("elsewhere").join("quarantine.key");
    for create in [false, true] {
        let err = Store::open(&db.url, &missing, create)
            .await
            .expect_err("a store opened without its key");
        let text = err.to_string();
        assert!(text.contains("maildlp keygen"), "{text}");
        assert!(text.contains(&missing.display().to_string()), "{text}");
        assert!(!missing.exists(), "a key file was created: {text}");
    }
    assert_eq!(everything(db, &pool).await, state, "nothing changed");
    // The right key still opens it.
    let again = Store::open(&db.url, &db.key_file(), false)
        .await
        .expect("the right key");
    assert_eq!(again.content(&ids[0]).await.expect("content"), msgs[0]);
    again.close().await;

    // Damaged rows: garbage details on one message, garbage content on another.
    let (good, bad_details, bad_content) = (&ids[0], &ids[1], &ids[2]);
    let set = |col: &'static str, value: Vec<u8>, id: String| {
        let pool = pool.clone();
        async move {
            let n = sqlx::query(&format!("UPDATE messages SET {col} = $1 WHERE id = $2"))
                .bind(value)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update")
                .rows_affected();
            assert_eq!(n, 1);
        }
    };
    let garbage: Vec<u8> = (0..120u32).map(|i| (i * 37 % 251) as u8).collect();
    set("details", garbage.clone(), bad_details.clone()).await;
    set("content", garbage.clone(), bad_content.clone()).await;

    let rows = store.list(&ListFilter::default()).await.expect("list");
    assert_eq!(rows.len(), 3, "list returns every message");
    for r in &rows {
        if &r.id == bad_details {
            let e = r.details.as_ref().expect_err("damaged details");
            assert!(
                e.contains("cannot decrypt") && e.contains(&format!("{bad_details}/details")),
                "{e}"
            );
        } else {
            assert!(r.details.is_ok(), "{}: {:?}", r.id, r.details);
        }
    }
    match store.get(bad_details).await {
        Err(StoreError::Open(e)) => assert_eq!(
            e.to_string(),
            format!("cannot decrypt {bad_details}/details: wrong key or damaged data")
        ),
        other => panic!("get with damaged details: {other:?}"),
    }
    // Its content is intact.
    assert_eq!(store.content(bad_details).await.expect("content"), msgs[1]);
    match store.content(bad_content).await {
        Err(StoreError::Open(e)) => assert_eq!(
            e.to_string(),
            format!("cannot decrypt {bad_content}/content: wrong key or damaged data")
        ),
        other => panic!("damaged content: {other:?}"),
    }
    assert!(store.get(bad_content).await.expect("get").has_content);
    assert_eq!(store.content(good).await.expect("content"), msgs[0]);

    // A damaged metadata row is flagged in `list`, not allowed to hide the others, and `get`
    // says what is wrong with it.
    let recipients_of = |id: String| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE messages SET recipients = 'garbage' WHERE id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .expect("update")
        }
    };
    recipients_of(good.clone()).await;
    let rows = store.list(&ListFilter::default()).await.expect("list");
    assert_eq!(rows.len(), 3, "list returns every message");
    let damaged = rows.iter().find(|r| &r.id == good).expect("listed");
    assert!(
        damaged
            .details
            .as_ref()
            .is_err_and(|e| e.contains("recipients")),
        "{:?}",
        damaged.details
    );
    assert!(matches!(
        store.get(good).await,
        Err(StoreError::Corrupt { .. })
    ));

    // A sealed value moved onto another row does not open there; nor does a truncated one.
    let sealed: Vec<u8> = sqlx::query("SELECT content FROM messages WHERE id = $1")
        .bind(good.clone())
        .fetch_one(&pool)
        .await
        .expect("select")
        .try_get("content")
        .expect("content");
    set("content", sealed.clone(), bad_content.clone()).await;
    assert!(matches!(
        store.content(bad_content).await,
        Err(StoreError::Open(_))
    ));
    set("content", sealed[..10].to_vec(), bad_content.clone()).await;
    assert!(matches!(
        store.content(bad_content).await,
        Err(StoreError::Open(_))
    ));
    set("content", Vec::new(), bad_content.clone()).await;
    assert!(matches!(
        store.content(bad_content).await,
        Err(StoreError::Open(_))
    ));
    pool.close().await;
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// 5. purge
// ---------------------------------------------------------------------------------------------

async fn purge_expires_old_messages(db: &Db) {
    let store = db.open().await;
    let now = now_ms();
    let old_msg = ssn_message("old", "pat@city.test");
    let recent_msg = ssn_message("recent", "pat@city.test");
    let released_msg = ssn_message("released", "pat@city.test");
    let old = hold(&store, &old_msg, "pat@city.test", now - 100 * DAY_MS).await;
    let recent = hold(&store, &recent_msg, "pat@city.test", now - DAY_MS).await;
    let released = hold(&store, &released_msg, "pat@city.test", now - 95 * DAY_MS).await;
    store
        .transition(
            &released,
            Status::Released,
            true,
            "alice",
            "release",
            "approved",
        )
        .await
        .expect("release");

    let (expired, erased) = store
        .purge(now - 90 * DAY_MS, "retention", "90-day retention")
        .await
        .expect("purge");
    assert_eq!((expired, erased), (1, 1));

    let o = store.get(&old).await.expect("get old");
    assert_eq!(o.summary.status, Status::Expired);
    assert!(!o.has_content);
    assert!(matches!(
        store.content(&old).await,
        Err(StoreError::NoContent { .. })
    ));
    let last = o.history.last().expect("history");
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.reason.as_str()
        ),
        ("expire", "retention", "90-day retention")
    );
    let r = store.get(&recent).await.expect("get recent");
    assert_eq!(r.summary.status, Status::Held);
    assert!(r.has_content);
    assert_eq!(store.content(&recent).await.expect("content"), recent_msg);
    let rel = store.get(&released).await.expect("get released");
    assert_eq!(rel.summary.status, Status::Released);
    assert!(!rel.has_content);
    assert_eq!(
        rel.history
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["hold", "release", "purge"]
    );
    assert_eq!(
        ids(&store
            .list(&ListFilter {
                status: Some(Status::Expired),
                ..Default::default()
            })
            .await
            .expect("list")),
        [old.as_str()]
    );
    // Nothing more to do the second time.
    assert_eq!(
        store
            .purge(now - 90 * DAY_MS, "retention", "again")
            .await
            .expect("purge"),
        (0, 0)
    );
    assert_eq!(
        store.get(&recent).await.expect("get").summary.status,
        Status::Held
    );
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// 6. group commit through the writer
// ---------------------------------------------------------------------------------------------

async fn group_commit_through_the_writer(db: &Db) {
    let store = db.open().await;
    let writer = Writer::spawn(store.clone(), 64, Duration::from_secs(30));
    let mut threads = Vec::new();
    for t in 0..8 {
        let writer = writer.clone();
        threads.push(tokio::task::spawn_blocking(move || {
            let mut done = Vec::new();
            for i in 0..25 {
                let msg = ssn_message(&format!("w{t}-{i}"), "pat@city.test");
                let rec = record(&msg, "pat@city.test", &["sam@example.com"], now_ms());
                let id = new_id();
                writer
                    .hold_blocking(rec, &id, &msg)
                    .unwrap_or_else(|e| panic!("hold {t}/{i}: {e}"));
                done.push((id, msg));
            }
            done
        }));
    }
    let mut held = Vec::new();
    for t in threads {
        held.extend(t.await.expect("a holding thread"));
    }
    assert_eq!(held.len(), 200);
    let rows = store
        .list(&ListFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(rows.len(), 200);
    assert!(
        rows.iter()
            .all(|r| r.status == Status::Held && r.details.is_ok())
    );
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let written: BTreeSet<&str> = held.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(listed, written);
    for (id, msg) in &held {
        assert_eq!(&store.content(id).await.expect("content"), msg);
    }
    let log = store.audit(0, None).await.expect("audit");
    assert_eq!(log.iter().filter(|e| e.action == "hold").count(), 200);
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// The milter in front of the store
// ---------------------------------------------------------------------------------------------

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_maildlp")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn signal(pid: u32, sig: &str) {
    // The shell's built-in kill: no procps needed.
    let _ = Command::new("sh")
        .args(["-c", &format!("kill {sig} {pid}")])
        .status();
}

/// A `maildlp milter` process, killed when dropped.
struct Milter {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Milter {
    /// Start `maildlp milter` on a free port; `args` come after `--listen`.
    fn spawn(args: &[&str], log: PathBuf) -> Milter {
        let port = free_port();
        let child = Command::new(bin())
            .args(["milter", "--listen", &format!("inet:127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start maildlp milter");
        Milter { child, log, port }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `needle` is in the log (the process must keep running).
    fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the milter exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} in the milter's log within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn wait_ready(&mut self) {
        self.wait_log("maildlp milter ready", Duration::from_secs(30));
    }

    /// SIGTERM, and it stops cleanly.
    fn stop(mut self) {
        signal(self.child.id(), "-TERM");
        let start = Instant::now();
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the milter did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        };
        assert!(status.success(), "{status}:\n{}", self.log());
    }
}

impl Drop for Milter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Play one message to the milter as Postfix would; the final answer.
async fn send(port: u16, raw: &[u8]) -> Outcome {
    let (headers, body) = split_message(raw);
    let play = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the milter");
        let mut c = Client::negotiate(stream).await.expect("negotiate");
        let o = c
            .message("pat@city.test", &["sam@example.com"], &headers, &body)
            .await
            .expect("an answer");
        let _ = c.quit().await;
        o
    };
    tokio::time::timeout(Duration::from_secs(60), play)
        .await
        .expect("the milter answered within 60 s")
}

fn is_tempfail(o: &Outcome) -> bool {
    o.action == 't' || (o.action == 'y' && o.reply.as_deref().is_some_and(|r| r.starts_with('4')))
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run maildlp")
}

/// Message-IDs of the held messages (from their sealed details).
fn message_ids(rows: &[Summary]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| {
            r.details
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", r.id))
                .message_id
                .clone()
                .unwrap_or_default()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 7. two milter processes, one PostgreSQL
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_milter_processes_share_one_postgres() {
    let db = Db::postgres("two_milters");
    let dir = db.dir.path();
    let key = db.key_file();
    let key_arg = key.display().to_string();
    let out = run(&["keygen", "--key-file", &key_arg]);
    assert!(out.status.success(), "{out:?}");
    let message = dir.join("ssn.eml");
    std::fs::write(&message, ssn_message("load", "pat@city.test")).expect("message file");

    // Both start at once on an empty database: they race to create the schema.
    let mut milters: Vec<Milter> = (0..2)
        .map(|n| {
            let data = dir.join(format!("node{n}"));
            Milter::spawn(
                &[
                    "--store",
                    &db.raw_url,
                    "--key-file",
                    &key_arg,
                    "--data-dir",
                    &data.display().to_string(),
                ],
                dir.join(format!("milter{n}.log")),
            )
        })
        .collect();
    for m in &mut milters {
        m.wait_ready();
    }
    let loads: Vec<Child> = milters
        .iter()
        .map(|m| {
            Command::new(bin())
                .args([
                    "milter-load",
                    "--addr",
                    &format!("127.0.0.1:{}", m.port),
                    "--connections",
                    "4",
                    "--messages-per-connection",
                    "50",
                    "--message",
                    &message.display().to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start milter-load")
        })
        .collect();
    for load in loads {
        let out = load.wait_with_output().expect("milter-load");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "milter-load: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.starts_with("200 messages") && text.contains("; 0 errors"),
            "{text}"
        );
    }

    let store = Store::open(&db.url, &key, false).await.expect("open");
    let rows = store
        .list(&ListFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(rows.len(), 400, "every message of both milters is held");
    assert!(rows.iter().all(|r| r.status == Status::Held));
    assert_eq!(
        rows.iter().map(|r| &r.id).collect::<BTreeSet<_>>().len(),
        400
    );
    for r in &rows {
        let d = r.details.as_ref().expect("details open");
        assert_eq!(d.message_id.as_deref(), Some("load@city.test"));
        let content = store.content(&r.id).await.expect("content");
        assert!(contains(&content, SSN) && contains(&content, PHRASE));
    }
    store.close().await;

    // The command line sees the same: 400 lines, each `quarantine show` decrypts.
    let store_args = ["--store", &db.raw_url, "--key-file", &key_arg];
    let out = run(&[
        &["quarantine", "list", "--limit", "1000", "--format", "json"][..],
        &store_args[..],
    ]
    .concat());
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a json line"))
        .collect();
    assert_eq!(listed.len(), 400);
    let listed_ids: Vec<String> = listed
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect();
    std::thread::scope(|s| {
        for half in listed_ids.chunks(200) {
            let store_args = &store_args;
            s.spawn(move || {
                for id in half {
                    let out = run(&[
                        &["quarantine", "show", id.as_str(), "--format", "json"][..],
                        store_args,
                    ]
                    .concat());
                    assert!(out.status.success(), "show {id}: {out:?}");
                    let v: serde_json::Value =
                        serde_json::from_slice(&out.stdout).expect("show json");
                    assert_eq!(v["id"], id.as_str());
                    assert_eq!(v["status"], "held");
                    assert_eq!(v["findings"][0]["masked"][0], "***-**-4817");
                    assert_eq!(v["has_content"], true);
                }
            });
        }
    });
    for m in milters {
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// 8. PostgreSQL goes away: tempfail, never accept; back again: stored
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milter_tempfails_while_postgres_is_down() {
    let cluster = pg::PgCluster::start();
    let dir = TempDir::new("pg-down");
    let key = dir.path().join("quarantine.key").display().to_string();
    let url = cluster.url();
    let mut milter = Milter::spawn(
        &[
            "--store",
            &url,
            "--key-file",
            &key,
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--store-timeout",
            "3",
        ],
        dir.path().join("milter.log"),
    );
    milter.wait_ready();

    let before = send(milter.port, &ssn_message("pg-before", "pat@city.test")).await;
    assert_eq!(before.action, 'd', "stored, then discarded: {before:?}");

    cluster.stop();
    let down = send(milter.port, &ssn_message("pg-down", "pat@city.test")).await;
    assert!(
        is_tempfail(&down),
        "with the store down the MTA must keep the message: {down:?}"
    );
    assert!(
        down.reply.as_deref().is_some_and(|r| r.starts_with("451 ")),
        "{down:?}"
    );
    // The writer has given up on it before the database comes back.
    milter.wait_log("storing held messages failed", Duration::from_secs(30));

    cluster.restart();
    let after = send(milter.port, &ssn_message("pg-after", "pat@city.test")).await;
    assert_eq!(
        after.action,
        'd',
        "stored again once PostgreSQL is back: {after:?}\n{}",
        milter.log()
    );

    let store = Store::open(&StoreUrl::parse(&url).expect("url"), Path::new(&key), false)
        .await
        .expect("open");
    let rows = store.list(&ListFilter::default()).await.expect("list");
    assert_eq!(
        message_ids(&rows),
        BTreeSet::from([
            "pg-before@city.test".to_string(),
            "pg-after@city.test".to_string()
        ]),
        "the tempfailed message is not in the store (the MTA keeps it)"
    );
    store.close().await;
    milter.stop();
}

// ---------------------------------------------------------------------------------------------
// 9. a full disk under SQLite: stored or tempfail, never accept
// ---------------------------------------------------------------------------------------------

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount a tmpfs on {} (needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn big_ssn_message(tag: &str) -> Vec<u8> {
    let mut m = ssn_message(tag, "pat@city.test");
    m.extend_from_slice(b"\r\n");
    let mut n = 0u64;
    while m.len() < 200_000 {
        // Varied text, so that nothing compresses it away.
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        m.extend_from_slice(format!("line {n:020} of the {PHRASE} appendix\r\n").as_bytes());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milter_tempfails_when_the_sqlite_disk_is_full() {
    let dir = TempDir::new("disk-full");
    let data = dir.path().join("data");
    let mount = Mount::tmpfs(&data, "1m");
    let mut milter = Milter::spawn(
        &["--data-dir", &data.display().to_string()],
        dir.path().join("milter.log"),
    );
    milter.wait_ready();

    let mut stored = BTreeSet::new();
    let mut tempfails = 0;
    for i in 0..30 {
        let tag = format!("full{i}");
        let o = send(milter.port, &big_ssn_message(&tag)).await;
        match o.action {
            'd' => {
                stored.insert(format!("{tag}@city.test"));
            }
            _ if is_tempfail(&o) => tempfails += 1,
            _ => panic!(
                "message {i}: a quarantined message must be stored (discard) or tempfailed, \
                 never {o:?}\n{}",
                milter.log()
            ),
        }
        if tempfails >= 3 {
            break;
        }
    }
    eprintln!(
        "disk full: {} message(s) stored, then {tempfails} tempfail(s)",
        stored.len()
    );
    assert!(
        tempfails >= 1,
        "1 MB cannot hold 30 messages of 200 KB: {stored:?}"
    );
    assert!(
        !stored.is_empty(),
        "the first message fits:\n{}",
        milter.log()
    );

    // Every message that was answered `discard` is in the store, whole.
    let url = StoreUrl::sqlite(&data.join("quarantine.db"));
    let store = Store::open(&url, &data.join("quarantine.key"), false)
        .await
        .expect("open the full store");
    let rows = store
        .list(&ListFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(message_ids(&rows), stored);
    for r in &rows {
        let content = store.content(&r.id).await.expect("content");
        assert!(content.len() >= 200_000 && contains(&content, SSN));
    }
    store.close().await;
    milter.stop();
    drop(mount);
}

// ---------------------------------------------------------------------------------------------
// The review console's tables: accounts, sessions, lockout, daily counts, pages of the queue
// and of the audit log — the same SQL on both back ends.
// ---------------------------------------------------------------------------------------------

async fn console_accounts_sessions_and_counts(db: &Db) {
    use maildlp::quarantine::accounts::{Role, StatRow};
    let store = db.open().await;
    store
        .user_add("ada", Role::Admin, "$argon2id$fake-hash-a", "root")
        .await
        .expect("add ada");
    let dup = store
        .user_add("ada", Role::Reviewer, "$argon2id$other", "root")
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store
        .user_add("rey", Role::Reviewer, "$argon2id$fake-hash-r", "root")
        .await
        .expect("add rey");
    let ada = store
        .user_get("ada")
        .await
        .expect("get")
        .expect("ada exists");
    assert_eq!(
        (ada.role, ada.disabled, ada.failed_logins),
        (Role::Admin, false, 0)
    );
    assert!(store.user_get("nobody").await.expect("get").is_none());
    assert_eq!(store.user_list().await.expect("list").len(), 2);

    // Failures count up; a lock is stored and audited; a login resets both.
    for n in 1..=3 {
        assert_eq!(store.login_failed("rey").await.expect("failed"), n);
    }
    assert_eq!(store.login_failed("nobody").await.expect("unknown"), 0);
    let until = now_ms() + 60_000;
    store.lock_account("rey", until).await.expect("lock");
    let rey = store.user_get("rey").await.expect("get").expect("rey");
    assert_eq!((rey.failed_logins, rey.locked_until_ms), (3, until));

    // Sessions: found while live, gone when deleted, idle, expired or the account disabled.
    let far = now_ms() + 3_600_000;
    store
        .session_create("h1", "rey", "csrf1", far, "from 127.0.0.1")
        .await
        .expect("session");
    let rey = store.user_get("rey").await.expect("get").expect("rey");
    assert_eq!(
        (rey.failed_logins, rey.locked_until_ms),
        (0, 0),
        "a login resets"
    );
    let s = store
        .session_get("h1", 60_000)
        .await
        .expect("get")
        .expect("live");
    assert_eq!((s.user.name.as_str(), s.csrf.as_str()), ("rey", "csrf1"));
    assert!(
        store.session_get("h1", 0).await.expect("idle").is_none(),
        "idle too long"
    );
    assert!(
        store
            .session_get("h1", 60_000)
            .await
            .expect("gone")
            .is_none(),
        "an idle session is removed"
    );
    store
        .session_create("h2", "rey", "c2", now_ms() - 1, "x")
        .await
        .expect("session");
    assert!(
        store
            .session_get("h2", 60_000)
            .await
            .expect("expired")
            .is_none()
    );
    store
        .session_create("h3", "rey", "c3", far, "x")
        .await
        .expect("session");
    store.session_delete("h3").await.expect("logout");
    assert!(
        store
            .session_get("h3", 60_000)
            .await
            .expect("logged out")
            .is_none()
    );
    store
        .session_create("h4", "rey", "c4", far, "x")
        .await
        .expect("session");
    store
        .user_set_disabled("rey", true, "root")
        .await
        .expect("disable");
    assert!(
        store
            .session_get("h4", 60_000)
            .await
            .expect("disabled")
            .is_none()
    );
    store
        .user_set_disabled("rey", false, "root")
        .await
        .expect("enable");
    store
        .session_create("h5", "rey", "c5", far, "x")
        .await
        .expect("session");
    store
        .user_set_password("rey", "$argon2id$new", "root")
        .await
        .expect("passwd");
    assert!(
        store
            .session_get("h5", 60_000)
            .await
            .expect("new password")
            .is_none()
    );
    assert!(matches!(
        store.user_set_password("nobody", "x", "root").await,
        Err(StoreError::NoAccount(_))
    ));

    // Daily counts add up across flushes (and nodes).
    let row = |day: &str, action: &str, rule: &str, n| StatRow {
        day: day.into(),
        action: action.into(),
        rule: rule.into(),
        kind: String::new(),
        n,
    };
    store
        .stats_add(&[
            row("2026-11-29", "accept", "", 5),
            row("2026-11-30", "quarantine", "sensitive_info", 2),
        ])
        .await
        .expect("stats");
    store
        .stats_add(&[row("2026-11-30", "quarantine", "sensitive_info", 3)])
        .await
        .expect("stats again");
    let rows = store.stats_since("2026-11-30").await.expect("since");
    assert_eq!(
        rows,
        vec![row("2026-11-30", "quarantine", "sensitive_info", 5)]
    );

    // Pages of the queue: count and offset agree with the list.
    let now = now_ms();
    for i in 0..5 {
        hold(
            &store,
            &ssn_message(&format!("page {i}"), "pat@city.test"),
            "pat@city.test",
            now - i * 1000,
        )
        .await;
    }
    let all = ListFilter {
        status: Some(Status::Held),
        ..Default::default()
    };
    assert_eq!(store.count(&all).await.expect("count"), 5);
    let page2 = store
        .list(&ListFilter {
            limit: Some(2),
            offset: Some(2),
            ..all.clone()
        })
        .await
        .expect("page");
    let every = store.list(&all).await.expect("all");
    assert_eq!(
        page2.iter().map(|m| &m.id).collect::<Vec<_>>(),
        every[2..4].iter().map(|m| &m.id).collect::<Vec<_>>()
    );
    let tail = store
        .list(&ListFilter {
            offset: Some(4),
            ..all.clone()
        })
        .await
        .expect("offset without limit");
    assert_eq!(tail.len(), 1);

    // The audit log, newest first, filtered.
    let (entries, total) = store
        .audit_page(None, Some("user_add"), 0, 10)
        .await
        .expect("audit");
    assert_eq!(total, 2);
    assert_eq!(entries.len(), 2);
    assert!(entries[0].seq > entries[1].seq, "newest first");
    let (locks, n) = store
        .audit_page(Some("rey"), Some("lockout"), 0, 10)
        .await
        .expect("audit");
    assert_eq!((n, locks.len()), (1, 1));
    let (_, all_n) = store
        .audit_page(None, None, 0, 0)
        .await
        .expect("count only");
    assert!(all_n >= 10, "{all_n}");
}
