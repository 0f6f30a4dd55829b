import { createHash, randomUUID } from "node:crypto";
import jsonata from "jsonata";

/**
 * JSONata as AWS Step Functions evaluates it in `QueryLanguage: "JSONata"` states: a string value
 * `{% expression %}` is an expression, anything else is a literal. The lab's stages write every
 * computed value this way, so the local engine (here) and the exported state machine evaluate the
 * same text with the same functions — Step Functions' extra functions ($partition, $range, $hash,
 * $random, $uuid, $parse) are registered by hand, as the jsonata package lacks them.
 */

export type Bindings = Record<string, unknown>;

export class ExpressionError extends Error {
  constructor(
    readonly expression: string,
    message: string,
  ) {
    super(`JSONata expression ${expression}: ${message}`);
  }
}

const EXPR = /^\{%([\s\S]*)%\}$/;

interface Compiled {
  expression: jsonata.Expression;
  /** How to read the value without JSONata's evaluator, when the expression is that simple. */
  direct?: Direct;
}

/**
 * Most of the lab's expressions are a literal, a variable or a field path from one
 * (`$params.keyAlias`, `$states.result.KeyMetadata`): those are read straight from the bindings,
 * with JSONata's result, and only JSONata's own parse tree decides which expressions these are.
 * Whatever the direct read is unsure of (an array, whose sequence rules JSONata applies; a value that
 * is not a plain object along the path; a variable that is not a binding) goes to JSONata.
 */
type Direct = { literal: unknown } | { variable: string; fields: string[] };

const UNSURE = Symbol("unsure");

/** A node with nothing on it but its type and value (no predicate, index, focus, group...). */
const bare = (node: jsonata.ExprNode) =>
  Object.keys(node).every((k) => k === "type" || k === "value" || k === "position");

function directOf(ast: jsonata.ExprNode): Direct | undefined {
  // The package's types do not list "path" among the node types its parser makes.
  if (!bare(ast)) return (ast.type as string) === "path" ? pathOf(ast.steps ?? []) : undefined;
  if (ast.type === "value" || ast.type === "number" || ast.type === "string") return { literal: ast.value };
  if (ast.type === "variable" && ast.value !== "") return { variable: String(ast.value), fields: [] };
  return undefined;
}

