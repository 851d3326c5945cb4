/**
 * Group commit: jobs accepted in the same event-loop turn are written in one SQLite transaction
 * (one fsync), and each caller is answered only after that transaction committed. This is what
 * makes "accepted = durable" affordable at thousands of requests per second.
 */
import type { JobRecord, JobStore } from "./store.js";

export class JobWriter {
  private queue: Array<{ job: JobRecord; resolve: () => void; reject: (e: unknown) => void }> = [];
  private scheduled = false;

  constructor(private readonly store: JobStore) {}

  /** Resolves once `job` is on disk. */
  write(job: JobRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    try {
      this.store.insertJobs(batch.map((b) => b.job));
    } catch (error) {
      for (const b of batch) b.reject(error);
      return;
    }
    for (const b of batch) b.resolve();
  }
}
