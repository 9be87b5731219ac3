// The teacher dashboard page. It talks only to the gateway's REST API:
//   GET  /v1/teachers/{t}/classrooms, PUT /v1/teachers/{t}/classrooms/{c}
//   GET  /v1/classrooms/{c}/overview?teacher_id=t
//   GET  /v1/classrooms/{c}/snapshots
//   GET  /v1/teachers/{t}/alerts (history) and /v1/teachers/{t}/alerts:subscribe
//        (newline-delimited JSON, one {"result": ...} or {"error": ...} per line)
//   POST /v1/alerts/{id}:acknowledge, :resolve, /interventions
// The live stream resumes with after_alert_id = the highest id shown, so a
// reconnection neither loses nor repeats an alert.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  teacher: "",
  classroom: "",
  alerts: new Map(), // alert id (number) -> alert
  lastId: 0,
  enabled: true,
  streamAbort: null,
  retry: 0,
  refreshTimer: 0,
  // How many times the stream delivered each alert id: tests check that a
  // reconnection never repeats one.
  deliveries: new Map(),
};
window.gaiaDashboard = state;

const SEVERITY = { SEVERITY_INFO: "info", SEVERITY_WARNING: "warning", SEVERITY_HIGH: "high", SEVERITY_CRITICAL: "critical" };
const STUDENT_STATE = {
  STUDENT_STATE_CRITICAL: "critical", STUDENT_STATE_IDLE: "idle", STUDENT_STATE_MISUSE: "misuse",
  STUDENT_STATE_STRUGGLE: "struggle", STUDENT_STATE_OK: "ok",
};
const ALERT_STATE = { ALERT_STATE_OPEN: "open", ALERT_STATE_ACKNOWLEDGED: "acknowledged", ALERT_STATE_RESOLVED: "resolved" };

function indicatorName(ind) {
  return (ind || "").replace(/^INDICATOR_/, "").toLowerCase().replace(/_/g, " ");
}

function headers(json) {
  const h = {};
  const token = localStorage.getItem("gaia.token");
  if (token) h.Authorization = "Bearer " + token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { message: text }; }
  // Every API error is {"error": {"code", "message", "details"}} (openapi.json).
  if (!res.ok) throw new Error((data.error && data.error.message) || data.message || res.status + " " + res.statusText);
  return data;
}

const enc = encodeURIComponent;

function setConn(text, cls) {
  const el = $("#conn");
  el.textContent = text;
  el.className = "conn " + (cls || "");
}

function banner(text) {
  const el = $("#banner");
  el.hidden = !text;
  el.textContent = text || "";
}

// ---- routing -------------------------------------------------------------

function route() {
  const params = new URLSearchParams(location.search);
  state.teacher = params.get("teacher") || localStorage.getItem("gaia.teacher") || "";
  $("#teacher").value = state.teacher;
  const m = location.pathname.match(/^\/classrooms\/([^/]+)$/);
  state.classroom = m ? decodeURIComponent(m[1]) : "";
  $("#home").hidden = !!state.classroom;
  $("#room").hidden = !state.classroom;
  if (!state.teacher) {
    banner("Enter your teacher id above to see your classrooms.");
    $("#home").hidden = true;
    $("#room").hidden = true;
    return;
  }
  localStorage.setItem("gaia.teacher", state.teacher);
  $("#back").href = "/?teacher=" + enc(state.teacher);
  if (state.classroom) openClassroom(); else openHome();
}

$("#who").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("#teacher").value.trim();
  if (!t) return;
  const url = new URL(location.href);
  url.searchParams.set("teacher", t);
  location.href = url.toString();
});

$("#sound").checked = localStorage.getItem("gaia.sound") === "on";
$("#sound").addEventListener("change", (ev) => localStorage.setItem("gaia.sound", ev.target.checked ? "on" : "off"));

// ---- home: the teacher's classrooms -----------------------------------------

async function openHome() {
  document.querySelectorAll(".tid").forEach((el) => { el.textContent = state.teacher; });
  try {
    const data = await api("GET", "/v1/teachers/" + enc(state.teacher) + "/classrooms");
    applyEnabled(data.alerts_enabled);
    const list = $("#classrooms");
    list.replaceChildren();
    for (const a of data.assignments || []) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/classrooms/" + enc(a.classroom_id) + "?teacher=" + enc(state.teacher);
      link.textContent = a.display_name || a.classroom_id;
      const small = document.createElement("small");
      small.textContent = a.classroom_id;
      link.append(small);
      li.append(link);
      list.append(li);
    }
    $("#no-classrooms").hidden = (data.assignments || []).length > 0;
  } catch (e) {
    banner("Could not load your classrooms: " + e.message);
  }
}

