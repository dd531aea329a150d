-- compaction records up to which revision the change history was removed;
-- Watch refuses to resume before it.
CREATE TABLE compaction (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO compaction (id, revision) VALUES (1, 0);
