//! Signed checkpoints of the ledger. A checkpoint lists the head (seq and
//! hash) of every workflow, sorted by workflow id, with a SHA-256 digest
//! over them signed with an Ed25519 key the server holds
//! (`--checkpoint-key`). `telos verify --checkpoints <public key>` checks
//! the stored checkpoint's signature offline and then every head it lists
//! against the ledger as it is now: a head that moved backwards, a step
//! that was rewritten, or a workflow that disappeared since the checkpoint
//! is named. Someone who can write the disk but does not hold the key can
//! rewrite whole chains consistently (which `verify` alone cannot see) but
//! cannot sign a checkpoint that agrees with the rewrite.
//!
//! Keys are files holding 64 hex digits: the 32-byte Ed25519 seed (secret)
//! or the 32-byte public key (`telos keygen` writes both).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

use crate::storage::{StorageError, Store};
use crate::workflow::now_rfc3339;

/// Errors of checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A key file is unusable.
    #[error("key file `{path}`: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The stored checkpoint is missing, undecodable or badly signed.
    #[error("checkpoint: {0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One workflow's head in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHead {
    /// The workflow's tenant.
    pub tenant: String,
    /// The workflow id.
    pub id: uuid::Uuid,
    /// Its head's seq.
    pub seq: u64,
    /// Its head's hash.
    pub hash: String,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// When it was made (RFC 3339).
    pub at: String,
    /// Every head, sorted by workflow id (then tenant).
    pub heads: Vec<CheckpointHead>,
    /// SHA-256 (hex) over `at` and the heads (see [`Checkpoint::digest`]).
    pub digest: String,
    /// The signer's public key (hex).
    pub public_key: String,
    /// Ed25519 signature of the digest's bytes (hex).
    pub signature: String,
}

impl Checkpoint {
    /// The digest: SHA-256 over `telos-checkpoint-v1\0`, `at`, `\0`, then
    /// for each head its tenant, `\0`, id (16 bytes), seq (8 bytes,
    /// big-endian), hash and `\n`.
    pub fn digest(at: &str, heads: &[CheckpointHead]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"telos-checkpoint-v1\0");
        h.update(at.as_bytes());
        h.update(b"\0");
        for head in heads {
            h.update(head.tenant.as_bytes());
            h.update(b"\0");
            h.update(head.id.as_bytes());
            h.update(head.seq.to_be_bytes());
            h.update(head.hash.as_bytes());
            h.update(b"\n");
        }
        h.finalize().into()
    }
}

