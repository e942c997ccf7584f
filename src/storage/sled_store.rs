//! The sled implementation of [`Store`].

use sled::Transactional;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use uuid::Uuid;

use super::sync::{DirSync, FileSync, NoSync};
use super::{DriftEntry, LedgerRecord, StorageError, Store, StoredCatalog, scoped_key};
use crate::workflow::{Head, Step, StoredStep, Workflow};

/// Trees of the sled database.
const CATALOGS: &str = "catalogs";
const EMBEDDINGS: &str = "catalog_embeddings";
const WORKFLOWS: &str = "workflows";
const STEPS: &str = "steps";
const DRIFT: &str = "drift_by_time";
const HEADS: &str = "heads";
const META: &str = "meta";
const CHECKPOINTS: &str = "checkpoints";
/// Key of the latest checkpoint in `checkpoints`.
const LATEST: &[u8] = b"latest";
/// Key in `meta` of the ledger format of the directory.
const LEDGER_FORMAT: &[u8] = b"ledger_format";

/// Storage in an embedded sled database.
///
/// Trees and keys (all integers big-endian, so keys sort in order):
/// - `workflows`: `tenant \0 id(16)` → workflow JSON
/// - `steps`: `id(16) seq(8)` → step JSON (a workflow's steps scan in order)
/// - `drift_by_time`: `tenant \0 (u64::MAX − nanos)(8) id(16) seq(8)` → ``
///   (divergent steps, newest first)
/// - `heads`: `tenant \0 id(16)` → head JSON (`{"seq", "hash"}`), written
///   after each step and its drift key (see [`Store::append_step`]). It is a record of its own, not
///   a field of the workflow record, because the workflow record carries
///   the frozen catalog (often many kilobytes) and would otherwise be
///   rewritten with every step.
/// - `meta`: `ledger_format` → the format as a decimal string (`2`)
/// - `checkpoints`: `latest` → the latest signed checkpoint (JSON)
/// - `catalogs`, `catalog_embeddings`: `tenant \0 name`
///
/// [`Store::flush`] is sled's flush followed by a [`FileSync`] of the
/// directory. Once a sync fails the store refuses every further write and
/// flush until it is opened again: after a failed `fsync` Linux may have
/// dropped the dirty pages and marked them clean, so a later sync that
/// succeeds proves nothing about the earlier writes.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    sync: Arc<dyn FileSync>,
    failed: Arc<AtomicBool>,
    catalogs: sled::Tree,
    embeddings: sled::Tree,
    workflows: sled::Tree,
    steps: sled::Tree,
    drift: sled::Tree,
    heads: sled::Tree,
    meta: sled::Tree,
    checkpoints: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`. A database just closed by
    /// this process may still be locked by sled's background flusher for a
    /// moment, so a lock conflict is retried for up to two seconds.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_sync(dir, Arc::new(DirSync::new(dir)))
    }

    /// Opens the database in `dir` with `sync` run after every flush
    /// (tests inject faults or record sync points with it). The directory
    /// is synced once on open, so the files sled created are durable.
    pub fn open_with_sync(dir: &Path, sync: Arc<dyn FileSync>) -> Result<Self, StorageError> {
        let mut attempt = 0;
        loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => {
                    let store = Self::with(db, Arc::clone(&sync))?;
                    store.migrate()?;
                    store.flush()?;
                    return Ok(store);
                }
                Err(sled::Error::Io(e)) if attempt < 40 && e.to_string().contains("lock") => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Opens a throw-away database that lives in memory (tests, benches).
    pub fn temporary() -> Result<Self, StorageError> {
        Self::temporary_with_sync(Arc::new(NoSync))
    }

    /// A throw-away database whose flushes run `sync` (fault injection).
    pub fn temporary_with_sync(sync: Arc<dyn FileSync>) -> Result<Self, StorageError> {
        Self::with(sled::Config::new().temporary(true).open()?, sync)
    }

    fn with(db: sled::Db, sync: Arc<dyn FileSync>) -> Result<Self, StorageError> {
        Ok(Self {
            sync,
            failed: Arc::new(AtomicBool::new(false)),
            catalogs: db.open_tree(CATALOGS)?,
            embeddings: db.open_tree(EMBEDDINGS)?,
            workflows: db.open_tree(WORKFLOWS)?,
            steps: db.open_tree(STEPS)?,
            drift: db.open_tree(DRIFT)?,
            heads: db.open_tree(HEADS)?,
            meta: db.open_tree(META)?,
            checkpoints: db.open_tree(CHECKPOINTS)?,
            db,
        })
    }

    /// Raw insert into the steps tree (benchmarks compare against it).
    pub fn raw_insert(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.steps.insert(key, value)?;
        Ok(())
    }

    /// Every key and value of a tree (`workflows`, `steps`, `heads`,
    /// `drift_by_time`, ...), bypassing every check: for tests that tamper
    /// with a data directory as an attacker with disk access would.
    pub fn raw_entries(&self, tree: &str) -> Result<Vec<RawEntry>, StorageError> {
        self.db
            .open_tree(tree)?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) a raw entry of a tree, bypassing
    /// every check (tampering tests).
    pub fn raw_set(
        &self,
        tree: &str,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StorageError> {
        let t = self.db.open_tree(tree)?;
        match value {
            Some(v) => t.insert(key, v)?,
            None => t.remove(key)?,
        };
        Ok(())
    }

    /// Brings a directory written in ledger format 1 (no head records) to
    /// format 2: each workflow without a head gets one at its last stored
    /// step. This adopts the chains as they stand: a truncation made before
    /// the migration cannot be detected afterwards. Format-1 workflow
    /// records keep their format-1 genesis (`Workflow::ledger` is 1).
    fn migrate(&self) -> Result<(), StorageError> {
        if self.meta.get(LEDGER_FORMAT)?.is_some() {
            return Ok(());
        }
        let mut migrated = 0usize;
        for kv in self.workflows.iter() {
            let (key, value) = kv?;
            if self.heads.get(&key)?.is_some() {
                continue;
            }
            let Ok(wf) = serde_json::from_slice::<Workflow>(&value) else {
                continue; // `telos verify` names it
            };
            let last = self
                .steps
                .scan_prefix(wf.id.as_bytes())
                .next_back()
                .transpose()?;
            let head = match last {
                None => Head {
                    seq: 0,
                    hash: wf.genesis.clone(),
                },
                Some((_, v)) => match serde_json::from_slice::<Step>(&v) {
                    Ok(step) => Head {
                        seq: step.seq,
                        hash: step.hash,
                    },
                    Err(_) => continue,
                },
            };
            let json = serde_json::to_vec(&head).map_err(|e| StorageError::Db(e.to_string()))?;
            self.heads.insert(key, json)?;
            migrated += 1;
        }
        if migrated > 0 {
            tracing::warn!(
                migrated,
                "ledger format 1 migrated to 2: heads recorded at each workflow's last stored step"
            );
        }
        self.meta.insert(LEDGER_FORMAT, b"2".as_slice())?;
        Ok(())
    }

    /// Fails once a sync has failed (see the type's documentation).
    fn writable(&self) -> Result<(), StorageError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StorageError::NotDurable(
                "an earlier sync failed; writes are refused until the store is reopened".into(),
            ));
        }
        Ok(())
    }
}

/// A raw key and value.
pub type RawEntry = (Vec<u8>, Vec<u8>);

fn workflow_key(tenant: &str, id: &Uuid) -> Vec<u8> {
    let mut key = scoped_key(tenant, "");
    key.extend_from_slice(id.as_bytes());
    key
}

/// `tenant \0 id(16)` back into its parts.
fn split_workflow_key(key: &[u8]) -> Option<(String, Uuid)> {
    let cut = key.len().checked_sub(17)?;
    if key[cut] != 0 {
        return None;
    }
    let tenant = std::str::from_utf8(&key[..cut]).ok()?.to_string();
    let id = Uuid::from_slice(&key[cut + 1..]).ok()?;
    Some((tenant, id))
}

fn step_key(id: &Uuid, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(id.as_bytes());
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn corrupt(key: String, e: impl ToString) -> StorageError {
    StorageError::Corrupt {
        key,
        reason: e.to_string(),
    }
}

pub(crate) fn encode_vectors(vectors: &[Vec<f32>]) -> Vec<u8> {
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

/// Decodes an embeddings record (`n`, `dim`, then `n × dim` little-endian `f32`).
pub fn decode_vectors(key: &str, bytes: &[u8]) -> Result<Vec<Vec<f32>>, StorageError> {
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
    let body = bytes.get(8..).unwrap_or_default();
    // A header from a damaged record can claim more than memory holds: the
    // size is checked without overflow before anything is read.
    let expected = n.checked_mul(dim).and_then(|x| x.checked_mul(4));
    if expected != Some(body.len()) {
        return Err(corrupt("length does not match the header"));
    }
    if n > 0 && dim == 0 {
        return Err(corrupt("zero-dimensional vectors"));
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
        self.writable()?;
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
        self.flush()
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

    fn put_workflow(&self, workflow: &Workflow) -> Result<(), StorageError> {
        self.writable()?;
        let key = workflow_key(&workflow.tenant, &workflow.id);
        let json = serde_json::to_vec(workflow).map_err(|e| StorageError::Db(e.to_string()))?;
        let head = serde_json::to_vec(&Head {
            seq: 0,
            hash: workflow.genesis.clone(),
        })
        .map_err(|e| StorageError::Db(e.to_string()))?;
        (&self.workflows, &self.heads)
            .transaction(|(w, h)| {
                w.insert(key.as_slice(), json.as_slice())?;
                if h.get(key.as_slice())?.is_none() {
                    h.insert(key.as_slice(), head.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                StorageError::Db(format!("{e:?}"))
            })?;
        Ok(())
    }

    fn get_workflow(&self, tenant: &str, id: &Uuid) -> Result<Option<Workflow>, StorageError> {
        let key = workflow_key(tenant, id);
        match self.workflows.get(&key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt(format!("workflows/{tenant}/{id}"), e)),
        }
    }

    fn all_workflows(&self) -> Result<Vec<Workflow>, StorageError> {
        self.workflows
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                serde_json::from_slice(&v)
                    .map_err(|e| corrupt(format!("workflows/{}", hex::encode(&k)), e))
            })
            .collect()
    }

    fn append_step(
        &self,
        tenant: &str,
        step_of: &Uuid,
        step: &Step,
        divergent_at_nanos: Option<u64>,
    ) -> Result<(), StorageError> {
        self.writable()?;
        let key = step_key(step_of, step.seq);
        let json = serde_json::to_vec(step).map_err(|e| StorageError::Db(e.to_string()))?;
        let wkey = workflow_key(tenant, step_of);
        let head = serde_json::to_vec(&Head {
            seq: step.seq,
            hash: step.hash.clone(),
        })
        .map_err(|e| StorageError::Db(e.to_string()))?;
        let dkey = divergent_at_nanos.map(|nanos| {
            let mut dkey = scoped_key(tenant, "");
            dkey.extend_from_slice(&(u64::MAX - nanos).to_be_bytes());
            dkey.extend_from_slice(&key);
            dkey
        });
        // Three plain inserts in this order, not a transaction: a sled
        // transaction (like `apply_batch`) takes sled's global write lock
        // and serialises every writer of the store, which cost durable
        // steps 2.7x in throughput. Order is enough: sled recovers a
        // prefix of its log (the stable LSN only advances over contiguous
        // synced ranges), so after a crash the head is never ahead of its
        // step, and a step without its head is an append the crash cut
        // short before the group sync, never acknowledged. `ChainCheck`
        // accepts exactly that one step and the tracker completes it.
        self.steps.insert(key, json)?;
        if let Some(dkey) = dkey {
            self.drift.insert(dkey, &[] as &[u8])?;
        }
        self.heads.insert(wkey, head)?;
        Ok(())
    }

    fn steps(
        &self,
        workflow: &Uuid,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Step>, StorageError> {
        let start = step_key(workflow, from_seq);
        let end = step_key(workflow, u64::MAX);
        self.steps
            .range(start..=end)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                serde_json::from_slice(&v)
                    .map_err(|e| corrupt(format!("steps/{}", hex::encode(&k)), e))
            })
            .collect()
    }

    fn drift(
        &self,
        tenant: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DriftEntry>, StorageError> {
        let prefix = scoped_key(tenant, "");
        let start = match cursor {
            Some(c) => {
                let mut k = prefix.clone();
                let bytes = hex::decode(c).map_err(|e| corrupt("cursor".into(), e))?;
                k.extend_from_slice(&bytes);
                k.push(0); // strictly after the cursor's entry
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for kv in self.drift.range(start..) {
            let (k, _) = kv?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let rest = &k[prefix.len()..];
            if rest.len() != 8 + 24 {
                return Err(corrupt("drift_by_time".into(), "bad key length"));
            }
            let inv = u64::from_be_bytes(
                rest[..8]
                    .try_into()
                    .map_err(|e| corrupt("drift".into(), e))?,
            );
            let id = Uuid::from_slice(&rest[8..24]).map_err(|e| corrupt("drift".into(), e))?;
            let seq = u64::from_be_bytes(
                rest[24..]
                    .try_into()
                    .map_err(|e| corrupt("drift".into(), e))?,
            );
            out.push(DriftEntry {
                workflow_id: id,
                seq,
                at_nanos: u64::MAX - inv,
                cursor: hex::encode(rest),
            });
        }
        Ok(out)
    }

    fn head(&self, tenant: &str, id: &Uuid) -> Result<Option<Head>, StorageError> {
        match self.heads.get(workflow_key(tenant, id))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt(format!("heads/{tenant}/{id}"), e)),
        }
    }

    fn heads(&self) -> Result<Vec<(String, Uuid, Head)>, StorageError> {
        self.heads
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let shown = format!("heads/{}", hex::encode(&k));
                let (tenant, id) =
                    split_workflow_key(&k).ok_or_else(|| corrupt(shown.clone(), "bad key"))?;
                let head = serde_json::from_slice(&v).map_err(|e| corrupt(shown, e))?;
                Ok((tenant, id, head))
            })
            .collect()
    }

    fn ledger(&self) -> Result<Vec<LedgerRecord>, StorageError> {
        let mut out = Vec::new();
        for kv in self.workflows.iter() {
            let (k, v) = kv?;
            let (tenant, id) = match split_workflow_key(&k) {
                Some((t, i)) => (t, Some(i)),
                None => (String::from_utf8_lossy(&k).into_owned(), None),
            };
            let key = match id {
                Some(i) => format!("{tenant}/{i}"),
                None => format!("workflows/{}", hex::encode(&k)),
            };
            let workflow = serde_json::from_slice::<Workflow>(&v)
                .map_err(|e| format!("the workflow record does not decode: {e}"));
            let head = match self.heads.get(&k)? {
                None => Ok(None),
                Some(h) => serde_json::from_slice::<Head>(&h)
                    .map(Some)
                    .map_err(|e| format!("the head record does not decode: {e}")),
            };
            out.push(LedgerRecord {
                key,
                tenant,
                id,
                workflow,
                head,
            });
        }
        for kv in self.heads.iter() {
            let (k, _) = kv?;
            if self.workflows.contains_key(&k)? {
                continue;
            }
            let (tenant, id) = match split_workflow_key(&k) {
                Some((t, i)) => (t, Some(i)),
                None => (String::from_utf8_lossy(&k).into_owned(), None),
            };
            out.push(LedgerRecord {
                key: match id {
                    Some(i) => format!("{tenant}/{i}"),
                    None => format!("heads/{}", hex::encode(&k)),
                },
                tenant,
                id,
                workflow: Err("a head exists but the workflow record was removed".into()),
                head: Ok(None),
            });
        }
        Ok(out)
    }

    fn stored_steps(&self, workflow: &Uuid) -> Result<Vec<StoredStep>, StorageError> {
        self.steps
            .scan_prefix(workflow.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                let seq = k
                    .get(16..24)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                Ok((
                    seq,
                    serde_json::from_slice::<Step>(&v).map_err(|e| e.to_string()),
                ))
            })
            .collect()
    }

    fn put_checkpoint(&self, record: &[u8]) -> Result<(), StorageError> {
        self.writable()?;
        self.checkpoints.insert(LATEST, record)?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.checkpoints.get(LATEST)?.map(|v| v.to_vec()))
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.writable()?;
        self.db.flush()?;
        if let Err(e) = self.sync.sync() {
            self.failed.store(true, Ordering::Release);
            return Err(StorageError::NotDurable(format!("sync failed: {e}")));
        }
        Ok(())
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
        // Found by fuzzing: a header whose size overflows is corrupt, not a panic.
        let mut huge = vec![0xbe; 8];
        huge.extend_from_slice(b"AAAAAAAA");
        assert!(decode_vectors("k", &huge).is_err());
        assert!(decode_vectors("k", &[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(
            decode_vectors("k", &encode_vectors(&[])).unwrap(),
            Vec::<Vec<f32>>::new()
        );
    }
}
