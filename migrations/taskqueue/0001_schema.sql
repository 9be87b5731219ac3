-- The taskqueue schema belongs to the taskqueue service alone; no other service reads or
-- writes it. The migration runner creates the schema itself (it keeps its
-- bookkeeping there), so this first migration only describes it. Tables arrive in
-- later migrations with the features that need them.
COMMENT ON SCHEMA taskqueue IS 'Owned by the taskqueue service: tasks, lessons and session affinities.';
