/**
 * Sablier Lockup as a gas-benchmark peer, deployed from the bytecode Sablier publishes on npm.
 *
 * `npm install @sablier/lockup` fails offline (its dependency tree pulls tarballs from GitHub), so the
 * two packages that carry the artifacts are fetched with `npm pack` (which checks the registry's
 * integrity hash) into .bench/sablier/ (git-ignored) and unpacked there with `tar`, once:
 *
 *   @sablier/lockup     artifacts/SablierLockup.json, SablierBatchLockup.json, LockupNFTDescriptor.json,
 *                       libraries/LockupHelpers.json, libraries/LockupMath.json
 *   @sablier/evm-utils  artifacts/SablierComptroller.json, ERC1967Proxy.json
 *
 * `deploySablier` then deploys what SablierLockup needs: its two external libraries (linked at the
 * artifact's `linkReferences` byte offsets), the comptroller behind its ERC1967 proxy initialised with
 * zero fees, and the NFT descriptor.
 */
import { execFile } from "node:child_process";
import { access, mkdir, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Contract, ContractFactory, Interface, ZeroAddress, getAddress } from "ethers";
import type { ContractTransactionResponse, InterfaceAbi, Signer } from "ethers";

const run = promisify(execFile);

/** Pinned: the gas figures in docs/vesting-gas.md were measured against these releases. */
export const SABLIER_PACKAGES = {
  lockup: { name: "@sablier/lockup", version: "4.0.1" },
  evmUtils: { name: "@sablier/evm-utils", version: "2.0.1" },
} as const;

type PackageKey = keyof typeof SABLIER_PACKAGES;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** Where the tarballs are packed and unpacked (git-ignored). */
export const SABLIER_DIR = path.join(repoRoot, ".bench", "sablier");

interface LinkReference {
  start: number;
  length: number;
}

interface Artifact {
  abi: InterfaceAbi;
  bytecode: {
    object: string;
    linkReferences: Record<string, Record<string, LinkReference[]>>;
  };
}

/** `@sablier/lockup@4.0.1` -> `sablier-lockup-4.0.1`, the stem of the tarball npm pack writes. */
function stemOf(key: PackageKey): string {
  const { name, version } = SABLIER_PACKAGES[key];
  return `${name.replace(/^@/, "").replace("/", "-")}-${version}`;
}

