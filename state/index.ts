/**
 * The lab's checkpoint: a versioned state file (envelope, per-stage records, effect journal,
 * resource ledger), the stores that keep it, and the checks that keep bad input and secrets out.
 * The engine (machines/) and the CLI import from here.
 */
export * from "./checkpointer.js";
export * from "./errors.js";
export * from "./schema.js";
export * from "./secrets.js";
export * from "./store.js";