fn read_hex32(path: &Path) -> Result<[u8; 32], CheckpointError> {
    let err = |reason: String| CheckpointError::Key {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let bytes = hex::decode(text.trim()).map_err(|e| err(format!("not hex: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| err("expected 64 hex digits".into()))
}

/// Reads a signing key (hex seed) from `path`.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, CheckpointError> {
    Ok(SigningKey::from_bytes(&read_hex32(path)?))
}

/// Reads a public key (hex) from `path`.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, CheckpointError> {
    VerifyingKey::from_bytes(&read_hex32(path)?).map_err(|e| CheckpointError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// A new signing key from the operating system's random source.
pub fn generate_key() -> Result<SigningKey, CheckpointError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| CheckpointError::Key {
        path: "(random source)".into(),
        reason: e.to_string(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The heads of `store` as a checkpoint's list (sorted by id, then tenant).
pub fn current_heads(store: &dyn Store) -> Result<Vec<CheckpointHead>, CheckpointError> {
    let mut heads: Vec<CheckpointHead> = store
        .heads()?
        .into_iter()
        .map(|(tenant, id, h)| CheckpointHead {
            tenant,
            id,
            seq: h.seq,
            hash: h.hash,
        })
        .collect();
    heads.sort_by(|a, b| (a.id, &a.tenant).cmp(&(b.id, &b.tenant)));
    Ok(heads)
}

/// Signs the current heads of `store` and stores the checkpoint (durable
/// at the store's next flush). Returns `None` without writing when the
/// heads are those of the stored checkpoint.
pub fn checkpoint(
    store: &dyn Store,
    key: &SigningKey,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let heads = current_heads(store)?;
    if let Some(bytes) = store.checkpoint()?
        && let Ok(prev) = serde_json::from_slice::<Checkpoint>(&bytes)
        && prev.heads == heads
        && prev.public_key == hex::encode(key.verifying_key().as_bytes())
    {
        return Ok(None);
    }
    let at = now_rfc3339();
    let digest = Checkpoint::digest(&at, &heads);
    let cp = Checkpoint {
        at,
        heads,
        digest: hex::encode(digest),
        public_key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(key.sign(&digest).to_bytes()),
    };
    let bytes = serde_json::to_vec(&cp).map_err(|e| CheckpointError::Invalid(e.to_string()))?;
    store.put_checkpoint(&bytes)?;
    Ok(Some(cp))
}

/// A head of the checkpoint the ledger no longer agrees with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// `tenant/id`.
    pub key: String,
    /// What changed.
    pub reason: String,
}

/// Checks the stored checkpoint's signature with `public` and every head
/// it lists against the ledger now. Returns the checkpoint and the heads
/// that moved backwards or changed; fails when there is no checkpoint or
/// it is not validly signed by `public`.
pub fn verify_checkpoint(
    store: &dyn Store,
    public: &VerifyingKey,
) -> Result<(Checkpoint, Vec<Moved>), CheckpointError> {
    let bytes = store
        .checkpoint()?
        .ok_or_else(|| CheckpointError::Invalid("the data directory holds no checkpoint".into()))?;
    let cp: Checkpoint = serde_json::from_slice(&bytes)
        .map_err(|e| CheckpointError::Invalid(format!("does not decode: {e}")))?;
    let digest = Checkpoint::digest(&cp.at, &cp.heads);
    if hex::encode(digest) != cp.digest {
        return Err(CheckpointError::Invalid(
            "its digest does not match its heads".into(),
        ));
    }
    let signature = hex::decode(&cp.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| CheckpointError::Invalid("the signature is malformed".into()))?;
    public.verify(&digest, &signature).map_err(|_| {
        CheckpointError::Invalid("the signature does not verify with the given public key".into())
    })?;
    let mut moved = Vec::new();
    for h in &cp.heads {
        let key = format!("{}/{}", h.tenant, h.id);
        let now = store.head(&h.tenant, &h.id)?;
        let reason = match now {
            None => Some("the workflow's head is gone: the workflow was removed".to_string()),
            Some(now) if now.seq < h.seq => Some(format!(
                "the head moved backwards from step {} to step {}",
                h.seq, now.seq
            )),
            Some(now) if now.seq == h.seq && now.hash != h.hash => Some(format!(
                "the head at step {} changed since the checkpoint",
                h.seq
            )),
            Some(now) if now.seq == h.seq => None,
            Some(_) => {
                // The chain grew: the step the checkpoint saw must still be there.
                let at_cp = if h.seq == 0 {
                    store.get_workflow(&h.tenant, &h.id)?.map(|w| w.genesis)
                } else {
                    store
                        .steps(&h.id, h.seq, 1)
                        .ok()
                        .and_then(|s| s.into_iter().next())
                        .filter(|s| s.seq == h.seq)
                        .map(|s| s.hash)
                };
                (at_cp.as_deref() != Some(h.hash.as_str())).then(|| {
                    format!(
                        "step {} changed since the checkpoint (the chain was rewritten)",
                        h.seq
                    )
                })
            }
        };
        if let Some(reason) = reason {
            moved.push(Moved { key, reason });
        }
    }
    Ok((cp, moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support;
    use crate::storage::SledStore;
    use crate::workflow::{Step, Verdict, Workflow};

    fn workflow() -> Workflow {
        test_support::workflow(1, "t", serde_json::json!({}))
    }

    fn step(seq: u64, prev: &str, name: &str) -> Step {
        test_support::step(seq, prev, name, Verdict::Allowed)
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_missing_or_altered_checkpoint_is_refused() {
        let store = SledStore::temporary().unwrap();
        let public = key().verifying_key();
        assert!(matches!(
            verify_checkpoint(&store, &public),
            Err(CheckpointError::Invalid(m)) if m.contains("no checkpoint")
        ));
        store.put_workflow(&workflow()).unwrap();
        let cp = checkpoint(&store, &key()).unwrap().unwrap();
        assert!(verify_checkpoint(&store, &public).unwrap().1.is_empty());
        // A head edited inside the checkpoint no longer matches its digest.
        let mut forged = cp.clone();
        forged.heads[0].seq = 9;
        store
            .put_checkpoint(&serde_json::to_vec(&forged).unwrap())
            .unwrap();
        assert!(verify_checkpoint(&store, &public).is_err());
        // Re-digested without the key: the signature fails.
        forged.digest = hex::encode(Checkpoint::digest(&forged.at, &forged.heads));
        store
            .put_checkpoint(&serde_json::to_vec(&forged).unwrap())
            .unwrap();
        assert!(matches!(
            verify_checkpoint(&store, &public),
            Err(CheckpointError::Invalid(m)) if m.contains("signature")
        ));
    }

    #[test]
    fn a_step_rewritten_below_a_grown_head_is_named() {
        let store = SledStore::temporary().unwrap();
        let w = workflow();
        store.put_workflow(&w).unwrap();
        let s1 = step(1, &w.genesis, "a");
        store.append_step("t", &w.id, &s1, None).unwrap();
        checkpoint(&store, &key()).unwrap().unwrap();
        // Rewrite step 1 and grow the chain past the checkpoint's head.
        let r1 = step(1, &w.genesis, "b");
        let r2 = step(2, &r1.hash, "c");
        store.append_step("t", &w.id, &r1, None).unwrap();
        store.append_step("t", &w.id, &r2, None).unwrap();
        let (_, moved) = verify_checkpoint(&store, &key().verifying_key()).unwrap();
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert!(moved[0].reason.contains("step 1 changed"), "{moved:?}");
        // Growing honestly is not a finding.
        checkpoint(&store, &key()).unwrap().unwrap();
        store
            .append_step("t", &w.id, &step(3, &r2.hash, "d"), None)
            .unwrap();
        assert!(
            verify_checkpoint(&store, &key().verifying_key())
                .unwrap()
                .1
                .is_empty()
        );
    }
}
