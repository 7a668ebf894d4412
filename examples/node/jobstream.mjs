// A jobstream client for Node, generated at run time from the repository's protos/ (and the
// googleapis protos vendored in third_party/) by @grpc/proto-loader: no build step.
//
// The scheduler's address and API key come from JOBSTREAM_SCHEDULER_ADDRESS and
// JOBSTREAM_API_KEY, as the CLI and the Python client read them.

import path from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const repository = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const definition = protoLoader.loadSync("jobs/v1/job_service.proto", {
  includeDirs: [path.join(repository, "protos"), path.join(repository, "third_party")],
  longs: String, // int64 fields as decimal strings, as in protobuf's JSON mapping
  enums: String, // enum values by name: "STATE_RUNNING"
  defaults: true,
  oneofs: true, // a oneof's set member is named in a virtual field ("kind" of a Value)
});
const jobs = grpc.loadPackageDefinition(definition).jobs.v1;

export const address = process.env.JOBSTREAM_SCHEDULER_ADDRESS || "127.0.0.1:50051";

/** Per-call metadata carrying the API key, when one is set. */
export function credentials() {
  const metadata = new grpc.Metadata();
  if (process.env.JOBSTREAM_API_KEY) {
    metadata.set("authorization", `Bearer ${process.env.JOBSTREAM_API_KEY}`);
  }
  return metadata;
}

export function jobService() {
  return new jobs.JobService(address, grpc.credentials.createInsecure());
}

/**
 * A JSON value as a google.protobuf.Value message. Payloads and results are Values: a oneof
 * that proto-loader does not convert from plain JSON. A plain object passed as `payload` would
 * arrive as a Value with no kind set, which the scheduler refuses (INVALID_ARGUMENT naming
 * `job.payload`).
 */
export function toValue(json) {
  if (json === null || json === undefined) return { nullValue: "NULL_VALUE" };
  if (typeof json === "number") return { numberValue: json };
  if (typeof json === "string") return { stringValue: json };
  if (typeof json === "boolean") return { boolValue: json };
  if (Array.isArray(json)) return { listValue: { values: json.map(toValue) } };
  const fields = Object.fromEntries(Object.entries(json).map(([key, item]) => [key, toValue(item)]));
  return { structValue: { fields } };
}

/** A google.protobuf.Value (as proto-loader decodes it, `oneofs: true`) as plain JSON. */
export function fromValue(value) {
  switch (value?.kind) {
    case "numberValue":
      return value.numberValue;
    case "stringValue":
      return value.stringValue;
    case "boolValue":
      return value.boolValue;
    case "structValue":
      return fromStruct(value.structValue);
    case "listValue":
      return value.listValue.values.map(fromValue);
    default:
      return null;
  }
}

/** A google.protobuf.Struct (progress data) as a plain object. */
export function fromStruct(struct) {
  return Object.fromEntries(
    Object.entries(struct?.fields ?? {}).map(([key, item]) => [key, fromValue(item)]),
  );
}

/** A unary call as a promise. */
export function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, credentials(), (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}
