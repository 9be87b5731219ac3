-- The dashboard schema belongs to the dashboard service alone; no other service reads or
-- writes it. The migration runner creates the schema itself (it keeps its
-- bookkeeping there), so this first migration only describes it. Tables arrive in
-- later migrations with the features that need them.
COMMENT ON SCHEMA dashboard IS 'Owned by the dashboard service: teachers, classroom assignments, alerts and interventions.';
