// A job's story from its events (WatchJob replays every kept one, then follows it live): a card
// per state it was in, with the time spent there and why it was there; and the progress its
// handler reported, attempt by attempt.
import { WAITING, h, humanMs, percentOf, shortState, stateBadge, time } from "./dom.js";

const PROGRESS_SHOWN = 20;  // the newest progress reports listed

export class JobHistory {
  constructor() { this.clear(); }

  // A reset means the job's history is replayed again from its start.
  clear() {
    this.states = [];  // {at, state, previous, attempt, message}
    this.progress = [];  // {at, attempt, progress}
  }

  // True when the event changes what the history shows.
  add(type, event) {
    const at = Date.parse(event.time);
    if (type === "state_changed") {
      this.states.push({ at, state: event.state, previous: event.previousState,
        attempt: event.attempt || 0, message: event.message || "" });
      return true;
    }
    if (type === "progress" && event.progress) {
      this.progress.push({ at, attempt: event.attempt || 0, progress: event.progress });
      return true;
    }
    return false;
  }
}

const lower = (state) => shortState(state).toLowerCase();

// Why the job was in `entry.state`: what the transition said, else what that state means.
function why(entry, job, current) {
  const attempt = (job.attempts || []).find((a) => a.number === entry.attempt);
  switch (entry.state) {
    case "STATE_RUNNING":
      return [`attempt ${entry.attempt}`, attempt?.worker ? ` on ${attempt.worker}` : "",
        attempt?.outcome && !current ? `, ${lower(attempt.outcome)}` : ""].join("");
    case "STATE_SCHEDULED":
      if (entry.previous === "STATE_RUNNING") return entry.message || `retry after attempt ${entry.attempt}`;
      return entry.message || (job.runTime ? "run at a set time" : "scheduled");
    case "STATE_BLOCKED":
      return entry.message || "waiting for its dependencies";
    default:
      if (current && WAITING.has(entry.state) && job.waitReason?.message) return job.waitReason.message;
      return entry.message;
  }
}

export function timelineCards(history, job) {
  const entries = history.states;
  if (!entries.length) return null;
  return h("ol", { class: "timeline", "aria-label": "Time in each state" }, entries.map((entry, index) => {
    const current = index === entries.length - 1;
    const until = current ? (WAITING.has(entry.state) || entry.state === "STATE_RUNNING" ? Date.now() : null)
      : entries[index + 1].at;
    const reason = why(entry, job, current);
    return h("li", { class: "timeline-card", dataset: { state: lower(entry.state) } },
      h("p", {}, stateBadge(entry.state), " ",
        until === null ? "since " : h("strong", { class: "spent" }, humanMs(until - entry.at)),
        until === null ? time(new Date(entry.at).toISOString()) : current ? " so far" : ""),
      reason ? h("p", { class: "why" }, reason) : null);
  }));
}

// The current attempt's progress as a step line over its running time, and the newest reports.
export function progressHistory(history, job) {
  const reports = history.progress.filter((p) => p.attempt === (job.attempt || 0));
  if (reports.length < 2) return null;
  const first = reports[0].at;
  const last = reports[reports.length - 1].at;
  const span = Math.max(last - first, 1);
  const points = reports.map((p) => [((p.at - first) / span) * 100, 100 - percentOf(p.progress)]);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "progress-chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label",
    `Progress of attempt ${job.attempt}: ${percentOf(reports[0].progress)}% to ${percentOf(reports[reports.length - 1].progress)}% over ${humanMs(span)}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.flatMap(([x, y], i) =>
    (i ? [`${x},${points[i - 1][1]}`, `${x},${y}`] : [`${x},${y}`])).join(" "));
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(line);
  const newest = reports.slice(-PROGRESS_SHOWN).reverse();
  return [svg, h("table", { class: "progress-history" },
    h("caption", {}, `Newest ${newest.length} of ${reports.length} progress reports`),
    h("thead", {}, h("tr", {}, ["Time", "Progress", "Message"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, newest.map((p) => h("tr", {},
      h("td", {}, time(new Date(p.at).toISOString())), h("td", {}, `${percentOf(p.progress)}%`),
      h("td", {}, p.progress.message || "")))))];
}
