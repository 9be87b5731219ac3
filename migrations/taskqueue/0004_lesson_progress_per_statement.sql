-- Lesson progress once per statement instead of once per task.
--
-- The row triggers of 0002 updated a task's lesson once for every task
-- that finished: a CompleteTasks batch of 100 tasks of one lesson wrote the
-- lesson's row 100 times, and took the lessons' locks in whatever order the
-- update met its tasks, so that a batch had to lock its lessons, in order,
-- in a statement of its own first. These statement triggers sum each
-- statement's changes per lesson from its transition tables and write each
-- lesson once, in lesson order: two statements never wait for each other's
-- lessons in a cycle. The counters mean what they meant: cumulative,
-- tasks_total counting every task not cancelled.

DROP TRIGGER tasks_lesson_progress_insert ON tasks;
DROP TRIGGER tasks_lesson_progress_update ON tasks;
DROP FUNCTION lesson_progress();

CREATE FUNCTION lesson_progress_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT lesson_id, count(*) FILTER (WHERE state <> 'cancelled') AS total
        FROM new_tasks WHERE lesson_id IS NOT NULL
        GROUP BY lesson_id ORDER BY lesson_id
    LOOP
        UPDATE taskqueue.lessons SET tasks_total = tasks_total + r.total, updated_at = now()
        WHERE lesson_id = r.lesson_id;
    END LOOP;
    RETURN NULL;
END
$$;

-- Every UPDATE of tasks fires this (a trigger with transition tables cannot
-- name columns), claims and extensions too; a statement that touched no
-- lesson's task leaves at the first query. Old and new rows are summed
-- apart, so that no join of the two is needed: a task whose state did not
-- change adds as much as it takes away.
CREATE FUNCTION lesson_progress_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_tasks WHERE lesson_id IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    FOR r IN
        SELECT lesson_id, sum(total) AS total, sum(completed) AS completed, sum(dead) AS dead
        FROM (
            SELECT lesson_id, (state <> 'cancelled')::int AS total, (state = 'completed')::int AS completed,
                   (state = 'dead')::int AS dead
            FROM new_tasks WHERE lesson_id IS NOT NULL
            UNION ALL
            SELECT lesson_id, -(state <> 'cancelled')::int, -(state = 'completed')::int, -(state = 'dead')::int
            FROM old_tasks WHERE lesson_id IS NOT NULL) d
        GROUP BY lesson_id
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

CREATE TRIGGER tasks_lesson_progress_insert
    AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION lesson_progress_inserted();

CREATE TRIGGER tasks_lesson_progress_update
    AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION lesson_progress_updated();
