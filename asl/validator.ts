import { createRequire } from "node:module";

/**
 * asl-validator's verdict on a definition, apart from the rest of asl/check.ts (which loads the SDK
 * clients' schemas) so that the simulated Step Functions can use it without that start-up cost.
 */

const require = createRequire(import.meta.url);
type Validator = (definition: unknown) => {
  isValid: boolean;
  errors?: { "Error code": string; Message: string }[];
};
let validator: Validator | undefined;

/**
 * asl-validator's problems with a definition, none when it is valid. It changes the object it is
 * given, so it gets a copy; a call costs ~80 ms for a small definition and 0.4–0.9 s for the lab's
 * (bench/asl.ts), so callers validate once.
 */
export function aslValidatorProblems(definition: unknown): string[] {
  validator ??= require("asl-validator") as Validator;
  const result = validator(structuredClone(definition));
  return result.isValid ? [] : (result.errors ?? []).map((e) => `${e["Error code"]}: ${e.Message}`);
}
