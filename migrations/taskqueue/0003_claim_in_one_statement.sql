-- The claim in one statement.
--
-- A claim was a transaction of five round trips (settings and the session's
-- lock, the count of its claims, the candidates, the claim, the commit),
-- after a sixth outside it for the session's affinities. claim_tasks does
-- all of it, the affinities included, in one call. Being VOLATILE, each of
-- its queries takes a new snapshot, so the count of the session's claims is
-- read after its lock is held, as it was in the transaction.

-- window_contains is internal/window's Window.Contains over the JSON that
-- session_affinities.time_window holds ({"days": [ISO weekdays],
-- "start_minute", "end_minute", "time_zone"}): a window whose end is before
-- its start wraps past midnight and belongs to the day it opens; a time zone
-- PostgreSQL does not know matches nothing, as one Go cannot load does.
CREATE FUNCTION window_contains(w jsonb, at timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_at  timestamp;
    minute    int;
    day       int;
    start_min int := (w->>'start_minute')::int;
    end_min   int := (w->>'end_minute')::int;
    days      jsonb := coalesce(w->'days', '[]');
BEGIN
    BEGIN
        local_at := at AT TIME ZONE coalesce(nullif(w->>'time_zone', ''), 'UTC');
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN false;
    END;
    minute := extract(hour FROM local_at)::int * 60 + extract(minute FROM local_at)::int;
    day := extract(isodow FROM local_at)::int;
    IF start_min < end_min THEN
        RETURN minute >= start_min AND minute < end_min
           AND (jsonb_array_length(days) = 0 OR days @> to_jsonb(day));
    END IF;
    IF minute >= start_min THEN
        RETURN jsonb_array_length(days) = 0 OR days @> to_jsonb(day);
    END IF;
    IF minute < end_min THEN
        RETURN jsonb_array_length(days) = 0 OR days @> to_jsonb(CASE WHEN day = 1 THEN 7 ELSE day - 1 END);
    END IF;
    RETURN false;
END
$$;

-- The lessons a session has affinity with at a moment, best score first
-- (ties by lesson id, as text): their tasks are claimed before any other.
CREATE FUNCTION session_lessons(p_session_name text, p_at timestamptz) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT lesson_id FROM taskqueue.session_affinities
    WHERE session_name = p_session_name
      AND (time_window IS NULL OR taskqueue.window_contains(time_window, p_at))
    ORDER BY score DESC, lesson_id::text
    LIMIT 1000
$$;

-- claim_bound is a size in bytes that a claim of the task, as a
-- ClaimTasksResponse carries it, never exceeds: about 300 bytes of fixed
-- fields, the strings with their framing, and the payload and result as
-- protobuf Structs, which take at most 4 bytes per byte of their jsonb text
-- (a number "0, " becomes an 11-byte Value; 5 leaves room).
CREATE FUNCTION claim_bound(t taskqueue.tasks, p_session_id text, p_session_name text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT 512
         + 5 * (octet_length(t.payload::text) + coalesce(octet_length(t.result::text), 0))
         + 2 * (octet_length(t.idempotency_key) + octet_length(t.task_type) + octet_length(t.last_error)
                + octet_length(p_session_id) + octet_length(p_session_name))
$$;

-- claim_part claims, of the ready tasks of one lesson (or, with p_lesson
-- NULL, of any), up to p_want in claim order, while claim_bound's running
-- total fits p_left (NULL: no budget). p_first says that nothing is claimed
-- yet, so the first task goes whatever its size. Each row has its place n in
-- the part's claim order, the running total upto, and how many tasks were
-- picked, of which fewer were claimed when the budget stopped the part.
CREATE FUNCTION claim_part(p_session_id text, p_session_name text, p_types text[], p_lesson uuid,
                           p_want int, p_left bigint, p_first boolean)
RETURNS TABLE (task taskqueue.tasks, n bigint, upto bigint, picked bigint)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_lesson IS NOT NULL THEN
        RETURN QUERY
            WITH picked AS (
                SELECT t.task_id, t.priority, t.run_at, taskqueue.claim_bound(t, p_session_id, p_session_name) AS bound
                FROM taskqueue.tasks t
                WHERE t.state = 'pending' AND t.lesson_id = p_lesson AND t.run_at <= now()
                  AND (p_types IS NULL OR t.task_type = ANY(p_types))
                ORDER BY t.priority DESC, t.run_at, t.task_id
                LIMIT p_want FOR UPDATE SKIP LOCKED),
            sized AS (
                SELECT p.task_id, count(*) OVER () AS picked,
                       row_number() OVER w AS n, sum(p.bound) OVER w AS upto
                FROM picked p
                WINDOW w AS (ORDER BY p.priority DESC, p.run_at, p.task_id ROWS UNBOUNDED PRECEDING))
            UPDATE taskqueue.tasks t SET state = 'claimed', attempt = t.attempt + 1,
                   claimed_by_session_id = p_session_id, claimed_by_session_name = p_session_name,
                   claim_expires_at = now() + t.claim_timeout_ms * interval '1 millisecond', updated_at = now()
            FROM sized s
            WHERE t.task_id = s.task_id AND (p_left IS NULL OR s.upto <= p_left OR (p_first AND s.n = 1))
            RETURNING t, s.n, s.upto::bigint, s.picked;
    ELSE
        RETURN QUERY
            WITH picked AS (
                SELECT t.task_id, t.priority, t.lesson_priority, t.run_at, taskqueue.claim_bound(t, p_session_id, p_session_name) AS bound
                FROM taskqueue.tasks t
                WHERE t.state = 'pending' AND t.run_at <= now()
                  AND (p_types IS NULL OR t.task_type = ANY(p_types))
                ORDER BY t.priority DESC, t.lesson_priority DESC, t.run_at, t.task_id
                LIMIT p_want FOR UPDATE SKIP LOCKED),
            sized AS (
                SELECT p.task_id, count(*) OVER () AS picked,
                       row_number() OVER w AS n, sum(p.bound) OVER w AS upto
                FROM picked p
                WINDOW w AS (ORDER BY p.priority DESC, p.lesson_priority DESC, p.run_at, p.task_id ROWS UNBOUNDED PRECEDING))
            UPDATE taskqueue.tasks t SET state = 'claimed', attempt = t.attempt + 1,
                   claimed_by_session_id = p_session_id, claimed_by_session_name = p_session_name,
                   claim_expires_at = now() + t.claim_timeout_ms * interval '1 millisecond', updated_at = now()
            FROM sized s
            WHERE t.task_id = s.task_id AND (p_left IS NULL OR s.upto <= p_left OR (p_first AND s.n = 1))
            RETURNING t, s.n, s.upto::bigint, s.picked;
    END IF;
END
$$;

-- claim_tasks claims up to p_limit ready tasks for a session within its
-- free capacity (p_max_concurrent less the claims it holds), serialised per
-- session: first the tasks of the lessons it has affinity with at p_at,
-- best lesson first, then any. p_budget, when not NULL, is the reply's byte
-- budget, kept with claim_bound (claim_part); when it stops the claim short,
-- every row returned has cut set, and the caller, which can measure a claim
-- exactly, may claim on from there. pos is the claim order.
--
-- The settings rule out, for these queries only, the plans that a young or
-- stale table's statistics invite (gather and sort every pending task, at a
-- cost growing with the queue's depth), and the JIT compilation that the
-- small sort left then costs enough to set off.
CREATE FUNCTION claim_tasks(p_session_id text, p_session_name text, p_types text[], p_limit int,
                            p_max_concurrent int, p_budget bigint, p_at timestamptz)
RETURNS TABLE (claimed taskqueue.tasks, pos int, cut boolean)
LANGUAGE plpgsql
SET enable_bitmapscan = off SET enable_sort = off SET jit = off
AS $$
DECLARE
    v_want   int;
    v_left   bigint := p_budget;
    v_cut    boolean := false;
    v_rows   taskqueue.tasks[] := '{}';
    v_part   taskqueue.tasks[];
    v_lessons uuid[];
    v_lesson uuid;
    v_used   bigint;
    v_picked bigint;
    r        record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_session_id, 7));
    SELECT least(p_limit, p_max_concurrent - count(*)) INTO v_want
    FROM taskqueue.tasks WHERE state = 'claimed' AND claimed_by_session_id = p_session_id;

    -- The lessons in order, then (NULL) any task.
    v_lessons := array_append(ARRAY(SELECT taskqueue.session_lessons(p_session_name, p_at)), NULL::uuid);
    FOREACH v_lesson IN ARRAY v_lessons LOOP
        EXIT WHEN v_want <= 0 OR v_cut;
        v_part := '{}'; v_used := 0; v_picked := 0;
        FOR r IN SELECT * FROM taskqueue.claim_part(p_session_id, p_session_name, p_types, v_lesson,
                                                    v_want, v_left, cardinality(v_rows) = 0) LOOP
            -- RETURNING comes in no particular order; n places each row.
            v_part[r.n] := r.task;
            v_used := greatest(v_used, r.upto);
            v_picked := r.picked;
        END LOOP;
        v_rows := v_rows || v_part;
        v_want := v_want - cardinality(v_part);
        v_left := v_left - v_used;
        v_cut := v_picked > cardinality(v_part);
    END LOOP;

    RETURN QUERY SELECT v_rows[i], i, v_cut FROM generate_subscripts(v_rows, 1) AS i;
END
$$;
