//! Durable storage. The [`Store`] trait is what the rest of telos sees; the
//! embedded default is [`SledStore`]; [`PgStore`] puts the ledger in
//! PostgreSQL (or CockroachDB, YugabyteDB) so that several replicas share
//! it. Only this module touches sled and the database client.
//!
//! Keys are `tenant \0 name` so every tenant's records scan together and
//! never mix. Values are JSON, except embeddings, which are raw
//! little-endian `f32` rows.

mod group_commit;
mod pg_store;
mod sled_store;
mod sync;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use group_commit::GroupCommit;
pub use pg_store::PgStore;
pub use sled_store::{SledStore, decode_vectors};
pub use sync::{DirSync, FileSync, NoSync};

use crate::catalog::Catalog;
use crate::workflow::{Head, Step, StoredStep, Workflow};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
    /// Writes could not be made durable (a failed sync); the store
    /// refuses writes until it is reopened.
    #[error("not durable: {0}")]
    NotDurable(String),
    /// A stored record does not decode.
    #[error("corrupt record `{key}`: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Another writer appended to the workflow first: its head is no
    /// longer at the step the new one links to (shared stores only). The
    /// step was not stored; judge it again against the chain as it is.
    #[error(
        "the chain of {key} moved: the step links to step {expected}, the head is at step {found}"
    )]
    Conflict {
        /// `tenant/id`.
        key: String,
        /// The seq the step was appended after.
        expected: u64,
        /// The seq of the stored head.
        found: u64,
    },
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError::Db(e.to_string())
    }
}

/// A registered catalog with the embeddings of its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCatalog {
    /// The validated catalog.
    pub catalog: Catalog,
    /// Short sha256 of the model that embedded it.
    pub model_sha256: String,
    /// One embedding per entry, in entry order.
    #[serde(skip)]
    pub vectors: Vec<Vec<f32>>,
}

/// One divergent step in the time index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftEntry {
    /// The workflow.
    pub workflow_id: Uuid,
    /// The step.
    pub seq: u64,
    /// When the step was received, in nanoseconds since the epoch.
    pub at_nanos: u64,
    /// Opaque cursor that continues after this entry.
    pub cursor: String,
}

/// A workflow record as `telos verify` reads it: whatever decodes, and why
/// the rest does not.
#[derive(Debug, Clone)]
pub struct LedgerRecord {
    /// The record's key, for messages (`tenant/id`).
    pub key: String,
    /// The tenant in the key.
    pub tenant: String,
    /// The workflow id in the key, when it is one.
    pub id: Option<Uuid>,
    /// The workflow, or why it cannot be read (also when only the head
    /// exists).
    pub workflow: Result<Workflow, String>,
    /// The head, `None` when there is none, or why it does not decode.
    pub head: Result<Option<Head>, String>,
}

/// The storage operations telos needs. Writes of workflows and steps are
/// applied in memory at once and become durable at the next
/// [`Store::flush`]; callers acknowledge only after it (see
/// [`GroupCommit`]). Catalog writes flush themselves. A flush that returns
/// `Ok` has reached stable storage (`fdatasync`), not only the page cache.
pub trait Store: Send + Sync {
    /// Registers or replaces a catalog; durable when it returns.
    fn put_catalog(
        &self,
        tenant: &str,
        name: &str,
        record: &StoredCatalog,
    ) -> Result<(), StorageError>;
    /// Reads a catalog.
    fn get_catalog(&self, tenant: &str, name: &str) -> Result<Option<StoredCatalog>, StorageError>;
    /// Creates or replaces a workflow record. Creating it also writes its
    /// head (seq 0, the genesis hash) in the same write.
    fn put_workflow(&self, workflow: &Workflow) -> Result<(), StorageError>;
    /// Reads a workflow of a tenant.
    fn get_workflow(&self, tenant: &str, id: &Uuid) -> Result<Option<Workflow>, StorageError>;
    /// Every workflow of every tenant (for verification).
    fn all_workflows(&self) -> Result<Vec<Workflow>, StorageError>;
    /// Appends a step, puts a divergent one in the time index, then moves
    /// the workflow's head to it, in that order: a crash may leave the
    /// step written without its head (never with the head ahead of it).
    /// Writing the same step again completes such an append; it is
    /// idempotent. A [shared](Store::shared) store does all three in one
    /// transaction, only if the head is still at the step this one links
    /// to, and otherwise returns [`StorageError::Conflict`].
    fn append_step(
        &self,
        tenant: &str,
        step_of: &Uuid,
        step: &Step,
        divergent_at_nanos: Option<u64>,
    ) -> Result<(), StorageError>;
    /// The steps of a workflow in order, from `from_seq` (1-based).
    fn steps(
        &self,
        workflow: &Uuid,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Step>, StorageError>;
    /// Divergent steps of a tenant, newest first, after `cursor`.
    fn drift(
        &self,
        tenant: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DriftEntry>, StorageError>;
    /// The head of a workflow's chain.
    fn head(&self, tenant: &str, id: &Uuid) -> Result<Option<Head>, StorageError>;
    /// Every head, as `(tenant, id, head)`, in key order (checkpoints).
    fn heads(&self) -> Result<Vec<(String, Uuid, Head)>, StorageError>;
    /// Every workflow record and every head, each read on its own so one
    /// corrupt record does not hide the others (verification).
    fn ledger(&self) -> Result<Vec<LedgerRecord>, StorageError>;
    /// Every stored step of a workflow in key order, each decoded on its
    /// own (verification).
    fn stored_steps(&self, workflow: &Uuid) -> Result<Vec<StoredStep>, StorageError>;
    /// Replaces the stored checkpoint (an opaque signed record, see
    /// `service::checkpoint`); durable at the next flush.
    fn put_checkpoint(&self, record: &[u8]) -> Result<(), StorageError>;
    /// The stored checkpoint, if any.
    fn checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError>;
    /// Makes every write so far durable (synced to the device).
    fn flush(&self) -> Result<(), StorageError>;
    /// Whether other processes may write to this store too (several
    /// replicas on one database). A shared store's `append_step` is a
    /// compare-and-set on the head and may return
    /// [`StorageError::Conflict`]; its calls are network round trips, so
    /// callers run them off the async runtime's threads.
    fn shared(&self) -> bool {
        false
    }
}

/// `tenant \0 name` as a key.
pub(crate) fn scoped_key(tenant: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + name.len() + 1);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}
