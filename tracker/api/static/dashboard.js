// The tracker's dashboard: reads the /v1 JSON routes (with the API token, when the tracker wants one)
// and refreshes from /v1/changes. No build step, no dependencies. Every value reaches the page as a
// text node (see `h`), never as HTML.
"use strict";

const TOKEN_KEY = "ampersand-tracker-token";
const LIST_LIMIT = 100;
const TIMELINE_EVENTS = 100;
const REFRESH_DELAY_MS = 1500;
const RECONNECT_MS = 3000;
const ALERT_DELIVERIES = 20;
// Deliveries and subscription states are not in /v1/changes: the alerts page asks again this often.
const ALERTS_POLL_MS = 5000;
const FILTERS = [
  ["projectId", "Project"],
  ["provider", "Provider"],
  ["integrationId", "Integration"],
  ["groupRef", "Group"],
];

let token = sessionStorage.getItem(TOKEN_KEY);
let current = null; // what the page shows: {render, concerns(change), page, poll}
let refreshTimer = null;
let pollTimer = null;
let streaming = false;

class Unauthorized extends Error {}

// ---- HTTP -------------------------------------------------------------------------------------------

function authHeaders(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(path) {
  const response = await fetch(path, { headers: authHeaders({ Accept: "application/json" }) });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function apiOrNull(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

const enc = encodeURIComponent;

// ---- DOM --------------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function when(value) {
  if (!value) return h("span", { class: "muted" }, "—");
  const date = new Date(value);
  return h("time", { datetime: value, title: value }, date.toLocaleString());
}

// A time as "3 min ago", the exact time on hover; ahead of now as "in 30 s".
function ago(value) {
  if (!value) return h("span", { class: "muted" }, "—");
  const date = new Date(value);
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];
  const [unit, size] = units.find(([, size]) => Math.abs(seconds) >= size) || units[units.length - 1];
  const text = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(Math.round(seconds / size), unit);
  return h("time", { datetime: value, title: `${date.toLocaleString()} (${value})` }, text);
}

function badge(status, text = status) {
  return h("span", { class: `badge ${status}` }, text);
}

// A heading is its text, or [text, class] ("num" right-aligns a column of numbers).
function heading(spec) {
  return Array.isArray(spec) ? h("th", { class: spec[1] }, spec[0]) : h("th", {}, spec);
}

function table(headings, rows, empty = "None.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headings.map(heading))),
    h("tbody", {}, rows),
  );
}

function definitions(pairs) {
  return h(
    "dl",
    {},
    pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]),
  );
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

function section(id, title, ...content) {
  return h("section", { class: "card", id }, h("h2", {}, title), content);
}

function reasonList(reasons) {
  if (!reasons || !reasons.length) return h("span", { class: "muted" }, "—");
  return h(
    "ul",
    { class: "reasons" },
    reasons.map((reason) =>
      h(
        "li",
        {},
        h("code", {}, reason.code),
        " ",
        reason.message,
        " ",
        h("span", { class: "since" }, "since ", when(reason.since)),
      ),
    ),
  );
}

function installationLink(id) {
  return h("a", { href: `#/installations/${enc(id)}` }, id);
}

// ---- token ------------------------------------------------------------------------------------------

function askForToken(message) {
  const form = document.getElementById("token-form");
  const error = document.getElementById("token-error");
  document.getElementById("main").replaceChildren();
  form.hidden = false;
  error.hidden = !message;
  error.textContent = message || "";
  document.getElementById("token").focus();
}

function onTokenSubmit(event) {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("token-form").hidden = true;
  start();
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  location.reload();
}

// ---- pages ------------------------------------------------------------------------------------------

function filtersFrom(search) {
  const params = new URLSearchParams(search);
  return Object.fromEntries(FILTERS.map(([name]) => [name, params.get(name) || ""]));
}

function filterForm(filters) {
  const inputs = FILTERS.map(([name, label]) =>
    h("label", {}, label, h("input", { name, value: filters[name], placeholder: "any" })),
  );
  return h(
    "form",
    {
      id: "filters",
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        const chosen = Object.fromEntries(new FormData(event.target).entries());
        location.hash = `#/${query(chosen)}`;
      },
    },
    inputs,
    h("button", { type: "submit" }, "Filter"),
    h("a", { href: "#/", class: "clear" }, "Clear"),
  );
}

