// Opticon dashboard: a single-page client of the Opticon API on the same
// origin. Views: login, tenants (admin), fleet, host, watchers. The
// session token is kept in sessionStorage (gone with the tab).
"use strict";

const { drawGraph, utc, short } = window.OpticonGraph;
const SEVERITY = { CRIT: 0, ALERT: 1, WARN: 2, STALE: 3, OK: 4 };
const REFRESH_MS = 30000;
const $main = () => document.getElementById("main");

// ---- State and the API ---------------------------------------------------

const state = {
  token: sessionStorage.getItem("opticon.token"),
  // Which header carries it: X-Opticon-Token, or X-Auth-Token for Keystone.
  header: sessionStorage.getItem("opticon.header") || "X-Opticon-Token",
  level: null, // AUTH_ADMIN or AUTH_USER
  tenants: [],
  timer: null,
  paused: false,
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function banner(text, isError) {
  const b = document.getElementById("banner");
  if (!text) { b.hidden = true; return; }
  b.hidden = false;
  b.textContent = text;
  b.className = isError ? "error" : "";
}

/** Call the API; a 401 sends the user to the login with a reason. */
async function api(method, path, body) {
  const headers = {};
  if (state.token) headers[state.header] = state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit" });
  } catch (e) {
    banner("Cannot reach the Opticon API (" + e.message + "). Retrying with the next refresh.", true);
    throw new ApiError(0, "the API is unreachable");
  }
  let doc = null;
  try { doc = await res.json(); } catch (e) { doc = null; }
  if (res.status === 401) {
    const had = !!state.token;
    logout(had ? "Your session expired or was revoked (401): log in again." : "Log in first (401).");
    throw new ApiError(401, "not logged in");
  }
  if (!res.ok) {
    const msg = (doc && doc.error) || res.statusText;
    if (res.status === 403) throw new ApiError(403, "Permission denied (403): this account may not do that. " + msg);
    throw new ApiError(res.status, msg + " (" + res.status + ")");
  }
  banner("");
  return doc;
}

function logout(reason) {
  state.token = null;
  state.level = null;
  sessionStorage.removeItem("opticon.token");
  sessionStorage.removeItem("opticon.header");
  stopRefresh();
  showLogin(reason || "");
}

// ---- Small DOM helpers ---------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  if (attrs) for (const k in attrs) {
    if (k === "text") e.textContent = attrs[k];
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
    else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) e.setAttribute(k, attrs[k]);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

function statusBadge(s) { return el("span", { class: "status s-" + (s || "STALE"), text: s || "-" }); }

function bar(pct) {
  const i = el("i");
  i.style.width = Math.max(0, Math.min(100, pct || 0)) + "%";
  if (pct >= 90) i.className = "hot";
  return el("span", { class: "bar" }, i);
}

function fmt(v, unit) {
  if (v === undefined || v === null) return "-";
  if (typeof v === "number") return short(v) + (unit ? " " + unit : "");
  if (Array.isArray(v)) return v.map((x) => fmt(x)).join(" ");
  return String(v);
}

function table(columns, rows, numeric) {
  const head = el("tr", null, ...columns.map((c) => el("th", { class: numeric && numeric.has(c) ? "num" : null, text: c })));
  const body = rows.map((r) => el("tr", null, ...r.map((v, i) =>
    el("td", { class: numeric && numeric.has(columns[i]) ? "num" : null }, v instanceof Node ? v : document.createTextNode(fmt(v))))));
  return el("table", null, el("thead", null, head), el("tbody", null, ...body));
}

function stopRefresh() { if (state.timer) { clearInterval(state.timer); state.timer = null; } }

function nav(links) {
  const n = document.getElementById("nav");
  n.textContent = "";
  for (const [label, href] of links) n.append(el("a", { href, text: label }));
  document.getElementById("logout").hidden = !state.token;
  document.getElementById("who").textContent = state.level === "AUTH_ADMIN" ? "administrator" : state.level ? "tenant user" : "";
}

// ---- Login ---------------------------------------------------------------

