/** kmslab's simulated AWS account, as a library. */
export { Account, type AccountOptions, PROFILES } from "./account.js";
export { ServiceError } from "./core/errors.js";
export type { Principal, SimRequest, SimResponse } from "./core/types.js";
export { FaultInjector, type FaultRule } from "./faults.js";
export { type RunningServer, type ServeOptions, serve } from "./server.js";
export { type CallRecord, type ClientConfigOptions, Simulator, type SimulatorOptions } from "./simulator.js";
export { DataDir, DataDirInvalidError, DataDirLockedError } from "./store.js";
