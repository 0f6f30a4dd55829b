import type { CallStep, Check, StageDef, StageId, Step } from "./dsl.js";
import { checkExpression, expressionsIn } from "./expr.js";
import { createKey } from "./stages/create-key.js";
import { keyUserAccess } from "./stages/key-user-access.js";
import { publicAccessDenied } from "./stages/public-access-denied.js";
import { sseKmsUpload } from "./stages/sse-kms-upload.js";
import { trailKeyUsage } from "./stages/trail-key-usage.js";
import { trailToBucket } from "./stages/trail-to-bucket.js";

/**
 * The lab: its six stages in lab.md's order, with their dependencies. Both engines (the XState
 * machine and the Step Functions export) are generated from this list.
 */
export const STAGES: readonly StageDef[] = [
  createKey,
  trailToBucket,
  sseKmsUpload,
  publicAccessDenied,
  trailKeyUsage,
  keyUserAccess,
];

/** Bumped whenever a stage's steps change shape: a state file from another version is not resumed. */
export const LAB_VERSION = "2";

export function stage(id: StageId): StageDef {
  const found = STAGES.find((s) => s.id === id);
  if (!found) throw new Error(`no stage ${id}`);
  return found;
}

/** Every step of a list, nested ones (poll bodies, undo calls, existence reads, replacements) included. */
export function allSteps(steps: readonly Step[]): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    out.push(step);
    if (step.kind === "poll") out.push(...allSteps(step.steps));
    if (step.kind === "probe") out.push(...allSteps(step.asl.replacement));
    if (step.kind === "call" && step.effect) {
      out.push(...allSteps(step.effect.undo));
      if (step.effect.exists) out.push(...allSteps(step.effect.exists.read));
    }
  }
  return out;
}

/** Every step of a stage: precondition, run, verification reads. */
export function stageSteps(def: StageDef): Step[] {
  return allSteps([...def.precondition, ...def.run, ...def.verify.flatMap((c: Check) => c.read)]);
}

/** The AWS calls a stage may make (for the IAM policy export and the definition checks). */
export function stageCalls(def: StageDef): CallStep[] {
  return stageSteps(def).filter((s): s is CallStep => s.kind === "call");
}

/**
 * The registry's own consistency, checked by a test: points add up (100 in all; each stage's checks
 * to its points), dependencies name earlier stages, ids are unique where they name states, and every
 * JSONata expression parses.
 */
export function validateRegistry(stages: readonly StageDef[] = STAGES): string[] {
  const problems: string[] = [];
  const total = stages.reduce((n, s) => n + s.points, 0);
  if (total !== 100) problems.push(`stage points add up to ${total}, not 100`);
  const seen = new Set<string>();
  for (const s of stages) {
    for (const dep of s.dependsOn)
      if (!seen.has(dep)) problems.push(`${s.id} depends on ${dep}, which does not come before it`);
    seen.add(s.id);
    const checkPoints = s.verify.reduce((n, c) => n + c.points, 0);
    if (checkPoints !== s.points)
      problems.push(`${s.id}: checks give ${checkPoints} points, the stage ${s.points}`);
    const ids = new Set<string>();
    for (const step of allSteps([...s.precondition, ...s.run])) {
      if (ids.has(step.id) && step.kind !== "call")
        problems.push(`${s.id}: step id ${step.id} is used twice`);
      ids.add(step.id);
    }
    for (const step of stageSteps(s)) {
      for (const expr of stepExpressions(step)) {
        try {
          checkExpression(expr);
        } catch (err) {
          problems.push(`${s.id}.${step.id}: ${(err as Error).message}`);
        }
      }
    }
    for (const c of s.verify)
      for (const expr of [c.score, c.learner, c.author, ...Object.values(c.evidence)]) {
        try {
          checkExpression(`{% ${expr} %}`);
        } catch (err) {
          problems.push(`${s.id}.${c.id}: ${(err as Error).message}`);
        }
      }
  }
  return problems;
}

/** The expressions of one step, all as `{% %}` strings. */
function stepExpressions(step: Step): string[] {
  const wrap = (e: string | undefined) => (e === undefined ? [] : [`{% ${e} %}`]);
  switch (step.kind) {
    case "call":
      return [
        ...expressionsIn(step.args),
        ...expressionsIn(step.assign ?? {}),
        ...expressionsIn(step.expectError?.assign ?? {}),
        ...wrap(step.when),
        ...wrap(step.retry?.budgetSeconds),
        ...wrap(step.effect?.resource?.arn),
        ...wrap(step.effect?.exists?.owned),
      ];
    case "require":
      return [...wrap(step.condition), ...wrap(step.message)];
    case "probe":
      return [
        ...expressionsIn(step.args),
        ...expressionsIn(step.assign ?? {}),
        ...expressionsIn(step.asl.assign ?? {}),
      ];
    case "poll":
      return [...wrap(step.until), ...wrap(step.intervalSeconds), ...wrap(step.budgetSeconds)];
  }
}
