import type { StateFile } from "./schema.js";
import type { StateStore } from "./store.js";

/**
 * A run's state in memory and in its store. A change applies to the state in memory at once;
 * `commit` writes the state (with every change made since the last write) and resolves once the
 * store holds it, `change` leaves it for the next commit. What the store holds is therefore always
 * the state after some prefix of the changes, in the order they were made: a crash loses at most the
 * changes since the last commit. Commit what must survive a crash (an effect's intent before its
 * call, its result after; a long wait's deadline); leave to the next commit what a resumed run can
 * simply do again (a read, a verification, a machine transition). Writes happen one at a time, in
 * order, and a commit with nothing new to write writes nothing.
 *
 * The store copies what it writes and keeps no reference to it, so the state is never cloned here;
 * a failed write leaves its changes in memory, to be written by the next commit.
 */
export class Checkpointer {
  private queue: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly store: StateStore,
    private current: StateFile,
  ) {}

  /** The state with every change applied, written or not. Change it only through change/commit. */
  get state(): StateFile {
    return this.current;
  }

  /** Applies `fn` now; the next commit writes it. */
  change(fn: (state: StateFile) => void): void {
    fn(this.current);
    this.dirty = true;
  }

  /** Applies `fn` (if any) now and resolves once the store holds it and every earlier change. */
  commit(fn?: (state: StateFile) => void): Promise<void> {
    if (fn) this.change(fn);
    const written = this.queue.then(() => this.write());
    this.queue = written.catch(() => {});
    return written;
  }

  /** Resolves when the writes asked for so far have ended. */
  async settled(): Promise<void> {
    await this.queue;
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      const stored = await this.store.write(this.current);
      this.current.serial = stored.serial;
      this.current.updatedAt = stored.updatedAt;
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }
}
