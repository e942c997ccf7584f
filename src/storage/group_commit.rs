//! Group commit: many concurrent writers share one flush. A writer applies
//! its write, then awaits [`GroupCommit::durable`]; a single task collects
//! every waiter that arrived, runs one `flush` on a blocking thread, and
//! answers them all. A waiter is only answered by a flush that started after
//! it arrived, so its write is covered. The store's flush ends with one
//! sync of its files (see [`super::FileSync`]), so a group costs one
//! `fdatasync` and nobody is answered before it returns; when it fails,
//! every waiter of the group gets the error.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::{StorageError, Store};

type Waiter = oneshot::Sender<Result<(), StorageError>>;

/// Handle to the commit task; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Waiter>,
}

impl GroupCommit {
    /// Starts the commit task for `store`; at most `max_waiting` writers
    /// wait at once (others wait for a slot).
    pub fn start(store: Arc<dyn Store>, max_waiting: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Waiter>(max_waiting.max(1));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut waiters = vec![first];
                while let Ok(w) = rx.try_recv() {
                    waiters.push(w);
                }
                let store = Arc::clone(&store);
                let started = std::time::Instant::now();
                let result = tokio::task::spawn_blocking(move || store.flush())
                    .await
                    .unwrap_or_else(|e| Err(StorageError::Db(e.to_string())));
                metrics::histogram!("telos_storage_flush_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("telos_storage_flush_group_size").record(waiters.len() as f64);
                for w in waiters {
                    let _ = w.send(match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(StorageError::Db(e.to_string())),
                    });
                }
            }
        });
        Self { tx }
    }

    /// Waits until every write made before this call is durable.
    pub async fn durable(&self) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .await
            .map_err(|_| StorageError::Db("the commit task stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Db("the commit task stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FileSync, SledStore};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A sync that reports each call and waits for the test to decide its
    /// result.
    struct GatedSync {
        calls: AtomicUsize,
        entered: Mutex<std::sync::mpsc::Sender<usize>>,
        release: Mutex<std::sync::mpsc::Receiver<std::io::Result<()>>>,
    }

    impl FileSync for GatedSync {
        fn sync(&self) -> std::io::Result<()> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = self.entered.lock().unwrap().send(n);
            self.release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| Err(std::io::Error::other("the test never released")))
        }
    }

    type Gate = (
        Arc<GatedSync>,
        std::sync::mpsc::Receiver<usize>,
        std::sync::mpsc::Sender<std::io::Result<()>>,
    );

    fn gated() -> Gate {
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let sync = Arc::new(GatedSync {
            calls: AtomicUsize::new(0),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        (sync, entered_rx, release_tx)
    }

    fn spawn_waiters(
        commit: &GroupCommit,
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<(), StorageError>>> {
        (0..n)
            .map(|_| {
                let c = commit.clone();
                tokio::spawn(async move { c.durable().await })
            })
            .collect()
    }

    /// Waits until `n` waiters sit in the queue, so the next group is known
    /// to contain them all.
    async fn queued(commit: &GroupCommit, n: usize) {
        for _ in 0..200 {
            if commit.tx.max_capacity() - commit.tx.capacity() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the waiters never queued");
    }

    async fn entered(rx: &std::sync::mpsc::Receiver<usize>) -> usize {
        for _ in 0..200 {
            if let Ok(n) = rx.try_recv() {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no sync was started");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nobody_is_answered_before_the_sync_returns_and_a_group_shares_one_sync() {
        let (sync, entered_rx, release) = gated();
        let store = Arc::new(SledStore::temporary_with_sync(sync.clone()).unwrap());
        let commit = GroupCommit::start(store, 64);
        let first = spawn_waiters(&commit, 1);
        assert_eq!(entered(&entered_rx).await, 1);
        // While the first sync is held, ten more writers arrive.
        let group = spawn_waiters(&commit, 10);
        queued(&commit, 10).await;
        assert!(first.iter().chain(&group).all(|h| !h.is_finished()));
        release.send(Ok(())).unwrap();
        for h in first {
            h.await.unwrap().unwrap();
        }
        // The ten share the second sync, and wait for it.
        assert_eq!(entered(&entered_rx).await, 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(group.iter().all(|h| !h.is_finished()));
        release.send(Ok(())).unwrap();
        for h in group {
            h.await.unwrap().unwrap();
        }
        assert_eq!(sync.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_answers_every_waiter_with_an_error_and_poisons_the_store() {
        let (sync, entered_rx, release) = gated();
        let store = Arc::new(SledStore::temporary_with_sync(sync.clone()).unwrap());
        let commit = GroupCommit::start(Arc::clone(&store) as Arc<dyn crate::storage::Store>, 64);
        let first = spawn_waiters(&commit, 1);
        entered(&entered_rx).await;
        let group = spawn_waiters(&commit, 5);
        queued(&commit, 5).await;
        release.send(Ok(())).unwrap();
        first.into_iter().next().unwrap().await.unwrap().unwrap();
        entered(&entered_rx).await;
        release.send(Err(std::io::Error::other("EIO"))).unwrap();
        for h in group {
            let err = h.await.unwrap().unwrap_err();
            assert!(err.to_string().contains("EIO"), "{err}");
        }
        // A later sync that would succeed is not trusted: nothing after a
        // failure is acknowledged, and writes are refused.
        let later = spawn_waiters(&commit, 1);
        let _ = release.send(Ok(()));
        assert!(later.into_iter().next().unwrap().await.unwrap().is_err());
        assert_eq!(sync.calls.load(Ordering::SeqCst), 2);
        let wf: crate::workflow::Workflow = serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::from_u128(1), "tenant": "t",
            "subject": {"type": "user", "id": "u"},
            "intent": {"subject": {"type": "user", "id": "u"}, "evaluations": [], "tools": [], "entities": [],
                       "clauses": [], "speech_act": "question", "model": {"name": "m", "sha256": "s", "grant_threshold": 0.5, "read_threshold": 0.5}},
            "catalog": {"entries": []}, "entry_scores": [], "created_at": "2026-01-01T00:00:00Z",
            "closed": false, "genesis": "g"
        }))
        .unwrap();
        assert!(crate::storage::Store::put_workflow(&*store, &wf).is_err());
    }
}
