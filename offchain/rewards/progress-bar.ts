/** The terminal side of progress.ts: a cli-progress bar on stderr (Node only). */
import { SingleBar } from "cli-progress";

import type { Progress } from "./progress.js";
import { silentProgress } from "./progress.js";

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