function showLogin(reason) {
  nav([]);
  const err = el("div", { class: "error", role: "alert", text: reason });
  const user = el("input", { id: "username", autocomplete: "username" });
  const pass = el("input", { id: "password", type: "password", autocomplete: "current-password" });
  const token = el("input", { id: "token", autocomplete: "off", placeholder: "admin or session token (optional)" });
  // Keystone, when the API says it is configured.
  const method = el("select", { id: "method" }, el("option", { value: "internal", text: "Opticon user" }));
  const project = el("input", { id: "project", placeholder: "project name or id" });
  const domain = el("input", { id: "domain", value: "Default" });
  const keystoneFields = el("div", { id: "keystone-fields", hidden: "" },
    el("label", { for: "project", text: "Project" }), project, el("label", { for: "domain", text: "Domain" }), domain);
  const methodRow = el("div", { id: "method-row", hidden: "" }, el("label", { for: "method", text: "Log in as" }), method);
  method.addEventListener("change", () => { keystoneFields.hidden = method.value !== "openstack"; });
  fetch("/auth/methods").then((r) => r.json()).then((d) => {
    const methods = d.methods || [];
    if (methods.includes("openstack")) {
      method.append(el("option", { value: "openstack", text: "OpenStack (Keystone)" }));
      if (!methods.includes("internal")) { method.value = "openstack"; method.firstChild.remove(); keystoneFields.hidden = false; }
      methodRow.hidden = false;
    }
  }).catch(() => {});
  const form = el("form", { class: "card login", id: "login" },
    el("h1", { text: "Log in to Opticon" }), methodRow,
    el("label", { for: "username", text: "User name" }), user,
    el("label", { for: "password", text: "Password" }), pass, keystoneFields,
    el("label", { for: "token", text: "or a token (the admin token counts only from an admin host)" }), token,
    el("p", null, el("button", { class: "primary", type: "submit", text: "Log in" })), err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    try {
      state.header = "X-Opticon-Token";
      if (token.value.trim()) {
        state.token = token.value.trim();
      } else if (method.value === "openstack") {
        const res = await fetch("/login/keystone", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username: user.value, password: pass.value, project: project.value, domain: domain.value || "Default" }) });
        const doc = await res.json().catch(() => ({}));
        if (res.status === 401) { err.textContent = "Keystone refused the user name, password or project (401)."; return; }
        if (!res.ok || !doc.token) { err.textContent = (doc.error || res.statusText) + " (" + res.status + ")"; return; }
        state.token = doc.token;
        state.header = "X-Auth-Token";
      } else {
        const res = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username: user.value, password: pass.value }) });
        const doc = await res.json().catch(() => ({}));
        if (res.status === 401 || res.status === 403) { err.textContent = "Wrong user name or password (" + res.status + ")."; return; }
        if (res.status === 429) { err.textContent = "Too many failed logins: wait a minute (429)."; return; }
        if (!res.ok || !doc.token) { err.textContent = (doc.error || res.statusText) + " (" + res.status + ")"; return; }
        state.token = doc.token;
      }
      sessionStorage.setItem("opticon.token", state.token);
      sessionStorage.setItem("opticon.header", state.header);
      await whoami();
      location.hash = "#/";
      route();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { err.textContent = "That token is not accepted here (401)."; return; }
      err.textContent = e.status === 0 || !e.status ? "Cannot reach the Opticon API." : e.message;
    }
  });
  $main().replaceChildren(form);
  user.focus();
}

async function whoami() {
  const doc = await api("GET", "/token");
  state.level = doc.token.userlevel;
  state.tenants = doc.token.tenants || [];
}

// ---- Tenants (admin) -----------------------------------------------------

async function showTenants() {
  nav([["Tenants", "#/"]]);
  const doc = await api("GET", "/");
  const rows = (doc.tenant || []).map((t) => [el("a", { href: "#/t/" + t.id, text: t.name || t.id }), t.id, t.hostcount]);
  $main().replaceChildren(el("h1", { text: "Tenants" }), el("div", { class: "card" }, table(["Name", "UUID", "Hosts"], rows, new Set(["Hosts"]))));
}

// ---- Fleet ---------------------------------------------------------------

const COLUMNS = [
  ["hostname", "Host", (h) => h.hostname],
  ["status", "Status", (h) => SEVERITY[h.status] ?? 5],
  ["ip", "IP", (h) => h.ip],
  ["cpu", "CPU", (h) => h.cpu ?? -1],
  ["load", "Load", (h) => h.load ?? -1],
  ["disk", "Disk I/O", (h) => h.disk ?? -1],
  ["net", "Net Kb/s", (h) => h.net ?? -1],
  ["ram", "Free RAM", (h) => h.ram ?? -1],
  ["rtt", "RTT ms", (h) => h.rtt ?? -1],
  ["loss", "Loss %", (h) => h.loss ?? -1],
  ["seen", "Last seen", (h) => h.seen ?? 0],
];

