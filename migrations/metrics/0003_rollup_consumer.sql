-- Classroom rollups are maintained off the write path by a consumer of the
-- events table in commit order (the same way the frustration detector reads
-- it): the write path is COPY alone, and concurrent writers never queue on a
-- hot classroom's minute row.
--
-- The global commit order, for consumers that follow every classroom.
CREATE INDEX usability_events_global_commit_order ON usability_events (commit_xid, commit_ord);

-- Where each consumer of the events table has read up to. Not classroom data:
-- one row per consumer (a reference table under Citus).
CREATE TABLE consumer_checkpoints (
    consumer   text        PRIMARY KEY,
    commit_xid xid8        NOT NULL DEFAULT '0',
    commit_ord integer     NOT NULL DEFAULT -1,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO consumer_checkpoints (consumer) VALUES ('classroom_rollups');

-- last_xid is the rollup transaction that changed the row; it says nothing
-- about the events' own transactions any more.
COMMENT ON COLUMN classroom_minutes.last_xid IS 'The rollup transaction that last changed the row.';
