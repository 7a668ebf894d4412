// The overview's System health card: the connected worker processes' CPU and memory (ListWorkers,
// each worker's last report), in total and busiest first, each flagged when it needs a look: CPU
// above 90 % of one core, or memory that keeps growing while the page watches it.
import { h, shortState } from "./dom.js";

export const HOT_CPU_PERCENT = 90;
const GROWTH_WINDOW_MS = 10 * 60_000;
const GROWTH_MIN_SPAN_MS = 2 * 60_000;
const GROWTH_RATIO = 1.25;
const GROWTH_MIN_BYTES = 32 * 1048576;
const SHOWN = 10;
const CONNECTED = new Set(["STATE_ACTIVE", "STATE_DRAINING"]);

export const megabytes = (bytes) => `${(Number(bytes || 0) / 1048576).toFixed(0)} MB`;
const cpu = (worker) => Number(worker.cpuPercent || 0);

// Each worker's memory readings (one per report, by its lastSeenTime) over the last 10 minutes of
// this page: the server keeps only the latest, so growth is judged from what the page has seen.
export class MemoryHistory {
  constructor() { this.readings = new Map(); }

  record(workers) {
    for (const worker of workers) {
      const at = Date.parse(worker.lastSeenTime);
      if (!at || !worker.memoryRssBytes) continue;
      const seen = (this.readings.get(worker.name) || []).filter((r) => r.at > at - GROWTH_WINDOW_MS);
      if (!seen.length || seen.at(-1).at < at) seen.push({ at, bytes: Number(worker.memoryRssBytes) });
      this.readings.set(worker.name, seen);
    }
    const present = new Set(workers.map((worker) => worker.name));
    for (const name of [...this.readings.keys()]) if (!present.has(name)) this.readings.delete(name);
  }

  // The growth of the latest reading over the lowest one of the window, when it reads as a
  // trend: over at least 2 minutes, by a quarter and by 32 MB at least; else null.
  growth(name) {
    const seen = this.readings.get(name) || [];
    if (seen.length < 3) return null;
    const last = seen.at(-1);
    const lowest = seen.reduce((low, r) => (r.bytes < low.bytes ? r : low));
    const grew = last.bytes - lowest.bytes;
    if (last.at - lowest.at < GROWTH_MIN_SPAN_MS || grew < GROWTH_MIN_BYTES) return null;
    if (last.bytes < GROWTH_RATIO * lowest.bytes) return null;
    return { bytes: grew, minutes: Math.round((last.at - lowest.at) / 60_000) };
  }
}

export function flagsOf(worker, history) {
  const flags = [];
  if (cpu(worker) > HOT_CPU_PERCENT) {
    flags.push(["cpu", `CPU above ${HOT_CPU_PERCENT} % of one core`]);
  }
  const growth = history.growth(worker.name);
  if (growth) flags.push(["memory", `memory grew ${megabytes(growth.bytes)} in ${growth.minutes} min`]);
  return flags;
}

function workerRow(worker, history) {
  const flags = flagsOf(worker, history);
  const state = shortState(worker.state).toLowerCase();
  return h("tr", { dataset: { worker: worker.name }, class: flags.length ? "flagged" : null },
    h("th", { scope: "row" }, `${worker.host || "?"}:${worker.pid || "?"}`,
      state === "active" ? null : [" ", h("span", { class: "state" }, state)]),
    h("td", { class: "cpu" }, `${cpu(worker).toFixed(0)} %`),
    h("td", { class: "memory" }, megabytes(worker.memoryRssBytes)),
    h("td", { class: "flags" }, flags.length
      ? flags.map(([kind, text]) => h("span", { class: `flag flag-${kind}` }, text))
      : "ok"));
}

// The card's content from ListWorkers' answer; `history` has already recorded these workers.
export function healthCard(workers, history) {
  const live = workers.filter((worker) => CONNECTED.has(worker.state))
    .sort((a, b) => cpu(b) - cpu(a) || Number(b.memoryRssBytes || 0) - Number(a.memoryRssBytes || 0));
  const hosts = new Set(live.map((worker) => worker.host));
  const totalCpu = live.reduce((sum, worker) => sum + cpu(worker), 0);
  const totalMemory = live.reduce((sum, worker) => sum + Number(worker.memoryRssBytes || 0), 0);
  const title = h("h2", { id: "health-title" }, "System health");
  if (!live.length) {
    return [title, h("p", { class: "health-total" }, "No worker process is connected."),
      h("p", { class: "card-links" }, h("a", { href: "#/workers" }, "Workers"))];
  }
  const processes = `${live.length} worker process${live.length === 1 ? "" : "es"}`;
  return [title,
    h("p", { class: "health-total" }, `${processes} on ${hosts.size} host${hosts.size === 1 ? "" : "s"}: `
      + `${totalCpu.toFixed(0)} % CPU (of one core), ${megabytes(totalMemory)} memory in all`),
    h("div", { class: "scroll" }, h("table", { class: "health" },
      h("caption", { class: "visually-hidden" }, "Connected worker processes, busiest first"),
      h("thead", {}, h("tr", {}, ["host:pid", "CPU", "memory", "flag"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, live.slice(0, SHOWN).map((worker) => workerRow(worker, history))))),
    h("p", { class: "help" }, `Each worker's last report. Flagged: CPU above ${HOT_CPU_PERCENT} % of one core `
      + "(its handlers wait for the processor: add workers or lower its concurrency), or memory up by a "
      + "quarter and 32 MB or more over the last minutes this page watched (a leak or a growing cache)."),
    h("p", { class: "card-links" }, h("a", { href: "#/workers" },
      live.length > SHOWN ? `All ${live.length} workers` : "Workers"))];
}