/** How long ago a Unix time was, shortly. */
function ago(t) {
  if (!t) return "-";
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d";
}

function hostRow(id, e) {
  const n = (k) => (typeof e[k] === "number" ? e[k] : undefined);
  const sum = (a, b) => (n(a) === undefined && n(b) === undefined ? undefined : (n(a) || 0) + (n(b) || 0));
  const problems = Array.isArray(e.problems) ? e.problems.join(" ") : "";
  const h = {
    id, hostname: e.hostname || id, status: e.status || "STALE", ip: e["link/ip"] || e["agent/ip"] || "",
    cpu: n("pcpu"), load: n("loadavg"), disk: sum("io/rdops", "io/wrops"), net: sum("net/in_kbs", "net/out_kbs"),
    ram: n("mem/free"), rtt: n("link/rtt"), loss: n("link/loss"), seen: n("seen"), problems,
  };
  h.search = (h.hostname + " " + h.ip + " " + problems).toLowerCase();
  return h;
}

/** The default order: problems first (severity), then CPU, then name. */
function defaultOrder(a, b) {
  return (SEVERITY[a.status] ?? 5) - (SEVERITY[b.status] ?? 5) || (b.cpu ?? -1) - (a.cpu ?? -1) || (a.hostname < b.hostname ? -1 : 1);
}

