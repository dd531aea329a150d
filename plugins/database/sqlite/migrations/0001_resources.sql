-- Resources: typed documents with a global revision, and their labels.
CREATE TABLE resources (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    labels     TEXT    NOT NULL, -- JSON object, as returned
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL, -- Unix nanoseconds
    updated_at INTEGER NOT NULL,
    UNIQUE (kind, namespace, name)
);

-- resource_labels indexes the labels for selectors.
CREATE TABLE resource_labels (
    resource_id INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (resource_id, key)
);
CREATE INDEX resource_labels_by_value ON resource_labels (key, value);

-- changes is the history Watch replays. Its rowid is the global revision:
-- AUTOINCREMENT never hands out a number twice, even after rows are removed.
CREATE TABLE changes (
    revision   INTEGER PRIMARY KEY AUTOINCREMENT,
    type       INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    labels     TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX changes_by_kind ON changes (kind, revision);
