//! The PostgreSQL implementation of [`Store`], for several telos replicas
//! sharing one ledger.
//!
//! **Threads, not async.** [`Store`] is synchronous and is called from
//! async code (the server's multi-thread runtime, current-thread runtimes
//! in tests). The synchronous `postgres` client drives its connection with
//! a private tokio runtime and panics when called on a thread that is
//! already inside one, so each connection lives on a dedicated OS thread
//! that owns its `postgres::Client` (and its prepared statements). Callers
//! hand a job to the pool over a channel and block on a reply channel,
//! which is legal on any thread, in any runtime flavour; a thread blocks
//! only itself while the database answers. tokio-postgres on a runtime of
//! our own would need the same hand-off (blocking on a future from inside
//! a runtime panics too) plus a connection pool crate; one thread per
//! connection needs neither, and a connection is never shared by two
//! transactions.
//!
//! **Retries.** A job is retried on a serialization failure or deadlock
//! (SQLSTATE 40001, 40P01: what CockroachDB and YugabyteDB return under
//! contention) and, after reconnecting, on a lost connection or a server
//! that is shutting down, starting or read-only (a standby before its
//! promotion); backoff doubles from 20 ms to 500 ms, 30 attempts (about
//! 14 s). Every write is idempotent so that a retry after a commit whose
//! answer was lost does no harm: upserts, and a step append that finds its
//! own step already stored succeeds.
//!
//! **Durability.** Each write commits before it returns (PostgreSQL's
//! default `synchronous_commit = on`), so [`Store::flush`] has nothing left
//! to do and a step is acknowledged only after its commit.
//!
//! **SQL subset.** No advisory locks, no LISTEN/NOTIFY, no SERIAL or
//! sequences; `INSERT ... ON CONFLICT`, data-modifying CTEs and `BYTEA`,
//! `UUID`, `BIGINT`, `TEXT` columns only, which CockroachDB and YugabyteDB
//! accept. Migrations are embedded, versioned in `telos_schema`, and
//! applied at start; replicas starting together serialise on the version
//! row's primary key.

use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

use super::sled_store::{decode_vectors, encode_vectors};
use super::{DriftEntry, LedgerRecord, StorageError, Store, StoredCatalog};
use crate::workflow::{Head, Step, StoredStep, Workflow};

/// Embedded schema migrations: (version, name, SQL), applied in order.
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "ledger", include_str!("pg_migrations/0001_ledger.sql"))];

/// Attempts of one job before its error is returned.
const ATTEMPTS: u32 = 30;

/// A job run on a connection thread; `true` when this is its last attempt.
/// It answers its caller itself and returns the error when it wants to be
/// retried.
type Job = Box<dyn FnMut(&mut Conn, bool) -> Option<postgres::Error> + Send>;

/// Why a job failed: the database (maybe retried) or a final store error.
enum Fail {
    Pg(postgres::Error),
    Store(StorageError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

/// One connection, opened lazily and again after it is lost, with its
/// prepared statements.
struct Conn {
    config: postgres::Config,
    client: Option<Client>,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client, postgres::Error> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.reset();
        }
        let client = match self.client.take() {
            Some(c) => c,
            None => self.config.connect(NoTls)?,
        };
        Ok(self.client.insert(client))
    }

    fn reset(&mut self) {
        self.client = None;
        self.statements.clear();
    }

    /// `sql` prepared once per connection.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client()?.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let s = self.prepared(sql)?;
        self.client()?.query(&s, params)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.prepared(sql)?;
        self.client()?.execute(&s, params)
    }
}

/// What to do about a failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Retry {
    /// Final.
    No,
    /// Run again on the same connection (serialization failure).
    Again,
    /// Reconnect, then run again.
    Reconnect,
}

