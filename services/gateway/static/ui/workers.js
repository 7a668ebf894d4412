// The tenant's workers (ListWorkers): host, pid, queues, job types, concurrency and slots in use,
// liveness (state, last seen), CPU and memory, and the jobs each is running now (ListJobs over
// every queue, `state = RUNNING AND worker = "<id>"`, for the first CURRENT_JOBS_FOR live workers).
// Workers send no events: the view reads them again every few seconds.
import { get, listAll } from "./api.js";
import { durationMs, h, humanMs, jobHref, jobId, notify, shortState, time } from "./dom.js";

const REFRESH_MS = 5_000;
const CURRENT_JOBS_FOR = 50;  // workers whose running jobs are listed, in ListWorkers' order
const CURRENT_JOBS_SHOWN = 20;  // per worker

const workerId = (worker) => worker.name.replace(/^workers\//, "");  // as an attempt names it
// The worker's clock against Redis's (GetDiagnostics warns past its threshold).
function clockOffset(offset) {
  if (offset === undefined) return "—";
  const ms = durationMs(offset);
  return `${ms >= 0 ? "+" : "-"}${humanMs(Math.abs(ms))}`;
}
const megabytes = (bytes) => (bytes ? `${(Number(bytes) / 1048576).toFixed(0)} MB` : "—");

async function runningJobs(worker) {
  const page = await get("queues/-/jobs", {
    filter: `state = RUNNING AND worker = ${JSON.stringify(workerId(worker))}`,
    pageSize: CURRENT_JOBS_SHOWN,
  });
  return page.jobs || [];
}

function jobLinks(jobs) {
  return h("ul", { class: "plain" }, jobs.map((job) =>
    h("li", {}, h("a", { href: jobHref(job.name) }, jobId(job.name)), ` ${job.type}`)));
}

function workerRow(worker, running) {
  const state = shortState(worker.state).toLowerCase();
  return h("tr", { dataset: { worker: worker.name } },
    h("td", { class: "name" }, workerId(worker)),
    h("td", {}, h("span", { class: `state state-${state === "active" ? "running" : state}` }, state)),
    h("td", {}, worker.host || ""), h("td", {}, String(worker.pid || "")),
    h("td", { class: "queues" }, (worker.queues || []).join(", ")),
    h("td", { class: "job-types" }, (worker.jobTypes || []).join(", ")),
    h("td", { class: "slots" }, `${worker.runningAttempts || 0} / ${worker.concurrency || 0}`),
    h("td", {}, worker.cpuPercent !== undefined ? `${Number(worker.cpuPercent).toFixed(0)}%` : "—"),
    h("td", {}, megabytes(worker.memoryRssBytes)),
    h("td", {}, time(worker.lastSeenTime)),
    h("td", { class: "clock" }, clockOffset(worker.clockOffset)),
    h("td", { class: "current" }, running.length ? jobLinks(running) : "—"));
}

export async function renderWorkers(main) {
  const tbody = h("tbody");
  const view = h("section", { class: "workers-view", "aria-labelledby": "workers-title" },
    h("h1", { id: "workers-title" }, "Workers"),
    h("div", { class: "scroll" }, h("table", { class: "workers-table" },
      h("caption", { class: "visually-hidden" }, "Workers of this tenant"),
      h("thead", {}, h("tr", {}, ["Worker", "State", "Host", "PID", "Queues", "Job types", "Slots used",
        "CPU", "Memory", "Last seen", "Clock", "Current jobs"].map((c) => h("th", { scope: "col" }, c)))),
      tbody)));
  main.append(view);
  let closed = false;

  async function load() {
    try {
      const workers = await listAll("workers", "workers");
      const busy = workers.filter((w) => w.state === "STATE_ACTIVE").slice(0, CURRENT_JOBS_FOR);
      const running = new Map(await Promise.all(busy.map(async (w) => [w.name, await runningJobs(w)])));
      if (closed) return;
      tbody.replaceChildren(...workers.map((w) => workerRow(w, running.get(w.name) || [])));
      if (!workers.length) tbody.append(h("tr", {}, h("td", { colspan: "12" }, "No workers connected.")));
    } catch (error) {
      notify(view, `Could not list the workers: ${error.message}`);
    }
  }

  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => {
    closed = true;
    clearInterval(timer);
  };
}
