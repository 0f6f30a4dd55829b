import type { ServiceError } from "../core/errors.js";
import type { ServiceProvider } from "../core/service.js";
import type { SimRequest, SimResponse } from "../core/types.js";

/**
 * One codec per wire protocol: it finds the operation and decodes the input of a request, and
 * renders outputs and errors in the protocol's format. Codecs know nothing of what operations do.
 */
export interface Codec {
  /** The operation name and the decoded (still unvalidated) input. Throws ServiceError when malformed. */
  decode(req: SimRequest, provider: ServiceProvider): { operation: string; input: Record<string, unknown> };
  encode(provider: ServiceProvider, operation: string, output: unknown, requestId: string): SimResponse;
  encodeError(provider: ServiceProvider, error: ServiceError, requestId: string): SimResponse;
}

export const utf8 = new TextEncoder();
export const fromUtf8 = new TextDecoder("utf-8", { fatal: false });