$("#assign").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const c = f.classroom.value.trim();
  try {
    await api("PUT", "/v1/teachers/" + enc(state.teacher) + "/classrooms/" + enc(c), { display_name: f.name.value.trim() });
    f.reset();
    openHome();
  } catch (e) {
    banner("Could not assign " + c + ": " + e.message);
  }
});

function applyEnabled(enabled) {
  state.enabled = enabled !== false;
  if (!state.enabled) banner("Alerts are turned off on this dashboard (TEACHER_DASHBOARD_ENABLED=false): no new alerts are raised; past ones stay readable.");
}

// ---- a classroom -------------------------------------------------------------

async function openClassroom() {
  $("#room-name").textContent = state.classroom;
  try {
    const data = await api("GET", "/v1/teachers/" + enc(state.teacher) + "/classrooms");
    applyEnabled(data.alerts_enabled);
    const mine = (data.assignments || []).find((a) => a.classroom_id === state.classroom);
    if (!mine) {
      banner("Classroom " + state.classroom + " is not assigned to " + state.teacher + ".");
      $("#room").hidden = true;
      return;
    }
    $("#room-name").textContent = mine.display_name || state.classroom;
    document.title = (mine.display_name || state.classroom) + " · GAIA";
  } catch (e) {
    banner("Could not load your classrooms: " + e.message);
  }
  await loadHistory();
  connect();
  refreshOverview();
  refreshSnapshots();
  setInterval(refreshOverview, 10000);
  setInterval(refreshSnapshots, 30000);
}

async function loadHistory() {
  try {
    const data = await api("GET", "/v1/teachers/" + enc(state.teacher) + "/alerts?classroom_ids=" + enc(state.classroom) + "&page_size=100");
    for (const a of (data.alerts || []).reverse()) addAlert(a, false);
  } catch (e) {
    banner("Could not load past alerts: " + e.message);
  }
}

// connect follows the REST stream, resuming after the last id shown.
async function connect() {
  const ctl = new AbortController();
  state.streamAbort = ctl;
  const url = "/v1/teachers/" + enc(state.teacher) + "/alerts:subscribe?classroom_ids=" + enc(state.classroom) + "&after_alert_id=" + state.lastId;
  let why = "the connection closed";
  try {
    const res = await fetch(url, { headers: headers(false), signal: ctl.signal });
    if (!res.ok) {
      const text = await res.text();
      let msg = text;
      try { const body = JSON.parse(text); msg = (body.error && body.error.message) || body.message; } catch (e) { /* not JSON */ }
      throw new Error(msg || res.statusText);
    }
    const reader = res.body.getReader();
    // The dashboard sends a heartbeat at least every 15 s; a longer silence
    // is a dead connection (a sleeping laptop, a dropped Wi-Fi).
    let watchdog = 0;
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => { why = "no heartbeat for 40 s"; ctl.abort(); }, 40000);
    };
    alive();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        alive();
        if (msg.error) { why = msg.error.message || "the stream ended"; continue; }
        if (msg.result && msg.result.heartbeat) {
          // The stored alerts are in; from here on delivery is live.
          setConn("live", "live");
          state.retry = 0;
        }
        if (msg.result && msg.result.alert) {
          const id = Number(msg.result.alert.alert_id);
          state.deliveries.set(id, (state.deliveries.get(id) || 0) + 1);
          addAlert(msg.result.alert, true);
        }
      }
    }
    clearTimeout(watchdog);
  } catch (e) {
    if (!ctl.signal.aborted) why = e.message;
  }
  setConn("reconnecting…", "reconnecting");
  const delay = Math.min(5000, 250 * 2 ** state.retry++);
  console.info("alert stream ended (" + why + "); reconnecting in " + delay + " ms after alert " + state.lastId);
  setTimeout(connect, delay);
}

