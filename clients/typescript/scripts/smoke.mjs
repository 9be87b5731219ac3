// Drives a running gateway through the built client (dist/), as an app would:
// follows the session watch, registers a session, enqueues a task with a JSON
// payload, posts a metrics batch whose first answer is lost on the way back
// (the retry must reuse the event ids and count as duplicates), and reads a
// refused stream as a GaiaError. Prints one JSON line; exits 1 on a failure.
// Usage: node scripts/smoke.mjs http://127.0.0.1:8080 [TOKEN] (default $GAIA_TOKEN: the
// credential presented, e.g. $(cat data/auth/admin.token))
import { createGaiaClient, GaiaError } from "../dist/index.js";

const baseUrl = process.argv[2];
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

let metricsCalls = 0;
// A fetch that loses the answer of the first metrics batch after the gateway
// stored it, as a dropped connection would.
const lossyFetch = async (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const response = await fetch(input, init);
  if (url.endsWith("/v1/metrics") && ++metricsCalls === 1) throw new TypeError("network error (simulated)");
  return response;
};
const token = process.argv[3] ?? process.env.GAIA_TOKEN;
const gaia = createGaiaClient({ baseUrl, fetch: lossyFetch, token });
const name = `ts_${Date.now()}`;

const watching = new AbortController();
const seen = (async () => {
  try {
    for await (const { event } of gaia.follow("/v1/sessions:watch", { query: { after_index: "0" } }, watching.signal)) {
      if (event?.session?.name === name) return event.type;
    }
  } catch (err) {
    if (!watching.signal.aborted) throw err;
  }
  return undefined;
})();

const reg = await gaia.api.POST("/v1/sessions", { body: { name, tier: "SESSION_TIER_WORKER", provider: "PROVIDER_OTHER" } });
check(reg.data?.session?.name === name && typeof reg.data?.session_token === "string", `register: ${JSON.stringify(reg.error)}`);

const enq = await gaia.api.POST("/v1/tasks", { body: { idempotency_key: `${name}/1`, task_type: "exercise", payload: { step: 1, files: ["a.go"], extra: null } } });
check(enq.data?.task?.payload?.step === 1 && enq.data.duplicate === false, `enqueue: ${JSON.stringify(enq)}`);

const now = new Date().toISOString();
const events = [
  { app_id: "fractions", classroom_id: "room-ts", student_id: "s-1", item_id: "q1", kind: "EVENT_KIND_ATTEMPT", correct: false, occurred_at: now },
  { app_id: "fractions", classroom_id: "room-ts", student_id: "s-1", kind: "EVENT_KIND_CLICK", x: 1, y: 2, occurred_at: now },
];
const recorded = await gaia.recordMetrics(events, { attempts: 3, baseDelayMs: 50 });
check(metricsCalls === 2 && recorded.accepted === 0 && recorded.duplicates === 2 && recorded.rejected.length === 0,
  `metrics retry: calls ${metricsCalls}, answer ${JSON.stringify(recorded)}; want the retry to count both events as duplicates`);

let refused;
try {
  for await (const _ of gaia.follow("/v1/sessions:watch", { query: { types: ["NOT_A_TYPE"] } })) { /* none */ }
} catch (err) {
  refused = err;
}
check(refused instanceof GaiaError && refused.code === 3 && refused.httpStatus === 400, `refused stream: ${refused}`);

const type = await Promise.race([seen, new Promise((r) => setTimeout(() => r("timeout"), 10000))]);
watching.abort();
check(type === "SESSION_EVENT_TYPE_REGISTERED" || type === "SESSION_EVENT_TYPE_SNAPSHOT", `watch saw ${type}`);

console.log(JSON.stringify({ ok: failures.length === 0, failures, recorded }));
process.exit(failures.length === 0 ? 0 : 1);
