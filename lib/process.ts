import { readFileSync, readlinkSync } from "node:fs";

/**
 * What can be known about a process from another one: whether it runs, when it started, and
 * which machine, boot and pid namespace it belongs to (Linux's /proc; elsewhere only the pid).
 * Locks and temp files record these so that a dead writer is told from a live one even when the
 * pid was used again or the hostname changed (a container).
 */

/** Whether a process with this pid runs in our pid namespace (EPERM: it runs, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The process's start time in clock ticks after boot (/proc/<pid>/stat, field 22): with the boot
 * id, it names one process for the machine's whole uptime, where a pid is used again.
 */
export function processStartTicks(pid: number | "self"): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[19]);
  return Number.isInteger(ticks) ? ticks : undefined;
}

/** Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux architecture Node runs on. */
const TICKS_PER_SECOND = 100;

let bootTimeMs: number | undefined | null = null;

/** When the process with `pid` started, in epoch milliseconds (to about a second), if /proc says. */
export function processStartedAt(pid: number): number | undefined {
  if (bootTimeMs === null) {
    const btime = /^btime (\d+)$/m.exec(readText("/proc/stat") ?? "")?.[1];
    bootTimeMs = btime === undefined ? undefined : Number(btime) * 1000;
  }
  const ticks = processStartTicks(pid);
  if (bootTimeMs === undefined || ticks === undefined) return undefined;
  return bootTimeMs + (ticks * 1000) / TICKS_PER_SECOND;
}

/** The machine, boot and pid namespace this process runs in, each when the system says. */
export interface Identity {
  /** /etc/machine-id: fixed for an installation (a container has its image's, or none). */
  machineId?: string;
  /** /proc/sys/kernel/random/boot_id: new at each boot, shared by every container of the kernel. */
  bootId?: string;
  /** /proc/self/ns/pid, e.g. `pid:[4026531836]`: pids mean the same only within one namespace. */
  pidNamespace?: string;
  /** This process's start time, in clock ticks after boot. */
  processStart?: number;
}

let own: Identity | undefined;

/** This process's identity (read once). */
export function ownIdentity(): Identity {
  if (own) return own;
  const machineId = readText("/etc/machine-id") ?? readText("/var/lib/dbus/machine-id");
  const bootId = readText("/proc/sys/kernel/random/boot_id");
  let pidNamespace: string | undefined;
  try {
    pidNamespace = readlinkSync("/proc/self/ns/pid");
  } catch {
    pidNamespace = undefined;
  }
  const processStart = processStartTicks("self");
  own = {
    ...(machineId ? { machineId } : {}),
    ...(bootId ? { bootId } : {}),
    ...(pidNamespace ? { pidNamespace } : {}),
    ...(processStart !== undefined ? { processStart } : {}),
  };
  return own;
}

/**
 * Whether the process `pid` with `identity`, as another process recorded it, still runs:
 * - "dead" when that is certain: another boot of this machine (same machine id, other boot id),
 *   or this boot and pid namespace and no process with the pid, or one that started at another time;
 * - "alive" when a process of this boot and namespace has the pid and the start time recorded;
 * - "unknown" when it cannot be checked from here: another machine, or another pid namespace of
 *   this one (a container), or a record without the identity (then the hostname decides, as before).
 */
export function processStatus(
  pid: number,
  identity: Identity,
  host: { recorded: string; ours: string },
): "alive" | "dead" | "unknown" {
  const me = ownIdentity();
  if (identity.bootId === undefined || me.bootId === undefined) {
    // Recorded without an identity (an older kmslab, or no /proc): only the hostname is known.
    if (host.recorded !== host.ours) return "unknown";
    return isAlive(pid) ? "alive" : "dead";
  }
  if (identity.bootId !== me.bootId) {
    const sameMachine = identity.machineId !== undefined && identity.machineId === me.machineId;
    return sameMachine ? "dead" : "unknown";
  }
  if (identity.pidNamespace === undefined || identity.pidNamespace !== me.pidNamespace) return "unknown";
  if (!isAlive(pid)) return "dead";
  if (identity.processStart === undefined) return "alive";
  const started = processStartTicks(pid);
  if (started === undefined) return "alive";
  return started === identity.processStart ? "alive" : "dead";
}
