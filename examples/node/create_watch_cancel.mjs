// Creates a job, watches its events live and cancels it once it has made progress: the calls a
// Node service makes to run long work on jobstream.
//
//   make run                                     # in another terminal
//   cd examples/node && npm ci
//   JOBSTREAM_API_KEY=$(cat ../../.data/admin.key) node create_watch_cancel.mjs
//
// Prints one JSON object a line: the job created, each event, the job as it ended.
// Arguments (optional): queue, job type, payload as JSON.

import { call, credentials, fromStruct, fromValue, jobService, toValue } from "./jobstream.mjs";

const [queue = "default", type = "video.transcode", payloadJson = '{"seconds": 600}'] =
  process.argv.slice(2);
const CANCEL_AFTER_MS = 10_000; // cancel anyway if the job has not made progress by then

const jobs = jobService();
const print = (line) => console.log(JSON.stringify(line));

const job = await call(jobs, "createJob", {
  parent: `queues/${queue}`,
  job: { type, payload: toValue(JSON.parse(payloadJson)) },
});
print({ created: job.name, state: job.state, payload: fromValue(job.payload) });

let cancelled = false;
async function cancel(why) {
  if (cancelled) return;
  cancelled = true;
  const answer = await call(jobs, "cancelJob", { name: job.name, reason: why });
  print({ cancel: answer.name, state: answer.state });
}
const timer = setTimeout(() => cancel("no progress within 10 s"), CANCEL_AFTER_MS);

// WatchJob sends the job's events from its creation on and ends after the one that finishes it.
const watch = jobs.watchJob({ name: job.name }, credentials());
let finished = null;
for await (const event of watch) {
  const line = { event: event.type, state: event.state };
  if (event.progress) {
    line.percent = event.progress.percent;
    line.data = fromStruct(event.progress.data);
  }
  if (event.message) line.message = event.message;
  print(line);
  if (event.type === "TYPE_PROGRESS") await cancel("the example has seen enough");
  if (event.finishedJob) finished = event.finishedJob;
}
clearTimeout(timer);
jobs.close();

print({
  finished: finished.name,
  state: finished.state,
  attempts: finished.attempts.map((attempt) => attempt.outcome),
});
process.exitCode = finished.state === "STATE_CANCELLED" ? 0 : 1;
