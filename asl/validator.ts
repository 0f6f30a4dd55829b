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
 * The deepest a definition's JSON may nest. The validator's walks (structuredClone, its JSON
 * schema) are recursive and overflow the stack a few thousand levels down; the lab's definitions
 * nest 11. Step Functions documents no such limit (its definitions may be 1 MB), so AWS's own
 * bound and its wording are unconfirmed; beyond this one the definition is refused as invalid.
 */
export const MAX_DEFINITION_DEPTH = 64;

/**
 * The deepest Parallel and Map states may nest inside each other. asl-validator's schema checks
 * each level's branches once per state kind it could be, so its work grows about 1.7 times per
 * level (bench: 15 levels take ~1 s, 20 take ~13 s): bounded so that a CreateStateMachine cannot
 * hold the simulator for seconds. Step Functions documents no nesting limit; this one is ours.
 */
export const MAX_STATE_NESTING = 10;

/**
 * asl-validator's problems with a definition, none when it is valid. It changes the object it is
 * given, so it gets a copy; a call costs ~80 ms for a small definition and 0.4–0.9 s for the lab's
 * (bench/asl.ts), so callers validate once. A definition nested beyond the bounds above is refused
 * before the validator sees it.
 */
export function aslValidatorProblems(definition: unknown): string[] {
  if (nestsDeeper(definition, MAX_DEFINITION_DEPTH))
    return [
      `NESTING_TOO_DEEP: the definition nests objects and arrays deeper than ${MAX_DEFINITION_DEPTH} levels`,
    ];
  if (stateNesting(definition) > MAX_STATE_NESTING)
    return [`NESTING_TOO_DEEP: Parallel and Map states nest deeper than ${MAX_STATE_NESTING} levels`];
  validator ??= require("asl-validator") as Validator;
  const result = validator(structuredClone(definition));
  return result.isValid ? [] : (result.errors ?? []).map((e) => `${e["Error code"]}: ${e.Message}`);
}

/** Whether a parsed JSON value nests deeper than `max` (the value itself is level 1); no recursion. */
function nestsDeeper(value: unknown, max: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [v, depth] = next;
    if (v === null || typeof v !== "object") continue;
    if (depth > max) return true;
    for (const child of Object.values(v))
      if (child !== null && typeof child === "object") pending.push([child, depth + 1]);
  }
  return false;
}

/** How many Parallel or Map states deep the definition's states go (0: none). Depth is bounded first. */
function stateNesting(branch: unknown): number {
  const states = (branch as { States?: unknown } | null)?.States;
  if (states === null || typeof states !== "object") return 0;
  let deepest = 0;
  for (const state of Object.values(states as Record<string, unknown>)) {
    if (state === null || typeof state !== "object") continue;
    const s = state as { Branches?: unknown; ItemProcessor?: unknown; Iterator?: unknown };
    const inner = [...(Array.isArray(s.Branches) ? s.Branches : []), s.ItemProcessor, s.Iterator];
    for (const b of inner) if (b !== undefined) deepest = Math.max(deepest, 1 + stateNesting(b));
  }
  return deepest;
}