function fleetView(tenant) {
  const view = { hosts: [], shown: [], sort: null, asc: true, tab: "all", query: "", rowH: 28 };
  const counts = el("div", { class: "counts", id: "counts" });
  const staleNote = el("div", { class: "stale-note", id: "stale" });
  const search = el("input", { type: "search", id: "search", placeholder: "Search hostname, IP, problems" });
  const tabs = el("span", { class: "tabs" });
  for (const [key, label] of [["ALERT", "ALERT"], ["WARN", "WARN"], ["all", "All"]]) {
    tabs.append(el("button", { type: "button", "data-tab": key, "aria-pressed": String(key === "all"), text: label,
      onclick: () => { view.tab = key; for (const b of tabs.children) b.setAttribute("aria-pressed", String(b.dataset.tab === key)); apply(); } }));
  }
  const pause = el("button", { type: "button", id: "pause", text: state.paused ? "Resume refresh" : "Pause refresh",
    onclick: () => { state.paused = !state.paused; pause.textContent = state.paused ? "Resume refresh" : "Pause refresh"; } });
  const updated = el("span", { class: "muted", id: "updated" });
  const head = el("div", { class: "frow head" });
  for (const [key, label] of COLUMNS) {
    head.append(el("span", { "data-key": key, text: label, onclick: () => {
      if (view.sort === key) view.asc = !view.asc; else { view.sort = key; view.asc = key === "hostname" || key === "ip"; }
      for (const s of head.children) s.className = s.dataset.key === view.sort ? "sorted" + (view.asc ? " asc" : "") : "";
      apply();
    } }));
  }
  const spacer = el("div", { class: "spacer" });
  const viewport = el("div", { class: "viewport", id: "fleet-rows" }, spacer);
  viewport.addEventListener("scroll", () => requestAnimationFrame(paint));
  search.addEventListener("input", () => { view.query = search.value.trim().toLowerCase(); apply(); });

  function apply() {
    const t0 = performance.now();
    const q = view.query;
    let list = view.hosts.filter((h) =>
      (view.tab === "all" || (view.tab === "ALERT" ? h.status === "ALERT" || h.status === "CRIT" : h.status === view.tab)) &&
      (!q || h.search.includes(q)));
    if (view.sort) {
      const key = COLUMNS.find((c) => c[0] === view.sort)[2];
      const dir = view.asc ? 1 : -1;
      list.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * dir || defaultOrder(a, b); });
    } else list.sort(defaultOrder);
    view.shown = list;
    spacer.style.height = list.length * view.rowH + "px";
    paint();
    window.__opticonLastApplyMs = performance.now() - t0;
  }

  function paint() {
    const first = Math.max(0, Math.floor(viewport.scrollTop / view.rowH) - 5);
    const last = Math.min(view.shown.length, first + Math.ceil((viewport.clientHeight || 600) / view.rowH) + 10);
    const rows = [];
    for (let i = first; i < last; i++) {
      const h = view.shown[i];
      const r = el("div", { class: "frow host", "data-host": h.id, title: h.problems ? "Problems: " + h.problems : null,
        onclick: () => { location.hash = "#/t/" + tenant + "/h/" + h.id; } },
        el("span", { class: "name", text: h.hostname }), el("span", null, statusBadge(h.status)), el("span", { text: h.ip || "-" }),
        el("span", { class: "cpu" }, document.createTextNode(h.cpu === undefined ? "-" : h.cpu.toFixed(1).padStart(5, "\u2007") + " %"), h.cpu === undefined ? null : bar(h.cpu)),
        el("span", { class: "n", text: fmt(h.load) }), el("span", { class: "n", text: fmt(h.disk) }),
        el("span", { class: "n", text: fmt(h.net) }), el("span", { class: "n", text: h.ram === undefined ? "-" : short(h.ram * 1024) + "B" }),
        el("span", { class: "n", text: fmt(h.rtt) }), el("span", { class: "n", text: fmt(h.loss) }),
        el("span", { class: "n", text: ago(h.seen), title: h.seen ? utc(h.seen) + " UTC" : null }));
      r.style.top = i * view.rowH + "px";
      rows.push(r);
    }
    spacer.replaceChildren(...rows);
  }

  async function load() {
    if (state.paused) return;
    const t0 = performance.now();
    const doc = await api("GET", "/" + tenant + "/host/overview");
    const entries = Object.entries(doc.overview || {});
    view.hosts = entries.map(([id, e]) => hostRow(id, e));
    const by = { OK: 0, WARN: 0, ALERT: 0, CRIT: 0, STALE: 0 };
    for (const h of view.hosts) by[h.status] = (by[h.status] || 0) + 1;
    counts.replaceChildren(el("span", { text: view.hosts.length + " hosts" }),
      ...Object.entries(by).map(([s, c]) => el("span", { "data-status": s }, statusBadge(s), document.createTextNode(" " + c))));
    staleNote.textContent = doc.stale ? "The collector has published nothing for " + doc.age + " s: this is old data, every host is STALE." : "";
    updated.textContent = "updated " + new Date().toLocaleTimeString() + (doc.age !== undefined ? " (data " + doc.age + " s old)" : "");
    apply();
    window.__opticonFleetRenderMs = performance.now() - t0;
    // Since the page started loading: what a benchmark reads.
    if (window.__opticonFleetReadyAt === undefined) window.__opticonFleetReadyAt = performance.now();
  }

  nav(navLinks(tenant));
  $main().replaceChildren(el("h1", { text: "Fleet" }), counts, staleNote,
    el("div", { class: "toolbar" }, tabs, search, pause, updated), el("div", { class: "fleet" }, head, viewport));
  stopRefresh();
  state.timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return load();
}

function navLinks(tenant) {
  const links = [];
  if (state.level === "AUTH_ADMIN") links.push(["Tenants", "#/"]);
  links.push(["Fleet", "#/t/" + tenant], ["Watchers", "#/t/" + tenant + "/watchers"]);
  return links;
}

// ---- Host ----------------------------------------------------------------

const GRAPHS = [
  ["CPU", "%", [["pcpu", "usage"], ["io/pwait", "iowait"]]],
  ["Load", "", [["loadavg", "1 min"]]],
  ["Memory", "KB", [["mem/free", "free"], ["mem/total", "total"]]],
  ["Disk I/O", "ops/s", [["io/rdops", "read"], ["io/wrops", "write"]]],
  ["Network", "Kb/s", [["net/in_kbs", "in"], ["net/out_kbs", "out"]]],
  ["Link", "ms / %", [["link/rtt", "RTT"], ["link/loss", "loss"]]],
];
const PRESETS = [["3h", 3 * 3600], ["12h", 12 * 3600], ["24h", 86400], ["week", 7 * 86400], ["month", 30 * 86400]];
const KNOWN_TABLES = new Set(["df", "top", "who"]);

function describe(meters, name) {
  const d = meters[name] || {};
  return [d.description || name, d.unit || ""];
}

