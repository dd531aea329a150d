-- queue_items is the work queue. An item is available when available_at has
-- passed; leasing it moves available_at to the lease's expiry, so an expired
-- lease makes the item available again without any sweeper.
CREATE TABLE queue_items (
    id               TEXT    PRIMARY KEY,
    queue            TEXT    NOT NULL,
    payload          BLOB    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    available_at     INTEGER NOT NULL, -- Unix nanoseconds
    lease_token      TEXT,
    lease_holder     TEXT,
    lease_expires_at INTEGER,
    enqueued_at      INTEGER NOT NULL
);
CREATE INDEX queue_items_ready ON queue_items (queue, available_at);