function addAlert(a, live) {
  const id = Number(a.alert_id);
  const known = state.alerts.has(id);
  state.alerts.set(id, a);
  if (id > state.lastId) state.lastId = id;
  renderAlert(a, live && !known);
  $("#no-alerts").hidden = state.alerts.size > 0;
  $("#alert-count").textContent = "(" + state.alerts.size + ")";
  if (live && !known) {
    if (SEVERITY[a.severity] === "critical") beep();
    scheduleOverview();
  }
}

function renderAlert(a, fresh) {
  const id = Number(a.alert_id);
  let li = document.getElementById("alert-" + id);
  if (!li) {
    li = $("#alert-tpl").content.firstElementChild.cloneNode(true);
    li.id = "alert-" + id;
    li.dataset.alertId = String(id);
    wireAlert(li, id);
    // Newest first: insert before the first shown alert with a smaller id.
    const feed = $("#feed");
    const after = [...feed.children].find((el) => Number(el.dataset.alertId) < id);
    feed.insertBefore(li, after || null);
  }
  const sev = SEVERITY[a.severity] || "info";
  const st = ALERT_STATE[a.state] || "open";
  li.className = "alert sev-" + sev + " " + st + (fresh ? " fresh" : "");
  li.querySelector(".sev").textContent = sev;
  li.querySelector(".who").textContent = a.student_id ? a.student_id : "Whole class";
  li.querySelector(".what").textContent = indicatorName(a.indicator) + (a.item_id ? " · " + a.item_id : "");
  const when = a.created_at ? new Date(a.created_at) : new Date();
  li.querySelector(".when").textContent = when.toLocaleTimeString();
  li.querySelector(".when").dateTime = when.toISOString();
  let stText = st;
  if (st === "acknowledged" && a.acknowledged_by) stText += " by " + a.acknowledged_by;
  if (st === "resolved") stText += " (" + (a.outcome || "").replace(/^ALERT_OUTCOME_/, "").toLowerCase().replace(/_/g, " ") + ")";
  li.querySelector(".state").textContent = stText;
  const reasons = li.querySelector(".reasons");
  reasons.replaceChildren(...(a.reasons || []).map((r) => { const x = document.createElement("li"); x.textContent = r; return x; }));
  li.querySelector(".ack").disabled = st !== "open";
  li.querySelector(".resolve").hidden = st === "resolved";
  const ins = a.interventions || [];
  li.querySelector(".interventions").textContent = ins.length
    ? "Done: " + ins.map((i) => (i.action || "").replace(/^INTERVENTION_ACTION_/, "").toLowerCase().replace(/_/g, " ") + (i.notes ? " (" + i.notes + ")" : "")).join("; ")
    : "";
}

function wireAlert(li, id) {
  const err = li.querySelector(".error");
  const run = async (fn) => {
    err.hidden = true;
    try { await fn(); } catch (e) { err.textContent = e.message; err.hidden = false; }
  };
  li.querySelector(".ack").addEventListener("click", () => run(async () => {
    const data = await api("POST", "/v1/alerts/" + id + ":acknowledge", { teacher_id: state.teacher });
    addAlert(data.alert, false);
    scheduleOverview();
  }));
  li.querySelector(".resolve-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    run(async () => {
      const data = await api("POST", "/v1/alerts/" + id + ":resolve", { teacher_id: state.teacher, outcome: f.outcome.value, notes: f.notes.value });
      addAlert(data.alert, false);
      scheduleOverview();
    });
  });
  li.querySelector(".intervene-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    run(async () => {
      const data = await api("POST", "/v1/alerts/" + id + "/interventions", { teacher_id: state.teacher, action: f.action.value, notes: f.notes.value });
      const a = state.alerts.get(id);
      a.interventions = (a.interventions || []).concat([data.intervention]);
      if (a.state === "ALERT_STATE_OPEN") a.state = "ALERT_STATE_ACKNOWLEDGED";
      f.reset();
      f.closest("details").open = false;
      addAlert(a, false);
    });
  });
}

let audioCtx = null;
function beep() {
  if (!$("#sound").checked) return;
  try {
    audioCtx = audioCtx || new AudioContext();
    const o = audioCtx.createOscillator();
    const g = audioCtx.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.08;
    o.connect(g).connect(audioCtx.destination);
    o.start();
    o.stop(audioCtx.currentTime + 0.25);
  } catch (e) { /* no audio: the highlight is enough */ }
}

// ---- the overview: students by status, hotspots ---------------------------------