fn classify(e: &postgres::Error) -> Retry {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            Retry::Again
        }
        Some(c)
            if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::READ_ONLY_SQL_TRANSACTION
                || *c == SqlState::CONNECTION_FAILURE
                || *c == SqlState::CONNECTION_EXCEPTION =>
        {
            Retry::Reconnect
        }
        Some(_) => Retry::No,
        // No SQLSTATE: the connection (I/O, a closed socket, a timeout).
        None => Retry::Reconnect,
    }
}

/// A message that names the server's error, not only "db error".
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn db(e: impl ToString) -> StorageError {
    StorageError::Db(e.to_string())
}

fn corrupt(key: String, e: impl ToString) -> StorageError {
    StorageError::Corrupt {
        key,
        reason: e.to_string(),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(key: &str, n: i64) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(|_| corrupt(key.to_string(), format!("negative number {n}")))
}

/// Storage in a PostgreSQL database (or one that speaks its protocol and
/// SQL: CockroachDB, YugabyteDB), shared by every replica that opens it.
///
/// Tables (see `pg_migrations/`): `telos_workflows`, `telos_heads`,
/// `telos_steps`, `telos_drift`, `telos_catalogs`, `telos_checkpoints`,
/// with the same JSON values as [`super::SledStore`]'s trees.
///
/// A step is appended by one statement that moves the workflow's head with
/// a compare-and-set on the previous step's (seq, hash) and inserts the
/// step (and its drift key) only if the head moved: two replicas appending
/// to one workflow never fork the chain or reuse a seq. The loser gets
/// [`StorageError::Conflict`] and the tracker judges its step again
/// against the chain as it now stands.
#[derive(Clone)]
pub struct PgStore {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or a libpq
    /// key=value string) with `connections` connection threads, and brings
    /// the schema up to date. Fails when the database cannot be reached or
    /// holds a schema newer than this build knows.
    pub fn connect(url: &str, connections: usize) -> Result<Self, StorageError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| db(format!("bad database url: {}", describe(&e))))?;
        config.application_name("telos");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..connections.max(1) {
            let rx = Arc::clone(&rx);
            let conn = Conn {
                config: config.clone(),
                client: None,
                statements: HashMap::new(),
            };
            std::thread::Builder::new()
                .name(format!("telos-pg-{n}"))
                .spawn(move || worker(conn, &rx))
                .map_err(db)?;
        }
        let store = Self { jobs };
        store.call(migrate)?;
        Ok(store)
    }

    /// Runs `f` on a connection thread, retrying it as the module says.
    fn call<T, F>(&self, mut f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnMut(&mut Conn) -> Result<T, Fail> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn, last| {
            let out = match f(conn) {
                Ok(v) => Ok(v),
                Err(Fail::Store(e)) => Err(e),
                Err(Fail::Pg(e)) => {
                    if !last && classify(&e) != Retry::No {
                        return Some(e);
                    }
                    Err(StorageError::Db(describe(&e)))
                }
            };
            let _ = tx.send(out);
            None
        });
        self.jobs
            .send(job)
            .map_err(|_| db("the database connection threads stopped"))?;
        rx.recv()
            .map_err(|_| db("a database connection thread stopped"))?
    }
}

