// Overview: every queue with its counts per state, pause switch, live workers, charts of the last
// hour minute by minute and throughput and failure rate over 5 min / 1 h / 24 h (GetQueueStats); a
// warning on a queue with a backlog and no live worker (for it, or for some of its job types); the
// system's own warnings (GetDiagnostics) on top and the workers' CPU and memory (ListWorkers) below.
// Refreshed when a queue's events say something changed (WatchQueue, for the busiest queues), at
// most once a second, and every 15 s for the workers, the rates and the other queues.
import { eventIdBeforeLastAnswer, get, listAll, may, post, watch } from "./api.js";
import { hourCharts } from "./charts.js";
import { coalesce, h, notify, shortState, time } from "./dom.js";
import { MemoryHistory, healthCard } from "./health.js";
import { limitsSummary } from "./limits.js";

const STATES = ["scheduled", "blocked", "queued", "running", "succeeded", "failed", "cancelled"];
const WINDOWS = { "300s": "5 min", "3600s": "1 h", "86400s": "24 h" };
const SLOW_REFRESH_MS = 15_000;
// A browser opens at most 6 HTTP/1.1 connections to one origin, and each SSE stream holds one:
// the busiest queues are followed live, the rest refresh with the slow timer.
const LIVE_QUEUES = 3;

const activity = (queue) => ["queued", "running", "scheduled"]
  .reduce((sum, state) => sum + Number(queue.jobCounts?.[state] || 0), 0);

const percent = (rate) => `${(100 * (rate || 0)).toFixed(rate && rate < 0.1 ? 1 : 0)}%`;

function liveWorkersByQueue(workers) {
  const byQueue = new Map();
  for (const worker of workers) {
    if (worker.state !== "STATE_ACTIVE") continue;
    for (const queue of worker.queues || []) byQueue.set(queue, (byQueue.get(queue) || 0) + 1);
  }
  return byQueue;
}

function statsTable(stats) {
  return h("table", { class: "rates" },
    h("caption", { class: "visually-hidden" }, "Finished jobs per minute and failure rate"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "window"),
      h("th", { scope: "col" }, "jobs/min"), h("th", { scope: "col" }, "failed"))),
    h("tbody", {}, (stats.windows || []).map((w) => h("tr", { dataset: { window: w.window } },
      h("th", { scope: "row" }, WINDOWS[w.window] || w.window),
      h("td", { class: "throughput" }, (w.total?.throughputPerMinute || 0).toFixed(2)),
      h("td", { class: "failure-rate" }, percent(w.total?.failureRate))))));
}

// GetDiagnostics' warnings, the most severe first, each naming (and linking) what it is about.
function diagnosticsList(warnings) {
  if (!warnings.length) return [];
  const resource = (name) => (name.startsWith("queues/")
    ? h("a", { href: `#/${name.split("/").map(encodeURIComponent).join("/")}` }, name)
    : h("span", {}, name));
  return [h("h2", { id: "diagnostics-title" }, "Warnings"),
    h("ul", { class: "diagnostics", "aria-labelledby": "diagnostics-title" }, warnings.map((w) => {
      const severity = shortState(w.severity).replace("SEVERITY_", "").toLowerCase();
      return h("li", { class: `diagnostic severity-${severity}`, dataset: { kind: shortState(w.kind) } },
        h("strong", {}, severity), " ", resource(w.resource || ""), ": ", w.message,
        w.startTime ? [" (since ", time(w.startTime), ")"] : null);
    }))];
}

// A queue's backlog with no live worker: counted here when no worker consumes the queue at all;
// else GetDiagnostics' per-type warning (jobs of types no live worker of the queue handles).
function backlogWarning(queue, liveWorkers, warnings) {
  const counts = queue.jobCounts || {};
  const backlog = Number(counts.queued || 0) + Number(counts.scheduled || 0);
  if (backlog > 0 && liveWorkers === 0) {
    return h("p", { class: "warning", role: "alert" },
      `${backlog} job${backlog === 1 ? "" : "s"} waiting and no live worker consumes this queue.`);
  }
  const unserved = warnings.filter((w) => w.resource === queue.name && w.kind === "KIND_NO_LIVE_WORKER");
  return unserved.map((w) => h("p", { class: "warning unserved-types", role: "alert" }, w.message));
}

