/**
 * `opg merkle build <file.csv> [--out tree.json]`: an OpenZeppelin standard Merkle tree over
 * `address,amount` rows (amount: a non-negative integer in wei; a header row is optional). Prints the
 * root; `--out` writes the tree in `standard-v1` JSON, loadable by `StandardMerkleTree.load`.
 */
import { readFile, writeFile } from "node:fs/promises";

import type { Command } from "commander";

import { buildTree } from "../../../native/index.js";
import { InputError } from "../../common/errors.js";

export interface CsvLeaves {
  leaves: [string, bigint][];
  total: bigint;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const AMOUNT = /^[0-9]+$/;
const HEADER = /^address\s*,\s*amount$/i;

/** Parses `address,amount` rows; errors name the 1-based line. Rejects repeated addresses. */
export function parseLeavesCsv(text: string): CsvLeaves {
  const leaves: [string, bigint][] = [];
  const seen = new Map<string, number>();
  let total = 0n;
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    const lineNo = i + 1;
    if (line === "") continue;
    if (leaves.length === 0 && seen.size === 0 && HEADER.test(line)) continue;
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length !== 2) {
      throw new InputError(
        `line ${lineNo}: expected 2 fields "address,amount", got ${fields.length}`,
        {
          details: { line: lineNo, text: raw },
        },
      );
    }
    const [address, amount] = fields as [string, string];
    if (!ADDRESS.test(address)) {
      throw new InputError(`line ${lineNo}: not an address`, {
        details: { line: lineNo, address },
      });
    }
    if (!AMOUNT.test(amount) || BigInt(amount) >= 1n << 256n) {
      throw new InputError(
        `line ${lineNo}: amount must be a non-negative integer (wei) below 2^256`,
        {
          details: { line: lineNo, amount },
        },
      );
    }
    const key = address.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      throw new InputError(`line ${lineNo}: address already listed on line ${first}`, {
        details: { line: lineNo, address },
      });
    }
    seen.set(key, lineNo);
    leaves.push([address, BigInt(amount)]);
    total += BigInt(amount);
  }
  if (leaves.length === 0) throw new InputError("no rows: expected lines of address,amount");
  return { leaves, total };
}

export async function buildMerkleFromCsv(
  file: string,
  out?: string,
): Promise<{ root: string; count: number; total: bigint }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new InputError(`cannot read ${file}`, { cause, details: { file } });
  }
  const { leaves, total } = parseLeavesCsv(text);
  const tree = buildTree(leaves, ["address", "uint256"]);
  if (out !== undefined) await writeFile(out, JSON.stringify(tree.dump()) + "\n");
  return { root: tree.root, count: leaves.length, total };
}

export function register(program: Command): void {
  const merkle = program
    .command("merkle")
    .description("OpenZeppelin-compatible Merkle trees (native engine)");
  merkle
    .command("build")
    .description("build a tree over address,amount rows and print its root")
    .argument("<file.csv>", "rows of address,amount (amount in wei); header optional")
    .option("--out <tree.json>", "write the tree as StandardMerkleTree standard-v1 JSON")
    .action(async (file: string, options: { out?: string }) => {
      const { root, count, total } = await buildMerkleFromCsv(file, options.out);
      console.log(root);
      console.error(
        `${count} leaves, total ${total}${options.out === undefined ? "" : `, tree written to ${options.out}`}`,
      );
    });
}
