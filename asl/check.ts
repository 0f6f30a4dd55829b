import type { Service } from "../steps/dsl.js";
import { checkExpression, expressionsIn, isExpression } from "../steps/expr.js";
import { allStates } from "./interpreter.js";
import { hasOperation, pascal, unknownMembers } from "./sdk.js";
import type { Branchlike, Definition, State } from "./types.js";

export { aslValidatorProblems } from "./validator.js";

/**
 * Checks of an exported definition. `structuralProblems` is kmslab's own: in every branch each
 * `Next`, `Default` and Catch target names a state of that branch, every state is reachable from
 * `StartAt`, and no two states share a name; every `aws-sdk:` Task names an operation the pinned AWS SDK v3 clients have, with
 * arguments that are members of that operation's input (at every depth the definition writes out);
 * every JSONata expression parses. `aslValidatorProblems` runs asl-validator, which checks the
 * language's schema too.
 */

const RESOURCE = /^arn:aws:states:::aws-sdk:([a-z0-9]+):([a-zA-Z0-9]+)$/;

export function structuralProblems(definition: Definition): string[] {
  const problems: string[] = [];
  branch(definition, "", problems);
  // State names are unique across the whole state machine, branches included.
  const seen = new Set<string>();
  for (const [name] of allStates(definition)) {
    if (seen.has(name)) problems.push(`${name}: the name is used by more than one state`);
    seen.add(name);
  }
  return problems;
}

function targets(state: State): string[] {
  const out: string[] = [];
  if (state.Next) out.push(state.Next);
  if (state.Default) out.push(state.Default);
  for (const c of state.Choices ?? []) out.push(c.Next);
  for (const c of state.Catch ?? []) out.push(c.Next);
  return out;
}

function branch(b: Branchlike, where: string, problems: string[]): void {
  const at = (name: string) => `${where}${name}`;
  if (!(b.StartAt in b.States)) problems.push(`${where}StartAt names no state: ${b.StartAt}`);
  for (const [name, state] of Object.entries(b.States)) {
    for (const t of targets(state))
      if (!(t in b.States)) problems.push(`${at(name)}: goes to ${t}, which is not a state of its branch`);
    const terminal = state.Type === "Succeed" || state.Type === "Fail" || state.Type === "Choice";
    if (!terminal && !state.Next && state.End !== true)
      problems.push(`${at(name)}: has neither Next nor End`);
    if (state.Type === "Task") task(name, state, at, problems);
    for (const expr of expressionsIn(expressionFields(state))) {
      try {
        checkExpression(expr);
      } catch (err) {
        problems.push(`${at(name)}: ${(err as Error).message}`);
      }
    }
    for (const [i, sub] of (state.Branches ?? []).entries())
      branch(sub, `${at(name)} / branch ${i + 1}: `, problems);
    if (state.ItemProcessor) branch(state.ItemProcessor, `${at(name)} / items: `, problems);
  }
  const reached = new Set<string>();
  const queue = [b.StartAt];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (reached.has(name) || !(name in b.States)) continue;
    reached.add(name);
    queue.push(...targets(b.States[name]!));
  }
  for (const name of Object.keys(b.States))
    if (!reached.has(name)) problems.push(`${at(name)}: is not reachable from ${b.StartAt}`);
}

/** The fields of a state that may hold JSONata (nested branches are checked on their own). */
function expressionFields(state: State): unknown {
  const { Branches: _b, ItemProcessor: _i, Comment: _c, ...rest } = state;
  return rest;
}

function task(name: string, state: State, at: (n: string) => string, problems: string[]): void {
  const m = RESOURCE.exec(state.Resource ?? "");
  if (!m) {
    problems.push(`${at(name)}: ${state.Resource} is not an aws-sdk resource`);
    return;
  }
  const [, service, action] = m;
  if (action![0] !== action![0]!.toLowerCase())
    problems.push(`${at(name)}: the action ${action} must be camelCase (as aws-sdk resources name it)`);
  if (!hasOperation(service!, pascal(action!))) {
    problems.push(`${at(name)}: the AWS SDK has no ${service} operation ${pascal(action!)}`);
    return;
  }
  const args = state.Arguments;
  if (args === undefined) return;
  if (isExpression(args)) return;
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    problems.push(`${at(name)}: Arguments must be an object`);
    return;
  }
  for (const member of unknownMembers(service as Service, pascal(action!), args))
    problems.push(`${at(name)}: ${member} is not a member of ${pascal(action!)}'s input`);
}