function scheduleOverview() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshOverview, 150);
}

async function refreshOverview() {
  let ov;
  try {
    ov = await api("GET", "/v1/classrooms/" + enc(state.classroom) + "/overview?teacher_id=" + enc(state.teacher));
  } catch (e) {
    return; // the stream's status already says when the dashboard is away
  }
  const grid = $("#grid");
  const tiles = (ov.students || []).map((s) => {
    const st = STUDENT_STATE[s.state] || "ok";
    const li = document.createElement("li");
    li.className = "tile st-" + st;
    li.tabIndex = 0;
    li.dataset.student = s.student_id;
    li.setAttribute("aria-label", s.student_id + ": " + st + (s.reasons && s.reasons.length ? ". " + s.reasons.join(". ") : ""));
    const name = document.createElement("b");
    name.textContent = s.student_id;
    const label = document.createElement("span");
    label.className = "st";
    label.textContent = st + ((s.open_alert_ids || []).length ? " · " + s.open_alert_ids.length + " open" : "");
    const tip = document.createElement("div");
    tip.className = "tip";
    tip.setAttribute("role", "tooltip");
    const ul = document.createElement("ul");
    for (const r of s.reasons || []) { const x = document.createElement("li"); x.textContent = r; ul.append(x); }
    const last = s.last_event_at ? "Last seen " + new Date(s.last_event_at).toLocaleTimeString() : "";
    tip.append(document.createTextNode((s.current_item_id ? "On " + s.current_item_id + ". " : "") + last), ul);
    li.append(name, label, tip);
    return li;
  });
  grid.replaceChildren(...tiles);
  $("#students-count").textContent = tiles.length ? "(" + tiles.length + ")" : "";
  $("#no-students").hidden = tiles.length > 0;
  const hs = ov.hotspots || [];
  $("#hotspots").replaceChildren(...hs.map((h) => {
    const li = document.createElement("li");
    li.textContent = (h.item_id || "an item") + ": " + (h.reasons || []).join("; ");
    return li;
  }));
  $("#no-hotspots").hidden = hs.length > 0;
}

// ---- the per-minute chart and the hardest items --------------------------------

async function refreshSnapshots() {
  let data;
  try {
    data = await api("GET", "/v1/classrooms/" + enc(state.classroom) + "/snapshots?page_size=60");
  } catch (e) {
    return;
  }
  const snaps = data.snapshots || [];
  drawChart(snaps);
  const latest = snaps.length ? snaps[snaps.length - 1] : null;
  const items = latest ? latest.hardest_items || [] : [];
  $("#hardest").replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    li.textContent = it.item_id + " — " + Math.round((it.error_rate || 0) * 100) + "% errors over " + it.attempts + " attempts" +
      (Number(it.struggling_students) ? ", " + it.struggling_students + " struggling" : "");
    return li;
  }));
  $("#no-hardest").hidden = items.length > 0;
}

function drawChart(snaps) {
  const svg = $("#chart");
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 160, P = 24;
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const children = [el("line", { class: "axis", x1: P, y1: H - P, x2: W - 4, y2: H - P })];
  if (!snaps.length) {
    children.push(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No activity in the last hour"));
    svg.replaceChildren(...children);
    return;
  }
  const maxActive = Math.max(1, ...snaps.map((s) => Number(s.active_students || 0)));
  const t0 = new Date(snaps[0].minute).getTime();
  const t1 = Math.max(t0 + 60000, new Date(snaps[snaps.length - 1].minute).getTime());
  const x = (s) => P + ((new Date(s.minute).getTime() - t0) / (t1 - t0)) * (W - P - 8);
  const yA = (s) => H - P - (Number(s.active_students || 0) / maxActive) * (H - 2 * P);
  const yE = (s) => H - P - Number(s.error_rate || 0) * (H - 2 * P);
  const path = (y) => snaps.map((s, i) => (i ? "L" : "M") + x(s).toFixed(1) + " " + y(s).toFixed(1)).join(" ");
  children.push(el("path", { class: "active", d: path(yA) }), el("path", { class: "errors", d: path(yE) }),
    el("text", { x: 2, y: P }, String(maxActive)), el("text", { x: 2, y: H - P }, "0"),
    el("text", { x: W - 4, y: H - 6, "text-anchor": "end" }, new Date(t1).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  svg.replaceChildren(...children);
}

route();
