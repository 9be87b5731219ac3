-- Concurrent claims in one statement.
--
-- Sixteen sessions claiming at once were sixteen claim_tasks statements,
-- each walking the same head of tasks_claim_order, skipping the rows the
-- others had locked and waiting on the same buffers (docs/BENCHMARKS.md,
-- issue #15). The task queue now gathers the claims that arrive while one is
-- in flight and makes them in one call of claim_tasks_many: each request
-- keeps its session's lock, capacity, affinities, types, limit and byte
-- budget exactly as claim_tasks keeps them, and the "any task" part of the
-- requests that share a types filter is one walk of the index and one
-- UPDATE. claim_tasks stays for a database that an older binary still uses.

-- claim_any_many claims, of any ready task (of p_types, NULL for any type),
-- for the requests p_reqs in that order: each takes the next p_want[req]
-- tasks in claim order, of which it claims those whose claim_bound running
-- total fits p_left[req] (NULL: no budget; the first always goes when
-- p_first[req]), as claim_part does for one. The other arrays are indexed by
-- request. Each row has its request, its place n in the request's share,
-- the running total upto and how many tasks the request was given.
CREATE FUNCTION claim_any_many(p_types text[], p_reqs int[], p_session_ids text[], p_session_names text[],
                               p_want int[], p_left bigint[], p_first boolean[])
RETURNS TABLE (req int, task taskqueue.tasks, n bigint, upto bigint, picked bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
        WITH want AS (
            SELECT q.req, p_want[q.req] AS want,
                   coalesce(sum(p_want[q.req]) OVER (ORDER BY q.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS off,
                   2 * (octet_length(p_session_ids[q.req]) + octet_length(p_session_names[q.req])) AS session_bytes
            FROM unnest(p_reqs) WITH ORDINALITY AS q(req, ord)),
        picked AS (
            SELECT t.task_id, t.priority, t.lesson_priority, t.run_at, taskqueue.claim_bound(t, '', '') AS bound
            FROM taskqueue.tasks t
            WHERE t.state = 'pending' AND t.run_at <= now()
              AND (p_types IS NULL OR t.task_type = ANY(p_types))
            ORDER BY t.priority DESC, t.lesson_priority DESC, t.run_at, t.task_id
            LIMIT (SELECT sum(w.want) FROM want w) FOR UPDATE SKIP LOCKED),
        ranked AS (
            SELECT p.task_id, p.bound,
                   row_number() OVER (ORDER BY p.priority DESC, p.lesson_priority DESC, p.run_at, p.task_id) AS k
            FROM picked p),
        sized AS (
            SELECT r.task_id, w.req, r.k - w.off AS n,
                   sum(r.bound + w.session_bytes) OVER (PARTITION BY w.req ORDER BY r.k ROWS UNBOUNDED PRECEDING) AS upto,
                   count(*) OVER (PARTITION BY w.req) AS picked
            FROM ranked r JOIN want w ON r.k > w.off AND r.k <= w.off + w.want)
        UPDATE taskqueue.tasks t SET state = 'claimed', attempt = t.attempt + 1,
               claimed_by_session_id = p_session_ids[s.req], claimed_by_session_name = p_session_names[s.req],
               claim_expires_at = now() + t.claim_timeout_ms * interval '1 millisecond', updated_at = now()
        FROM sized s
        WHERE t.task_id = s.task_id
          AND (p_left[s.req] IS NULL OR s.upto <= p_left[s.req] OR (p_first[s.req] AND s.n = 1))
        RETURNING s.req, t, s.n::bigint, s.upto::bigint, s.picked;
END
$$;

-- claim_tasks_many is claim_tasks for several requests at once, the
-- arrays indexed by request; p_types is a JSON array holding each request's
-- task types (an array of strings, or null for any). A session may appear
-- once. The sessions' locks are taken in one order, so that two such
-- statements, or one and a claim_tasks, cannot deadlock. Each request then
-- claims from the lessons its session has affinity with at p_ats[req], best
-- first, as claim_tasks does; then the requests that still want tasks and
-- were not stopped by their budget claim any task together, those with the
-- same types in one claim_any_many, in request order.
--
-- Each row returned has its request and its place pos in that request's
-- claims; the rows come in no particular order. A row of a lesson's part
-- has cut, which says that the budget cut that part short; a row of the
-- "any task" part has picked, the number of tasks that part gave its
-- request, of which fewer were claimed when the budget cut it short. The
-- request was cut (claim_tasks's cut) when a row says so, or picked exceeds
-- the rows of its "any task" part. Those rows go straight from the UPDATE
-- to the result, not through PL/pgSQL variables, which cost a fifth of the
-- statement's time with 1,600 claims.
--
-- The settings are claim_tasks's, and two more: the planner cannot know
-- how many tasks a claim picks, guessed thousands, and joined them to the
-- tasks they update by hashing the whole table (22 of the 33 ms of a claim
-- of 400 from 50,000 tasks, in EXPLAIN ANALYZE); with hash and merge joins
-- ruled out it looks each one up by its key (9.5 ms in all).
CREATE FUNCTION claim_tasks_many(p_session_ids text[], p_session_names text[], p_types jsonb, p_limits int[],
                                 p_max_concurrent int[], p_budgets bigint[], p_ats timestamptz[])
RETURNS TABLE (req int, claimed taskqueue.tasks, pos int, cut boolean, picked bigint)
LANGUAGE plpgsql
SET enable_bitmapscan = off SET enable_sort = off SET jit = off
SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_n       int := cardinality(p_session_ids);
    v_want    int[];
    v_left    bigint[] := p_budgets;
    v_cut     boolean[] := array_fill(false, ARRAY[v_n]);
    v_count   int[] := array_fill(0, ARRAY[v_n]);
    v_out_req int[] := '{}';
    v_out_pos int[] := '{}';
    v_out     taskqueue.tasks[] := '{}';
    v_k       int := 0;
    v_g       int;
    v_u       bigint;
    v_p       bigint;
    v_key     bigint;
    v_lesson  uuid;
    v_types   text[];
    v_group   jsonb;
    v_reqs    int[];
    v_first   boolean[];
    i         int;
    r         record;
BEGIN
    IF v_n IS NULL OR v_n = 0 THEN
        RETURN;
    END IF;
    FOR v_key IN SELECT DISTINCT hashtextextended(s, 7) AS k FROM unnest(p_session_ids) s ORDER BY k LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
    -- Each session's free capacity, read now that its lock is held.
    SELECT array_agg(least(l.lim, l.maxc - c.held) ORDER BY l.ord) INTO v_want
    FROM unnest(p_session_ids, p_limits, p_max_concurrent) WITH ORDINALITY AS l(sid, lim, maxc, ord)
    CROSS JOIN LATERAL (SELECT count(*) AS held FROM taskqueue.tasks t
                        WHERE t.state = 'claimed' AND t.claimed_by_session_id = l.sid) c;

    -- The lessons of each request's session, in order.
    FOR i IN 1..v_n LOOP
        CONTINUE WHEN v_want[i] <= 0;
        v_types := CASE WHEN jsonb_typeof(p_types->(i - 1)) = 'array'
                        THEN ARRAY(SELECT jsonb_array_elements_text(p_types->(i - 1))) END;
        FOR v_lesson IN SELECT l FROM taskqueue.session_lessons(p_session_names[i], p_ats[i]) l LOOP
            EXIT WHEN v_want[i] <= 0 OR v_cut[i];
            v_g := 0; v_u := 0; v_p := 0;
            FOR r IN SELECT * FROM taskqueue.claim_part(p_session_ids[i], p_session_names[i], v_types, v_lesson,
                                                        v_want[i], v_left[i], v_count[i] = 0) LOOP
                v_k := v_k + 1;
                v_out_req[v_k] := i;
                v_out_pos[v_k] := v_count[i] + r.n;
                v_out[v_k] := r.task;
                v_g := v_g + 1;
                v_u := greatest(v_u, r.upto);
                v_p := r.picked;
            END LOOP;
            v_count[i] := v_count[i] + v_g;
            v_want[i] := v_want[i] - v_g;
            v_left[i] := v_left[i] - v_u;
            v_cut[i] := v_p > v_g;
        END LOOP;
    END LOOP;

    -- Then any task, the requests with the same types together.
    FOR v_group IN SELECT DISTINCT coalesce(p_types->(k - 1), 'null') AS g FROM generate_series(1, v_n) k
                   WHERE v_want[k] > 0 AND NOT v_cut[k] LOOP
        v_reqs := ARRAY(SELECT k FROM generate_series(1, v_n) k
                        WHERE v_want[k] > 0 AND NOT v_cut[k] AND coalesce(p_types->(k - 1), 'null') = v_group
                        ORDER BY k);
        v_types := CASE WHEN jsonb_typeof(v_group) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(v_group)) END;
        v_first := ARRAY(SELECT v_count[k] = 0 FROM generate_series(1, v_n) k ORDER BY k);
        RETURN QUERY
            SELECT a.req, a.task, (v_count[a.req] + a.n)::int, false, a.picked
            FROM taskqueue.claim_any_many(v_types, v_reqs, p_session_ids, p_session_names, v_want, v_left, v_first) a;
    END LOOP;

    RETURN QUERY SELECT v_out_req[k], v_out[k], v_out_pos[k], v_cut[v_out_req[k]], NULL::bigint
                 FROM generate_series(1, v_k) k;
END
$$;

-- release_claims puts back claims that were made for a caller who had gone
-- before they could be handed over: their tokens never left the task queue,
-- so each task goes back to pending at the attempt it had, as if the claim
-- had not been made. A claim that is no longer as it was made is left alone.
CREATE FUNCTION release_claims(p_session_id text, p_task_ids uuid[], p_attempts int[])
RETURNS SETOF uuid
LANGUAGE sql AS $$
    UPDATE taskqueue.tasks t SET state = 'pending', attempt = t.attempt - 1,
           claimed_by_session_id = NULL, claimed_by_session_name = NULL, claim_expires_at = NULL,
           lesson_priority = coalesce((SELECT l.priority FROM taskqueue.lessons l WHERE l.lesson_id = t.lesson_id), t.lesson_priority),
           updated_at = now()
    FROM unnest(p_task_ids, p_attempts) AS c(task_id, attempt)
    WHERE t.task_id = c.task_id AND t.attempt = c.attempt AND t.state = 'claimed'
      AND t.claimed_by_session_id = p_session_id
    RETURNING t.task_id
$$;