const STATUSES = ["healthy", "degraded", "unhealthy", "deleted"];

async function overview(filters) {
  const { projectId, provider, integrationId, groupRef } = filters;
  const listFilters = query({ projectId, provider, integrationId, groupRef, limit: LIST_LIMIT });
  const [rollup, unhealthy, degraded, alerting] = await Promise.all([
    api(`v1/integrations${query({ projectId, provider, groupRef })}`),
    api(`v1/installations${listFilters}&health=unhealthy`),
    api(`v1/installations${listFilters}&health=degraded`),
    api("v1/alerts/subscriptions").catch((error) => {
      if (error instanceof Unauthorized) throw error;
      return { error };
    }),
  ]);
  const integrations = rollup.items.filter((item) => !integrationId || item.integrationId === integrationId);
  const totals = Object.fromEntries([...STATUSES, "total"].map((status) => [status, 0]));
  for (const item of integrations) for (const status in totals) totals[status] += item.installations[status];

  const counts = h(
    "div",
    { id: "totals", class: "totals" },
    ["total", ...STATUSES].map((status) =>
      h(
        "div",
        { class: `total ${status}`, "data-status": status },
        h("span", { class: "count" }, totals[status]),
        h("span", {}, status),
      ),
    ),
  );
  const byIntegration = table(
    ["Integration", "Provider", ...[...STATUSES, "total"].map((status) => [status, "num"])],
    integrations.map((item) =>
      h(
        "tr",
        {},
        h(
          "td",
          {},
          h(
            "a",
            { href: `#/${query({ ...filters, integrationId: item.integrationId })}` },
            item.integrationName || item.integrationId || "(none)",
          ),
          h("div", { class: "muted small" }, item.integrationId),
        ),
        h("td", {}, item.provider),
        STATUSES.map((status) => {
          const count = item.installations[status];
          return h("td", { class: `num ${count ? status : ""}` }, count);
        }),
        h("td", { class: "num" }, item.installations.total),
      ),
    ),
    "No installations match.",
  );
  return [
    alertsNotice(alerting),
    filterForm(filters),
    counts,
    section("integrations", "Installations by integration", byIntegration),
    problemList("unhealthy", "Unhealthy installations", unhealthy),
    problemList("degraded", "Degraded installations", degraded),
  ];
}

// On the overview only when something is wrong with the alerts themselves: nobody is told of new issues.
function alertsNotice(alerting) {
  if (alerting.error) {
    return h(
      "p",
      { id: "alerts-notice", class: "notice error" },
      `Could not load the alert subscriptions: ${alerting.error.message}`,
    );
  }
  const failing = alerting.items.filter((item) => item.failing && item.status === "active").length;
  const disabled = alerting.items.filter((item) => item.status === "disabled").length;
  if (!failing && !disabled) return null;
  const told = [failing ? `${failing} failing` : null, disabled ? `${disabled} disabled` : null].filter(Boolean);
  return h(
    "p",
    { id: "alerts-notice", class: "notice error" },
    `Alert subscriptions: ${told.join(", ")}. `,
    h("a", { href: "#/alerts" }, "See the alerts"),
  );
}

function problemList(id, title, page) {
  const rows = page.items.map((item) =>
    h(
      "tr",
      {},
      h("td", {}, installationLink(item.installationId)),
      h("td", {}, item.integrationName || item.integrationId),
      h("td", {}, item.groupName || item.groupRef),
      h("td", {}, item.provider),
      h("td", {}, reasonList(item.health.reasons)),
    ),
  );
  const more = page.nextCursor
    ? h("p", { class: "muted" }, `Showing the first ${page.items.length}; narrow the filters to see the others.`)
    : null;
  return section(id, title, table(["Installation", "Integration", "Group", "Provider", "Reasons"], rows), more);
}