function pathOf(steps: jsonata.ExprNode[]): Direct | undefined {
  const [first, ...rest] = steps;
  if (first?.type !== "variable" || first.value === "" || !bare(first)) return undefined;
  if (!rest.every((s) => s.type === "name" && bare(s))) return undefined;
  return { variable: String(first.value), fields: rest.map((s) => String(s.value)) };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

function readDirect(direct: Direct, bindings: Bindings): unknown {
  if ("literal" in direct) return direct.literal;
  if (!Object.hasOwn(bindings, direct.variable)) return UNSURE;
  let value = bindings[direct.variable];
  for (const field of direct.fields) {
    if (value === undefined) return undefined;
    if (!isPlainObject(value)) return UNSURE;
    // JSONata reads own fields only (`$x.constructor` is nothing).
    value = Object.hasOwn(value, field) ? value[field] : undefined;
  }
  const type = typeof value;
  const plain = value == null || type === "string" || type === "number" || type === "boolean";
  return plain || isPlainObject(value) ? value : UNSURE;
}

const compiled = new Map<string, Compiled>();

/** Whether a value is a `{% ... %}` expression. */
export function isExpression(value: unknown): value is string {
  return typeof value === "string" && EXPR.test(value);
}

/** The expression's text without the `{% %}` wrapper. */
export function expressionBody(value: string): string {
  return EXPR.exec(value)![1]!.trim();
}

/**
 * What one evaluation may do. Step Functions bounds evaluation too (payloads are 256 KiB, and an
 * expression that cannot finish fails the state), but documents no figures for it: these are ours,
 * each far above what a state's 256 KiB of data needs. An expression past one fails with an
 * ExpressionError (a Step Functions state: States.QueryEvaluationError).
 */
export const EVALUATION_LIMITS = {
  /** Evaluation steps (JSONata's evaluate calls): 1–2 µs each, so well under a second of work. */
  steps: 250_000,
  /** Nested evaluation (recursive functions, e.g. the IAM wildcard matcher, one level per character): JSONata's own guard; its evaluation is asynchronous, so this bounds memory, not the native stack. */
  depth: 10_000,
  /** Items of a sequence or array (`[1..n]`, `$range`), and characters of a string result. */
  items: 1_000_000,
  chars: 8 * 1024 * 1024,
  /** Steps between yields to the event loop, so that other clients are served while one evaluates. */
  yieldEvery: 2_000,
} as const;

/** JSONata's evaluation hooks: it looks these symbols up in the environment (its types say string). */
const ENTRY_HOOK = Symbol.for("jsonata.__evaluate_entry") as unknown as string;
const EXIT_HOOK = Symbol.for("jsonata.__evaluate_exit") as unknown as string;

/** Steps taken per evaluation, keyed by the evaluation's own environment (JSONata's `base` frame). */
const stepsTaken = new WeakMap<object, number>();

function onEntry(_expr: unknown, _input: unknown, environment: { base: object }): Promise<void> | undefined {
  const steps = (stepsTaken.get(environment.base) ?? 0) + 1;
  stepsTaken.set(environment.base, steps);
  if (steps > EVALUATION_LIMITS.steps)
    throw new Error(`the expression took more than ${EVALUATION_LIMITS.steps} evaluation steps`);
  // JSONata's evaluation is a chain of promises that never waits on I/O: without a turn of the
  // event loop now and then, one long expression would hold every other request until it ends.
  if (steps % EVALUATION_LIMITS.yieldEvery === 0) return new Promise((resolve) => setImmediate(resolve));
  return undefined;
}

function onExit(_expr: unknown, _input: unknown, _environment: unknown, result: unknown): void {
  if (typeof result === "string" && result.length > EVALUATION_LIMITS.chars)
    throw new Error(`the expression made a string longer than ${EVALUATION_LIMITS.chars} characters`);
  if (Array.isArray(result) && result.length > EVALUATION_LIMITS.items)
    throw new Error(`the expression made an array longer than ${EVALUATION_LIMITS.items} items`);
}

function compile(body: string): Compiled {
  const known = compiled.get(body);
  if (known) return known;
  let expression: jsonata.Expression;
  try {
    expression = jsonata(body, { stack: EVALUATION_LIMITS.depth, sequence: EVALUATION_LIMITS.items });
  } catch (err) {
    throw new ExpressionError(`{% ${body} %}`, (err as Error).message);
  }
  expression.assign(ENTRY_HOOK, onEntry);
  expression.assign(EXIT_HOOK, onExit);
  registerStatesFunctions(expression);
  const direct = directOf(expression.ast());
  const entry: Compiled = direct ? { expression, direct } : { expression };
  compiled.set(body, entry);
  return entry;
}

/** Checks that an expression parses (stage definitions are checked once, at load). */
export function checkExpression(value: string): void {
  compile(expressionBody(value));
}

/** Evaluates one `{% %}` expression. Bindings become `$name` variables (`$params`, `$states`...). */
export async function evaluate(value: string, bindings: Bindings): Promise<unknown> {
  const body = expressionBody(value);
  const { expression, direct } = compile(body);
  if (direct) {
    const read = readDirect(direct, bindings);
    if (read !== UNSURE) return normalise(read);
  }
  try {
    return normalise(await expression.evaluate({}, bindings));
  } catch (err) {
    if (err instanceof ExpressionError) throw err;
    throw new ExpressionError(value, (err as Error).message);
  }
}

/**
 * A template field whose expression gave nothing. Step Functions fails the state with
 * `States.QueryEvaluationError` there ("The JSONata expression '...' specified for the field
 * 'Arguments/...' returned nothing (undefined)."): it does not leave the field out
 * (https://states-language.net/#appendix-a: "an undefined result"), so neither engine does.
 */
export class UndefinedFieldError extends ExpressionError {
  constructor(
    expression: string,
    readonly field: string,
  ) {
    super(expression, `specified for the field '${field}' returned nothing (undefined)`);
    this.message = `The JSONata expression '${expressionBody(expression)}' specified for the field '${field}' returned nothing (undefined).`;
  }
}

/**
 * Renders a template as Step Functions renders `Arguments`, `Output` and `Assign`: every string
 * that is a `{% %}` expression is replaced by its value, objects and arrays are walked, other values
 * stay as they are. A field or element whose expression gives nothing is an UndefinedFieldError,
 * named as Step Functions names it (`Arguments/Delete/Objects`, `Output/List[0]`); so is the
 * template itself when `field` names it — without `field` (a variable the caller defaults) a bare
 * expression may give undefined. A value that may be absent is written into one expression that
 * builds the whole object (`$merge`), never as a field that evaluates to nothing.
 */
export async function render(template: unknown, bindings: Bindings, field?: string): Promise<unknown> {
  const out = await renderAt(template, bindings, field ?? "");
  if (out === undefined && field !== undefined && isExpression(template))
    throw new UndefinedFieldError(template, field);
  return out;
}

async function renderAt(template: unknown, bindings: Bindings, path: string): Promise<unknown> {
  if (isExpression(template)) return evaluate(template, bindings);
  const at = async (item: unknown, name: string) => {
    const value = await renderAt(item, bindings, name);
    if (value === undefined && isExpression(item)) throw new UndefinedFieldError(item, name);
    return value;
  };
  if (Array.isArray(template)) return Promise.all(template.map((item, i) => at(item, `${path}[${i}]`)));
  if (template !== null && typeof template === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(template)) out[k] = await at(v, path ? `${path}/${k}` : k);
    return out;
  }
  return template;
}

