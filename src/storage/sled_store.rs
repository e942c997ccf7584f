//! The sled implementation of [`Store`].

use sled::Transactional;
use std::path::Path;

use super::{StorageError, Store, StoredCatalog, scoped_key};

/// Trees of the sled database.
const CATALOGS: &str = "catalogs";
const EMBEDDINGS: &str = "catalog_embeddings";

/// Storage in an embedded sled database.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    catalogs: sled::Tree,
    embeddings: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Self {
            catalogs: db.open_tree(CATALOGS)?,
            embeddings: db.open_tree(EMBEDDINGS)?,
            db,
        })
    }

    /// Opens a throw-away database that lives in memory (tests, benches).
    pub fn temporary() -> Result<Self, StorageError> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Self {
            catalogs: db.open_tree(CATALOGS)?,
            embeddings: db.open_tree(EMBEDDINGS)?,
            db,
        })
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }
}

fn encode_vectors(vectors: &[Vec<f32>]) -> Vec<u8> {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(8 + vectors.len() * dim * 4);
    out.extend_from_slice(&(vectors.len() as u32).to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    for v in vectors {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

fn decode_vectors(key: &str, bytes: &[u8]) -> Result<Vec<Vec<f32>>, StorageError> {
    let corrupt = |reason: &str| StorageError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let header = |at: usize| -> Result<usize, StorageError> {
        let b: [u8; 4] = bytes
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("short header"))?;
        Ok(u32::from_le_bytes(b) as usize)
    };
    let (n, dim) = (header(0)?, header(4)?);
    let body = &bytes[8..];
    if body.len() != n * dim * 4 {
        return Err(corrupt("length does not match the header"));
    }
    Ok(body
        .chunks_exact(dim.max(1) * 4)
        .take(n)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect())
}

impl Store for SledStore {
    fn put_catalog(
        &self,
        tenant: &str,
        name: &str,
        record: &StoredCatalog,
    ) -> Result<(), StorageError> {
        let key = scoped_key(tenant, name);
        let json = serde_json::to_vec(record).map_err(|e| StorageError::Db(e.to_string()))?;
        let vectors = encode_vectors(&record.vectors);
        (&self.catalogs, &self.embeddings)
            .transaction(|(c, e)| {
                c.insert(key.as_slice(), json.as_slice())?;
                e.insert(key.as_slice(), vectors.as_slice())?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                StorageError::Db(format!("{e:?}"))
            })?;
        self.db.flush()?;
        Ok(())
    }

    fn get_catalog(&self, tenant: &str, name: &str) -> Result<Option<StoredCatalog>, StorageError> {
        let key = scoped_key(tenant, name);
        let shown = format!("catalogs/{tenant}/{name}");
        let Some(json) = self.catalogs.get(&key)? else {
            return Ok(None);
        };
        let mut record: StoredCatalog =
            serde_json::from_slice(&json).map_err(|e| StorageError::Corrupt {
                key: shown.clone(),
                reason: e.to_string(),
            })?;
        if let Some(bytes) = self.embeddings.get(&key)? {
            record.vectors = decode_vectors(&shown, &bytes)?;
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Limits, parse_catalog};
    use serde_json::json;

    fn record() -> StoredCatalog {
        StoredCatalog {
            catalog: parse_catalog(
                &json!({"tools": [{"name": "a"}, {"name": "b"}]}),
                Limits::default(),
            )
            .unwrap(),
            model_sha256: "abc".into(),
            vectors: vec![vec![0.5, -1.0, 2.0], vec![1.0, 0.0, 0.25]],
        }
    }

    #[test]
    fn catalogs_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.put_catalog("acme", "mail", &record()).unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.get_catalog("acme", "mail").unwrap(), Some(record()));
        assert_eq!(s.get_catalog("other", "mail").unwrap(), None);
    }

    #[test]
    fn corrupt_vectors_are_reported() {
        assert!(decode_vectors("k", &[1, 0, 0, 0, 2, 0, 0, 0, 9]).is_err());
        assert!(decode_vectors("k", &[1]).is_err());
        assert_eq!(
            decode_vectors("k", &encode_vectors(&[])).unwrap(),
            Vec::<Vec<f32>>::new()
        );
    }
}
