/**
 * What keeps the agent from being fully Ok, by subject ("endpoint 12", "state file ..."), so a
 * problem goes away when its subject is fixed or removed. Any problem makes the agent Degraded.
 */
export class HealthProblems {
  private readonly problems = new Map<string, string>();

  set(subject: string, message: string): void {
    this.problems.set(subject, message);
  }

  has(subject: string): boolean {
    return this.problems.has(subject);
  }

  clear(subject: string): void {
    this.problems.delete(subject);
  }

  /** "subject: message", in the order they arose. */
  list(): string[] {
    return [...this.problems].map(([subject, message]) => `${subject}: ${message}`);
  }
}