async function installationPage(view, id) {
  const base = `v1/installations/${enc(id)}`;
  const installation = await apiOrNull(base);
  const back = h("p", {}, h("a", { href: "#/" }, "← Overview"));
  if (!installation) return [back, h("p", { class: "error" }, `No installation ${id}.`)];
  const after = Math.max(0, installation.version - TIMELINE_EVENTS);
  const [versions, timeline, connection, destinations] = await Promise.all([
    apiOrNull(`${base}/config-versions`),
    apiOrNull(`${base}/events${query({ after, limit: TIMELINE_EVENTS * 2 })}`),
    installation.connectionId ? apiOrNull(`v1/connections/${enc(installation.connectionId)}`) : null,
    Promise.all(
      (installation.destinations || []).map((name) =>
        api(`v1/destinations${query({ projectId: installation.projectId, destinationName: name })}`).then(
          (page) => ({ name, found: page.items }),
        ),
      ),
    ),
  ]);
  view.concerns = (change) =>
    (change.entity === "installation" && change.entityId === id) ||
    (change.entity === "connection" && change.entityId === installation.connectionId) ||
    (change.entity === "destination" && (installation.destinations || []).includes(change.document.destinationName));
  return [
    back,
    h("h1", { class: "title" }, installation.installationId, " ", badge(installation.health.status)),
    stateSection(installation),
    section("health", "Health", reasonList(installation.health.reasons)),
    objectsSection(installation),
    configSection(base, installation, versions ? versions.items : []),
    connectionSection(installation, connection),
    destinationsSection(destinations),
    timelineSection(timeline ? timeline.items : []),
  ];
}

function stateSection(installation) {
  const schedule = installation.readSchedule || {};
  const backfill = installation.backfill || { done: 0, total: 0 };
  return section(
    "state",
    "State",
    definitions([
      ["Project", installation.projectId],
      ["Integration", `${installation.integrationName || ""} (${installation.integrationId || "?"})`],
      ["Provider", installation.provider],
      ["Group", `${installation.groupName || ""} (${installation.groupRef || "?"})`],
      ["Consumer", `${installation.consumerName || ""} (${installation.consumerRef || "?"})`],
      ["Connection", installation.connectionId],
      ["Config version", installation.configVersion],
      ["Read schedule", schedule.paused ? `paused: ${schedule.error || "no error given"}` : "running"],
      ["Backfill", `${backfill.done} of ${backfill.total} objects done`],
      ["Deleted", installation.deleted ? "yes" : "no"],
      ["First seen", when(installation.firstSeenAt)],
      ["Updated", when(installation.updatedAt)],
    ]),
  );
}

function objectsSection(installation) {
  const rows = Object.entries(installation.objects || {}).map(([name, object]) => {
    const read = object.lastTriggeredRead;
    const writes = object.writes || {};
    return h(
      "tr",
      {},
      h("td", {}, h("code", {}, name)),
      h("td", {}, object.backfillDone ? ["done ", when(object.backfillDoneAt)] : badge("degraded", "pending")),
      h(
        "td",
        {},
        read
          ? [
              badge(read.status === "done" ? "healthy" : "degraded", read.status),
              " ",
              when(read.receivedAt),
              read.error ? h("div", { class: "error" }, read.error) : null,
              h("div", { class: "muted small" }, `${read.fromTimestamp || "…"} → ${read.untilTimestamp || "…"}`),
            ]
          : h("span", { class: "muted" }, "—"),
      ),
      h(
        "td",
        {},
        writes.operations
          ? [
              `${writes.operations} operations, ${writes.failedOperations} failed; `,
              `${writes.successfulRecords} records written, ${writes.recordErrors} record errors`,
              writes.lastSuccess === false
                ? h("div", { class: "error" }, "failing since ", when(writes.failingSince), ": ",
                    (writes.lastErrors || []).join("; "))
                : null,
            ]
          : h("span", { class: "muted" }, "—"),
      ),
    );
  });
  return section("objects", "Objects", table(["Object", "Backfill", "Last triggered read", "Writes"], rows));
}

