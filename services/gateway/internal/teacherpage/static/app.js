// The teacher dashboard page. It talks only to the gateway's REST API:
//   GET  /v1/teachers/{t}/classrooms, PUT /v1/teachers/{t}/classrooms/{c}
//   GET  /v1/classrooms/{c}/overview?teacher_id=t
//   GET  /v1/classrooms/{c}/snapshots
//   GET  /v1/teachers/{t}/alerts (history) and /v1/teachers/{t}/alerts:subscribe
//        (newline-delimited JSON, one {"result": ...} or {"error": ...} per line)
//   POST /v1/alerts/{id}:acknowledge, :resolve, /interventions
// The live stream resumes with after_alert_id = the highest id shown, so a
// reconnection neither loses nor repeats an alert.
//
// The credential it presents is kept in localStorage "gaia.token": pasted in
// the sign-in form, or taken from a "#token=..." fragment (a fragment never
// reaches the server, so the token stays out of access logs; the page removes
// it from the address bar at once). The page reads the token's claims only to
// know who is signed in (role, teacher id); every check is the server's.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  teacher: "",
  classroom: "",
  alerts: new Map(), // alert id (number) -> alert
  lastId: 0,
  enabled: true,
  streamAbort: null,
  // stopped ends the stream for good (signed out, classroom refused).
  stopped: false,
  timers: [],
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
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) h.Authorization = "Bearer " + token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

// ApiError carries the HTTP status, so that a 401 can bring back the sign-in
// form and a 403 can say what was refused.
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function errorOf(res, text) {
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { message: text }; }
  // Every API error is {"error": {"code", "message", "details"}} (openapi.json).
  return new ApiError(res.status, (data.error && data.error.message) || data.message || res.status + " " + res.statusText);
}

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw errorOf(res, text);
  try { return text ? JSON.parse(text) : {}; } catch (e) { return { message: text }; }
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

// ---- signing in -------------------------------------------------------------

const TOKEN_KEY = "gaia.token";

// claimsOf reads a GAIA credential's claims (a JWT's payload) without
// verifying it, or null when the text is not shaped like one.
function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    const claims = JSON.parse(atob(b64));
    return claims && typeof claims === "object" ? claims : null;
  } catch (e) {
    return null;
  }
}

// signedIn is the stored credential's claims, or null.
function signedIn() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? claimsOf(token) || {} : null;
}

// checkToken says what is wrong with a pasted or linked token, or "".
function checkToken(token) {
  const claims = claimsOf(token);
  if (!claims) return "That is not a GAIA credential: paste the whole token (three parts separated by dots, starting with eyJ).";
  if (claims.exp && claims.exp * 1000 < Date.now()) return "That credential expired on " + new Date(claims.exp * 1000).toLocaleString() + ". Ask an administrator for a new one.";
  return "";
}

// takeTokenFromFragment signs in with "#token=..." and removes the fragment
// from the address bar (and so from the history and bookmarks).
function takeTokenFromFragment() {
  const frag = new URLSearchParams(location.hash.slice(1));
  if (!frag.has("token")) return;
  const token = frag.get("token").trim();
  frag.delete("token");
  const rest = frag.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  const problem = checkToken(token);
  if (problem) {
    state.signInReason = "The link's credential was not used. " + problem;
    return;
  }
  localStorage.setItem(TOKEN_KEY, token);
}

function showWho() {
  const claims = signedIn();
  $("#signed-in").hidden = !claims;
  $("#show-signin").hidden = !!claims;
  if (claims) {
    const who = claims.teacher || claims.name || "unknown";
    $("#whoami").textContent = "Signed in as " + who + (claims.role ? " (" + claims.role + ")" : "");
  }
  // A teacher's credential names its teacher: the page shows that one.
  $("#teacher").readOnly = !!(claims && claims.role === "teacher" && claims.teacher);
}

