//! The batching queue between requests and the model thread. Requests
//! enqueue tokenized inputs and wait on a oneshot; one task drains the
//! queue into batches bounded by a request cap and a token budget (a padded
//! batch costs `longest × n`) and hands them to the model thread. A batch
//! is formed only once the model has answered the previous one, so while
//! the model is busy the next batch keeps growing. Cancelled requests are
//! skipped before they cost a forward pass.
//! Admission is bounded by a semaphore: a full queue fails fast as
//! [`ExtractionError::Overloaded`] (HTTP 429) instead of growing memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Span;

use super::ExtractionError;
use super::runtime::{Batch, BatchItem, RawOutput};

/// Limits of the batching queue.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most inputs in one forward pass.
    pub max_batch: usize,
    /// Most padded tokens (`longest × n`) in one forward pass.
    pub max_batch_tokens: usize,
    /// Most inputs waiting or running at once; beyond it, 429.
    pub max_queued: usize,
}

struct Queued {
    item: BatchItem,
    _permit: OwnedSemaphorePermit,
}

struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    notify: Notify,
    permits: Arc<Semaphore>,
    limits: BatchLimits,
}

/// Handle to the queue; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    shared: Arc<Shared>,
}

impl Batcher {
    /// Starts the queue task feeding `model`.
    pub fn start(limits: BatchLimits, model: mpsc::Sender<Batch>) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            permits: Arc::new(Semaphore::new(limits.max_queued)),
            limits,
        });
        let task_shared = Arc::clone(&shared);
        let model_free = Arc::new(Semaphore::new(1));
        tokio::spawn(async move {
            loop {
                task_shared.notify.notified().await;
                loop {
                    // Form a batch only once the model is done with the last
                    // one: inputs cancelled meanwhile are never run, and the
                    // batch holds everything that queued during that pass.
                    let Ok(done) = Arc::clone(&model_free).acquire_owned().await else {
                        return;
                    };
                    let items = next_batch(&task_shared);
                    if items.is_empty() {
                        break;
                    }
                    if model.send(Batch { items, done }).await.is_err() {
                        return;
                    }
                }
            }
        });
        Self { shared }
    }

    /// Inputs currently queued (not yet handed to the model).
    pub fn depth(&self) -> usize {
        self.shared.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Runs the inputs through the model, sharing forward passes with
    /// concurrent callers. Fails at once with `Overloaded` when the queue
    /// cannot take all of them.
    pub async fn infer(&self, inputs: Vec<Vec<i64>>) -> Result<Vec<RawOutput>, ExtractionError> {
        let n = u32::try_from(inputs.len()).map_err(|_| ExtractionError::Overloaded)?;
        if n == 0 {
            return Ok(vec![]);
        }
        if inputs
            .iter()
            .any(|i| i.len() > self.shared.limits.max_batch_tokens)
        {
            return Err(ExtractionError::Runtime(
                "input longer than the batch token budget".into(),
            ));
        }
        let mut permits = Arc::clone(&self.shared.permits)
            .try_acquire_many_owned(n)
            .map_err(|_| ExtractionError::Overloaded)?;
        let mut receivers = Vec::with_capacity(inputs.len());
        {
            let mut queue = self
                .shared
                .queue
                .lock()
                .map_err(|_| ExtractionError::Runtime("batch queue poisoned".into()))?;
            for ids in inputs {
                let (tx, rx) = oneshot::channel();
                let permit = permits.split(1).ok_or(ExtractionError::Overloaded)?;
                queue.push_back(Queued {
                    item: BatchItem {
                        ids,
                        reply: tx,
                        span: Span::current(),
                        queued_at: Instant::now(),
                    },
                    _permit: permit,
                });
                receivers.push(rx);
            }
            metrics::gauge!("telos_queue_depth").set(queue.len() as f64);
        }
        self.shared.notify.notify_one();
        let mut out = Vec::with_capacity(receivers.len());
        for rx in receivers {
            out.push(
                rx.await
                    .map_err(|_| ExtractionError::Runtime("model thread stopped".into()))??,
            );
        }
        Ok(out)
    }
}

