-- Lesson progress without transition tables.
--
-- The statement triggers of 0004 keep transition tables, so that every
-- UPDATE of tasks, every claim and every completion of a task with no
-- lesson included, copied each row it changed, old and new, for a trigger
-- that then found no lesson in them. On a table of 50,000 tasks a claim of
-- 1,600 took 67 ms with the trigger and 48 ms without (docs/BENCHMARKS.md).
--
-- Now only the rows that change a lesson's progress leave a trace: a row
-- trigger, fired only when a lesson's task is inserted or enters or leaves
-- a finished state, records the change in lesson_progress_deltas, and a
-- statement trigger that keeps no rows folds the statement's changes into
-- each lesson once, in lesson order, as 0004 did: two statements still never
-- wait for each other's lessons in a cycle, and the counters mean what they
-- meant. A delta lives within its statement's transaction, so the table
-- needs no WAL.

DROP TRIGGER tasks_lesson_progress_insert ON tasks;
DROP TRIGGER tasks_lesson_progress_update ON tasks;
DROP FUNCTION lesson_progress_inserted();
DROP FUNCTION lesson_progress_updated();

CREATE UNLOGGED TABLE lesson_progress_deltas (
    xact_id   xid8 NOT NULL DEFAULT pg_current_xact_id(),
    lesson_id uuid NOT NULL,
    total     int  NOT NULL,
    completed int  NOT NULL,
    dead      int  NOT NULL
);
CREATE INDEX lesson_progress_deltas_by_xact ON lesson_progress_deltas (xact_id);

CREATE FUNCTION lesson_progress_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.lesson_id IS NOT NULL THEN
        INSERT INTO taskqueue.lesson_progress_deltas (lesson_id, total, completed, dead)
        VALUES (OLD.lesson_id, -(OLD.state <> 'cancelled')::int, -(OLD.state = 'completed')::int, -(OLD.state = 'dead')::int);
    END IF;
    IF NEW.lesson_id IS NOT NULL THEN
        INSERT INTO taskqueue.lesson_progress_deltas (lesson_id, total, completed, dead)
        VALUES (NEW.lesson_id, (NEW.state <> 'cancelled')::int, (NEW.state = 'completed')::int, (NEW.state = 'dead')::int);
    END IF;
    RETURN NULL;
END
$$;

-- Every INSERT and UPDATE of tasks fires this once; one that recorded no
-- delta (no transaction id yet, or none of its rows) leaves at once.
CREATE FUNCTION lesson_progress_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_xact xid8 := pg_current_xact_id_if_assigned();
    r      record;
BEGIN
    IF v_xact IS NULL THEN
        RETURN NULL;
    END IF;
    FOR r IN
        WITH d AS (DELETE FROM taskqueue.lesson_progress_deltas WHERE xact_id = v_xact
                   RETURNING lesson_id, total, completed, dead)
        SELECT lesson_id, sum(total) AS total, sum(completed) AS completed, sum(dead) AS dead
        FROM d GROUP BY lesson_id
        HAVING sum(total) <> 0 OR sum(completed) <> 0 OR sum(dead) <> 0
        ORDER BY lesson_id
    LOOP
        UPDATE taskqueue.lessons SET
            tasks_total     = tasks_total + r.total,
            tasks_completed = tasks_completed + r.completed,
            tasks_dead      = tasks_dead + r.dead,
            updated_at = now()
        WHERE lesson_id = r.lesson_id;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_lesson_progress_insert_row
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.lesson_id IS NOT NULL)
    EXECUTE FUNCTION lesson_progress_delta();

CREATE TRIGGER tasks_lesson_progress_update_row
    AFTER UPDATE OF state, lesson_id ON tasks
    FOR EACH ROW WHEN ((OLD.lesson_id IS NOT NULL OR NEW.lesson_id IS NOT NULL)
        AND (OLD.state IS DISTINCT FROM NEW.state OR OLD.lesson_id IS DISTINCT FROM NEW.lesson_id)
        AND (OLD.state IN ('completed', 'dead', 'cancelled') OR NEW.state IN ('completed', 'dead', 'cancelled')
             OR OLD.lesson_id IS DISTINCT FROM NEW.lesson_id))
    EXECUTE FUNCTION lesson_progress_delta();

-- Row triggers' events are queued as the rows change and the statement's
-- at its end, so these run after every delta of their statement is in.
CREATE TRIGGER tasks_lesson_progress_insert
    AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION lesson_progress_apply();

CREATE TRIGGER tasks_lesson_progress_update
    AFTER UPDATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION lesson_progress_apply();
