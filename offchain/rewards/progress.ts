/**
 * Progress reporting for long work (scanning blocks, building trees, writing proofs). The maths and
 * chain modules take an optional `Progress`; the CLI and tasks pass a cli-progress bar on stderr, only
 * when stderr is a terminal or when asked (`--progress`), so piped output stays clean.
 */
import { SingleBar } from "cli-progress";

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

/** A cli-progress bar on stderr, or silence when stderr is not a TTY and `force` is false. */
export function terminalProgress(
  force = false,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!force && stream.isTTY !== true) return silentProgress;
  return {
    start(label, total) {
      const bar = new SingleBar({
        stream,
        format: `${label} [{bar}] {value}/{total} ({percentage}%, eta {eta}s)`,
        hideCursor: stream.isTTY === true,
        noTTYOutput: stream.isTTY !== true,
        notTTYSchedule: 1_000,
        clearOnComplete: false,
        barsize: 30,
      });
      bar.start(total, 0);
      return {
        update: (done) => bar.update(done),
        stop: () => bar.stop(),
      };
    },
  };
}
