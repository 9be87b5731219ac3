-- Usability events, ratings and per-minute classroom rollups (docs/INGEST.md).
--
-- Every primary key and unique index starts with classroom_id, so that these
-- tables can be distributed by classroom (Citus) without a code change
-- (DESIGN.md, "Beyond one machine").
--
-- usability_events is partitioned by the time the event happened. When the
-- timescaledb extension can be created it is a hypertable (one-day chunks; the
-- service adds the retention policy, whose length is configuration); otherwise
-- it is a native range-partitioned table whose daily partitions the service
-- creates ahead of time and drops after USABILITY_RETENTION.
--
-- Idempotency: an event is identified by (classroom_id, app_id, event_id,
-- occurred_at). A unique index on a partitioned table (and on a hypertable) must
-- contain the partition key, so occurred_at is part of the key; a retry resends
-- the same event, with the same occurred_at, and therefore lands in the same
-- partition whenever it arrives (Mixpanel deduplicates on the time as well).
--
-- Commit order for consumers (the frustration detector): each row carries the
-- id of the transaction that wrote it (commit_xid) and its position in that
-- transaction (commit_ord). A consumer reads rows whose commit_xid is below the
-- xmin of a fresh snapshot, in (commit_xid, commit_ord) order, from a
-- checkpoint: every transaction below xmin has finished, so no row can appear
-- later behind the checkpoint (no outbox gaps). See docs/INGEST.md.

CREATE TABLE event_storage (
    -- One row: 'timescaledb' or 'native'.
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode      text NOT NULL CHECK (mode IN ('timescaledb', 'native'))
);

DO $migration$
DECLARE
    use_timescale boolean := false;
    ts_schema text;
    columns text := $cols$
        classroom_id text             NOT NULL,
        app_id       text             NOT NULL,
        event_id     text             NOT NULL,
        occurred_at  timestamptz      NOT NULL,
        student_id   text             NOT NULL,
        item_id      text             NOT NULL DEFAULT '',
        skill_id     text             NOT NULL DEFAULT '',
        kind         text             NOT NULL CHECK (kind IN ('attempt', 'error', 'keystroke', 'click', 'hint', 'hesitation', 'focus_lost', 'page_view')),
        correct      boolean,
        value        double precision NOT NULL DEFAULT 0,
        x            integer,
        y            integer,
        attrs        jsonb,
        received_at  timestamptz      NOT NULL,
        commit_xid   xid8             NOT NULL DEFAULT pg_current_xact_id(),
        commit_ord   integer          NOT NULL
    $cols$;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public;
            use_timescale := true;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'timescaledb is installed but could not be created (%); using native partitions', SQLERRM;
        END;
    END IF;

    IF use_timescale THEN
        EXECUTE format('CREATE TABLE usability_events (%s)', columns);
        -- The extension's functions live in whichever schema it was created
        -- in (public unless a DBA chose another); this migration runs with
        -- search_path = metrics, so they are called by their full name.
        SELECT n.nspname INTO ts_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'timescaledb';
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %L, chunk_time_interval => interval %L)',
            ts_schema, 'metrics.usability_events', 'occurred_at', '1 day');
        INSERT INTO event_storage (mode) VALUES ('timescaledb');
    ELSE
        EXECUTE format('CREATE TABLE usability_events (%s) PARTITION BY RANGE (occurred_at)', columns);
        INSERT INTO event_storage (mode) VALUES ('native');
    END IF;
END
$migration$;

-- Deduplication (ON CONFLICT target); on a partitioned table each partition
-- gets its own copy of the index.
CREATE UNIQUE INDEX usability_events_identity ON usability_events (classroom_id, app_id, event_id, occurred_at);
-- A classroom's events in commit order (the detector's read).
CREATE INDEX usability_events_commit_order ON usability_events (classroom_id, commit_xid, commit_ord);

-- Ratings are few; one table, idempotent by rating_id.
CREATE TABLE ratings (
    classroom_id text        NOT NULL,
    app_id       text        NOT NULL,
    rating_id    text        NOT NULL,
    student_id   text        NOT NULL,
    item_id      text        NOT NULL DEFAULT '',
    rating       smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    feedback     text        NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    commit_xid   xid8        NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (classroom_id, app_id, rating_id)
);
CREATE INDEX ratings_by_classroom_time ON ratings (classroom_id, occurred_at);
CREATE INDEX ratings_by_app_time ON ratings (app_id, occurred_at);
CREATE INDEX ratings_commit_order ON ratings (classroom_id, commit_xid);

-- Per-minute classroom rollups, kept up to date in the transaction that stores
-- the events (additive counters; late events add to their own minute).
CREATE TABLE classroom_minutes (
    classroom_id     text             NOT NULL,
    minute           timestamptz      NOT NULL,
    events           bigint           NOT NULL DEFAULT 0,
    active_students  bigint           NOT NULL DEFAULT 0,
    attempts         bigint           NOT NULL DEFAULT 0,
    wrong_attempts   bigint           NOT NULL DEFAULT 0,
    error_events     bigint           NOT NULL DEFAULT 0,
    hesitation_sum   double precision NOT NULL DEFAULT 0,
    hesitation_count bigint           NOT NULL DEFAULT 0,
    -- The last transaction that changed the row: a consumer that has read up
    -- to a commit_xid finds the classrooms with newer events here.
    last_xid         xid8             NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (classroom_id, minute)
);
CREATE INDEX classroom_minutes_last_xid ON classroom_minutes (last_xid);

-- The distinct students of a classroom's minute (active_students counts the
-- rows inserted here).
CREATE TABLE classroom_minute_students (
    classroom_id text        NOT NULL,
    minute       timestamptz NOT NULL,
    student_id   text        NOT NULL,
    PRIMARY KEY (classroom_id, minute, student_id)
);

-- Attempts and errors per item and minute (hardest items).
CREATE TABLE classroom_minute_items (
    classroom_id text        NOT NULL,
    minute       timestamptz NOT NULL,
    item_id        text        NOT NULL,
    attempts       bigint      NOT NULL DEFAULT 0,
    wrong_attempts bigint      NOT NULL DEFAULT 0,
    error_events   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (classroom_id, minute, item_id)
);