function configSection(base, installation, versions) {
  const diffBox = h("div", { id: "config-diff" });
  const showDiff = async (from, to) => {
    diffBox.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const diff = await api(`${base}/config-versions/diff${query({ from, to })}`);
      diffBox.replaceChildren(
        h("h3", {}, `Version ${diff.from} → ${diff.to}`),
        table(
          ["Path", "Change", "Before", "After"],
          diff.changes.map((change) =>
            h(
              "tr",
              { class: change.op },
              h("td", {}, h("code", {}, change.path || "(root)")),
              h("td", {}, change.op),
              h("td", {}, json(change.old)),
              h("td", {}, json(change.new)),
            ),
          ),
          "The two versions are equal.",
        ),
      );
    } catch (error) {
      diffBox.replaceChildren(h("p", { class: "error" }, error.message));
    }
  };
  const rows = versions.map((version) =>
    h(
      "tr",
      { class: version.version === installation.configVersion ? "current" : "" },
      h("td", {}, version.version, version.version === installation.configVersion ? " (current)" : ""),
      h("td", {}, when(version.firstSeenAt)),
      h("td", {}, version.missedUpdate ? "known from a later update's lastConfig" : ""),
      h("td", {}, h("code", { title: version.sha256 }, version.sha256.slice(0, 12))),
      h(
        "td",
        {},
        version.version > 1
          ? h(
              "button",
              { type: "button", onclick: () => showDiff(version.version - 1, version.version) },
              `diff with ${version.version - 1}`,
            )
          : null,
      ),
      h("td", {}, h("details", {}, h("summary", {}, "config"), json(version.config))),
    ),
  );
  const headings = ["Version", "First seen", "Note", "SHA-256", "Diff", "Content"];
  return section("config", "Config versions", table(headings, rows, "No config seen yet."), diffBox);
}

function connectionSection(installation, connection) {
  if (!installation.connectionId) return section("connection", "Connection", h("p", { class: "muted" }, "None named."));
  if (!connection) {
    const unknown = `Connection ${installation.connectionId} has sent no notification yet.`;
    return section("connection", "Connection", h("p", { class: "muted" }, unknown));
  }
  return section(
    "connection",
    "Connection",
    definitions([
      ["Connection", connection.connectionId],
      ["Status", badge(connection.status === "active" ? "healthy" : "unhealthy", connection.status)],
      ["Errors", connection.errors && connection.errors.length ? connection.errors.join("; ") : "—"],
      ["Health", reasonList(connection.health && connection.health.reasons)],
    ]),
  );
}

function destinationsSection(destinations) {
  const rows = destinations.flatMap(({ name, found }) =>
    found.length
      ? found.map((destination) =>
          h(
            "tr",
            {},
            h("td", {}, name),
            h("td", {}, destination.destinationId),
            h("td", {}, destination.url),
            h("td", {}, destination.disabled ? badge("unhealthy", "disabled") : badge("healthy", "enabled")),
          ),
        )
      : [h("tr", {}, h("td", {}, name), h("td", { colspan: 3, class: "muted" }, "no notification about it yet"))],
  );
  const listed = table(["Name", "Destination", "URL", "State"], rows, "The config names no destination.");
  return section("destinations", "Destinations", listed);
}

function timelineSection(events) {
  const rows = [...events].reverse().map((event) =>
    h(
      "tr",
      {},
      h("td", { class: "num" }, event.position),
      h("td", {}, when(event.receivedAt)),
      h("td", {}, h("code", {}, event.type)),
      h("td", {}, h("details", {}, h("summary", {}, "data"), json(event.data))),
    ),
  );
  const listed = table([["Position", "num"], "Received", "Type", "Data"], rows, "No events.");
  return section("timeline", "Timeline (newest first)", listed);
}

// ---- alerts -----------------------------------------------------------------------------------------

async function alertsPage() {
  const [subscriptions, deliveries] = await Promise.all([
    api("v1/alerts/subscriptions"),
    api(`v1/alerts/deliveries${query({ limit: ALERT_DELIVERIES })}`),
  ]);
  const urls = new Map(subscriptions.items.map((item) => [item.id, item.url]));
  return [
    h("h1", { class: "title" }, "Alerts"),
    subscriptionsSection(subscriptions.items),
    deliveriesSection(deliveries, urls),
  ];
}

