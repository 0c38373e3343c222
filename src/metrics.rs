//! What the filter has done, for Prometheus (`/metrics`) and for the console's dashboard.
//!
//! Counters live in memory (prometheus-client); the per-day counts the dashboard draws are
//! also gathered here and flushed to the store now and then ([`Metrics::take_daily`]), so they
//! survive restarts and add up over several nodes.

use crate::policy::Verdict;
use crate::quarantine::accounts::StatRow;
use crate::scan::ScanReport;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

type Labels = Vec<(String, String)>;

/// The filter's metrics. Shared (`Arc`) by the milter, the relay and the console.
pub struct Metrics {
    registry: Registry,
    messages: Family<Labels, Counter>,
    rule_hits: Family<Labels, Counter>,
    findings: Family<Labels, Counter>,
    scan_seconds: Histogram,
    store_errors: Counter,
    quarantine: Family<Labels, Gauge>,
    notices: Family<Labels, Gauge>,
    policy_loaded: Gauge,
    /// (day, action, rule, kind) → messages, not yet flushed to the store.
    daily: Mutex<HashMap<(String, String, String, String), u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `YYYY-MM-DD` (UTC) of a time in milliseconds.
pub fn day_of(ms: i64) -> String {
    let mut s = crate::quarantine::format_ms(ms);
    s.truncate(10);
    s
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("maildlp");
        let messages = Family::<Labels, Counter>::default();
        registry.register(
            "messages",
            "Messages judged, by the action taken",
            messages.clone(),
        );
        let rule_hits = Family::<Labels, Counter>::default();
        registry.register(
            "rule_hits",
            "Rules that fired, by rule and mode (enforced or monitor)",
            rule_hits.clone(),
        );
        let findings = Family::<Labels, Counter>::default();
        registry.register(
            "findings",
            "Messages holding a sensitive kind, by kind",
            findings.clone(),
        );
        let scan_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        registry.register(
            "scan_duration_seconds",
            "Time to decode, scan and judge one message",
            scan_seconds.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Messages to quarantine that the store did not take (answered tempfail)",
            store_errors.clone(),
        );
        let quarantine = Family::<Labels, Gauge>::default();
        registry.register(
            "quarantine_messages",
            "Messages in the quarantine store, by status",
            quarantine.clone(),
        );
        let notices = Family::<Labels, Gauge>::default();
        registry.register(
            "notices",
            "Notices in the store's queue, by status (pending, sent, failed, suppressed)",
            notices.clone(),
        );
        let policy_loaded = Gauge::default();
        registry.register(
            "policy_loaded",
            "1 when a policy is loaded and judging",
            policy_loaded.clone(),
        );
        Metrics {
            registry,
            messages,
            rule_hits,
            findings,
            scan_seconds,
            store_errors,
            quarantine,
            notices,
            policy_loaded,
            daily: Mutex::new(HashMap::new()),
        }
    }

    /// Count one judged message.
    pub fn judged(&self, report: &ScanReport, verdict: &Verdict, now_ms: i64) {
        let action = verdict.action.to_string();
        self.messages
            .get_or_create(&vec![("action".into(), action.clone())])
            .inc();
        for r in &verdict.rules {
            let mode = if r.monitor { "monitor" } else { "enforced" };
            self.rule_hits
                .get_or_create(&vec![
                    ("rule".into(), r.rule.clone()),
                    ("mode".into(), mode.into()),
                ])
                .inc();
        }
        let kinds: BTreeSet<&str> = report.findings.iter().map(|f| f.kind.as_str()).collect();
        for k in &kinds {
            self.findings
                .get_or_create(&vec![("kind".into(), (*k).to_string())])
                .inc();
        }
        self.scan_seconds
            .observe(report.elapsed_micros as f64 / 1_000_000.0);
        let day = day_of(now_ms);
        if let Ok(mut daily) = self.daily.lock() {
            let mut add = |rule: &str, kind: &str| {
                *daily
                    .entry((day.clone(), action.clone(), rule.into(), kind.into()))
                    .or_insert(0) += 1;
            };
            add("", "");
            for r in &verdict.rules {
                add(&r.rule, "");
            }
            for k in &kinds {
                add("", k);
            }
        }
    }

    /// A message the store did not take.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    pub fn set_policy_loaded(&self, loaded: bool) {
        self.policy_loaded.set(i64::from(loaded));
    }

    pub fn policy_loaded(&self) -> bool {
        self.policy_loaded.get() == 1
    }

    /// Set the store's gauges (read when scraped).
    pub fn set_store_counts(&self, quarantine: &[(String, u64)], notices: &[(String, u64)]) {
        for (status, n) in quarantine {
            self.quarantine
                .get_or_create(&vec![("status".into(), status.clone())])
                .set(*n as i64);
        }
        for (status, n) in notices {
            self.notices
                .get_or_create(&vec![("status".into(), status.clone())])
                .set(*n as i64);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The per-day counts gathered since the last call, to add to the store. On a failed
    /// write, give them back with [`Metrics::restore_daily`].
    pub fn take_daily(&self) -> Vec<StatRow> {
        let taken = match self.daily.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => return Vec::new(),
        };
        let mut rows: Vec<StatRow> = taken
            .into_iter()
            .map(|((day, action, rule, kind), n)| StatRow {
                day,
                action,
                rule,
                kind,
                n,
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.day, &a.action, &a.rule, &a.kind).cmp(&(&b.day, &b.action, &b.rule, &b.kind))
        });
        rows
    }

    pub fn restore_daily(&self, rows: Vec<StatRow>) {
        if let Ok(mut d) = self.daily.lock() {
            for r in rows {
                *d.entry((r.day, r.action, r.rule, r.kind)).or_insert(0) += r.n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(86_400_000 * 365), "1971-01-01");
    }

    #[test]
    fn renders_prometheus_text_with_the_prefix() {
        let m = Metrics::new();
        m.set_policy_loaded(true);
        m.store_error();
        m.set_store_counts(&[("held".into(), 3)], &[("failed".into(), 1)]);
        let text = m.render();
        assert!(text.contains("maildlp_policy_loaded 1"), "{text}");
        assert!(text.contains("maildlp_store_errors_total 1"), "{text}");
        assert!(
            text.contains("maildlp_quarantine_messages{status=\"held\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("maildlp_notices{status=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("# EOF"), "{text}");
    }
}
