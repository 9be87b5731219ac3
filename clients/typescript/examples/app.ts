// An education app and an operator script using @gaia-platform/client: what
// `make test` type-checks with tsc --strict against the generated types.
import { createGaiaClient, GaiaError, type Schemas } from "../src/index.js";

const gaia = createGaiaClient({ baseUrl: "http://127.0.0.1:8080", token: "an operator or app credential" });

// Enqueue a task with a free-form JSON payload (google.protobuf.Struct).
export async function enqueue(): Promise<Schemas["Task"]> {
  const { data, error } = await gaia.api.POST("/v1/tasks", {
    body: {
      idempotency_key: "fractions/step-1",
      task_type: "exercise",
      payload: { step: 1, files: ["src/app.go"], options: { hints: true, level: null } },
      priority: 5,
      claim_timeout: "45s",
    },
  });
  if (error) throw new GaiaError(error.error.code, error.error.message, 400);
  // Required in answers: no undefined check needed for fields always written.
  const state: Schemas["TaskState"] = data.task?.state ?? "TASK_STATE_UNSPECIFIED";
  console.log(`task ${data.task?.task_id} is ${state}, duplicate: ${data.duplicate}`);
  if (!data.task) throw new Error("no task");
  return data.task;
}

// Post a batch of student interaction events; a retry reuses the event ids.
export async function postMetrics(): Promise<number> {
  const now = new Date().toISOString();
  const events: Schemas["UsabilityEvent"][] = [
    { app_id: "fractions", classroom_id: "room-9", student_id: "s-1", item_id: "q1", kind: "EVENT_KIND_ATTEMPT", correct: false, occurred_at: now },
    { event_id: "click-42", app_id: "fractions", classroom_id: "room-9", student_id: "s-1", kind: "EVENT_KIND_CLICK", x: 10, y: 20, occurred_at: now, attrs: { target: "submit" } },
  ];
  const result = await gaia.recordMetrics(events, { attempts: 4 });
  for (const r of result.rejected) console.warn(`event ${r.index} (${r.field}): ${r.reason}`);
  return result.accepted + result.duplicates;
}

// Follow a watch stream: every line's result as it comes, resumable by id.
export async function followAlerts(teacherId: string, signal: AbortSignal): Promise<string> {
  let lastAlertId = "0";
  try {
    for await (const line of gaia.follow("/v1/teachers/{teacher_id}/alerts:subscribe", { path: { teacher_id: teacherId }, query: { after_alert_id: lastAlertId } }, signal)) {
      const alert: Schemas["Alert"] | undefined = line.alert;
      if (alert) {
        lastAlertId = alert.alert_id;
        console.log(`${alert.severity} ${alert.indicator}: ${alert.reasons.join("; ")}`);
      }
    }
  } catch (err) {
    if (err instanceof GaiaError && err.code === 16) console.error("credential refused:", err.message);
    else if (!signal.aborted) throw err;
  }
  return lastAlertId; // resume with after_alert_id = lastAlertId
}

export async function followSessions(signal: AbortSignal): Promise<void> {
  for await (const { event } of gaia.follow("/v1/sessions:watch", { query: { after_index: "0", types: ["SESSION_EVENT_TYPE_FAILED"] } }, signal)) {
    if (event) console.log(`#${event.index} ${event.type} ${event.session?.name ?? ""}`);
  }
}
