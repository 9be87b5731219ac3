-- The metrics schema belongs to the metrics service alone; no other service reads or
-- writes it. The migration runner creates the schema itself (it keeps its
-- bookkeeping there), so this first migration only describes it. Tables arrive in
-- later migrations with the features that need them.
COMMENT ON SCHEMA metrics IS 'Owned by the metrics service: usability events, ratings, frustration events and classroom snapshots.';
