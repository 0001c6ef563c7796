/**
 * Runs asynchronous operations one at a time, in arrival order. Endpoint changes check, then wait
 * for the datapath, then commit; two of them interleaving could both pass the same check.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation, operation);
    // The queue goes on whether this operation failed or not; the caller sees its own outcome.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