async function hostView(tenant, host, query) {
  const params = new URLSearchParams(query || "");
  const at = params.get("at");
  const span = Number(params.get("span")) || 12 * 3600;
  const to = Number(params.get("to")) || Math.floor(Date.now() / 1000);
  const from = Number(params.get("from")) || to - span;
  const base = "/" + tenant + "/host/" + host;
  nav(navLinks(tenant));
  const [record, meters, log, watchers] = await Promise.all([
    api("GET", at ? base + "/time/@" + at : base),
    api("GET", "/" + tenant + "/meter").then((d) => d.meter || {}).catch(() => ({})),
    api("GET", base + "/log").catch(() => ({ log: [] })),
    api("GET", base + "/watcher").catch(() => ({ watcher: {} })),
  ]);
  const t0 = performance.now();
  const g = (k) => record[k];
  const group = (k) => (typeof record[k] === "object" && record[k] && !Array.isArray(record[k]) ? record[k] : {});
  const main = $main();
  const go = (p) => { const q = new URLSearchParams(params); for (const k in p) if (p[k] === null) q.delete(k); else q.set(k, p[k]); location.hash = "#/t/" + tenant + "/h/" + host + "?" + q; };

  const title = el("h1", null, document.createTextNode((g("hostname") || host) + " "), statusBadge(g("status")));
  const atForm = el("form", { class: "inline" }, el("label", { text: "View at (UTC)" }),
    el("input", { type: "datetime-local", id: "at", value: at ? new Date(at * 1000).toISOString().slice(0, 16) : "" }),
    el("button", { type: "submit", text: "Show" }), at ? el("button", { type: "button", text: "Latest", onclick: () => go({ at: null }) }) : null);
  atForm.addEventListener("submit", (ev) => { ev.preventDefault(); const v = atForm.querySelector("#at").value; if (v) go({ at: Math.floor(Date.parse(v + "Z") / 1000) }); });
  const staleNote = record.stale ? el("div", { class: "stale-note", text: "Stale: this record is " + record.age + " s old (the collector stopped writing, or the host was forgotten)." }) : null;

  const os = group("os"), agent = group("agent"), link = group("link"), mem = group("mem"), cpu = group("cpu");
  const info = el("dl", { class: "kv" });
  const kv = (k, v) => { if (v !== undefined && v !== null && v !== "") info.append(el("dt", { text: k }), el("dd", { text: fmt(v) })); };
  kv("UUID", host); kv("Hostname", g("hostname")); kv("Status", g("status"));
  kv("Problems", Array.isArray(g("problems")) && g("problems").length ? g("problems").join(", ") : "none");
  kv("Address", link.ip); kv("Agent", agent.v); kv("Kernel", [os.kernel, os.version].filter(Boolean).join(" "));
  kv("Distribution", os.distro); kv("Architecture", os.arch); kv("Hardware", os.hw);
  kv("CPU", cpu.count !== undefined ? cpu.count + " x " + fmt(cpu.model) : undefined);
  kv("Uptime", typeof g("uptime") === "number" ? Math.floor(g("uptime") / 86400) + " days" : undefined);
  kv("Badness", g("badness"));
  const res = el("div");
  const gauge = (label, pct, text) => res.append(el("div", { class: "gauge" }, el("span", { text: label }), bar(pct), el("span", { class: "muted", text })));
  if (typeof g("pcpu") === "number") gauge("CPU", g("pcpu"), g("pcpu").toFixed(1) + " %");
  if (typeof mem.total === "number" && typeof mem.free === "number") gauge("RAM", 100 * (1 - mem.free / mem.total), short(mem.free * 1024) + "B free of " + short(mem.total * 1024) + "B");
  if (Array.isArray(g("loadavg"))) res.append(el("div", { text: "Load " + g("loadavg").join(" ") }));
  if (typeof group("proc").total === "number") res.append(el("div", { text: "Processes " + group("proc").total + " total, " + fmt(group("proc").run) + " running" }));
  if (typeof group("net").in_kbs === "number") res.append(el("div", { text: "Network in " + fmt(group("net").in_kbs) + " Kb/s, out " + fmt(group("net").out_kbs) + " Kb/s" }));

  const cards = el("div", { class: "cards" }, el("div", { class: "card" }, el("h2", { text: "Host" }), info),
    el("div", { class: "card" }, el("h2", { text: "Resources" }), res));
  const tableCard = (key, titleText, columns) => {
    const rows = record[key];
    if (!Array.isArray(rows) || !rows.length) return null;
    const cols = columns || Object.keys(rows[0]);
    const [desc] = describe(meters, key);
    const body = rows.map((r) => cols.map((c) => c === "pused" && typeof r[c] === "number" ? el("span", null, document.createTextNode(r[c] + " %"), bar(r[c]))
      : key === "df" && c === "size" && typeof r[c] === "number" ? short(r[c] * 1048576) + "B" : r[c]));
    const numeric = new Set(cols.filter((c) => typeof rows[0][c] === "number"));
    return el("div", { class: "card", id: "table-" + key }, el("h2", { text: titleText || desc }), table(cols.map((c) => { const [d, u] = describe(meters, key + "/" + c); return d === key + "/" + c ? c : d + (u ? " (" + u + ")" : ""); }), body, numeric));
  };
  const tables = [tableCard("df", "Storage", ["device", "mount", "fs", "size", "pused"].filter((c) => Array.isArray(record.df) && record.df[0] && c in record.df[0])),
    tableCard("top", "Processes"), tableCard("who", "Logged in")];
  for (const k of Object.keys(record)) if (!KNOWN_TABLES.has(k) && Array.isArray(record[k]) && record[k].length && typeof record[k][0] === "object") tables.push(tableCard(k));

  // Graphs: every series of the span in one request.
  const graphBox = el("div", { class: "graphs", id: "graphs" });
  const presets = el("span", { class: "tabs" }, ...PRESETS.map(([label, secs]) =>
    el("button", { type: "button", "aria-pressed": String(to - from === secs && !params.get("to")), text: label, onclick: () => go({ span: secs, from: null, to: null }) })));
  const fromIn = el("input", { type: "datetime-local", id: "from", value: new Date(from * 1000).toISOString().slice(0, 16) });
  const toIn = el("input", { type: "datetime-local", id: "to", value: new Date(to * 1000).toISOString().slice(0, 16) });
  const range = el("form", { class: "inline" }, presets, el("label", { text: "From (UTC)" }), fromIn, el("label", { text: "to" }), toIn, el("button", { type: "submit", text: "Apply" }));
  range.addEventListener("submit", (ev) => { ev.preventDefault(); const a = Date.parse(fromIn.value + "Z") / 1000, b = Date.parse(toIn.value + "Z") / 1000; if (a < b) go({ from: a, to: b, span: null }); });
  const names = GRAPHS.flatMap((x) => x[2].map((s) => s[0]));
  const drawAll = async () => {
    const doc = await api("GET", base + "/range/@" + from + "/@" + to + "?points=300&meter=" + encodeURIComponent(names.join(",")));
    const series = (doc.range && doc.range.series) || {};
    const t1 = performance.now();
    graphBox.replaceChildren(...GRAPHS.map(([titleText, unit, list]) => {
      const box = el("div", { "data-graph": titleText });
      drawGraph(box, { title: titleText, unit, series: list.map(([m, label]) => ({ name: m, label, points: series[m] || [] })) }, from, to,
        (a, b) => go({ from: a, to: b, span: null }));
      return box;
    }));
    window.__opticonGraphRenderMs = performance.now() - t1;
  };

  // Watchers that apply, with their origin; set and delete for this host.
  const wrows = [];
  for (const [id, levels] of Object.entries(watchers.watcher || {})) {
    for (const level of ["warning", "alert", "critical"]) {
      const w = levels[level];
      if (!w) continue;
      wrows.push([w.origin || "default", id, level, w.cmp, w.val, w.weight,
        w.origin === "host" ? el("button", { type: "button", class: "danger", text: "Delete", onclick: () => removeWatcher(base, id).then(() => hostView(tenant, host, query)).catch(showError) }) : ""]);
    }
  }
  const watcherCard = el("div", { class: "card", id: "watchers" }, el("h2", { text: "Watchers" }),
    table(["From", "Meter", "Level", "Match", "Value", "Weight", ""], wrows), watcherForm(base, () => hostView(tenant, host, query)));

  const logRows = (log.log || []).slice(-50).reverse().map((e) => [typeof e.when === "number" ? utc(e.when) + " UTC" : "", e.message || ""]);
  const logCard = el("div", { class: "card", id: "hostlog" }, el("h2", { text: "Host log" }), logRows.length ? table(["Time", "Event"], logRows) : el("p", { class: "muted", text: "Nothing logged." }));
  const raw = el("details", { class: "card" }, el("summary", { text: "Raw record (JSON)" }), el("pre", { class: "json", text: JSON.stringify(record, null, 2) }));
  main.replaceChildren(title, staleNote || "", atForm, cards, ...tables.filter(Boolean), el("h2", { text: "Graphs" }), range, graphBox, watcherCard, logCard, raw);
  window.__opticonHostRenderMs = performance.now() - t0;
  stopRefresh();
  await drawAll();
}

