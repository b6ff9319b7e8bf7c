/**
 * Writes of one record (a job's, a training's) happen one after another, the last one wins:
 * each key's writes are chained, and a failed write fails only its own caller, never the next.
 */
export class WriteChains {
  private readonly chains = new Map<string, Promise<void>>();

  /** Runs `write` once the key's earlier writes have ended. */
  then(key: string, write: () => Promise<void> | void): Promise<void> {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(write);
    this.chains.set(
      key,
      next.catch(() => {}),
    );
    return next;
  }

  /** Waits for every write begun so far. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }
}
