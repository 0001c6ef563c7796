/**
 * The undo log of a command that changes several systems (agent IPAM, kernel links, agent
 * endpoints): when a later step fails, everything done so far is undone, newest first, so a
 * failed ADD leaves nothing behind for the runtime's DEL to find.
 */
export class Rollback {
  private readonly steps: { what: string; undo: () => unknown }[] = [];

  /** Records how to undo a step that has just succeeded (or may have taken effect). */
  add(what: string, undo: () => unknown): void {
    this.steps.push({ what, undo });
  }

  /** Runs every undo step, newest first, carrying on past failures; returns what could not be undone. */
  async run(): Promise<string[]> {
    const failures: string[] = [];
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.undo();
      } catch (error) {
        failures.push(`${step.what}: ${(error as Error)?.message ?? String(error)}`);
      }
    }
    return failures;
  }
}
