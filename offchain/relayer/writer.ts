/**
 * Group commit: jobs accepted in the same event-loop turn are written in one SQLite transaction
 * (one fsync), and each caller is answered only after that transaction committed. This is what
 * makes "accepted = durable" affordable at a thousand requests per second. (A writer thread with
 * its own connection, to take the fsync off the event loop, was measured in the relayer benchmark
 * and gained nothing on these 2-core machines; see docs/relayer.md.)
 */
import type { JobRecord, JobStore } from "./store.js";

interface Waiting {
  job: JobRecord;
  resolve: (inserted: boolean) => void;
  reject: (e: unknown) => void;
}

export class JobWriter {
  private queue: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly store: JobStore) {}

  /** Resolves once `job` is on disk: true when stored now, false when its request id already was. */
  write(job: JobRecord): Promise<boolean> {
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
    let inserted: boolean[];
    try {
      inserted = this.store.insertJobs(batch.map((b) => b.job));
    } catch (error) {
      for (const b of batch) b.reject(error);
      return;
    }
    batch.forEach((b, i) => b.resolve(inserted[i]!));
  }
}
