/** A counting semaphore with a FIFO queue: at most `size` holders at once, waiters served in arrival order. */
export class Slots {
  readonly size: number;
  #held = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`slots: size must be a positive integer, got ${size}`);
    this.size = size;
  }

  /** Slots currently held. */
  get held(): number {
    return this.#held;
  }

  /** Runs waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Takes a slot, waiting for one if all are held. Resolves false (holding nothing) when signal aborts first. */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.#held < this.size) {
      this.#held++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const grant = () => {
        signal?.removeEventListener("abort", cancel);
        this.#held++;
        resolve(true);
      };
      const cancel = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(false);
      };
      this.#waiters.push(grant);
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /** Gives a slot back and hands it to the longest waiter. */
  release(): void {
    if (this.#held === 0) throw new Error("slots: release without acquire");
    this.#held--;
    this.#waiters.shift()?.();
  }
}
