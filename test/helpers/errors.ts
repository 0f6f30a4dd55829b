import { ServiceError } from "../../sim/core/errors.js";

/** The ServiceError a provider call throws; fails the test if it throws none (or something else). */
export function thrown(fn: () => unknown): ServiceError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServiceError) return err;
    throw err;
  }
  throw new Error("expected a ServiceError");
}

/** What an SDK call's rejection says: the exception's name, HTTP status and message. */
export async function failure(
  p: Promise<unknown>,
): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata.httpStatusCode, message: e.message };
  }
  throw new Error("expected the call to fail");
}
