// One job: payload, progress, result, error with its stack trace, attempts, timings, wait reason
// and wait times, phases, dependencies and children, schedule of origin and live log lines;
// retry and cancel after a confirmation. WatchJob keeps it live: the progress bar moves with each
// event, and the job is read again when its state changes.
import { get, may, post, watch } from "./api.js";
import {
  FINISHED, WAITING, confirmAction, coalesce, durationMs, h, humanMs, jobDurationMs, jobHref,
  notify, pretty, progressBar, setProgress, shortState, stateBadge, time,
} from "./dom.js";
import { liveDiagnostics, stallFlag } from "./job_inspect.js";
import { JobHistory, progressHistory, timelineCards } from "./timeline.js";

// How often a running job's page asks whether it now counts as stalled (the threshold is minutes).
const STALL_RECHECK_MS = 30_000;

const jobLink = (name) => h("a", { href: jobHref(name) }, name);

function section(title, ...content) {
  const id = `s-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== "" && v !== undefined)
    .flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function errorBlock(error) {
  return h("div", { class: "error" },
    h("p", {}, h("strong", { class: "error-type" }, error.type || shortState(error.reason)), ": ",
      h("span", { class: "error-message" }, error.message || "")),
    error.stackTrace
      ? h("pre", { class: "stack", tabindex: "0", "aria-label": "Stack trace" }, error.stackTrace)
      : null);
}

function timings(job) {
  const created = Date.parse(job.createTime);
  const started = job.startTime ? Date.parse(job.startTime) : null;
  return facts([
    ["Created", time(job.createTime)], ["Run at", time(job.runTime)],
    ["Started", time(job.startTime)], ["Finished", time(job.finishTime)],
    ["Queue wait", started ? humanMs(started - created) : null],
    ["Duration", h("span", { class: "duration" }, humanMs(jobDurationMs(job)))],
  ]);
}

function waitTimes(job) {
  if (!(job.waitTimes || []).length) return null;
  const spent = job.waitTimes.map((w) =>
    `${shortState(w.kind).toLowerCase().replaceAll("_", " ")} ${humanMs(durationMs(w.duration))}`);
  return h("p", {}, `Time waiting: ${spent.join(", ")}`);
}

function phases(list) {
  const took = (p) => humanMs((p.finishTime ? Date.parse(p.finishTime) : Date.now()) - Date.parse(p.startTime));
  return h("ol", { class: "phases" }, list.map((p) =>
    h("li", {}, stateBadge(p.state), ` ${p.name} `, p.startTime ? took(p) : "")));
}

function attemptsTable(attempts) {
  return h("table", {},
    h("thead", {}, h("tr", {}, ["#", "Worker", "Start", "End", "Outcome", "Error"]
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, attempts.map((a) => h("tr", {},
      h("td", {}, String(a.number)), h("td", {}, a.worker || ""), h("td", {}, time(a.startTime)),
      h("td", {}, time(a.endTime)), h("td", {}, shortState(a.outcome)),
      h("td", {}, a.error ? `${a.error.type}: ${a.error.message}` : "")))));
}

function dependencies(job) {
  const deps = (job.dependencies || []).filter((d) => !d.child);
  const children = (job.dependencies || []).filter((d) => d.child);
  const list = (items) => h("ul", {}, items.map((d) => h("li", {}, jobLink(d.job), " ",
    d.state ? stateBadge(d.state) : "",
    d.onFailure ? ` on failure: ${d.onFailure.replace("FAILURE_POLICY_", "").toLowerCase()}` : "")));
  return [
    job.parent ? h("p", {}, "Parent: ", jobLink(job.parent)) : null,
    deps.length ? [h("h3", {}, "Waits for"), list(deps)] : null,
    children.length ? [h("h3", {}, "Children"), list(children)] : null,
  ];
}

export async function renderJob(main, encodedQueue, encodedId) {
  const [queue, id] = [encodedQueue, encodedId].map(decodeURIComponent);
  const name = `queues/${queue}/jobs/${id}`;
  const path = `queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
  const body = h("div", { class: "job-body" });
  const logs = h("ol", { class: "logs", "aria-label": "Log lines" });
  const view = h("section", { class: "job", "aria-labelledby": "job-title" },
    h("h1", { id: "job-title" }, h("a", { href: "#/" }, "Queues"), " / ",
      h("a", { href: `#/queues/${encodeURIComponent(queue)}` }, queue), " / ", id),
    body, section("Log", logs));
  main.append(view);
  let job = null;
  let stream = null;
  let lastEventId = "";
  let closed = false;
  const history = new JobHistory();
  const timelineBox = h("div", { class: "timeline-box" });
  const progressBox = h("div", { class: "progress-history-box" });
  const timelineSection = section("Timeline", timelineBox);
  const progressSection = section("Progress history", progressBox);
  const diagnostics = liveDiagnostics(path);
  const stallSlot = h("div", { class: "stall-slot", "aria-live": "polite" });

  function showHistory() {
    if (!job) return;
    timelineBox.replaceChildren(timelineCards(history, job) || "No state changes kept.");
    const progress = progressHistory(history, job);
    progressSection.hidden = !progress;
    progressBox.replaceChildren(...(progress || []));
  }
  const showHistorySoon = coalesce(showHistory, 250);

  function actions() {
    const buttons = [];
    if (may("ROLE_OPERATOR") && FINISHED.has(job.state) && job.state !== "STATE_SUCCEEDED") {
      buttons.push(h("button", {
        type: "button", onclick: () => act("retry", "Run this job again?"),
      }, "Retry"));
    }
    if (may("ROLE_OPERATOR") && !FINISHED.has(job.state)) {
      buttons.push(h("button", {
        type: "button", class: "danger", onclick: () => act("cancel", "Cancel this job?"),
      }, "Cancel"));
    }
    if (!buttons.length) return null;
    return h("div", { class: "actions", role: "group", "aria-label": "Job actions" }, buttons);
  }

  async function act(verb, question) {
    if (!(await confirmAction(question))) return;
    try {
      job = await post(`${path}:${verb}`, verb === "cancel" ? { reason: "cancelled from the dashboard" } : {});
      render();
      if (!stream) follow();  // the stream ended with the job; a retry starts it again
    } catch (error) {
      notify(view, `Could not ${verb}: ${error.message}`);
    }
  }

  function render() {
    const waiting = WAITING.has(job.state);
    showStall();
    body.replaceChildren(...[
      h("div", { class: "card summary-card" },
        h("p", { class: "headline" }, stateBadge(job.state), " ", h("span", { class: "type" }, job.type),
          ` · attempt ${job.attempt || 0}`),
        progressBar(job.progress, "Progress"),
        job.progress?.message ? h("p", { class: "progress-message" }, job.progress.message) : null,
        waiting && job.waitReason ? h("p", { class: "wait-reason" }, "Waiting: ", job.waitReason.message) : null,
        job.cancelReason ? h("p", {}, `Cancel reason: ${job.cancelReason}`) : null,
        (job.warnings || []).map((w) => h("p", { class: "warning" }, w)),
        stallSlot,
        actions()),
      diagnostics.forJob(job),
      // A job that succeeded on a later attempt keeps the error of the one before.
      job.error
        ? section(job.state === "STATE_FAILED" ? "Error" : "Last error", errorBlock(job.error))
        : null,
      section("Timings", timings(job), waitTimes(job)),
      timelineSection,
      progressSection,
      job.result !== undefined && job.result !== null ? section("Result", pretty(job.result)) : null,
      section("Payload", pretty(job.payload ?? null)),
      (job.phases || []).length ? section("Phases", phases(job.phases)) : null,
      (job.dependencies || []).length || job.parent ? section("Dependencies", dependencies(job)) : null,
      section("Details", facts([
        ["Name", job.name], ["Priority", String(job.priority)],
        ["Max attempts", String(job.retryPolicy?.maxAttempts ?? "")],
        ["Schedule", job.schedule ? job.schedule : null],
        ["Concurrency key", job.concurrencyKey || null],
        ["Tags", (job.tags || []).join(", ") || null],
        ["Metadata", Object.keys(job.metadata || {}).length ? pretty(job.metadata) : null],
        ["Cancelled by", job.cancelledBy || null],
      ])),
      (job.attempts || []).length
        ? section("Attempts", h("div", { class: "scroll" }, attemptsTable(job.attempts)))
        : null,
    ].filter(Boolean));
    showHistory();
  }

  // The stall flag lives on without a re-render: a new progress report or phase change clears
  // it, and while the job runs quietly GetJob is asked again every STALL_RECHECK_MS to raise it.
  function showStall() {
    stallSlot.replaceChildren(...[stallFlag(job)].filter(Boolean));
  }

  async function recheckStall() {
    if (job?.state !== "STATE_RUNNING") return;
    try {
      const fresh = await get(path);
      if (closed || fresh.state !== job.state || fresh.attempt !== job.attempt) return;  // the stream's reload has it
      job.stall = fresh.stall;
      showStall();
    } catch { /* the next check, or the stream, tells */ }
  }

  async function load() {
    try {
      job = await get(path);
      if (!closed) render();
    } catch (error) {
      notify(view, `Could not read job ${name}: ${error.message}`);
    }
  }
  const reload = coalesce(load, 200);

  function onEvent(type, event, eventId) {
    lastEventId = eventId || lastEventId;
    if (type === "reset") history.clear();
    if (history.add(type, event)) showHistorySoon();
    if (type === "log") logs.append(h("li", {}, time(event.time), " ", event.message));
    // A sign of progress newer than the stall's (the stream replays older ones on opening).
    if (job?.stall && (type === "progress" || type.startsWith("phase_"))
      && Date.parse(event.time) > Date.parse(job.stall.sinceTime)) {
      job.stall = undefined;
      showStall();
    }
    if (type === "progress" && job) {
      job.progress = event.progress;
      const bar = body.querySelector(".progress");
      const message = body.querySelector(".progress-message");
      if (bar && message) {
        setProgress(bar, event.progress);
        message.textContent = event.progress?.message || "";
      } else {
        render();
      }
    }
    if (type === "state_changed" || type === "reset") reload();
  }

  async function follow() {
    stream = await watch(name, {
      lastEventId,
      onEvent,
      onEnd: (finished) => { stream = null; job = finished; if (!closed) render(); },
    }).catch(() => null);
    if (closed) stream?.close();
  }

  await load();
  if (!job) return () => {};
  await follow();
  const ticker = setInterval(() => {
    if (job?.state === "STATE_RUNNING") {
      const cell = body.querySelector(".duration");
      if (cell) cell.textContent = humanMs(jobDurationMs(job));
    }
    if (job && !FINISHED.has(job.state)) showHistory();  // the current state's time so far
  }, 1000);
  const stallTimer = setInterval(recheckStall, STALL_RECHECK_MS);
  return () => {
    closed = true;
    clearInterval(ticker);
    clearInterval(stallTimer);
    stream?.close();
  };
}