/** Every expression inside a template, for definition checks and the ASL export's validation. */
export function expressionsIn(template: unknown): string[] {
  if (isExpression(template)) return [template];
  if (Array.isArray(template)) return template.flatMap(expressionsIn);
  if (template !== null && typeof template === "object")
    return Object.values(template).flatMap(expressionsIn);
  return [];
}

/** JSONata returns arrays tagged with a `sequence` flag and may return frozen objects: plain JSON out. */
function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = normalise(v);
    return out;
  }
  return value;
}

const HASHES: Record<string, string> = {
  MD5: "md5",
  "SHA-1": "sha1",
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
};

/**
 * Step Functions' JSONata functions beyond the standard library
 * (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html).
 */
export function registerStatesFunctions(expression: jsonata.Expression): void {
  expression.registerFunction(
    "partition",
    (array: unknown[], size: number) => {
      if (!Number.isInteger(size) || size < 1) throw new Error("$partition: size must be a positive integer");
      const out: unknown[][] = [];
      for (let i = 0; i < array.length; i += size) out.push(array.slice(i, i + size));
      return out;
    },
    "<an:a>",
  );
  expression.registerFunction(
    "range",
    (start: number, end: number, step: number) => {
      if (step === 0) throw new Error("$range: step must not be 0");
      if (Math.floor((end - start) / step) + 1 > EVALUATION_LIMITS.items)
        throw new Error(`$range: more than ${EVALUATION_LIMITS.items} items`);
      const out: number[] = [];
      for (let i = start; step > 0 ? i <= end : i >= end; i += step) out.push(i);
      return out;
    },
    "<nnn:a>",
  );
  expression.registerFunction(
    "hash",
    (data: string, algorithm: string) => {
      const alg = HASHES[algorithm];
      if (!alg) throw new Error(`$hash: algorithm must be one of ${Object.keys(HASHES).join(", ")}`);
      return createHash(alg).update(data, "utf8").digest("hex");
    },
    "<ss:s>",
  );
  expression.registerFunction("random", () => Math.random(), "<n?:n>");
  expression.registerFunction("uuid", () => randomUUID(), "<:s>");
  expression.registerFunction(
    "parse",
    (text: string) => {
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new Error(`$parse: ${(err as Error).message}`);
      }
    },
    "<s:x>",
  );
}
