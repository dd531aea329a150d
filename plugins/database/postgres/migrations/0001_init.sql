-- The schema of database-postgres. Names carry a palvella_ prefix so the
-- tables can share a database (or a schema named by search_path) with
-- others'. Keys compare byte-wise (COLLATE "C"), as sqlite's do, so List
-- pages in the same order whatever the database's locale.

-- palvella_revision holds the last revision handed out. Every resource write
-- takes the next one by updating this single row first: the row lock
-- serializes resource writers (across every server on the database), so
-- revisions commit in increasing order and a watcher reading "revision >
-- N" never skips one that commits later. Queue operations do not touch it.
CREATE TABLE palvella_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint  NOT NULL
);
INSERT INTO palvella_revision (id, revision) VALUES (1, 0);

-- Resources: typed documents with a global revision. Labels are a jsonb
-- object; selectors match with @> on a GIN index.
CREATE TABLE palvella_resources (
    kind       text COLLATE "C" NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    revision   bigint      NOT NULL,
    labels     jsonb       NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE INDEX palvella_resources_labels ON palvella_resources USING gin (labels jsonb_path_ops);

-- palvella_changes is the history Watch replays, one row per revision.
CREATE TABLE palvella_changes (
    revision   bigint PRIMARY KEY,
    type       smallint         NOT NULL,
    kind       text COLLATE "C" NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    labels     jsonb       NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX palvella_changes_by_kind ON palvella_changes (kind, revision);

-- Each change wakes the watchers of every server on the database: NOTIFY is
-- delivered when the writing transaction commits, never before, never for a
-- rolled back one. The payload is the kind.
CREATE FUNCTION palvella_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('palvella_changes', NEW.kind);
    RETURN NULL;
END
$$;
CREATE TRIGGER palvella_changes_notify AFTER INSERT ON palvella_changes
    FOR EACH ROW EXECUTE FUNCTION palvella_notify_change();

-- palvella_compaction records up to which revision the history was
-- removed; Watch refuses to resume before it.
CREATE TABLE palvella_compaction (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint  NOT NULL
);
INSERT INTO palvella_compaction (id, revision) VALUES (1, 0);

-- palvella_queue is the work queue. An item is available when available_at
-- has passed; leasing it moves available_at to the lease's expiry, so an
-- expired lease makes the item available again without any sweeper. Times
-- are the database's clock, the one clock every server shares.
CREATE TABLE palvella_queue (
    id               text COLLATE "C" PRIMARY KEY,
    queue            text COLLATE "C" NOT NULL,
    payload          bytea       NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    available_at     timestamptz NOT NULL,
    lease_token      text,
    lease_holder     text,
    lease_expires_at timestamptz,
    fence            bigint,
    enqueued_at      timestamptz NOT NULL
);
CREATE INDEX palvella_queue_ready ON palvella_queue (queue, available_at, enqueued_at, id);

-- palvella_fence numbers leases: every lease of any item takes the next
-- value, so a later lease always carries a greater fencing number.
CREATE SEQUENCE palvella_fence;
