/**
 * The crash-safety tests' harness. `<ENV>=n` kills this process with SIGKILL at the n-th point
 * counted without a mark, `<ENV>=n:<mark>` at the n-th point of that mark — the engine counts its
 * effects (`:call` right after the AWS call, else after its checkpoint), the teardown its deletions
 * (`:checkpoint` after the checkpoint, else right after the change). Unset, it does nothing.
 */
export function crashHarness(envName: string): (n: number, mark?: string) => void {
  const m = /^(\d+)(?::([a-z]+))?$/.exec(process.env[envName] ?? "");
  if (!m) return () => {};
  const at = Number(m[1]);
  const wanted = m[2];
  return (n, mark) => {
    if (n === at && mark === wanted) process.kill(process.pid, "SIGKILL");
  };
}
