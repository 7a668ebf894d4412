// What a proto-loader user writes first: a plain object as `payload`. proto-loader turns it into
// a google.protobuf.Value with no kind set; the scheduler must refuse it, not run a null payload.
// Prints the call's outcome as one JSON line.

import { call, jobService } from "../../examples/node/jobstream.mjs";

const jobs = jobService();
try {
  const job = await call(jobs, "createJob", {
    parent: "queues/default",
    job: { type: "thumbnail.render", payload: { size: 64 } },
  });
  console.log(JSON.stringify({ created: job.name }));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, details: error.details }));
} finally {
  jobs.close();
}
