-- tasks_claim_by_lesson without the tasks that have no lesson.
--
-- The index serves claims of one lesson's tasks (claim_part, the adapter's
-- exact claim) and the copying of a lesson's priority to its pending tasks;
-- every one of them names the lesson, so an entry of a task with no lesson
-- was never read. It was written all the same, at each enqueue and each
-- return to pending of such a task. Each query's lesson_id = … implies
-- lesson_id IS NOT NULL, so the planner still matches them to this index.
DROP INDEX tasks_claim_by_lesson;
CREATE INDEX tasks_claim_by_lesson ON tasks (lesson_id, priority DESC, run_at, task_id)
    WHERE state = 'pending' AND lesson_id IS NOT NULL;