/// Takes the next batch off the queue: FIFO, skipping cancelled inputs,
/// until the request cap or the padded-token budget would be exceeded.
fn next_batch(shared: &Shared) -> Vec<BatchItem> {
    let Ok(mut queue) = shared.queue.lock() else {
        return vec![];
    };
    let mut batch = Vec::new();
    let mut longest = 0usize;
    while let Some(front) = queue.front() {
        if front.item.reply.is_closed() {
            queue.pop_front();
            continue;
        }
        let len = front.item.ids.len();
        let new_longest = longest.max(len);
        if !batch.is_empty()
            && (batch.len() >= shared.limits.max_batch
                || new_longest * (batch.len() + 1) > shared.limits.max_batch_tokens)
        {
            break;
        }
        longest = new_longest;
        if let Some(q) = queue.pop_front() {
            batch.push(q.item);
        }
    }
    metrics::gauge!("telos_queue_depth").set(queue.len() as f64);
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model thread stand-in that echoes the batch size into the output.
    fn echo_model() -> (mpsc::Sender<Batch>, Arc<Mutex<Vec<usize>>>) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::channel::<Batch>(1);
        let seen = Arc::clone(&sizes);
        std::thread::spawn(move || {
            while let Some(Batch {
                items: batch,
                done: _done,
            }) = rx.blocking_recv()
            {
                seen.lock().unwrap().push(batch.len());
                std::thread::sleep(std::time::Duration::from_millis(20));
                let n = batch.len();
                for item in batch {
                    let _ = item.reply.send(Ok(RawOutput {
                        embedding: vec![n as f32, item.ids.len() as f32],
                        ner_logits: vec![],
                        act_logits: vec![],
                        tokens: None,
                    }));
                }
            }
        });
        (tx, sizes)
    }

    fn limits(max_queued: usize) -> BatchLimits {
        BatchLimits {
            max_batch: 8,
            max_batch_tokens: 64,
            max_queued,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_batches() {
        let (tx, sizes) = echo_model();
        let b = Batcher::start(limits(64), tx);
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move { b.infer(vec![vec![1, 2, 3]]).await })
            })
            .collect();
        for h in handles {
            let out = h.await.unwrap().unwrap();
            assert_eq!(out[0].embedding[1], 3.0);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 16);
        assert!(sizes.len() < 16, "no batching happened: {sizes:?}");
        assert!(sizes.iter().all(|&s| s <= 8));
    }

    #[tokio::test]
    async fn token_budget_bounds_a_batch() {
        let (tx, sizes) = echo_model();
        let b = Batcher::start(limits(64), tx);
        // 30-token inputs: at most 2 fit a 64-token budget.
        let out = b.infer(vec![vec![0; 30]; 5]).await.unwrap();
        assert_eq!(out.len(), 5);
        assert!(sizes.lock().unwrap().iter().all(|&s| s <= 2));
    }

    #[tokio::test]
    async fn a_full_queue_is_overloaded() {
        let (tx, _) = echo_model();
        let b = Batcher::start(limits(4), tx);
        assert!(matches!(
            b.infer(vec![vec![1]; 5]).await,
            Err(ExtractionError::Overloaded)
        ));
        assert_eq!(b.infer(vec![vec![1]; 4]).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn cancelled_inputs_are_skipped() {
        let (tx, sizes) = echo_model();
        let b = Batcher::start(limits(64), tx);
        // One batch runs, one waits in the queue; then a request is
        // enqueued and dropped before the model can take it.
        let spawn = |ids: Vec<Vec<i64>>| {
            let b = b.clone();
            tokio::spawn(async move { b.infer(ids).await })
        };
        let running = spawn(vec![vec![1]]);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let waiting = spawn(vec![vec![1]]);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let cancelled = spawn(vec![vec![9; 3]; 3]);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        cancelled.abort();
        running.await.unwrap().unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(b.infer(vec![vec![2]]).await.unwrap().len(), 1);
        let total: usize = sizes.lock().unwrap().iter().sum();
        assert_eq!(total, 3, "cancelled inputs reached the model");
    }
}
