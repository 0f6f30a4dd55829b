import { describe, expect, it } from "vitest";
import {
  Checkpointer,
  MemoryStateStore,
  parseState,
  type StateFile,
  StateSecretError,
} from "../state/index.js";
import { sampleState } from "./helpers/state.js";

/** What the store holds now, as a new reader would see it. */
function stored(store: MemoryStateStore): StateFile {
  return parseState(store.snapshotText!, "memory");
}

async function started(): Promise<{ store: MemoryStateStore; checkpoints: Checkpointer }> {
  const store = new MemoryStateStore();
  const first = await store.write(sampleState());
  return { store, checkpoints: new Checkpointer(store, first) };
}

describe("the engine's checkpoints", () => {
  it("apply a change in memory at once and write it only with the next commit", async () => {
    const { store, checkpoints } = await started();
    checkpoints.change((st) => {
      st.stages["create-key"]!.attempts = 7;
    });
    expect(checkpoints.state.stages["create-key"]!.attempts).toBe(7);
    expect(stored(store).stages["create-key"]!.attempts).not.toBe(7);
    expect(stored(store).serial).toBe(1);

    await checkpoints.commit((st) => {
      st.stages["create-key"]!.status = "running";
    });
    const now = stored(store);
    expect(now.serial).toBe(2);
    expect(now.stages["create-key"]).toMatchObject({ attempts: 7, status: "running" });
    expect(checkpoints.state.serial).toBe(2);
    expect(checkpoints.state.updatedAt).toBe(now.updatedAt);
  });

  it("write what was asked in one turn once, and nothing when nothing changed", async () => {
    const { store, checkpoints } = await started();
    const a = checkpoints.commit((st) => {
      st.stages["create-key"]!.attempts = 2;
    });
    const b = checkpoints.commit((st) => {
      st.stages["trail-to-bucket"]!.attempts = 3;
    });
    await Promise.all([a, b]);
    expect(stored(store).serial).toBe(2);
    expect(stored(store).stages["trail-to-bucket"]!.attempts).toBe(3);
    await checkpoints.commit();
    await checkpoints.settled();
    expect(stored(store).serial).toBe(2);
  });

  it("keep the changes of a refused write for the next commit", async () => {
    const { store, checkpoints } = await started();
    await expect(
      checkpoints.commit((st) => {
        st.stages["create-key"]!.attempts = 5;
        st.stages["create-key"]!.outputs = { SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
      }),
    ).rejects.toThrow(StateSecretError);
    expect(stored(store).serial).toBe(1);
    checkpoints.change((st) => {
      st.stages["create-key"]!.outputs = { keyId: "k-1" };
    });
    await checkpoints.commit();
    expect(stored(store).stages["create-key"]).toMatchObject({ attempts: 5, outputs: { keyId: "k-1" } });
    expect(stored(store).serial).toBe(2);
  });
});
