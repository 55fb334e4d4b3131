// Tessera node dashboard: a dependency-free view of one node's API (/v1 on the same origin).
//
// Security rules this file keeps:
//  * every string from the API is inserted with textContent (job params and reasons come from
//    analysts), never innerHTML;
//  * the token lives in sessionStorage (this tab only), goes to the API in the Authorization
//    header, is removed from the address bar when it arrives in a #token=... fragment, and is
//    never logged or put in a URL.

const TOKEN_KEY = "tessera.node.token";
const JOBS_EVERY_MS = 2000;
const AUDIT_EVERY_MS = 10000;
const NODE_EVERY_MS = 30000;
const FINAL_STATES = new Set(["released", "denied", "failed", "aborted", "cancelled", "contributed"]);
const PROBLEM_STATES = new Set(["denied", "failed", "aborted", "cancelled"]);
// Jobs that ended without running at all: no progress to show.
const NOT_RUN_STATES = new Set(["denied", "cancelled"]);
const STATE_ORDER = ["submitted", "pending", "awaiting_approval", "accepted", "running",
                     "released", "denied", "failed", "aborted", "cancelled", "contributed"];

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// DOM helpers (text only)

/** Make an element. `props`: className, title, dataset {..}, attrs {..}, text, on {event: fn}. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.title != null) node.title = String(props.title);
  if (props.text != null) node.textContent = String(props.text);
  for (const [k, v] of Object.entries(props.dataset || {})) node.dataset[k] = String(v);
  for (const [k, v] of Object.entries(props.attrs || {})) node.setAttribute(k, String(v));
  for (const [k, v] of Object.entries(props.on || {})) node.addEventListener(k, v);
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function short(value, head = 10) {
  const s = value == null ? "" : String(value);
  return s.length > head + 1 ? s.slice(0, head) + "…" : s;
}

function stateBadge(state) {
  const s = String(state || "unknown");
  const safe = s.replace(/[^a-z0-9_-]/gi, "");
  return el("span", { className: `state state-${safe}`, text: s.replace(/_/g, " "), dataset: { state: s } });
}

function pad(n) { return String(n).padStart(2, "0"); }

/** The browser's UTC offset at `d`: "UTC", "UTC+01:00", "UTC-05:30". */
function fmtZone(d) {
  const off = -d.getTimezoneOffset();
  if (off === 0) return "UTC";
  const a = Math.abs(off);
  return `UTC${off > 0 ? "+" : "-"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** "2026-11-29 14:03:07 UTC+01:00": date, time and zone, in the browser's time zone ("" for missing). */
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${fmtZone(d)}`;
}

/** A table cell with a time: the date, then the time and zone below it (same text as fmtTime). */
function timeCell(iso) {
  const text = fmtTime(iso);
  const cut = text.indexOf(" ");
  if (cut < 0) return el("td", { className: "time", title: iso || "", text });
  return el("td", { className: "time", title: iso || "" },
    el("span", { className: "date", text: text.slice(0, cut + 1) }),
    el("span", { className: "clock", text: text.slice(cut + 1) }));
}

function fmtBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Numbers as the API gave them, without float noise (0.30000000000000004 -> 0.3). */
function fmtNum(x) {
  if (x == null) return "—";
  const n = Number(x);
  if (!Number.isFinite(n)) return String(x);
  return String(Number(n.toPrecision(12)));
}

function bar(fraction, label, className = "") {
  const f = Number.isFinite(Number(fraction)) ? Math.min(1, Math.max(0, Number(fraction))) : 0;
  const fill = el("div", { className: `bar-fill ${className}`.trim() });
  fill.style.width = `${(f * 100).toFixed(1)}%`;
  return el("div", {
    className: "bar",
    attrs: { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
             "aria-valuenow": Math.round(f * 100), "aria-label": label || "" },
  }, fill);
}

// ---------------------------------------------------------------------------------------------
// Token

function tokenFromFragment() {
  const frag = window.location.hash.replace(/^#/, "");
  if (!frag) return null;
  let found = null;
  for (const part of frag.split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq) === "token") {
      try { found = decodeURIComponent(part.slice(eq + 1)); } catch { found = part.slice(eq + 1); }
    }
  }
  if (found !== null) {
    // Drop the fragment so the token is not left in the address bar, history or screenshots.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return found;
}

