// Every queue's schedules (ListSchedules over `queues/-`): spec, job type, the next fire times,
// the last fire and the job it made, how often it fired or skipped; pause, resume and trigger
// now for operators (the job a trigger made is linked at the top). Schedules send no events: the view reads them again every few seconds.
import { listAll, may, post } from "./api.js";
import { h, jobHref, jobId, notify, time } from "./dom.js";

const REFRESH_MS = 5_000;
const NEXT_SHOWN = 3;

function spec(schedule) {
  if (schedule.cron) return `cron ${schedule.cron.expression}${schedule.cron.timeZone ? ` (${schedule.cron.timeZone})` : ""}`;
  if (schedule.interval) return `every ${schedule.interval.every}`;
  return "—";
}

const jobLink = (name) => (name ? h("a", { href: jobHref(name) }, jobId(name)) : "—");

export async function renderSchedules(main) {
  const tbody = h("tbody");
  const view = h("section", { class: "schedules-view", "aria-labelledby": "schedules-title" },
    h("h1", { id: "schedules-title" }, "Schedules"),
    h("div", { class: "scroll" }, h("table", { class: "schedules-table" },
      h("caption", { class: "visually-hidden" }, "Schedules of every queue"),
      h("thead", {}, h("tr", {}, ["Schedule", "Spec", "Job type", "Next fires", "Last fired", "Last job",
        "Fired / skipped", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      tbody)));
  // TriggerSchedule's job is not the schedule's `lastJob` (that is its slots' last): shown here.
  const triggered = h("p", { class: "notice-info triggered", role: "status", hidden: true });
  view.querySelector("h1").after(triggered);
  main.append(view);
  let closed = false;

  async function act(schedule, verb) {
    try {
      const answer = await post(`${schedule.name}:${verb}`);
      if (verb === "trigger") {
        triggered.replaceChildren(`Triggered ${schedule.name}: job `, jobLink(answer.name));
        triggered.hidden = false;
      }
      await load();
    } catch (error) {
      notify(view, `Could not ${verb} ${schedule.name}: ${error.message}`);
    }
  }

  function actions(schedule) {
    if (!may("ROLE_OPERATOR")) return null;
    const id = schedule.name.replace(/^queues\//, "");
    const [verb, label] = schedule.paused ? ["resume", "Resume"] : ["pause", "Pause"];
    return h("div", { class: "actions" },
      h("button", { type: "button", "aria-label": `${label} ${id}`, onclick: () => act(schedule, verb) }, label),
      h("button", { type: "button", "aria-label": `Trigger ${id} now`, onclick: () => act(schedule, "trigger") },
        "Trigger now"));
  }

  function row(schedule) {
    const [, queue, , id] = schedule.name.split("/");
    return h("tr", { dataset: { schedule: `${queue}/${id}` } },
      h("td", {}, h("a", { href: `#/queues/${encodeURIComponent(queue)}` }, queue), ` / ${id}`,
        schedule.paused ? [" ", h("span", { class: "state state-paused" }, "paused")] : null,
        schedule.description ? h("p", { class: "help" }, schedule.description) : null),
      h("td", { class: "spec" }, spec(schedule)),
      h("td", {}, schedule.jobTemplate?.type || ""),
      h("td", { class: "next" }, h("ul", { class: "plain" },
        (schedule.nextFireTimes || []).slice(0, NEXT_SHOWN).map((t) => h("li", {}, time(t))))),
      h("td", {}, time(schedule.lastFireTime)),
      h("td", { class: "last-job" }, jobLink(schedule.lastJob)),
      h("td", { class: "fired" }, `${schedule.fireCount || 0} / ${schedule.skippedCount || 0}`),
      h("td", {}, actions(schedule)));
  }

  async function load() {
    try {
      const schedules = await listAll("queues/-/schedules", "schedules");
      if (closed) return;
      tbody.replaceChildren(...schedules.map(row));
      if (!schedules.length) tbody.append(h("tr", {}, h("td", { colspan: "8" }, "No schedules.")));
    } catch (error) {
      notify(view, `Could not list the schedules: ${error.message}`);
    }
  }

  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => {
    closed = true;
    clearInterval(timer);
  };
}