function queueCard(queue, stats, liveWorkers, warnings, refresh, view) {
  const id = queue.name.split("/").pop();
  const counts = queue.jobCounts || {};
  const card = h("article", { class: "card queue", dataset: { queue: id }, "aria-labelledby": `q-${id}` },
    h("header", {},
      h("h2", { id: `q-${id}` }, h("a", { href: `#/queues/${encodeURIComponent(id)}` }, id)),
      queue.paused ? h("span", { class: "state state-paused" }, "paused") : null,
      h("span", { class: "workers" }, `${liveWorkers} live worker${liveWorkers === 1 ? "" : "s"}`)),
    backlogWarning(queue, liveWorkers, warnings),
    h("dl", { class: "counts" }, STATES.flatMap((state) => [
      h("dt", {}, h("a", { href: `#/queues/${encodeURIComponent(id)}?state=${state.toUpperCase()}` }, state)),
      h("dd", { dataset: { state } }, String(counts[state] || 0)),
    ])),
    stats ? hourCharts(id, stats.series) : null,
    stats ? statsTable(stats) : null,
    h("p", { class: "limits" }, limitsSummary(queue.limits)),
    h("p", { class: "card-links" },
      h("a", { href: `#/queues/${encodeURIComponent(id)}/failures` }, "Failures by cause")));
  if (may("ROLE_OPERATOR")) {
    const verb = queue.paused ? "resume" : "pause";
    card.querySelector("header").append(h("button", {
      type: "button", "aria-label": `${verb === "pause" ? "Pause" : "Resume"} queue ${id}`,
      onclick: async () => {
        try {
          await post(`queues/${encodeURIComponent(id)}:${verb}`);
          await refresh();
        } catch (error) {
          notify(view, `Could not ${verb} ${id}: ${error.message}`);
        }
      },
    }, verb === "pause" ? "Pause" : "Resume"));
  }
  return card;
}

export async function renderOverview(main) {
  const view = h("section", { class: "overview", "aria-labelledby": "overview-title" },
    h("h1", { id: "overview-title" }, "Queues"));
  const diagnostics = h("section", { class: "card diagnostics-card", hidden: true, "aria-live": "polite" });
  const grid = h("div", { class: "grid", "aria-live": "polite" });
  const health = h("section", { class: "card health-card", "aria-labelledby": "health-title" });
  view.append(diagnostics, grid, health);
  main.append(view);
  const watches = new Map();
  const memory = new MemoryHistory();
  let closed = false;
  let warnings = [];
  let read = null;  // the last queues, their stats and the workers

  function paintQueues() {
    if (!read) return;
    const { queues, stats, workers } = read;
    const live = liveWorkersByQueue(workers);
    const opened = new Set([...grid.querySelectorAll(".per-minute[open]")]
      .map((details) => details.closest("[data-queue]").dataset.queue));
    grid.replaceChildren(...queues.map((queue, index) => queueCard(
      queue, stats[index], live.get(queue.name.split("/").pop()) || 0, warnings, refresh, view)));
    for (const card of grid.querySelectorAll("[data-queue]")) {
      if (opened.has(card.dataset.queue)) card.querySelector(".per-minute")?.setAttribute("open", "");
    }
    if (!queues.length) grid.append(h("p", {}, "No queues yet: enqueue a job to make one."));
  }

  async function refresh() {
    try {
      const [queues, workers] = await Promise.all([
        listAll("queues", "queues"), listAll("workers", "workers"),
      ]);
      const stats = await Promise.all(queues.map((q) => get(`${q.name}/stats`).catch(() => null)));
      if (closed) return;
      read = { queues, stats, workers };
      paintQueues();
      memory.record(workers);
      health.replaceChildren(...healthCard(workers, memory));
      const busiest = [...queues].sort((a, b) => activity(b) - activity(a)).slice(0, LIVE_QUEUES);
      const followed = new Set(busiest.map((queue) => queue.name));
      for (const name of [...watches.keys()]) if (!followed.has(name)) unfollow(name);
      for (const name of followed) follow(name);
    } catch (error) {
      notify(view, `Could not load the queues: ${error.message}`);
    }
  }
  const soon = coalesce(refresh, 1000);

  // With the slow refresh only: the checks read every queue and Redis's INFO.
  async function showDiagnostics() {
    try {
      const answer = await get("diagnostics");
      if (closed) return;
      warnings = answer.warnings || [];
      diagnostics.replaceChildren(...diagnosticsList(warnings));
      diagnostics.hidden = !warnings.length;
      paintQueues();
    } catch (error) {
      notify(view, `Could not read the diagnostics: ${error.message}`);
    }
  }

  async function follow(name) {
    if (watches.has(name)) return;
    const entry = { handle: null };
    watches.set(name, entry);
    const handle = await watch(name, {
      lastEventId: eventIdBeforeLastAnswer(),
      onEvent: (type) => { if (type === "state_changed") soon(); },
    }).catch(() => null);
    if (closed || watches.get(name) !== entry) handle?.close();
    else entry.handle = handle;
  }

  function unfollow(name) {
    watches.get(name)?.handle?.close();
    watches.delete(name);
  }

  const slowRefresh = () => Promise.all([refresh(), showDiagnostics()]);
  await slowRefresh();
  const timer = setInterval(slowRefresh, SLOW_REFRESH_MS);
  return () => {
    closed = true;
    clearInterval(timer);
    for (const name of [...watches.keys()]) unfollow(name);
  };
}
