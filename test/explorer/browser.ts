/** Shared by the explorer's browser tests: Debian's chromium, its flags, and the built page. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

import { ROOT } from "../helpers/processes.js";

export const CHROMIUM = "/usr/bin/chromium";
export const DIST = path.join(ROOT, "explorer", "dist");

/** Flags for a quiet, offline, throw-away chromium (playwright adds a fresh --user-data-dir). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Builds the page when explorer/dist is missing (a fresh checkout), as `npm run build:explorer` does. */
export function ensureBuilt(): void {
  if (existsSync(path.join(DIST, "index.html"))) return;
  const vite = path.join(ROOT, "node_modules", "vite", "bin", "vite.js");
  const built = spawnSync(
    process.execPath,
    [vite, "build", "--config", "explorer/vite.config.ts"],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  if (built.status !== 0) throw new Error(`vite build failed:\n${built.stdout}\n${built.stderr}`);
}
