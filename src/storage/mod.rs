//! Durable storage. The [`Store`] trait is what the rest of telos sees; the
//! embedded default is [`SledStore`]. Only this module touches sled.
//!
//! Keys are `tenant \0 name` so every tenant's records scan together and
//! never mix. Values are JSON, except embeddings, which are raw
//! little-endian `f32` rows.

mod sled_store;

use serde::{Deserialize, Serialize};

pub use sled_store::SledStore;

use crate::catalog::Catalog;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
    /// A stored record does not decode.
    #[error("corrupt record `{key}`: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What is wrong.
        reason: String,
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

/// The storage operations telos needs.
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
}

/// `tenant \0 name` as a key.
pub(crate) fn scoped_key(tenant: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + name.len() + 1);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}
