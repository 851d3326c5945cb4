/**
 * Progress reporting for long work (scanning blocks, building trees, writing proofs). The maths and
 * chain modules take an optional `Progress`; the CLI and tasks pass a cli-progress bar on stderr, only
 * when stderr is a terminal or when asked (`--progress`), so piped output stays clean. The bar itself
 * is in progress-bar.ts: this module stays free of terminal code, as the explorer runs it in a browser.
 */
export interface ProgressTask {
  /** Sets how far the task is (0..total). */
  update(done: number): void;
  stop(): void;
}

export interface Progress {
  /** Starts a task of `total` steps described by `label`. */
  start(label: string, total: number): ProgressTask;
}

export const silentProgress: Progress = {
  start: () => ({ update: () => undefined, stop: () => undefined }),
};