function subscriptionState(item) {
  const state = [item.status === "disabled" ? badge("deleted", "disabled") : badge("healthy", "active")];
  if (item.failing) state.push(" ", badge("unhealthy", "failing"));
  if (item.status === "disabled") {
    state.push(
      h("div", { class: "error" }, "disabled: nothing more is sent", item.lastError ? `; ${item.lastError}` : ""),
    );
  } else if (item.failing) {
    state.push(
      h("div", { class: "error" }, "failing since ", when(item.failingSince), ": ", item.lastError || "no error given"),
    );
  }
  return state;
}

function subscriptionFilters(item) {
  return h(
    "ul",
    { class: "plain" },
    h("li", {}, `${item.minSeverity} and worse`),
    h("li", {}, item.projectIds.length ? ["projects ", item.projectIds.join(", ")] : "every project"),
    h(
      "li",
      {},
      item.codes.length ? ["codes ", item.codes.map((code, i) => [i ? ", " : "", h("code", {}, code)])] : "every code",
    ),
    item.delaySeconds ? h("li", {}, `not sent if resolved within ${item.delaySeconds} s`) : null,
  );
}

function subscriptionsSection(items) {
  const rows = items.map((item) =>
    h(
      "tr",
      { class: item.status === "disabled" ? "disabled" : item.failing ? "failing" : "" },
      h("td", {}, h("code", { class: "url" }, item.url), h("div", { class: "muted small" }, item.id)),
      h("td", {}, item.format),
      h("td", {}, subscriptionFilters(item)),
      h("td", {}, subscriptionState(item)),
      h(
        "td",
        {},
        ago(item.createdAt),
        item.createdBy ? h("div", { class: "muted small" }, `by ${item.createdBy}`) : null,
      ),
    ),
  );
  const none = "No alert subscriptions: create one with POST v1/alerts/subscriptions.";
  return section(
    "alert-subscriptions",
    "Subscriptions",
    table(["URL", "Format", "Filters", "State", "Created"], rows, none),
  );
}

const DELIVERY_BADGES = {
  delivered: "healthy",
  pending: "degraded",
  failed: "unhealthy",
  suppressed: "deleted",
  cancelled: "deleted",
};

function lastAttempt(delivery) {
  const attempt = delivery.attempts[delivery.attempts.length - 1];
  if (!attempt) return h("span", { class: "muted" }, "—");
  const ok = attempt.statusCode !== null && attempt.statusCode < 300;
  return [
    attempt.statusCode !== null ? h("span", { class: ok ? "" : "error" }, `HTTP ${attempt.statusCode}`) : null,
    attempt.error ? h("div", { class: "error" }, attempt.error) : null,
    h("div", { class: "muted small" }, ago(attempt.at), `, ${attempt.durationMs} ms`),
  ];
}

function deliveriesSection(page, urls) {
  const rows = page.items.map((delivery) =>
    h(
      "tr",
      { "data-delivery": delivery.id },
      h("td", {}, ago(delivery.occurredAt)),
      h("td", {}, h("code", {}, delivery.type)),
      h(
        "td",
        {},
        h("span", { class: "muted" }, delivery.entity, " "),
        delivery.entity === "installation" ? installationLink(delivery.entityId) : delivery.entityId,
      ),
      h("td", {}, h("code", {}, delivery.code)),
      h(
        "td",
        {},
        badge(DELIVERY_BADGES[delivery.status] || "deleted", delivery.status),
        // A delivered one's outcome is its last attempt's status code, shown beside it.
        delivery.outcome && delivery.status !== "delivered"
          ? h("div", { class: "muted small" }, delivery.outcome)
          : null,
        delivery.nextAttemptAt ? h("div", { class: "muted small" }, "next try ", ago(delivery.nextAttemptAt)) : null,
      ),
      h("td", { class: "num" }, delivery.attemptCount),
      h("td", {}, lastAttempt(delivery)),
      h(
        "td",
        {},
        h(
          "code",
          { class: "url", title: delivery.subscriptionId },
          urls.get(delivery.subscriptionId) || delivery.subscriptionId,
        ),
      ),
    ),
  );
  const headings = [
    "Occurred",
    "Type",
    "Entity",
    "Code",
    "Status",
    ["Attempts", "num"],
    "Last attempt",
    "Subscription",
  ];
  const more = page.nextCursor
    ? h("p", { class: "muted" }, `The ${page.items.length} most recent; v1/alerts/deliveries pages through the others.`)
    : null;
  return section(
    "alert-deliveries",
    "Recent deliveries (newest first)",
    table(headings, rows, "No deliveries yet."),
    more,
  );
}

