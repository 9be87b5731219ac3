-- Frustration detection (docs/DETECTION.md): what the detector found, each
-- classroom's settings, and each detector partition's owner and checkpoint.
--
-- classroom_id leads every primary key and unique index of the classroom
-- tables, so they can be distributed by classroom like the events
-- (DESIGN.md, "Beyond one machine"). detector_partitions is a small control
-- table (16 rows by default), a reference table under Citus.

-- Ids of frustration events: monotonically increasing, the resume point of
-- WatchFrustrationEvents. Writers take an advisory lock before they draw an
-- id and hold it to commit, so ids become visible in id order and a watcher
-- that has seen id n never misses a smaller id that commits later.
CREATE SEQUENCE frustration_event_ids;

CREATE TABLE frustration_events (
    classroom_id        text        NOT NULL,
    event_id            bigint      NOT NULL,
    -- Alert key + trigger time: a replay or a takeover that finds the same
    -- transition again writes nothing.
    idempotency_key     text        NOT NULL,
    student_id          text        NOT NULL DEFAULT '',
    app_id              text        NOT NULL DEFAULT '',
    item_id             text        NOT NULL DEFAULT '',
    indicator           text        NOT NULL,
    -- 1 info, 2 warning, 3 high, 4 critical (min_severity filters).
    severity            smallint    NOT NULL CHECK (severity BETWEEN 1 AND 4),
    reasons             text[]      NOT NULL,
    evidence            jsonb       NOT NULL,
    triggered_at        timestamptz NOT NULL,
    detected_at         timestamptz NOT NULL DEFAULT now(),
    -- Who wrote it: the partition (of how many) and the owner's fencing token.
    detector_partitions integer     NOT NULL,
    detector_partition  integer     NOT NULL,
    fencing_token       bigint      NOT NULL,
    PRIMARY KEY (classroom_id, event_id)
);
CREATE UNIQUE INDEX frustration_events_idempotency ON frustration_events (classroom_id, idempotency_key);
-- Watches and lists across classrooms read in id order.
CREATE INDEX frustration_events_by_id ON frustration_events (event_id);
CREATE INDEX frustration_events_by_classroom_time ON frustration_events (classroom_id, triggered_at);
-- A new owner loads its partition's recent findings (the cooldown).
CREATE INDEX frustration_events_by_partition ON frustration_events (detector_partitions, detector_partition, detected_at);

-- A classroom's detection settings; no row means the defaults. overrides
-- holds the explicit thresholds (zero fields are not set). commit_xid lets
-- the detector pick up changes in commit order with the events.
CREATE TABLE detection_settings (
    classroom_id        text        PRIMARY KEY,
    sensitivity         smallint    NOT NULL CHECK (sensitivity BETWEEN 1 AND 3),
    overrides           jsonb       NOT NULL,
    disabled_indicators text[]      NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now(),
    commit_xid          xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX detection_settings_commit_xid ON detection_settings (commit_xid);

-- One row per detector partition (of a partition count): the fencing token
-- of its newest owner, which every write must carry (a stale owner's write is
-- refused here, not only by the owner's own check), and its checkpoint: the
-- last committed event read (commit_xid, commit_ord), the ratings read up to
-- (commit_xid), and the engine's state as of then.
CREATE TABLE detector_partitions (
    partitions      integer     NOT NULL,
    partition       integer     NOT NULL,
    fencing_token   bigint      NOT NULL DEFAULT 0,
    owner           text        NOT NULL DEFAULT '',
    event_xid       xid8        NOT NULL,
    event_ord       integer     NOT NULL,
    rating_xid      xid8        NOT NULL,
    state           bytea,
    checkpointed_at timestamptz,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partitions, partition)
);

-- The detector reads ratings in commit order too.
CREATE INDEX ratings_commit_xid ON ratings (commit_xid);