/// A connection thread: runs jobs until the store is dropped.
fn worker(mut conn: Conn, rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else { return };
        let mut backoff = Duration::from_millis(20);
        for attempt in 1..=ATTEMPTS {
            let Some(e) = job(&mut conn, attempt == ATTEMPTS) else {
                break;
            };
            if classify(&e) == Retry::Reconnect {
                conn.reset();
            }
            tracing::warn!(attempt, error = %describe(&e), "database call failed; retrying");
            metrics::counter!("telos_storage_retries_total").increment(1);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

/// Applies the embedded migrations that `telos_schema` does not list.
fn migrate(conn: &mut Conn) -> Result<(), Fail> {
    // Concurrent `CREATE TABLE IF NOT EXISTS` can still collide in
    // PostgreSQL's catalog (a unique violation): the loser tries again.
    for attempt in 0..5 {
        match conn.client()?.batch_execute(
            "CREATE TABLE IF NOT EXISTS telos_schema (
                 version    BIGINT      NOT NULL PRIMARY KEY,
                 name       TEXT        NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        ) {
            Ok(()) => break,
            Err(e)
                if attempt < 4
                    && (e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                        || e.code() == Some(&SqlState::DUPLICATE_TABLE)) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let newest: Option<i64> = conn
        .client()?
        .query_one("SELECT max(version) FROM telos_schema", &[])?
        .try_get(0)?;
    let newest = newest.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if newest > known {
        return Err(Fail::Store(db(format!(
            "the database schema is at version {newest}, newer than this telos knows ({known}): upgrade telos"
        ))));
    }
    for &(version, name, sql) in MIGRATIONS {
        if version <= newest {
            continue;
        }
        let client = conn.client()?;
        let mut tx = client.transaction()?;
        // The version row is written first: a replica migrating at the same
        // time waits on its key, then finds it taken and skips the step.
        match tx.execute(
            "INSERT INTO telos_schema (version, name) VALUES ($1, $2)",
            &[&version, &name],
        ) {
            Ok(_) => {}
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
            Err(e) => return Err(e.into()),
        }
        tx.batch_execute(sql)?;
        tx.commit()?;
        tracing::info!(version, name, "database schema migrated");
    }
    Ok(())
}

const APPEND: &str = "
WITH moved AS (
    UPDATE telos_heads SET seq = $3::BIGINT, hash = $4::TEXT
     WHERE tenant = $1::TEXT AND id = $2::UUID AND seq = $5::BIGINT AND hash = $6::TEXT
    RETURNING id
), step AS (
    INSERT INTO telos_steps (workflow_id, seq, record)
    SELECT id, $3::BIGINT, $7::BYTEA FROM moved
    RETURNING seq
), drift AS (
    INSERT INTO telos_drift (tenant, at_nanos, workflow_id, seq)
    SELECT $1::TEXT, $8::BIGINT, id, $3::BIGINT FROM moved WHERE $8::BIGINT IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING seq
)
SELECT (SELECT count(*) FROM step) + 0 * (SELECT count(*) FROM drift)";

fn workflow_of(key: &str, bytes: &[u8]) -> Result<Workflow, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(key.to_string(), e))
}

impl Store for PgStore {
    fn put_catalog(
        &self,
        tenant: &str,
        name: &str,
        record: &StoredCatalog,
    ) -> Result<(), StorageError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        let json = serde_json::to_vec(record).map_err(db)?;
        let vectors = encode_vectors(&record.vectors);
        self.call(move |c| {
            c.execute(
                "INSERT INTO telos_catalogs (tenant, name, record, vectors) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, name) DO UPDATE SET record = excluded.record, vectors = excluded.vectors",
                &[&tenant, &name, &json, &vectors],
            )?;
            Ok(())
        })
    }

    fn get_catalog(&self, tenant: &str, name: &str) -> Result<Option<StoredCatalog>, StorageError> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.call(move |c| {
            let rows = c.query(
                "SELECT record, vectors FROM telos_catalogs WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let shown = format!("catalogs/{tenant}/{name}");
            let json: Vec<u8> = row.try_get(0)?;
            let vectors: Vec<u8> = row.try_get(1)?;
            let mut record: StoredCatalog = serde_json::from_slice(&json)
                .map_err(|e| Fail::Store(corrupt(shown.clone(), e)))?;
            record.vectors = decode_vectors(&shown, &vectors).map_err(Fail::Store)?;
            Ok(Some(record))
        })
    }

    fn put_workflow(&self, workflow: &Workflow) -> Result<(), StorageError> {
        let json = serde_json::to_vec(workflow).map_err(db)?;
        let (tenant, id, genesis) = (
            workflow.tenant.clone(),
            workflow.id,
            workflow.genesis.clone(),
        );
        self.call(move |c| {
            let client = c.client()?;
            let mut tx = client.transaction()?;
            tx.execute(
                "INSERT INTO telos_workflows (tenant, id, record) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, id) DO UPDATE SET record = excluded.record",
                &[&tenant, &id, &json],
            )?;
            tx.execute(
                "INSERT INTO telos_heads (tenant, id, seq, hash) VALUES ($1, $2, 0, $3)
                 ON CONFLICT (tenant, id) DO NOTHING",
                &[&tenant, &id, &genesis],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn get_workflow(&self, tenant: &str, id: &Uuid) -> Result<Option<Workflow>, StorageError> {
        let (tenant, id) = (tenant.to_string(), *id);
        self.call(move |c| {
            let rows = c.query(
                "SELECT record FROM telos_workflows WHERE tenant = $1 AND id = $2",
                &[&tenant, &id],
            )?;
            match rows.first() {
                None => Ok(None),
                Some(row) => {
                    let bytes: Vec<u8> = row.try_get(0)?;
                    workflow_of(&format!("workflows/{tenant}/{id}"), &bytes)
                        .map(Some)
                        .map_err(Fail::Store)
                }
            }
        })
    }

    fn all_workflows(&self) -> Result<Vec<Workflow>, StorageError> {
        self.call(|c| {
            let rows = c.query(
                "SELECT tenant, id, record FROM telos_workflows ORDER BY tenant, id",
                &[],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (tenant, id): (String, Uuid) = (row.try_get(0)?, row.try_get(1)?);
                let bytes: Vec<u8> = row.try_get(2)?;
                out.push(
                    workflow_of(&format!("workflows/{tenant}/{id}"), &bytes)
                        .map_err(Fail::Store)?,
                );
            }
            Ok(out)
        })
    }

    fn append_step(
        &self,
        tenant: &str,
        step_of: &Uuid,
        step: &Step,
        divergent_at_nanos: Option<u64>,
    ) -> Result<(), StorageError> {
        let json = serde_json::to_vec(step).map_err(db)?;
        let (tenant, id) = (tenant.to_string(), *step_of);
        let seq = to_i64(step.seq);
        let prev_seq = to_i64(step.seq.saturating_sub(1));
        let (hash, prev_hash) = (step.hash.clone(), step.prev_hash.clone());
        let at = divergent_at_nanos.map(to_i64);
        self.call(move |c| {
            let appended: i64 = c
                .query(
                    APPEND,
                    &[&tenant, &id, &seq, &hash, &prev_seq, &prev_hash, &json, &at],
                )?
                .first()
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(0);
            if appended == 1 {
                return Ok(());
            }
            // The head was not at the step before this one. Either this
            // very step is stored (a retry after a commit whose answer was
            // lost: done), or another writer appended first.
            let stored = c.query(
                "SELECT record FROM telos_steps WHERE workflow_id = $1 AND seq = $2",
                &[&id, &seq],
            )?;
            if let Some(row) = stored.first() {
                let bytes: Vec<u8> = row.try_get(0)?;
                if bytes == json {
                    return Ok(());
                }
            }
            let head = c.query(
                "SELECT seq FROM telos_heads WHERE tenant = $1 AND id = $2",
                &[&tenant, &id],
            )?;
            let Some(row) = head.first() else {
                return Err(Fail::Store(db(format!(
                    "workflow {tenant}/{id} has no head: it was never created"
                ))));
            };
            let at: i64 = row.try_get(0)?;
            Err(Fail::Store(StorageError::Conflict {
                key: format!("{tenant}/{id}"),
                expected: prev_seq.unsigned_abs(),
                found: at.unsigned_abs(),
            }))
        })
    }

    fn steps(
        &self,
        workflow: &Uuid,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Step>, StorageError> {
        let (id, from) = (*workflow, to_i64(from_seq));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let rows = c.query(
                "SELECT seq, record FROM telos_steps WHERE workflow_id = $1 AND seq >= $2
                 ORDER BY seq LIMIT $3",
                &[&id, &from, &limit],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let seq: i64 = row.try_get(0)?;
                let bytes: Vec<u8> = row.try_get(1)?;
                out.push(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| Fail::Store(corrupt(format!("steps/{id}/{seq}"), e)))?,
                );
            }
            Ok(out)
        })
    }

    fn drift(
        &self,
        tenant: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DriftEntry>, StorageError> {
        // The cursor is the sled store's: hex of (u64::MAX − nanos)(8)
        // id(16) seq(8), so a cursor reads the same on either store.
        let after = match cursor {
            None => None,
            Some(c) => {
                let bytes = hex::decode(c).map_err(|e| corrupt("cursor".into(), e))?;
                let (inv, rest) = bytes
                    .split_first_chunk::<8>()
                    .ok_or_else(|| corrupt("cursor".into(), "too short"))?;
                let (id, seq) = rest
                    .split_first_chunk::<16>()
                    .ok_or_else(|| corrupt("cursor".into(), "too short"))?;
                let seq: [u8; 8] = seq
                    .try_into()
                    .map_err(|_| corrupt("cursor".into(), "bad length"))?;
                Some((
                    to_i64(u64::MAX - u64::from_be_bytes(*inv)),
                    Uuid::from_bytes(*id),
                    to_i64(u64::from_be_bytes(seq)),
                ))
            }
        };
        let tenant = tenant.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let rows = match &after {
                None => c.query(
                    "SELECT at_nanos, workflow_id, seq FROM telos_drift WHERE tenant = $1
                     ORDER BY at_nanos DESC, workflow_id, seq LIMIT $2",
                    &[&tenant, &limit],
                )?,
                Some((at, id, seq)) => c.query(
                    "SELECT at_nanos, workflow_id, seq FROM telos_drift WHERE tenant = $1
                       AND (at_nanos < $2 OR (at_nanos = $2
                            AND (workflow_id > $3 OR (workflow_id = $3 AND seq > $4))))
                     ORDER BY at_nanos DESC, workflow_id, seq LIMIT $5",
                    &[&tenant, at, id, seq, &limit],
                )?,
            };
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let at = to_u64("drift", row.try_get(0)?).map_err(Fail::Store)?;
                let id: Uuid = row.try_get(1)?;
                let seq = to_u64("drift", row.try_get(2)?).map_err(Fail::Store)?;
                let mut cursor = Vec::with_capacity(32);
                cursor.extend_from_slice(&(u64::MAX - at).to_be_bytes());
                cursor.extend_from_slice(id.as_bytes());
                cursor.extend_from_slice(&seq.to_be_bytes());
                out.push(DriftEntry {
                    workflow_id: id,
                    seq,
                    at_nanos: at,
                    cursor: hex::encode(cursor),
                });
            }
            Ok(out)
        })
    }

    fn head(&self, tenant: &str, id: &Uuid) -> Result<Option<Head>, StorageError> {
        let (tenant, id) = (tenant.to_string(), *id);
        self.call(move |c| {
            let rows = c.query(
                "SELECT seq, hash FROM telos_heads WHERE tenant = $1 AND id = $2",
                &[&tenant, &id],
            )?;
            match rows.first() {
                None => Ok(None),
                Some(row) => Ok(Some(Head {
                    seq: to_u64(&format!("heads/{tenant}/{id}"), row.try_get(0)?)
                        .map_err(Fail::Store)?,
                    hash: row.try_get(1)?,
                })),
            }
        })
    }

    fn heads(&self) -> Result<Vec<(String, Uuid, Head)>, StorageError> {
        self.call(|c| {
            let rows = c.query(
                "SELECT tenant, id, seq, hash FROM telos_heads ORDER BY tenant, id",
                &[],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (tenant, id): (String, Uuid) = (row.try_get(0)?, row.try_get(1)?);
                let seq = to_u64(&format!("heads/{tenant}/{id}"), row.try_get(2)?)
                    .map_err(Fail::Store)?;
                out.push((
                    tenant,
                    id,
                    Head {
                        seq,
                        hash: row.try_get(3)?,
                    },
                ));
            }
            Ok(out)
        })
    }

    fn ledger(&self) -> Result<Vec<LedgerRecord>, StorageError> {
        self.call(|c| {
            let mut out = Vec::new();
            let rows = c.query(
                "SELECT w.tenant, w.id, w.record, h.seq, h.hash FROM telos_workflows w
                 LEFT JOIN telos_heads h ON h.tenant = w.tenant AND h.id = w.id
                 ORDER BY w.tenant, w.id",
                &[],
            )?;
            for row in rows {
                let (tenant, id): (String, Uuid) = (row.try_get(0)?, row.try_get(1)?);
                let bytes: Vec<u8> = row.try_get(2)?;
                let seq: Option<i64> = row.try_get(3)?;
                let hash: Option<String> = row.try_get(4)?;
                let head = match (seq, hash) {
                    (Some(seq), Some(hash)) => u64::try_from(seq)
                        .map(|seq| Some(Head { seq, hash }))
                        .map_err(|_| format!("the head record has a negative seq {seq}")),
                    _ => Ok(None),
                };
                out.push(LedgerRecord {
                    key: format!("{tenant}/{id}"),
                    workflow: serde_json::from_slice::<Workflow>(&bytes)
                        .map_err(|e| format!("the workflow record does not decode: {e}")),
                    tenant,
                    id: Some(id),
                    head,
                });
            }
            let orphans = c.query(
                "SELECT h.tenant, h.id FROM telos_heads h WHERE NOT EXISTS
                 (SELECT 1 FROM telos_workflows w WHERE w.tenant = h.tenant AND w.id = h.id)
                 ORDER BY h.tenant, h.id",
                &[],
            )?;
            for row in orphans {
                let (tenant, id): (String, Uuid) = (row.try_get(0)?, row.try_get(1)?);
                out.push(LedgerRecord {
                    key: format!("{tenant}/{id}"),
                    tenant,
                    id: Some(id),
                    workflow: Err("a head exists but the workflow record was removed".into()),
                    head: Ok(None),
                });
            }
            Ok(out)
        })
    }

    fn stored_steps(&self, workflow: &Uuid) -> Result<Vec<StoredStep>, StorageError> {
        let id = *workflow;
        self.call(move |c| {
            let rows = c.query(
                "SELECT seq, record FROM telos_steps WHERE workflow_id = $1 ORDER BY seq",
                &[&id],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let seq: i64 = row.try_get(0)?;
                let bytes: Vec<u8> = row.try_get(1)?;
                out.push((
                    seq.unsigned_abs(),
                    serde_json::from_slice::<Step>(&bytes).map_err(|e| e.to_string()),
                ));
            }
            Ok(out)
        })
    }

    fn put_checkpoint(&self, record: &[u8]) -> Result<(), StorageError> {
        let record = record.to_vec();
        self.call(move |c| {
            c.execute(
                "INSERT INTO telos_checkpoints (name, record) VALUES ('latest', $1)
                 ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                &[&record],
            )?;
            Ok(())
        })
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.call(|c| {
            let rows = c.query(
                "SELECT record FROM telos_checkpoints WHERE name = 'latest'",
                &[],
            )?;
            Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
        })
    }

    /// Every write committed before it returned: nothing to do.
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_refused_before_any_thread_starts() {
        let err = PgStore::connect("postgres://[::1", 1).unwrap_err();
        assert!(err.to_string().contains("bad database url"), "{err}");
    }
}