function getToken() { return sessionStorage.getItem(TOKEN_KEY); }
function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t); }
function dropToken() { sessionStorage.removeItem(TOKEN_KEY); }

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const token = getToken();
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit", redirect: "error",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "cannot reach the node");
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    let detail = data && data.detail != null ? data.detail : resp.statusText || "request failed";
    if (typeof detail !== "string") detail = JSON.stringify(detail); // FastAPI validation errors
    throw new ApiError(resp.status, detail);
  }
  if (data === null) throw new ApiError(resp.status, "the node answered with something that is not JSON");
  return data;
}

function describeError(err) {
  if (!(err instanceof ApiError)) return `unexpected error: ${err && err.message ? err.message : err}`;
  if (err.status === 401) return "token not accepted";
  if (err.status === 0) return `${err.detail} (retrying)`;
  if (err.status === 403) return `not allowed: ${err.detail}`;
  return `error ${err.status}: ${err.detail}`;
}

// ---------------------------------------------------------------------------------------------
// State of the page

const view = {
  running: false,
  generation: 0,          // bumps on sign-in/out so stale timers and replies are ignored
  timers: [],
  node: null,
  jobs: new Map(),        // id -> job view (latest list)
  rows: new Map(),        // id -> <tr>
  rowSig: new Map(),      // id -> JSON of what the row shows
  selected: null,         // job id whose details are open
  detailSig: null,
  rejectDraft: null,      // {id, text}: the reject reason being typed
  results: new Map(),     // job id -> {ok, res | message}: a recipient's result, fetched once
  cancelDraft: null,      // {id, text}: the cancel reason being typed
  cancelStatus: null,     // {id, text}: what the last cancel click said
  errors: new Map(),      // source -> message
};

function showError(source, message) {
  if (message == null) view.errors.delete(source); else view.errors.set(source, message);
  const box = $("error");
  clear(box);
  const messages = [...new Set(view.errors.values())];
  box.hidden = messages.length === 0;
  for (const m of messages) box.append(el("div", { text: m }));
}

function handleError(source, err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut("token not accepted");
    return;
  }
  showError(source, describeError(err));
}

// ---------------------------------------------------------------------------------------------
// Node

function renderNode(node) {
  view.node = node;
  const dl = clear($("node"));
  const add = (label, value, { title, mono } = {}) => {
    dl.append(el("dt", { text: label }));
    dl.append(el("dd", { className: mono ? "mono" : "", title, text: value }));
  };
  add("Name", node.name);
  add("Role", node.role);
  add("Contract", short(node.contract_id, 24), { title: node.contract_id });
  add("Contract hash", short(node.contract_hash, 16), { title: node.contract_hash, mono: true });
  if (node.fingerprint) {
    dl.append(el("dt", { text: "Key fingerprint", title: "the node's identity key in the contract" }));
    dl.append(el("dd", { className: "mono fingerprint", title: node.fingerprint,
                         dataset: { fingerprint: node.fingerprint }, text: short(node.fingerprint, 16) }));
  }
  const viewer = node.viewer || {};
  const who = viewer.kind === "admin" ? "admin (data owner)" : `analyst ${viewer.id ?? ""}`.trim();
  add("Viewing as", who);
  if (Array.isArray(node.parties) && node.parties.length) {
    dl.append(el("dt", { text: "Parties" }));
    const ul = el("ul", { className: "parties" });
    for (const p of node.parties) {
      const me = p.name === node.name;
      ul.append(el("li", { className: me ? "me" : "", title: p.api || "" },
        el("span", { className: "party-name", text: p.name }),
        el("span", { className: "party-role", text: p.role || "" })));
    }
    dl.append(el("dd", {}, ul));
  }

  const top = clear($("topbar-node"));
  top.append(el("span", { className: "node-name", text: node.name }),
             el("span", { className: "node-role", text: node.role || "" }));
  $("viewer").textContent = viewer.kind === "admin" ? "admin" : `analyst · ${viewer.id ?? "?"}`;
  document.title = `${node.name} · Tessera node`;
}

