//! Group commit: many concurrent writers share one flush. A writer applies
//! its write, then awaits [`GroupCommit::durable`]; a single task collects
//! every waiter that arrived, runs one `flush` on a blocking thread, and
//! answers them all. A waiter is only answered by a flush that started after
//! it arrived, so its write is covered.

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
