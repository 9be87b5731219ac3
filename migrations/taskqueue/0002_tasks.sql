-- Tasks, lessons and session affinities.
--
-- A task is claimable when state = 'pending' and run_at <= now(). A claim
-- increments attempt; the claim token is (task_id, attempt), so a holder whose
-- claim was taken back can never settle the task. Lesson progress is kept by
-- triggers in the same transaction as the task state change.

CREATE TABLE lessons (
    lesson_id       uuid PRIMARY KEY,
    project         text        NOT NULL,
    name            text        NOT NULL,
    objective       text        NOT NULL DEFAULT '',
    priority        smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 10),
    metadata        jsonb       NOT NULL DEFAULT '{}',
    tasks_total     bigint      NOT NULL DEFAULT 0,
    tasks_completed bigint      NOT NULL DEFAULT 0,
    tasks_dead      bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lessons_project_name UNIQUE (project, name)
);
CREATE INDEX lessons_by_project ON lessons (project, created_at DESC, lesson_id);

CREATE TABLE tasks (
    task_id                 uuid PRIMARY KEY,
    idempotency_key         text        NOT NULL,
    task_type               text        NOT NULL,
    payload                 jsonb       NOT NULL DEFAULT '{}',
    priority                smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 10),
    lesson_id               uuid        REFERENCES lessons (lesson_id),
    -- Copied from the lesson so that the claim order needs no join.
    lesson_priority         smallint    NOT NULL DEFAULT 0,
    state                   text        NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'claimed', 'completed', 'dead', 'cancelled')),
    attempt                 integer     NOT NULL DEFAULT 0,
    max_attempts            integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    run_at                  timestamptz NOT NULL DEFAULT now(),
    claim_timeout_ms        bigint      NOT NULL CHECK (claim_timeout_ms > 0),
    claimed_by_session_id   text,
    claimed_by_session_name text,
    claim_expires_at        timestamptz,
    result                  jsonb,
    last_error              text        NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz
);

-- Exactly-once enqueue: INSERT ... ON CONFLICT on this index.
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key);
-- The claim order: priority, then the lesson's priority, then age.
CREATE INDEX tasks_claim_order ON tasks (priority DESC, lesson_priority DESC, run_at, task_id)
    WHERE state = 'pending';
-- Claims of the lessons a session has affinity with.
CREATE INDEX tasks_claim_by_lesson ON tasks (lesson_id, priority DESC, run_at, task_id)
    WHERE state = 'pending';
-- The reaper and session-failure requeues.
CREATE INDEX tasks_claim_expiry ON tasks (claim_expires_at) WHERE state = 'claimed';
-- task_id too, so that a settle (task_id, session and state 'claimed') that
-- the planner sends here rather than to the primary key, as it does while the
-- table's statistics are missing or stale, still finds its one row instead
-- of reading every claim the session holds.
CREATE INDEX tasks_claimed_by ON tasks (claimed_by_session_id, task_id) WHERE state = 'claimed';
-- Listing and pruning.
CREATE INDEX tasks_by_created ON tasks (created_at DESC, task_id);
CREATE INDEX tasks_by_lesson ON tasks (lesson_id, created_at DESC) WHERE lesson_id IS NOT NULL;
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE state IN ('completed', 'cancelled', 'dead');

-- A hot queue table: rows are updated several times each and deleted after
-- their retention. Leave room for HOT updates and vacuum early and often.
ALTER TABLE tasks SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_limit = 2000,
    autovacuum_vacuum_insert_scale_factor = 0.05
);

CREATE TABLE session_affinities (
    session_name text             NOT NULL,
    lesson_id    uuid             NOT NULL REFERENCES lessons (lesson_id) ON DELETE CASCADE,
    score        double precision NOT NULL CHECK (score BETWEEN 0 AND 100),
    time_window  jsonb,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (session_name, lesson_id)
);
CREATE INDEX session_affinities_by_lesson ON session_affinities (lesson_id);

-- Lesson progress, in the same transaction as the task change. Counters are
-- cumulative: pruning finished tasks does not change a lesson's progress.
-- tasks_total counts every task not cancelled.
CREATE FUNCTION lesson_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE taskqueue.lessons SET
            tasks_total = tasks_total + (NEW.state <> 'cancelled')::int,
            updated_at = now()
        WHERE lesson_id = NEW.lesson_id;
        RETURN NULL;
    END IF;
    -- UPDATE of state
    UPDATE taskqueue.lessons SET
        tasks_total     = tasks_total     + (NEW.state <> 'cancelled')::int - (OLD.state <> 'cancelled')::int,
        tasks_completed = tasks_completed + (NEW.state = 'completed')::int  - (OLD.state = 'completed')::int,
        tasks_dead      = tasks_dead      + (NEW.state = 'dead')::int       - (OLD.state = 'dead')::int,
        updated_at = now()
    WHERE lesson_id = NEW.lesson_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_lesson_progress_insert
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.lesson_id IS NOT NULL)
    EXECUTE FUNCTION lesson_progress();

CREATE TRIGGER tasks_lesson_progress_update
    AFTER UPDATE OF state ON tasks
    FOR EACH ROW WHEN (NEW.lesson_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
        AND (OLD.state IN ('completed', 'dead', 'cancelled') OR NEW.state IN ('completed', 'dead', 'cancelled')))
    EXECUTE FUNCTION lesson_progress();