async function refreshNode(gen) {
  try {
    const node = await api("/v1/node");
    if (gen !== view.generation) return;
    renderNode(node);
    showError("node", null);
  } catch (err) {
    if (gen === view.generation) handleError("node", err);
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs

function jobProgress(job) {
  const p = job.progress || {};
  let fraction = Number(p.fraction);
  if (!Number.isFinite(fraction)) fraction = job.state === "released" ? 1 : 0;
  const phase = p.phase || job.state || "";
  return { fraction, phase, detail: p.stage || p.detail || "" };
}

/** What the progress cell says: "running · 42%", "released", "not run" (denied, cancelled),
 *  "stopped at 50%" (failed, aborted). */
function progressText(job, fraction, phase) {
  const pct = `${Math.round(fraction * 100)}%`;
  if (job.state === "released") return "done";
  if (NOT_RUN_STATES.has(job.state)) return "not run";
  if (PROBLEM_STATES.has(job.state)) return `stopped at ${pct}`;
  return `${String(phase).replace(/_/g, " ")} · ${pct}`;
}

function rowSignature(job) {
  return JSON.stringify([job.state, job.analysis, job.version, job.analyst, job.progress,
                         job.created, job.updated]);
}

function fillRow(tr, job) {
  clear(tr);
  const { fraction, phase, detail } = jobProgress(job);
  const label = progressText(job, fraction, phase);
  const shown = NOT_RUN_STATES.has(job.state) ? 0 : fraction;
  tr.className = `job-row row-${String(job.state).replace(/[^a-z0-9_-]/gi, "")}`;
  tr.append(
    el("td", { className: "mono job-id", title: job.id, text: short(job.id, 8) }),
    el("td", { className: "analysis" },
      el("span", { text: job.analysis }),
      job.version ? el("span", { className: "muted version", text: ` v${job.version}` }) : null),
    el("td", { text: job.analyst ?? "" }),
    el("td", { className: "state-cell", title: Array.isArray(job.reasons) ? job.reasons.join("\n") : "" },
      stateBadge(job.state)),
    el("td", { className: "col-progress", title: detail },
      el("div", { className: "progress", dataset: { fraction: shown } },
        bar(shown, label),
        el("span", { className: "progress-label", text: label }))),
    timeCell(job.created),
    timeCell(job.updated),
  );
  tr.classList.toggle("selected", job.id === view.selected);
}

function renderJobs(jobs) {
  const tbody = $("jobs").tBodies[0];
  const seen = new Set();
  view.jobs = new Map();
  let previous = null;
  for (const job of jobs) {
    if (!job || job.id == null) continue;
    const id = String(job.id);
    seen.add(id);
    view.jobs.set(id, job);
    let tr = view.rows.get(id);
    if (!tr) {
      tr = el("tr", { dataset: { jobId: id }, attrs: { tabindex: 0 } });
      view.rows.set(id, tr);
    }
    const sig = rowSignature(job);
    if (view.rowSig.get(id) !== sig) {
      fillRow(tr, job);
      view.rowSig.set(id, sig);
    }
    // Keep the API's order (newest first) without re-creating rows.
    const want = previous ? previous.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    previous = tr;
  }
  for (const [id, tr] of view.rows) {
    if (!seen.has(id)) { tr.remove(); view.rows.delete(id); view.rowSig.delete(id); }
  }
  $("jobs-empty").hidden = view.jobs.size > 0;

  const counts = new Map();
  for (const job of view.jobs.values()) counts.set(job.state, (counts.get(job.state) || 0) + 1);
  const countBox = clear($("jobs-counts"));
  const order = [...STATE_ORDER, ...[...counts.keys()].filter((s) => !STATE_ORDER.includes(s))];
  for (const s of order) {
    if (counts.has(s)) countBox.append(el("span", { className: "count" }, stateBadge(s), ` ${counts.get(s)}`));
  }
  $("jobs-stamp").textContent = `refreshed ${fmtTime(new Date().toISOString())}`;
  $("jobs-stamp").title = "the list refreshes every 2 seconds";

  if (view.selected) {
    const job = view.jobs.get(view.selected);
    if (job) renderDetail(job);
  }
}

async function refreshJobs(gen) {
  try {
    const data = await api("/v1/jobs");
    if (gen !== view.generation) return;
    renderJobs(Array.isArray(data.jobs) ? data.jobs : []);
    showError("jobs", null);
    $("live").hidden = false;
    $("live").className = "live live-ok";
    $("live").textContent = "live";
  } catch (err) {
    if (gen !== view.generation) return;
    $("live").className = "live live-bad";
    $("live").textContent = "offline";
    handleError("jobs", err);
  }
}

// ---------------------------------------------------------------------------------------------
// Job details

function selectJob(id) {
  view.selected = id;
  view.detailSig = null;
  for (const [rowId, tr] of view.rows) tr.classList.toggle("selected", rowId === id);
  const job = view.jobs.get(id);
  if (job) renderDetail(job);
  // Fetch the single view too: it may be newer than the list.
  const gen = view.generation;
  api(`/v1/jobs/${encodeURIComponent(id)}`).then((fresh) => {
    if (gen !== view.generation || view.selected !== id) return;
    view.jobs.set(id, fresh);
    renderDetail(fresh);
    showError("detail", null);
  }).catch((err) => { if (gen === view.generation) handleError("detail", err); });
}

function closeDetail() {
  view.selected = null;
  view.detailSig = null;
  for (const tr of view.rows.values()) tr.classList.remove("selected");
  const panel = $("job-detail");
  clear(panel);
  panel.hidden = true;
}

function section(title, ...content) {
  return el("section", { className: "detail-section" }, el("h3", { text: title }), ...content);
}

function list(items, className) {
  const ul = el("ul", { className });
  for (const item of items) ul.append(el("li", { text: item }));
  return ul;
}

function renderDetail(job) {
  // the viewer decides what is shown (approval, result): re-render once /v1/node has answered
  const sig = JSON.stringify([job, view.node?.viewer ?? null]);
  if (sig === view.detailSig) return;
  view.detailSig = sig;
  const panel = $("job-detail");
  const keepScroll = panel.querySelector("pre.plan")?.scrollTop || 0;
  clear(panel);
  panel.hidden = false;
  panel.dataset.jobId = job.id;

  panel.append(el("div", { className: "card-head" },
    el("h2", { text: `Job ${short(job.id, 12)}`, title: job.id }),
    stateBadge(job.state),
    el("span", { className: "spacer" }),
    el("button", { className: "btn btn-quiet", text: "Close", attrs: { type: "button", "aria-label": "close details" },
                   on: { click: closeDetail } })));

  if (PROBLEM_STATES.has(job.state) || (job.reasons && job.reasons.length)) {
    const reasons = Array.isArray(job.reasons) ? job.reasons : [];
    panel.append(el("div", { className: `reasons-box reasons-${job.state}` },
      el("h3", { text: reasonsTitle(job, reasons) }),
      reasons.length ? list(reasons, "reasons") : el("p", { className: "muted", text: "no reason was given" })));
  }

  if (view.node?.viewer?.kind === "admin" && awaitingHere(job)) panel.append(approvalBox(job));
  if (job.state === "released" && isRecipient(job)) panel.append(resultBox(job));
  if (mayCancel(job)) panel.append(cancelBox(job));

  const facts = el("dl", { className: "facts facts-grid" });
  const fact = (label, value, opts = {}) => {
    if (value == null || value === "") return;
    facts.append(el("div", { className: opts.wide ? "fact fact-wide" : "fact" },
      el("dt", { text: label }), el("dd", { className: opts.mono ? "mono" : "", title: opts.title, text: value })));
  };
  const { fraction, phase, detail } = jobProgress(job);
  fact("Job id", job.id, { mono: true, wide: true });
  fact("Analysis", `${job.analysis}${job.version ? ` v${job.version}` : ""}`);
  fact("Protocol", job.protocol);
  fact("Partition", job.partition);
  fact("Analyst", job.analyst);
  fact("Coordinator", job.coordinator);
  fact("Parties", (job.parties || []).join(", "));
  if (job.roles) {
    fact("Compute parties", (job.roles.compute || []).join(", "));
    if ((job.roles.input_only || []).length) fact("Input-only owners", job.roles.input_only.join(", "));
  }
  fact("Datasets", (job.datasets || []).join(", "));
  fact("Columns", (job.columns || []).join(", "));
  fact("Recipients", (job.recipients || []).join(", "));
  fact("Differential privacy", job.dp ? `ε ${fmtNum(job.dp.epsilon)}, δ ${fmtNum(job.dp.delta)}` : "none");
  fact("Progress", `${progressText(job, fraction, phase)}${detail && detail !== phase && !FINAL_STATES.has(job.state) ? ` · ${detail}` : ""}`);
  fact("Created", fmtTime(job.created), { title: job.created });
  fact("Updated", fmtTime(job.updated), { title: job.updated });
  fact("Seconds", job.seconds == null ? null : fmtNum(Number(job.seconds).toFixed(3)));
  if (job.comm) {
    fact("Communication", `${fmtBytes(job.comm.bytes_sent)} sent · ${job.comm.rounds ?? "?"} rounds`,
         { title: `${job.comm.bytes_sent} bytes` });
  }
  panel.append(facts);

  panel.append(section("Plan", el("pre", { className: "plan", text: job.plan || "(no plan)" })));
  const revealed = Array.isArray(job.revealed) ? job.revealed : [];
  panel.append(section("Reveals", revealed.length ? list(revealed, "revealed")
    : el("p", { className: "muted", text: "nothing is revealed" })));

  const decisions = job.decisions && typeof job.decisions === "object" ? Object.entries(job.decisions) : [];
  if (decisions.length) {
    const table = el("table", { className: "table decisions" },
      el("thead", {}, el("tr", {}, el("th", { text: "Node" }), el("th", { text: "Decision" }), el("th", { text: "Reasons" }))));
    const tbody = el("tbody");
    for (const [nodeName, d] of decisions) {
      const rs = (d && Array.isArray(d.reasons)) ? d.reasons : [];
      tbody.append(el("tr", { dataset: { node: nodeName } },
        el("td", { text: nodeName }),
        el("td", {}, stateBadge(d?.state)),
        el("td", {}, rs.length ? list(rs, "reasons") : el("span", { className: "muted", text: "—" }))));
    }
    table.append(tbody);
    panel.append(section("Decisions", table));
  }

  const events = Array.isArray(job.events) ? job.events : [];
  if (events.length) {
    const ol = el("ol", { className: "events" });
    for (const ev of events) {
      ol.append(el("li", {},
        el("span", { className: "time", title: ev.ts || "", text: fmtTime(ev.ts) }),
        stateBadge(ev.state),
        el("span", { className: "event-detail", text: ev.detail || "" })));
    }
    panel.append(section("Timeline", ol));
  }

  if (job.params && Object.keys(job.params).length) {
    panel.append(section("Parameters", el("pre", { className: "params", text: JSON.stringify(job.params, null, 2) })));
  }
  const plan = panel.querySelector("pre.plan");
  if (plan) plan.scrollTop = keepScroll;
}

function reasonsTitle(job, reasons) {
  switch (job.state) {
    case "denied":
      return reasons.some((r) => String(r).includes("rejected by the owner")) ? "Rejected by a data owner" : "Why it was denied";
    case "failed": return "Why it failed";
    case "aborted": return "Why it was aborted";
    case "cancelled": return "Why it was cancelled";
    case "released": return "Notes";
    default: return "Notes";
  }
}

// -- a recipient's result (an analyst named in the job's recipients, or this node's owner when
//    this node is one); fetched once per job and kept for the tab's session

function isRecipient(job) {
  const v = view.node?.viewer;
  const recipients = Array.isArray(job.recipients) ? job.recipients : [];
  if (!v) return false;
  return v.kind === "admin" ? recipients.includes(view.node.name) : recipients.includes(v.id);
}

/** A released value as text: numbers without float noise; arrays ({"__ndarray__": ...}) flat. */
function plainValue(v) {
  if (v && typeof v === "object" && "__ndarray__" in v) return plainValue(v.__ndarray__);
  if (Array.isArray(v)) return v.map(plainValue);
  if (typeof v === "number") return Number(v.toPrecision(6));
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = plainValue(x);
    return out;
  }
  return v;
}

function valueCell(v) {
  const p = plainValue(v);
  if (Array.isArray(p) && p.every((x) => !Array.isArray(x) && (x === null || typeof x !== "object"))) {
    return el("td", { className: "mono value", text: p.join(", ") });
  }
  if (Array.isArray(p) && p.every((x) => Array.isArray(x))) {  // a matrix: one row per line
    const pre = el("pre", { className: "value-matrix", text: p.map((r) => r.join("\t")).join("\n") });
    return el("td", { className: "mono value" }, pre);
  }
  if (p !== null && typeof p === "object") return el("td", { className: "mono value", text: JSON.stringify(p) });
  return el("td", { className: "mono value", text: p == null ? "—" : String(p) });
}

function resultBox(job) {
  const box = el("section", { className: "detail-section result", dataset: { resultFor: job.id } },
    el("h3", { text: "Your result" }));
  const cached = view.results.get(job.id);
  if (!cached) {
    box.append(el("p", { className: "muted", text: "loading the result…" }));
    const gen = view.generation;
    api(`/v1/jobs/${encodeURIComponent(job.id)}/result`).then((res) => {
      if (gen !== view.generation) return;
      view.results.set(job.id, { ok: true, res });
      view.detailSig = null;
      if (view.selected === job.id) renderDetail(view.jobs.get(job.id) || job);
    }).catch((err) => {
      if (gen !== view.generation) return;
      view.results.set(job.id, { ok: false, message: describeError(err) });
      view.detailSig = null;
      if (view.selected === job.id) renderDetail(view.jobs.get(job.id) || job);
    });
    return box;
  }
  if (!cached.ok) {
    box.append(el("p", { className: "muted result-error", text: cached.message }));
    return box;
  }
  const res = cached.res;
  if (res.sealed) {
    box.dataset.sealed = "true";
    box.append(el("p", { text: "The outputs are sealed to your key: no node can read them. Open them with "
      + `tessera.Client.result("${job.id}", box_key=...) or \`tessera job result ${job.id}\`.` }));
    if (Array.isArray(res.missing) && res.missing.length) {
      box.append(el("p", { className: "muted", text: `still on their way: ${res.missing.join(", ")}` }));
    }
    return box;
  }
  const outputs = res.outputs && typeof res.outputs === "object" ? Object.entries(res.outputs) : [];
  const table = el("table", { className: "table outputs" },
    el("thead", {}, el("tr", {}, el("th", { text: "Output" }), el("th", { text: "Value" }))));
  const tbody = el("tbody");
  for (const [name, value] of outputs) {
    tbody.append(el("tr", { dataset: { output: name } }, el("td", { className: "output-name", text: name }), valueCell(value)));
  }
  table.append(tbody);
  box.append(outputs.length ? table : el("p", { className: "muted", text: "no outputs" }));
  return box;
}

// -- cancelling (the analyst who submitted the job, or the owner; at the job's coordinator)

function mayCancel(job) {
  const v = view.node?.viewer;
  if (!v || FINAL_STATES.has(job.state) || job.coordinator !== view.node.name) return false;
  return v.kind === "admin" || v.id === job.analyst;
}

function cancelBox(job) {
  const reason = el("input", { className: "input", attrs: { type: "text", placeholder: "reason (optional)",
                                                            "aria-label": "reason for cancelling", maxlength: 1000 },
                               on: { input: (ev) => { view.cancelDraft = { id: job.id, text: ev.target.value }; } } });
  // the panel re-renders as the job moves: keep what was typed, and what the last click said
  if (view.cancelDraft && view.cancelDraft.id === job.id) reason.value = view.cancelDraft.text;
  const status = el("span", { className: "muted cancel-status",
                              text: view.cancelStatus && view.cancelStatus.id === job.id ? view.cancelStatus.text : "" });
  const say = (text) => { view.cancelStatus = { id: job.id, text }; status.textContent = text; };
  const go = async () => {
    say("cancelling…");
    try {
      const out = await api(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`, { method: "POST", body: { reason: reason.value } });
      say(out.state === "running" ? "stopping the job at every party…" : `job ${out.state}`);
      view.cancelDraft = null;
      view.detailSig = null;
      refreshJobs(view.generation);
    } catch (err) {
      say(describeError(err));
    }
  };
  return el("div", { className: "approval cancel" },
    el("div", { className: "approval-actions" },
      el("button", { className: "btn btn-danger", text: job.state === "running" ? "Abort job" : "Cancel job",
                     attrs: { type: "button" }, on: { click: go } }),
      reason, status));
}

// -- the data owner's approval (admin only; shown while this node waits for its owner)

function awaitingHere(job) {
  const me = view.node?.name;
  if (job.state === "awaiting_approval") return true;
  return !!(me && job.decisions && job.decisions[me] && job.decisions[me].state === "awaiting_approval");
}

function approvalBox(job) {
  // The panel re-renders when the job changes: keep what the owner has typed so far.
  const reason = el("input", { className: "input", attrs: { type: "text", placeholder: "reason for rejecting", "aria-label": "reason for rejecting" },
                               on: { input: (ev) => { view.rejectDraft = { id: job.id, text: ev.target.value }; } } });
  if (view.rejectDraft && view.rejectDraft.id === job.id) reason.value = view.rejectDraft.text;
  const status = el("span", { className: "muted" });
  const act = async (path, body) => {
    status.textContent = "sending…";
    try {
      await api(`/v1/jobs/${encodeURIComponent(job.id)}/${path}`, { method: "POST", body });
      status.textContent = "done";
      view.rejectDraft = null;
      view.detailSig = null;
      refreshJobs(view.generation);
    } catch (err) {
      status.textContent = describeError(err);
    }
  };
  return el("div", { className: "approval" },
    el("h3", { text: "Your approval is needed" }),
    el("p", { className: "muted", text: "Read the plan and what it reveals before accepting." }),
    el("div", { className: "approval-actions" },
      el("button", { className: "btn btn-primary", text: "Approve", attrs: { type: "button" },
                     on: { click: () => act("approve", {}) } }),
      reason,
      el("button", { className: "btn btn-danger", text: "Reject", attrs: { type: "button" },
                     on: { click: () => act("reject", { reason: reason.value || "rejected by the data owner" }) } }),
      status));
}

// ---------------------------------------------------------------------------------------------
// Budget

function renderBudget(datasets) {
  const tbody = clear($("budget").tBodies[0]);
  for (const d of datasets) {
    const total = Number(d.epsilon_total);
    const left = Number(d.epsilon_left);
    const fraction = total > 0 ? left / total : 0;
    const low = fraction < 0.2;
    const deltaText = d.delta_total ? `δ ${fmtNum(d.delta_spent)} of ${fmtNum(d.delta_total)} spent` : "";
    tbody.append(el("tr", { dataset: { dataset: d.dataset, epsilonLeft: d.epsilon_left, epsilonTotal: d.epsilon_total },
                            className: low ? "low" : "" },
      el("td", { title: [d.owner ? `owner ${d.owner}` : "", deltaText].filter(Boolean).join(" · ") },
        el("div", { className: "dataset", text: d.dataset }),
        d.owner ? el("div", { className: "muted small", text: d.owner }) : null),
      el("td", { className: "eps" },
        el("span", { className: "eps-left", text: fmtNum(d.epsilon_left) }),
        el("span", { className: "muted", text: " / " }),
        el("span", { className: "eps-total", text: fmtNum(d.epsilon_total) }),
        bar(fraction, `${d.dataset}: ${Math.round(fraction * 100)}% of epsilon left`))));
  }
  $("budget-empty").hidden = datasets.length > 0;
}

async function refreshBudget(gen) {
  try {
    const data = await api("/v1/budget");
    if (gen !== view.generation) return;
    renderBudget(Array.isArray(data.datasets) ? data.datasets : []);
    showError("budget", null);
  } catch (err) {
    if (gen === view.generation) handleError("budget", err);
  }
}

// ---------------------------------------------------------------------------------------------
// Audit

function renderAudit(box, state, data) {
  clear(box);
  box.dataset.status = state;
  if (state === "forbidden") {
    box.append(el("span", { className: "audit-badge audit-na", text: "admin only" }),
               el("p", { className: "muted small", text: "The audit log can be read with the node's admin token." }));
    return;
  }
  if (state === "error") {
    box.append(el("span", { className: "audit-badge audit-na", text: "unavailable" }),
               el("p", { className: "muted small", text: data }));
    return;
  }
  const ok = data.verified === true;
  box.append(el("span", { className: `audit-badge ${ok ? "audit-ok" : "audit-bad"}`, text: ok ? "verified" : "NOT verified" }));
  const dl = el("dl", { className: "facts" },
    el("dt", { text: "Entries" }), el("dd", { text: data.entries ?? "?" }),
    el("dt", { text: "Head" }), el("dd", { className: "mono", title: data.head || "", text: short(data.head, 16) || "—" }));
  box.append(dl);
  const problems = Array.isArray(data.problems) ? data.problems : [];
  if (problems.length) box.append(el("h3", { text: "Problems" }), list(problems, "problems"));
}

async function refreshAudit(gen) {
  const box = $("audit");
  try {
    const data = await api("/v1/audit");
    if (gen !== view.generation) return;
    renderAudit(box, data.verified === true ? "verified" : "not-verified", data);
    showError("audit", null);
  } catch (err) {
    if (gen !== view.generation) return;
    if (err instanceof ApiError && err.status === 403) {
      renderAudit(box, "forbidden");
      showError("audit", null);
    } else if (err instanceof ApiError && err.status === 401) {
      handleError("audit", err);
    } else {
      renderAudit(box, "error", describeError(err));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Polling and sign in / out

function every(ms, fn, gen) {
  // Sequential, not setInterval: a slow node never gets overlapping requests from one tab.
  const loop = async () => {
    if (gen !== view.generation) return;
    if (!document.hidden) await fn(gen);
    if (gen !== view.generation) return;
    view.timers.push(setTimeout(loop, ms));
  };
  loop();
}

function stopPolling() {
  view.generation += 1;
  for (const t of view.timers) clearTimeout(t);
  view.timers = [];
}

function resetView() {
  view.node = null;
  view.jobs = new Map();
  for (const tr of view.rows.values()) tr.remove();
  view.rows = new Map();
  view.rowSig = new Map();
  view.results = new Map();
  view.errors = new Map();
  closeDetail();
  clear($("node"));
  clear($("budget").tBodies[0]);
  clear($("jobs-counts"));
  clear($("topbar-node"));
  $("audit").textContent = "…";
  delete $("audit").dataset.status;
  $("viewer").textContent = "";
  $("jobs-stamp").textContent = "";
  $("live").hidden = true;
  showError("x", null);
}

function signIn(token) {
  stopPolling();
  resetView();
  setToken(token);
  $("login").hidden = true;
  $("main").hidden = false;
  $("signout").hidden = false;
  const gen = view.generation;
  every(JOBS_EVERY_MS, async (g) => { await Promise.all([refreshJobs(g), refreshBudget(g)]); }, gen);
  every(NODE_EVERY_MS, refreshNode, gen);
  every(AUDIT_EVERY_MS, refreshAudit, gen);
}

function signOut(message) {
  stopPolling();
  dropToken();
  resetView();
  $("main").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  if (message) showError("auth", message);
  const input = $("token");
  input.value = "";
  input.focus();
}

function start() {
  const fromFragment = tokenFromFragment();
  if (fromFragment) setToken(fromFragment);
  const token = getToken();
  if (token) signIn(token); else signOut();

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (value) signIn(value);
  });
  $("signout").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", () => {
    const t = tokenFromFragment();
    if (t) signIn(t);
  });

  const tbody = $("jobs").tBodies[0];
  const pick = (target) => {
    const tr = target.closest("tr[data-job-id]");
    if (tr) selectJob(tr.dataset.jobId);
  };
  tbody.addEventListener("click", (ev) => pick(ev.target));
  tbody.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(ev.target); }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && view.selected) closeDetail();
  });
  document.addEventListener("visibilitychange", () => {
    // Catch up at once when the tab comes back instead of waiting for the next tick.
    if (!document.hidden && getToken() && !$("main").hidden) {
      const g = view.generation;
      refreshJobs(g); refreshBudget(g);
    }
  });
}

start();
