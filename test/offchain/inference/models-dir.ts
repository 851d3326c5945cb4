/**
 * A models folder as an operator might leave it: one good model (a copy of risk-mlp), one folder
 * whose manifest is broken, and seq-cnn reached through a symlink. The engine should load the good
 * one and the linked one and report the broken one by name.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { MODELS_DIR } from "../../../scripts/models/generate.js";

export interface MixedModelsDir {
  root: string;
  /** The folder whose manifest does not parse as a manifest. */
  broken: string;
  good: string;
  linked: string;
  remove(): void;
}

export function mixedModelsDir(): MixedModelsDir {
  const root = mkdtempSync(join(tmpdir(), "opg-models-"));
  const good = join(root, "good-risk");
  cpSync(join(MODELS_DIR, "risk-mlp"), good, { recursive: true });
  const broken = join(root, "broken");
  mkdirSync(broken);
  writeFileSync(
    join(broken, "manifest.json"),
    JSON.stringify({ schema: "opg.model-manifest/1", name: "broken", outputScale: 0.5 }),
  );
  const linked = join(root, "linked-cnn");
  symlinkSync(join(MODELS_DIR, "seq-cnn"), linked, "dir");
  // Not a model folder at all: skipped, not a failure.
  mkdirSync(join(root, "notes"));
  return {
    root,
    broken,
    good,
    linked,
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
