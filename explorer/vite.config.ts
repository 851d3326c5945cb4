/** `npm run build:explorer`: the explorer page, built into explorer/dist (served by `opg explorer`). */
import path from "node:path";
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: "./",
  logLevel: "warn",
  // File loaders in offchain/ are never called by the page; see src/no-fs.ts.
  resolve: { alias: { "node:fs/promises": path.join(here, "src", "no-fs.ts") } },
  build: {
    outDir: path.join(here, "dist"),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 2_000,
    rollupOptions: {
      onwarn(warning, warn) {
        // zod places `@__PURE__` comments where Rollup cannot use them; Rollup drops them, harmlessly.
        if (warning.code === "INVALID_ANNOTATION" && warning.id?.includes("/node_modules/zod/"))
          return;
        warn(warning);
      },
    },
  },
});