function watcherForm(base, done) {
  const meter = el("input", { name: "meter", placeholder: "meter, e.g. pcpu", required: "" });
  const level = el("select", { name: "level" }, ...["warning", "alert", "critical"].map((l) => el("option", { value: l, text: l })));
  const cmp = el("select", { name: "cmp" }, ...["gt", "lt", "eq", "count"].map((c) => el("option", { value: c, text: c })));
  const val = el("input", { name: "val", placeholder: "value", required: "" });
  const weight = el("input", { name: "weight", placeholder: "weight (keep)", size: "8" });
  const msg = el("span", { class: "muted", role: "status" });
  const form = el("form", { class: "inline watcher-form" }, meter, level, cmp, val, weight, el("button", { class: "primary", type: "submit", text: "Set watcher" }), msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const w = { cmp: cmp.value, val: val.value };
    if (weight.value.trim()) w.weight = Number(weight.value);
    try {
      await api("POST", base + "/watcher/" + meter.value.trim(), { watcher: { [level.value]: w } });
      msg.textContent = "set " + meter.value + " " + level.value + " " + cmp.value + " " + val.value;
      done();
    } catch (e) { msg.textContent = e.message; }
  });
  return form;
}

function removeWatcher(base, id) { return api("DELETE", base + "/watcher/" + id); }