// ---- routing and refresh ----------------------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const match = hash.match(/^\/installations\/([^?]+)/);
  const view = { concerns: () => true, page: "overview", poll: false };
  if (match) {
    view.page = "installation";
    view.render = () => installationPage(view, decodeURIComponent(match[1]));
  } else if (/^\/alerts\/?$/.test(hash)) {
    view.page = "alerts";
    view.render = alertsPage;
    view.poll = true;
  } else view.render = () => overview(filtersFrom(hash.split("?")[1] || ""));
  return view;
}

async function show(view) {
  const main = document.getElementById("main");
  try {
    const content = await view.render();
    if (view !== current) return; // the user went elsewhere meanwhile
    main.replaceChildren(...content);
  } catch (error) {
    if (error instanceof Unauthorized) return askForToken(token ? "That token was refused." : "");
    if (view !== current) return;
    main.replaceChildren(h("p", { class: "error" }, `Could not load: ${error.message}`));
  }
  if (view.poll) schedulePoll(view);
}

function schedulePoll(view) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(() => {
    if (view !== current) return;
    // Not while the tab is hidden, nor while the keyboard is on the content: a new page would lose the place.
    const main = document.getElementById("main");
    if (document.hidden || main.contains(document.activeElement)) schedulePoll(view);
    else show(view);
  }, ALERTS_POLL_MS);
}

// The header's link to the page shown is marked, for screen readers and the eye.
function markNavigation(page) {
  const here = page === "alerts" ? "#/alerts" : "#/";
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.getAttribute("href") === here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function navigate() {
  clearTimeout(pollTimer);
  current = route();
  markNavigation(current.page);
  show(current);
}

function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    // Not while someone types a filter: the new page would take their text away.
    if (document.activeElement && document.activeElement.matches("#main input")) scheduleRefresh();
    else if (current) show(current);
  }, REFRESH_DELAY_MS);
}

function setLive(on, text) {
  const live = document.getElementById("live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = text;
}

// Server-Sent Events read with fetch(), so the token goes in a header; resumes with Last-Event-ID.
async function followChanges() {
  if (streaming) return;
  streaming = true;
  let lastId = null;
  for (;;) {
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await fetch("v1/changes", { headers });
      if (response.status === 401) throw new Unauthorized();
      if (!response.ok || !response.body) throw new Error(`${response.status}`);
      setLive(true, "live");
      if (lastId !== null) scheduleRefresh(); // what changed while we were away
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let event = {};
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const lines = buffer.split("\n");
        buffer = lines.pop();
        for (const raw of lines) {
          const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
          if (line === "") {
            if (event.data !== undefined) onChange(JSON.parse(event.data));
            event = {};
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "id") lastId = text;
            else if (field === "data") event.data = event.data === undefined ? text : `${event.data}\n${text}`;
          }
        }
      }
    } catch (error) {
      if (error instanceof Unauthorized) {
        streaming = false;
        setLive(false, "offline");
        return;
      }
    }
    setLive(false, "reconnecting");
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

function onChange(change) {
  document.getElementById("live").title = `last change: ${change.entity} ${change.entityId} (seq ${change.seq})`;
  if (current && current.concerns(change)) scheduleRefresh();
}

function start() {
  document.getElementById("forget-token").hidden = !token;
  navigate();
  followChanges();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("token-form").addEventListener("submit", onTokenSubmit);
  document.getElementById("forget-token").addEventListener("click", forgetToken);
  window.addEventListener("hashchange", navigate);
  if (document.body.dataset.token === "required" && !token) askForToken("");
  else start();
});
