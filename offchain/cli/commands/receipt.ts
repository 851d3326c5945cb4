/**
 * `opg receipt verify <receipt.json> --rpc <url>`: checks a receipt bundle against the chain and
 * prints every check. Exit codes: 0 all checks pass, 1 a check fails, 2 bad input (file, RPC,
 * missing artifacts).
 */
import { readFile } from "node:fs/promises";

import type { Command } from "commander";

import { InputError, VerificationError } from "../../common/errors.js";
import { DEFAULT_ARTIFACTS_DIR, loadLedgerAbis } from "../../chain/artifacts.js";
import { parseReceiptBundle } from "../../chain/bundle.js";
import { connectRpc, formatChecks, verifyReceiptBundle } from "../../chain/verify.js";

interface VerifyOptions {
  rpc: string;
  artifacts: string;
}

async function verifyCommand(file: string, options: VerifyOptions): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new InputError("cannot read the receipt file", { details: { file }, cause });
  }
  const bundle = parseReceiptBundle(text);
  const abis = loadLedgerAbis(options.artifacts);
  const provider = await connectRpc(options.rpc);
  try {
    const checks = await verifyReceiptBundle(bundle, provider, abis);
    console.log(
      `receipt for request ${bundle.receipt.requestId}\n` +
        `  model ${bundle.receipt.modelId}, node ${bundle.receipt.node}\n` +
        `  batch ${bundle.batchId} on ledger ${bundle.ledger}, chain ${bundle.chainId}`,
    );
    console.log(formatChecks(checks));
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) {
      throw new VerificationError("receipt verification failed", {
        details: { failed: failed.map((c) => c.name).join(", "), checks: checks.length },
      });
    }
    const warnings = checks.filter((c) => c.warning !== undefined);
    console.log(
      warnings.length === 0
        ? `receipt verified: all ${checks.length} checks passed`
        : `receipt verified: all ${checks.length} checks passed, with warnings: ${warnings.map((c) => c.warning).join(", ")}`,
    );
  } finally {
    provider.destroy();
  }
}

export function register(program: Command): void {
  const receipt = program
    .command("receipt")
    .description("inference receipts anchored by InferenceLedger");
  receipt
    .command("verify")
    .description("check a receipt bundle's signatures and Merkle proof against the chain")
    .argument(
      "<receipt.json>",
      "receipt bundle (format opg-receipt-bundle-v2, see docs/anchoring.md)",
    )
    .requiredOption("--rpc <url>", "JSON-RPC URL of the chain the receipt was anchored on")
    .option(
      "--artifacts <dir>",
      "Hardhat artifacts folder with the contract ABIs",
      DEFAULT_ARTIFACTS_DIR,
    )
    .action((file: string, options: VerifyOptions) => verifyCommand(file, options));
}
