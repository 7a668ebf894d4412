// A queue card's small charts of the last hour, one bar a minute (GetQueueStats' `series`):
// finished jobs per minute (the failed ones stacked on top) and the failure rate. Inline SVG built
// with DOM calls and styled by class; each chart is named for screen readers, summarised in a
// sentence, and its numbers are in a table under "Per minute".
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const BAR = 4;  // viewBox units a minute takes, a 1-unit gap included
const HEIGHT = 40;

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return element;
}

const count = (value) => Number(value || 0);
const clock = (point) => new Date(point.startTime)
  .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
export const failurePercent = (failed, ran) => `${Math.round((100 * failed) / ran)} %`;

// Each minute's counts as numbers (the JSON leaves out zeros and sends int64 as strings).
export function minutes(series) {
  return (series || []).map((point) => {
    const succeeded = count(point.succeeded);
    const failed = count(point.failed);
    const cancelled = count(point.cancelled);
    return { point, succeeded, failed, cancelled, finished: succeeded + failed + cancelled, ran: succeeded + failed };
  });
}

// One column a minute: its stacked `parts` ([value, class]) scaled to `top`, and a full-height
// transparent target carrying the minute's <title>, so pointing anywhere in the column names it.
function barChart(name, summaryId, columns, top) {
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${columns.length * BAR} ${HEIGHT}`, preserveAspectRatio: "none",
    role: "img", "aria-label": name, "aria-describedby": summaryId,
  });
  columns.forEach(({ parts, title }, index) => {
    const x = index * BAR;
    let base = HEIGHT;
    const rects = parts.filter(([value]) => value > 0).map(([value, className]) => {
      const height = Math.max((HEIGHT * value) / top, 2);  // a single job stays visible
      base -= height;
      return svg("rect", { class: className, x, y: base, width: BAR - 1, height });
    });
    chart.append(svg("g", {}, svg("title", {}, title),
      svg("rect", { class: "hit", x, y: 0, width: BAR, height: HEIGHT }), rects));
  });
  chart.append(svg("line", { class: "axis", x1: 0, y1: HEIGHT, x2: columns.length * BAR, y2: HEIGHT }));
  return chart;
}

function perMinuteTable(rows) {
  const busy = rows.filter((row) => row.finished > 0);
  return h("details", { class: "per-minute" }, h("summary", {}, "Per minute"),
    busy.length
      ? h("table", {},
        h("thead", {}, h("tr", {}, ["minute", "finished", "failed", "failure rate"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, busy.map((row) => h("tr", {},
          h("th", { scope: "row" }, h("time", { datetime: row.point.startTime }, clock(row.point))),
          h("td", {}, String(row.finished)), h("td", {}, String(row.failed)),
          h("td", {}, row.ran ? failurePercent(row.failed, row.ran) : "—")))))
      : h("p", {}, "No job finished in the last hour."));
}

// The two charts with their summaries, for a queue card (`id` keeps the ids unique on the page).
export function hourCharts(id, series) {
  const rows = minutes(series);
  if (!rows.length) return null;
  const finished = rows.reduce((sum, row) => sum + row.finished, 0);
  const failed = rows.reduce((sum, row) => sum + row.failed, 0);
  const ran = rows.reduce((sum, row) => sum + row.ran, 0);
  const peak = Math.max(...rows.map((row) => row.finished));
  const throughputText = `last hour: ${finished} finished, peak ${peak} jobs/min`;
  const failureText = ran
    ? `last hour: ${failurePercent(failed, ran)} failed (${failed} of ${ran} that ran)`
    : "last hour: no job ran to an end";
  const throughput = barChart("Finished jobs per minute, last hour", `tp-${id}`, rows.map((row) => ({
    parts: [[row.succeeded + row.cancelled, "done"], [row.failed, "failed"]],
    title: `${clock(row.point)}: ${row.finished} finished, ${row.failed} failed`,
  })), Math.max(peak, 1));
  const failureRate = barChart("Failure rate per minute, last hour", `fr-${id}`, rows.map((row) => ({
    parts: [[row.ran ? row.failed / row.ran : 0, "failed"]],
    title: row.ran
      ? `${clock(row.point)}: ${failurePercent(row.failed, row.ran)} failed (${row.failed} of ${row.ran})`
      : `${clock(row.point)}: no job ran to an end`,
  })), 1);
  return h("div", { class: "charts" },
    h("figure", { class: "chart-throughput" }, throughput,
      h("figcaption", { id: `tp-${id}`, class: "chart-summary" }, throughputText)),
    h("figure", { class: "chart-failure-rate" }, failureRate,
      h("figcaption", { id: `fr-${id}`, class: "chart-summary" }, failureText)),
    perMinuteTable(rows));
}
