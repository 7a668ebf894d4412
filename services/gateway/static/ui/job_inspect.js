// Live diagnostics of a running job, for its page: the stall flag (Job.stall, from GetJob) and a
// "Sample from worker" button that calls InspectJob (GET .../jobs/ID:inspect) and shows what the
// worker running the attempt sampled: heartbeat age, phase, progress, CPU, memory and the
// handler's stack. Nothing is sampled until the button is pressed.
import { get } from "./api.js";
import { durationMs, h, humanMs, percentOf, time } from "./dom.js";

// The flag at the top of a running job's page when it heartbeats but shows no progress.
export function stallFlag(job) {
  if (job.state !== "STATE_RUNNING" || !job.stall) return null;
  return h("p", { class: "warning stall", role: "status" },
    h("strong", {}, "Stalled: "), job.stall.message, " · last sign of progress ", time(job.stall.sinceTime));
}

function sampleFacts(sample) {
  const pairs = [
    ["Worker", sample.worker.replace(/^workers\//, "")],
    ["Attempt", sample.attempt.split("/").pop()],
    ["Heartbeat", `${humanMs(durationMs(sample.heartbeatAge))} ago`],
    ["Phase", sample.phase || "—"],
    ["Progress", sample.progress ? `${Math.round(percentOf(sample.progress))}%` : "—"],
    ["CPU", `${(sample.cpuPercent || 0).toFixed(1)}% of a core (worker process)`],
    ["Memory", `${Math.round(Number(sample.memoryRssBytes || 0) / (1 << 20))} MiB`],
    ["Sampled", time(sample.sampleTime)],
  ];
  if (sample.stalled) pairs.push(["Stalled", sample.stallMessage]);
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// The page's "Live diagnostics" card, made once so that a sample survives the page's re-renders:
// `forJob(job)` answers it for a RUNNING job (null in any other state) and forgets the sample of
// an earlier attempt. `path` is the job's REST path, `queues/Q/jobs/ID`.
export function liveDiagnostics(path) {
  const output = h("div", { class: "inspection", "aria-live": "polite" });
  const button = h("button", { type: "button", onclick: sample }, "Sample from worker");
  const card = h("section", { class: "card", "aria-labelledby": "s-live-diagnostics" },
    h("h2", { id: "s-live-diagnostics" }, "Live diagnostics"),
    h("p", {}, "Ask the worker running this job for its heartbeat, phase, CPU, memory and the handler's stack."),
    button, output);
  let sampledAttempt = null;

  async function sample() {
    button.disabled = true;
    output.replaceChildren(h("p", {}, "Asking the worker…"));
    try {
      const answer = await get(`${path}:inspect`);
      sampledAttempt = answer.attempt;
      output.replaceChildren(sampleFacts(answer),
        h("pre", { class: "stack", tabindex: "0", "aria-label": "Handler stack (innermost last)" },
          answer.stack || "(no stack: the handler just finished)"));
    } catch (error) {
      output.replaceChildren(h("p", { class: "error", role: "alert" }, `No sample: ${error.message}`));
    } finally {
      button.disabled = false;
    }
  }

  return {
    forJob(job) {
      if (job.state !== "STATE_RUNNING") return null;
      if (sampledAttempt && !sampledAttempt.endsWith(`/attempts/${job.attempt}`)) {
        sampledAttempt = null;
        output.replaceChildren();
      }
      return card;
    },
  };
}
