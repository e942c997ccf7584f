-- Ledger format 2 on SQL: the tables of the sled trees, one row per
-- record. Values are the same JSON bytes sled stores (BYTEA, so a step's
-- bytes are never re-encoded); ids are UUIDs (compared bytewise, as sled
-- keys are); integers are BIGINT (no SERIAL, no sequences). Accepted as
-- is by PostgreSQL, CockroachDB and YugabyteDB.
CREATE TABLE IF NOT EXISTS telos_catalogs (
    tenant  TEXT  NOT NULL,
    name    TEXT  NOT NULL,
    record  BYTEA NOT NULL,
    vectors BYTEA NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS telos_workflows (
    tenant TEXT  NOT NULL,
    id     UUID  NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (tenant, id)
);
-- One row per workflow: the seq and hash of its last step. Moved with a
-- compare-and-set on (seq, hash) in the statement that inserts the step.
CREATE TABLE IF NOT EXISTS telos_heads (
    tenant TEXT   NOT NULL,
    id     UUID   NOT NULL,
    seq    BIGINT NOT NULL,
    hash   TEXT   NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS telos_steps (
    workflow_id UUID   NOT NULL,
    seq         BIGINT NOT NULL,
    record      BYTEA  NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);
-- Divergent steps of a tenant, newest first (at_nanos descending).
CREATE TABLE IF NOT EXISTS telos_drift (
    tenant      TEXT   NOT NULL,
    at_nanos    BIGINT NOT NULL,
    workflow_id UUID   NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (tenant, at_nanos, workflow_id, seq)
);
CREATE TABLE IF NOT EXISTS telos_checkpoints (
    name   TEXT  NOT NULL PRIMARY KEY,
    record BYTEA NOT NULL
);
