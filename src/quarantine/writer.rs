//! Group commit for the milter: connections hand sealed messages to one writer task, which
//! stores everything waiting in one transaction (one fsync for many messages) and answers each
//! caller when the commit is done. A caller waits at most its timeout; the queue is bounded, so
//! a stalled store fills it and further messages are refused at once (the MTA is told to try
//! again) rather than piling up in memory.

use super::{HeldRecord, NewNotice, SealedHeld, Store};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages stored in one transaction at most.
const MAX_BATCH: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HoldError {
    #[error("the quarantine store failed: {0}")]
    Store(String),
    #[error("the quarantine store did not commit within {0:?}")]
    Timeout(Duration),
    #[error("the quarantine store is behind: {0} messages wait to be written")]
    QueueFull(usize),
    #[error("the quarantine writer has stopped")]
    Stopped,
}

enum Job {
    Hold {
        item: Box<SealedHeld>,
        done: std_mpsc::SyncSender<Result<(), String>>,
    },
    Notices(Vec<NewNotice>),
}

/// The handle the milter's judging threads use.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    store: Store,
    timeout: Duration,
    capacity: usize,
}

impl Writer {
    /// Start the writer task on the current tokio runtime.
    pub fn spawn(store: Store, capacity: usize, timeout: Duration) -> Writer {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(store.clone(), rx));
        Writer {
            jobs: tx,
            store,
            timeout,
            capacity,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Seal `record` and `message` and store them under `id` (from [`super::new_id`]);
    /// returns once committed. Blocking: call it from a blocking thread (the milter judges off
    /// the async runtime).
    pub fn hold_blocking(
        &self,
        record: HeldRecord,
        id: &str,
        message: &[u8],
    ) -> Result<(), HoldError> {
        let item = record.seal(self.store.key(), id.to_string(), message);
        let (done, wait) = std_mpsc::sync_channel(1);
        self.jobs
            .try_send(Job::Hold {
                item: Box::new(item),
                done,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => HoldError::QueueFull(self.capacity),
                mpsc::error::TrySendError::Closed(_) => HoldError::Stopped,
            })?;
        match wait.recv_timeout(self.timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HoldError::Store(e)),
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(HoldError::Timeout(self.timeout)),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(HoldError::Stopped),
        }
    }

    /// Queue notices without waiting (rejections: the MTA tells the sender anyway).
    pub fn notices(&self, notices: Vec<NewNotice>) {
        if notices.is_empty() {
            return;
        }
        if self.jobs.try_send(Job::Notices(notices)).is_err() {
            tracing::warn!("notice dropped: the quarantine writer is full or stopped");
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut holds = Vec::new();
        let mut waiting = Vec::new();
        let mut notices = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Hold { item, done } => {
                    holds.push(*item);
                    waiting.push(done);
                }
                Job::Notices(n) => notices.extend(n),
            }
        }
        if !holds.is_empty() {
            let result = store.hold_batch(&holds).await.map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::error!(messages = holds.len(), "storing held messages failed: {e}");
            }
            for done in waiting {
                // The caller may have given up (timeout); the message is stored all the same.
                let _ = done.send(result.clone());
            }
        }
        if !notices.is_empty()
            && let Err(e) = store.enqueue_notices(&notices).await
        {
            tracing::error!(notices = notices.len(), "queueing notices failed: {e}");
        }
    }
}
