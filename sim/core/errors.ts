/**
 * Errors are data, named as AWS names them. A provider throws a ServiceError; the protocol codec of
 * the service renders it in that service's wire format (JSON `__type`, query `<ErrorResponse>`,
 * S3 `<Error>`), so the SDK raises the same exception class it raises against AWS.
 */
export class ServiceError extends Error {
  override readonly name = "ServiceError";
  constructor(
    /** AWS error code, e.g. `NotFoundException`, `NoSuchEntity`. */
    readonly code: string,
    message: string,
    /** HTTP status AWS answers with. */
    readonly status = 400,
    /** Extra fields rendered beside Code/Message (S3 XML: `Resource`, `RequestTime`...). */
    readonly extra: Record<string, string> = {},
    /** awsQuery `<Type>`: Sender for client faults, Receiver for server faults. */
    readonly fault: "Sender" | "Receiver" = status >= 500 ? "Receiver" : "Sender",
  ) {
    super(message);
  }
}

/**
 * One constraint violation, in the words AWS's validation layer uses:
 * `Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096`.
 */
export interface Violation {
  member: string;
  value: string | null;
  constraint: string;
}

/** AWS's `N validation error(s) detected: ...` message, joined with `; ` as AWS does. */
export function validationMessage(violations: Violation[]): string {
  const n = violations.length;
  const parts = violations.map((v) =>
    v.value === null
      ? `Value null at '${v.member}' failed to satisfy constraint: ${v.constraint}`
      : `Value '${v.value}' at '${v.member}' failed to satisfy constraint: ${v.constraint}`,
  );
  return `${n} validation error${n === 1 ? "" : "s"} detected: ${parts.join("; ")}`;
}

export const accessDenied = (message: string, status = 400, code = "AccessDeniedException") =>
  new ServiceError(code, message, status);