function artifactsDir(key: PackageKey): string {
  return path.join(SABLIER_DIR, stemOf(key), "package", "artifacts");
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure both packages are unpacked under .bench/sablier/, running `npm pack` and `tar` for the
 * ones that are missing. Returns the folder.
 */
export async function ensureSablierArtifacts(): Promise<string> {
  const keys = Object.keys(SABLIER_PACKAGES) as PackageKey[];
  const missing: PackageKey[] = [];
  for (const key of keys) {
    // A package counts as present once its artifacts folder holds files.
    const dir = artifactsDir(key);
    if (!(await exists(dir)) || (await readdir(dir)).length === 0) missing.push(key);
  }
  if (missing.length === 0) return SABLIER_DIR;

  await mkdir(SABLIER_DIR, { recursive: true });
  const specs = missing.map((k) => `${SABLIER_PACKAGES[k].name}@${SABLIER_PACKAGES[k].version}`);
  try {
    await run("npm", ["pack", ...specs, "--pack-destination", SABLIER_DIR], { cwd: repoRoot });
  } catch (cause) {
    throw new Error(
      `npm pack ${specs.join(" ")} failed: the Sablier peer needs the npm registry once, ` +
        `then runs from ${SABLIER_DIR}`,
      { cause },
    );
  }
  for (const key of missing) {
    const target = path.join(SABLIER_DIR, stemOf(key));
    await mkdir(target, { recursive: true });
    await run("tar", ["-xzf", path.join(SABLIER_DIR, `${stemOf(key)}.tgz`), "-C", target]);
    if (!(await exists(artifactsDir(key)))) {
      throw new Error(`${stemOf(key)}.tgz has no package/artifacts/ folder`);
    }
  }
  return SABLIER_DIR;
}

/** Reads one artifact, e.g. `loadSablierArtifact("lockup", "libraries/LockupMath.json")`. */
export async function loadSablierArtifact(key: PackageKey, file: string): Promise<Artifact> {
  const full = path.join(artifactsDir(key), file);
  const artifact = JSON.parse(await readFile(full, "utf8")) as Partial<Artifact>;
  if (artifact.abi === undefined || typeof artifact.bytecode?.object !== "string") {
    throw new Error(`${full} is not a Foundry artifact with abi and bytecode.object`);
  }
  return artifact as Artifact;
}

/**
 * Writes each library's address into the creation bytecode at the offsets the artifact lists
 * (`linkReferences[source][library]`, byte offsets into the code). Every reference must be resolved.
 */
export function linkBytecode(artifact: Artifact, libraries: Record<string, string>): string {
  let hex = artifact.bytecode.object.replace(/^0x/, "");
  for (const refsByLib of Object.values(artifact.bytecode.linkReferences)) {
    for (const [lib, refs] of Object.entries(refsByLib)) {
      const address = libraries[lib];
      if (address === undefined) throw new Error(`no address given for library ${lib}`);
      const bare = getAddress(address).slice(2).toLowerCase();
      for (const { start, length } of refs) {
        if (length !== 20) throw new Error(`link reference of ${lib} is ${length} bytes, not 20`);
        hex = hex.slice(0, start * 2) + bare + hex.slice((start + length) * 2);
      }
    }
  }
  if (hex.includes("__")) throw new Error("bytecode still has unlinked library placeholders");
  return `0x${hex}`;
}

async function deploy(
  artifact: Artifact,
  signer: Signer,
  args: unknown[] = [],
  bytecode: string = artifact.bytecode.object,
): Promise<Contract> {
  const factory = new ContractFactory(artifact.abi, bytecode, signer);
  const contract = await factory.deploy(...args);
  await contract.waitForDeployment();
  return new Contract(await contract.getAddress(), artifact.abi, signer);
}

export interface SablierDeployment {
  lockup: Contract;
  batch: Contract;
  comptroller: Contract;
}

/**
 * Deploys SablierLockup with everything it needs, fees at zero, and SablierBatchLockup.
 * `admin` deploys and administers the comptroller.
 */
export async function deploySablier(admin: Signer): Promise<SablierDeployment> {
  await ensureSablierArtifacts();
  const [helpersArt, mathArt, descriptorArt, lockupArt, batchArt, comptrollerArt, proxyArt] =
    await Promise.all([
      loadSablierArtifact("lockup", "libraries/LockupHelpers.json"),
      loadSablierArtifact("lockup", "libraries/LockupMath.json"),
      loadSablierArtifact("lockup", "LockupNFTDescriptor.json"),
      loadSablierArtifact("lockup", "SablierLockup.json"),
      loadSablierArtifact("lockup", "SablierBatchLockup.json"),
      loadSablierArtifact("evmUtils", "SablierComptroller.json"),
      loadSablierArtifact("evmUtils", "ERC1967Proxy.json"),
    ]);
  const adminAddress = await admin.getAddress();

  // Comptroller: implementation behind an ERC1967 proxy, initialised with every minimum fee at 0
  // and no price oracle, as on a zero-fee deployment.
  const implementation = await deploy(comptrollerArt, admin, [adminAddress]);
  const init = new Interface(comptrollerArt.abi).encodeFunctionData("initialize", [
    adminAddress,
    0n,
    0n,
    0n,
    0n,
    ZeroAddress,
  ]);
  const proxy = await deploy(proxyArt, admin, [await implementation.getAddress(), init]);
  const comptroller = new Contract(await proxy.getAddress(), comptrollerArt.abi, admin);

  // The libraries are only linked, never called from here: deployed without their ABI, whose
  // price-gated entries use a contract type as a parameter type that ethers rejects.
  const helpers = await deploy({ ...helpersArt, abi: [] }, admin);
  const math = await deploy({ ...mathArt, abi: [] }, admin);
  const descriptor = await deploy(descriptorArt, admin);
  const lockupCode = linkBytecode(lockupArt, {
    LockupHelpers: await helpers.getAddress(),
    LockupMath: await math.getAddress(),
  });
  const lockup = await deploy(
    lockupArt,
    admin,
    [await comptroller.getAddress(), await descriptor.getAddress()],
    lockupCode,
  );
  const batch = await deploy(batchArt, admin);
  return { lockup, batch, comptroller };
}

/** A state-changing function of an artifact-typed contract, e.g. `send(lockup, "withdrawMax")`. */
export type Send = (...args: unknown[]) => Promise<ContractTransactionResponse>;

export function send(contract: Contract, name: string): Send {
  const fn = contract.getFunction(name);
  return (...args) => fn.send(...args);
}
