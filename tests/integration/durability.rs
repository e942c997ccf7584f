//! Durable acknowledgements: a step is answered 201 only after the store's
//! files were synced, a failed sync is a 500 that acknowledges nothing
//! (then or later), and a model of power loss keeps every acknowledged
//! step.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use telos::storage::{DirSync, FileSync, NoSync, SledStore, Store};

use crate::common::{app_from, send};

fn app_over(store: Arc<dyn Store>) -> Router {
    app_from(store, telos::pdp::Pdp::new(None, false))
}

fn catalog() -> Value {
    json!({"tools": [
        {"name": "transfer_money", "description": "Pay an invoice or bill: transfer money to an account",
         "annotations": {"readOnlyHint": false}},
        {"name": "get_invoice", "description": "Look up the details of a document",
         "annotations": {"readOnlyHint": true}}
    ]})
}

async fn open_workflow(app: &Router, user: &str) -> String {
    let (s, b) = send(
        app,
        "POST",
        "/v1/workflows",
        Some(json!({"subject": {"type": "user", "id": user},
                    "prompt": "pay the invoice bill of $120", "catalog": "bank"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["workflow_id"].as_str().unwrap().to_string()
}

async fn report(app: &Router, id: &str, n: usize) -> (StatusCode, Value) {
    send(
        app,
        "POST",
        &format!("/v1/workflows/{id}/steps"),
        Some(json!({"actor": {"type": "agent", "id": "fin"}, "tool": "get_invoice", "arguments": {"n": n}})),
    )
    .await
}

/// A sync that fails while `fail` is set.
#[derive(Default)]
struct FlakySync {
    fail: AtomicBool,
    calls: AtomicUsize,
}

impl FileSync for FlakySync {
    fn sync(&self) -> std::io::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            Err(std::io::Error::other("injected EIO"))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_failed_sync_is_a_500_and_nothing_after_it_is_acknowledged() {
    let sync = Arc::new(FlakySync::default());
    let store = Arc::new(SledStore::temporary_with_sync(sync.clone()).unwrap());
    let app = app_over(store);
    let (s, b) = send(&app, "PUT", "/v1/catalogs/bank", Some(catalog())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = open_workflow(&app, "alice").await;
    let (s, b) = report(&app, &id, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let before = sync.calls.load(Ordering::SeqCst);
    assert!(
        before >= 3,
        "catalog, workflow and step each synced: {before}"
    );

    sync.fail.store(true, Ordering::SeqCst);
    let (s, b) = report(&app, &id, 2).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert_eq!(sync.calls.load(Ordering::SeqCst), before + 1);

    // The device recovers, but what the failed sync covered is unknown:
    // the store refuses to acknowledge anything until it is reopened.
    sync.fail.store(false, Ordering::SeqCst);
    let (s, b) = report(&app, &id, 3).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    let (s, b) = send(
        &app,
        "POST",
        "/v1/workflows",
        Some(json!({"subject": {"type": "user", "id": "bob"},
                    "prompt": "pay the invoice bill of $120", "catalog": "bank"})),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
}

/// Records the disk as it is at each sync point: after the real sync, the
/// whole data directory is copied to `snapshots/<k>`.
struct SnapshotSync {
    inner: DirSync,
    dir: PathBuf,
    snapshots: PathBuf,
    taken: AtomicUsize,
    /// Serialises snapshots (a catalog flush may race the commit task).
    lock: Mutex<()>,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let copied = if kind.is_dir() {
            copy_dir(&entry.path(), &target)
        } else {
            std::fs::copy(entry.path(), &target).map(|_| ())
        };
        match copied {
            // A temporary file sled removed while we copied.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

impl FileSync for SnapshotSync {
    fn sync(&self) -> std::io::Result<()> {
        let _guard = self.lock.lock().unwrap();
        self.inner.sync()?;
        let k = self.taken.load(Ordering::SeqCst);
        copy_dir(&self.dir, &self.snapshots.join(k.to_string()))?;
        self.taken.store(k + 1, Ordering::SeqCst);
        Ok(())
    }
}

/// An acknowledged step: workflow, seq, hash, and the number of snapshots
/// taken when the acknowledgement arrived.
type Acked = (String, u64, String, usize);

/// Power loss, modelled at sync points.
///
/// The store runs on a real directory whose sync is wrapped: after each
/// real `fdatasync`, the directory is copied. A copy is a state the disk
/// can be in after a power loss that follows that sync: everything synced,
/// plus whatever sled had written since (its background flusher keeps
/// writing while we copy, so copies also catch torn log tails). Concurrent
/// clients report steps; each acknowledgement is recorded with the number
/// of snapshots taken when it arrived. Then every snapshot is opened as a
/// store and every step acknowledged before it was taken must be there
/// with the hash it was acknowledged with. Before any sync the disk holds
/// nothing, so a store that acknowledges without syncing fails here.
///
/// What it proves: acknowledgements are ordered after a sync that covers
/// the acknowledged write (no 201 escapes before its `fdatasync`), and
/// sled recovers a complete, consistent store from the files as they stood
/// at those sync points. What it does not prove: that the device honours
/// `fdatasync` (a volatile write cache that lies is out of reach), or that
/// sled recovers from every subset of the unsynced writes a real power
/// loss may keep (a copy keeps exactly the ones that reached the page
/// cache, in order; reordered or partially persisted unsynced blocks are
/// not modelled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_step_survives_a_power_loss_at_any_sync_point() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let snapshots = root.path().join("snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    let sync = Arc::new(SnapshotSync {
        inner: DirSync::new(&dir),
        dir: dir.clone(),
        snapshots: snapshots.clone(),
        taken: AtomicUsize::new(0),
        lock: Mutex::new(()),
    });
    let store = Arc::new(SledStore::open_with_sync(&dir, sync.clone()).unwrap());
    let app = app_over(store);
    let (s, b) = send(&app, "PUT", "/v1/catalogs/bank", Some(catalog())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (app, acked, sync) = (app.clone(), Arc::clone(&acked), Arc::clone(&sync));
        tasks.push(tokio::spawn(async move {
            let id = open_workflow(&app, &format!("user{w}")).await;
            for n in 0..15 {
                let (s, b) = report(&app, &id, n).await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
                let taken = sync.taken.load(Ordering::SeqCst);
                acked.lock().unwrap().push((
                    id.clone(),
                    b["step"].as_u64().unwrap(),
                    b["hash"].as_str().unwrap().to_string(),
                    taken,
                ));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 90);
    let taken = sync.taken.load(Ordering::SeqCst);
    // The disk before the first sync: an empty directory.
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut states = vec![(None, empty)];
    states.extend((0..taken).map(|k| (Some(k), snapshots.join(k.to_string()))));
    let mut checked = 0;
    for (k, path) in states {
        let store = SledStore::open_with_sync(&path, Arc::new(NoSync))
            .unwrap_or_else(|e| panic!("snapshot {k:?} does not open: {e}"));
        for (id, seq, hash, taken_at_ack) in &acked {
            // Acknowledged after sync number `taken_at_ack - 1` returned:
            // every state from that sync on holds it.
            let must_hold = match k {
                None => *taken_at_ack == 0,
                Some(k) => k + 1 >= *taken_at_ack,
            };
            if !must_hold {
                continue;
            }
            let id: uuid::Uuid = id.parse().unwrap();
            let steps = store.steps(&id, *seq, 1).unwrap();
            assert_eq!(
                steps.first().map(|s| (s.seq, s.hash.as_str())),
                Some((*seq, hash.as_str())),
                "step {id}#{seq}, acknowledged after {taken_at_ack} syncs, is missing from the disk as of sync {k:?}"
            );
            checked += 1;
        }
    }
    assert!(taken >= 10, "too few sync points: {taken}");
    assert!(checked >= acked.len(), "checked {checked}");
}
