import { ServiceError } from "../core/errors.js";
import { jsonNestsDeeper, MAX_NESTING } from "../core/nesting.js";
import type { ServiceProvider } from "../core/service.js";
import type { SimRequest, SimResponse } from "../core/types.js";
import { type Codec, fromUtf8, utf8 } from "./codec.js";

/**
 * awsJson1_0 / awsJson1_1: `POST /` with `X-Amz-Target: <Prefix>.<Operation>` and a JSON body.
 * Blobs travel as base64 strings, timestamps as epoch seconds. Errors are `{"__type","message"}`
 * with the code also in `x-amzn-ErrorType`, which the SDK reads first.
 */
export function jsonCodec(version: "1.0" | "1.1"): Codec {
  const contentType = `application/x-amz-json-${version}`;
  return {
    decode(req: SimRequest, provider: ServiceProvider) {
      const target = req.headers["x-amz-target"] ?? "";
      const dot = target.lastIndexOf(".");
      const operation = target.slice(dot + 1);
      if (req.method !== "POST")
        throw new ServiceError("UnknownOperationException", `Method ${req.method} is not supported`, 400);
      if (!Object.hasOwn(provider.operations, operation))
        throw new ServiceError("UnknownOperationException", "", 400);
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== contentType && type !== "application/json" && !type.startsWith("application/x-amz-json-"))
        throw new ServiceError("SerializationException", `Unsupported content type: ${type || "none"}`, 400);
      if (req.body.length === 0) return { operation, input: {} };
      const text = fromUtf8.decode(req.body);
      // Refused before anything runs (sim/core/nesting.ts). AWS answers an unreadable body with
      // SerializationException; that it answers a too-deep one so, and this wording, are unconfirmed.
      if (jsonNestsDeeper(text))
        throw new ServiceError(
          "SerializationException",
          `The request body nests objects and arrays deeper than ${MAX_NESTING} levels.`,
          400,
        );
      let input: unknown;
      try {
        input = JSON.parse(text);
      } catch {
        throw new ServiceError(
          "SerializationException",
          "Start of structure or map found where not expected.",
          400,
        );
      }
      if (input === null || typeof input !== "object" || Array.isArray(input))
        throw new ServiceError(
          "SerializationException",
          "Start of structure or map found where not expected.",
          400,
        );
      return { operation, input: input as Record<string, unknown> };
    },

    encode(_provider, _operation, output, requestId): SimResponse {
      const body = output === undefined ? "{}" : JSON.stringify(output, jsonReplacer);
      return {
        status: 200,
        headers: { "content-type": contentType, "x-amzn-requestid": requestId },
        body: utf8.encode(body),
      };
    },

    encodeError(_provider, error, requestId): SimResponse {
      return {
        status: error.status,
        headers: {
          "content-type": contentType,
          "x-amzn-requestid": requestId,
          "x-amzn-errortype": error.code,
        },
        body: utf8.encode(JSON.stringify({ __type: error.code, message: error.message })),
      };
    },
  };
}

/** Buffers become base64 and Dates epoch seconds, as the JSON protocols carry them. */
function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Uint8Array)
    return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64");
  if (raw instanceof Date) return raw.getTime() / 1000;
  return value;
}