function stopLive() {
  state.stopped = true;
  if (state.streamAbort) state.streamAbort.abort();
  state.timers.forEach(clearInterval);
  state.timers = [];
}

// showSignIn replaces the page with the sign-in form, saying why.
function showSignIn(why) {
  stopLive();
  $("#home").hidden = true;
  $("#room").hidden = true;
  banner("");
  setConn("signed out", "");
  $("#signin").hidden = false;
  $("#signin-why").textContent = why || "";
  $("#signin-why").hidden = !why;
  showWho();
  $("#show-signin").hidden = true; // the form is showing
  $("#token").focus();
}

// refused handles a 401 (the credential is missing, expired or revoked):
// the stored one is dropped and the sign-in form comes back. It returns
// whether it did.
function refused(e) {
  if (!(e instanceof ApiError) || e.status !== 401) return false;
  const had = localStorage.getItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  showSignIn(had
    ? "Your credential was not accepted (" + e.message + "): it may have expired or been revoked. Sign in again."
    : "This dashboard needs a credential. Sign in with the token your administrator gave you.");
  return true;
}

$("#signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = $("#token").value.trim().replace(/^Bearer\s+/i, "");
  const problem = checkToken(token);
  if (problem) {
    $("#signin-why").textContent = problem;
    $("#signin-why").hidden = false;
    return;
  }
  localStorage.setItem(TOKEN_KEY, token);
  $("#token").value = "";
  // Start afresh as the new principal (its teacher, its classrooms).
  const claims = claimsOf(token);
  const url = new URL(location.href);
  url.hash = "";
  if (claims.role === "teacher" && claims.teacher) url.searchParams.set("teacher", claims.teacher);
  location.assign(url.toString());
});

$("#show-signin").addEventListener("click", () => showSignIn(""));

$("#signout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem("gaia.teacher");
  showSignIn("You are signed out. The credential was removed from this browser.");
});

// notAssigned handles a 403 on the classroom: the teacher may not see it.
// It returns whether it did.
function notAssigned(e) {
  if (!(e instanceof ApiError) || e.status !== 403) return false;
  stopLive();
  $("#room").hidden = true;
  banner("Classroom " + state.classroom + " is not assigned to teacher " + state.teacher + ", so its students and alerts are not shown (" + e.message +
    "). An administrator assigns it with: gaia teacher assign --teacher " + state.teacher + " --classroom " + state.classroom);
  return true;
}

// ---- routing -------------------------------------------------------------

function route() {
  showWho();
  const params = new URLSearchParams(location.search);
  const claims = signedIn();
  const own = claims && claims.role === "teacher" ? claims.teacher || "" : "";
  state.teacher = own || params.get("teacher") || localStorage.getItem("gaia.teacher") || "";
  $("#teacher").value = state.teacher;
  const m = location.pathname.match(/^\/classrooms\/([^/]+)$/);
  state.classroom = m ? decodeURIComponent(m[1]) : "";
  if (state.signInReason) {
    showSignIn(state.signInReason);
    return;
  }
  $("#home").hidden = !!state.classroom;
  $("#room").hidden = !state.classroom;
  if (!state.teacher) {
    $("#home").hidden = true;
    $("#room").hidden = true;
    if (!claims) {
      showSignIn("Sign in to see your classrooms. (On a dashboard that runs without credentials, GAIA_AUTH=off, enter your teacher id above instead.)");
      return;
    }
    banner("Enter the teacher id whose classrooms to show above.");
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
  showAssign();
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
    if (refused(e)) return;
    if (e instanceof ApiError && e.status === 403) {
      banner("Your credential may not read teacher " + state.teacher + "'s classrooms (" + e.message + ").");
      return;
    }
    banner("Could not load your classrooms: " + e.message);
  }
}

