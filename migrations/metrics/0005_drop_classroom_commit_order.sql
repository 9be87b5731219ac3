-- Every consumer of the events table reads the global commit order
-- (usability_events_global_commit_order): the classroom rollups, and each
-- detector replica, which keeps the classrooms of its partitions. Nothing
-- reads one classroom's events in commit order on a hot path any more, and
-- the per-classroom index cost every write a third random B-tree insertion:
-- without it a raw COPY of the same rows ran 1.4x as fast, and RecordMetrics
-- 1.18x (docs/BENCHMARKS.md, "Metrics ingest"). A classroom's events are
-- still found through the identity index, which leads with classroom_id.
DROP INDEX IF EXISTS usability_events_commit_order;