async function watchersView(tenant) {
  nav(navLinks(tenant));
  const base = "/" + tenant;
  const [watchers, meters] = await Promise.all([api("GET", base + "/watcher"), api("GET", base + "/meter").catch(() => ({ meter: {} }))]);
  const rows = [];
  for (const [id, levels] of Object.entries(watchers.watcher || {})) {
    for (const level of ["warning", "alert", "critical"]) {
      const w = levels[level];
      if (!w) continue;
      const [desc, unit] = describe(meters.meter || {}, id);
      rows.push([w.origin || "default", id, desc, level, w.cmp, w.val + (unit ? " " + unit : ""), w.weight,
        w.origin === "tenant" ? el("button", { type: "button", class: "danger", text: "Delete", onclick: () => removeWatcher(base, id).then(() => watchersView(tenant)).catch(showError) }) : ""]);
    }
  }
  const mrows = Object.entries(meters.meter || {}).map(([id, d]) => [d.origin || "default", id, d.type, d.unit, d.description]);
  $main().replaceChildren(el("h1", { text: "Watchers and meters" }),
    el("div", { class: "card", id: "tenant-watchers" }, el("h2", { text: "Watchers" }), table(["From", "Meter", "Description", "Level", "Match", "Value", "Weight", ""], rows), watcherForm(base, () => watchersView(tenant))),
    el("div", { class: "card" }, el("h2", { text: "Meters" }), table(["From", "Meter", "Type", "Unit", "Description"], mrows)));
}

// ---- Routing -------------------------------------------------------------

function showError(e) {
  if (e instanceof ApiError && e.status === 401) return;
  banner(e.message || String(e), true);
}

async function route() {
  stopRefresh();
  if (!state.token) return showLogin("");
  try {
    if (!state.level) await whoami();
    const [path, query] = location.hash.replace(/^#/, "").split("?");
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "t" && parts[1]) {
      if (parts[2] === "h" && parts[3]) return await hostView(parts[1], parts[3], query);
      if (parts[2] === "watchers") return await watchersView(parts[1]);
      return await fleetView(parts[1]);
    }
    if (state.level === "AUTH_ADMIN") return await showTenants();
    if (state.tenants.length) { location.hash = "#/t/" + state.tenants[0]; return; }
    $main().replaceChildren(el("p", { text: "This account belongs to no tenant." }));
  } catch (e) {
    showError(e);
  }
}

document.getElementById("logout").addEventListener("click", () => { logout("Logged out."); location.hash = "#/"; });
window.addEventListener("hashchange", route);
route();