// showAssign shows the "Assign a classroom" form only to whoever may use it:
// an administrator, or anyone when no credential is stored (a dashboard
// without credentials). Others are told whom to ask.
function showAssign() {
  const claims = signedIn();
  const admin = !claims || claims.role === "admin";
  $("#assign").hidden = !admin;
  $("#assign-admin-only").hidden = admin;
}

$("#assign").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const c = f.classroom.value.trim();
  try {
    await api("PUT", "/v1/teachers/" + enc(state.teacher) + "/classrooms/" + enc(c), { display_name: f.name.value.trim() });
    f.reset();
    $("#assign-error").hidden = true;
    openHome();
  } catch (e) {
    if (refused(e)) return;
    const msg = e instanceof ApiError && e.status === 403
      ? "Only an administrator can assign classrooms, and your credential was refused (" + e.message + "). Ask an administrator to run: gaia teacher assign --teacher " + state.teacher + " --classroom " + c
      : "Could not assign " + c + ": " + e.message;
    $("#assign-error").textContent = msg;
    $("#assign-error").hidden = false;
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
      banner("Classroom " + state.classroom + " is not assigned to teacher " + state.teacher + ", so its students and alerts are not shown. " +
        "An administrator assigns it with: gaia teacher assign --teacher " + state.teacher + " --classroom " + state.classroom);
      $("#room").hidden = true;
      return;
    }
    $("#room-name").textContent = mine.display_name || state.classroom;
    document.title = (mine.display_name || state.classroom) + " · GAIA";
  } catch (e) {
    if (refused(e)) return;
    banner("Could not load your classrooms: " + e.message);
  }
  if (!(await loadHistory())) return;
  connect();
  refreshOverview();
  refreshSnapshots();
  state.timers.push(setInterval(refreshOverview, 10000), setInterval(refreshSnapshots, 30000));
}

async function loadHistory() {
  try {
    const data = await api("GET", "/v1/teachers/" + enc(state.teacher) + "/alerts?classroom_ids=" + enc(state.classroom) + "&page_size=100");
    for (const a of (data.alerts || []).reverse()) addAlert(a, false);
  } catch (e) {
    if (refused(e) || notAssigned(e)) return false;
    banner("Could not load past alerts: " + e.message);
  }
  return true;
}

// connect follows the REST stream, resuming after the last id shown.
async function connect() {
  if (state.stopped) return;
  const ctl = new AbortController();
  state.streamAbort = ctl;
  const url = "/v1/teachers/" + enc(state.teacher) + "/alerts:subscribe?classroom_ids=" + enc(state.classroom) + "&after_alert_id=" + state.lastId;
  let why = "the connection closed";
  try {
    const res = await fetch(url, { headers: headers(false), signal: ctl.signal });
    if (!res.ok) throw errorOf(res, await res.text());
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
        if (msg.error) {
          why = msg.error.message || "the stream ended";
          // gRPC codes: 16 unauthenticated, 7 permission denied (unassigned).
          if (msg.error.code === 16) throw new ApiError(401, why);
          if (msg.error.code === 7) throw new ApiError(403, why);
          continue;
        }
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
    if (state.stopped || refused(e) || notAssigned(e)) return;
    if (!ctl.signal.aborted) why = e.message;
  }
  if (state.stopped) return;
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
    try {
      await fn();
    } catch (e) {
      if (refused(e)) return;
      err.textContent = e instanceof ApiError && e.status === 403
        ? "You may not act on this alert: classroom " + state.classroom + " is not assigned to you (" + e.message + ")."
        : e.message;
      err.hidden = false;
    }
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
    refused(e) || notAssigned(e);
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
    refused(e) || notAssigned(e);
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

// A "#token=..." link opened on a page already showing (the same address but
// for the fragment) does not reload it: sign in and start afresh.
window.addEventListener("hashchange", () => {
  if (!new URLSearchParams(location.hash.slice(1)).has("token")) return;
  takeTokenFromFragment();
  if (state.signInReason) route(); else location.reload();
});

takeTokenFromFragment();
route();
