/** `npm run build:explorer`: the explorer page, built into explorer/dist (served by `opg explorer`). */
import path from "node:path";
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: "./",
  logLevel: "warn",
  build: {
    outDir: path.join(here, "dist"),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 2_000,
  },
});
