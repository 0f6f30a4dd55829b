import { buildLabMachine, type StageExecutor } from "../machines/lab.js";
import type { StageDef } from "../steps/dsl.js";
import { STAGES } from "../steps/registry.js";

/**
 * The lab's statechart as a Mermaid `stateDiagram-v2`, read from the XState machine built from the
 * registry (the same machine the local engine runs): one concurrent region per stage, its states
 * and transitions with the guards and actors that take them, and the stages' dependencies.
 */

type Transition = { target?: string | string[]; guard?: unknown } | string;

const idle: StageExecutor = {
  precondition: async () => {},
  run: async () => {},
  verify: async () => ({ points: 0, maxPoints: 0 }),
  rollback: async () => {},
};

const safe = (s: string) => s.replace(/[^A-Za-z0-9]/g, "_");

function list(t: unknown): Transition[] {
  if (t === undefined) return [];
  return (Array.isArray(t) ? t : [t]) as Transition[];
}

function label(t: Transition, why: string): string {
  if (typeof t === "string") return why;
  const g = t.guard;
  const guard = typeof g === "string" ? g : (g as { type?: string } | undefined)?.type;
  return guard ? `${why} [${guard}]` : why;
}

function target(t: Transition): string | undefined {
  const raw = typeof t === "string" ? t : Array.isArray(t.target) ? t.target[0] : t.target;
  return raw?.replace(/^\./, "");
}

export function labMermaid(stages: readonly StageDef[] = STAGES): string {
  const machine = buildLabMachine(stages, idle);
  const config = machine.config as unknown as {
    states: Record<string, { initial: string; states: Record<string, Record<string, unknown>> }>;
  };
  const lines = ["stateDiagram-v2", '  state "kmslab lab (stages run in parallel regions)" as kmslab {'];
  stages.forEach((def, i) => {
    const region = config.states[def.id]!;
    const id = safe(def.id);
    if (i > 0) lines.push("    --");
    lines.push(`    state "${def.id} (${def.points} points)" as ${id} {`);
    for (const name of Object.keys(region.states)) lines.push(`      state "${name}" as ${id}_${name}`);
    lines.push(`      [*] --> ${id}_${region.initial}`);
    for (const [name, state] of Object.entries(region.states)) {
      const edges: [Transition, string][] = [
        ...list(state.always).map((t): [Transition, string] => [t, "always"]),
      ];
      const invoke = state.invoke as { src: string; onDone?: unknown; onError?: unknown } | undefined;
      if (invoke) {
        edges.push(...list(invoke.onDone).map((t): [Transition, string] => [t, `${invoke.src} done`]));
        edges.push(...list(invoke.onError).map((t): [Transition, string] => [t, `${invoke.src} error`]));
      }
      for (const [t, why] of edges) {
        const to = target(t);
        if (to) lines.push(`      ${id}_${name} --> ${id}_${to} : ${label(t, why)}`);
      }
      if (state.type === "final") lines.push(`      ${id}_${name} --> [*]`);
    }
    if (def.dependsOn.length > 0)
      lines.push(`      note right of ${id}_waiting : waits for ${def.dependsOn.join(", ")}`);
    lines.push("    }");
  });
  lines.push("  }");
  return `${lines.join("\n")}\n`;
}
