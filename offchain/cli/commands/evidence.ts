/**
 * `opg evidence report --enclave <url> --rpc <url> --ledger <address>`: reports on chain the evidence
 * an enclave published (contradicted receipts, double receipts), as anyone may; the reporter earns
 * the bounty. Reads the reporter's key from the variable --key-env names (never printed). Exit codes:
 * 0 done (some records may have been skipped: already slashed, or refused by the ledger, each
 * printed with why), 2 bad input.
 */
import type { Command } from "commander";
import { Contract, Wallet, getAddress, isAddress } from "ethers";

import { loadAbi } from "../../chain/artifacts.js";
import { connectRpc } from "../../chain/verify.js";
import { InputError } from "../../common/errors.js";
import { stringifyJson } from "../../common/json.js";
import { parsePrivateKey } from "../../common/private-key.js";
import { reportEvidence } from "../../evidence/report.js";
import { fetchEvidence } from "../../tee/client.js";

interface ReportOptions {
  enclave: string;
  rpc: string;
  ledger: string;
  keyEnv: string;
  after: string;
  json?: boolean;
}

async function reportCommand(options: ReportOptions): Promise<void> {
  if (!isAddress(options.ledger)) {
    throw new InputError("--ledger must be an address", { details: { ledger: options.ledger } });
  }
  if (!/^[0-9]+$/.test(options.after)) {
    throw new InputError("--after must be a non-negative integer", {
      details: { after: options.after },
    });
  }
  const raw = process.env[options.keyEnv];
  if (raw === undefined || raw === "") {
    throw new InputError(`${options.keyEnv} is not set`, {
      hint: `export ${options.keyEnv}=0x<64 hex digits> (the reporter's key; it receives the bounty)`,
    });
  }
  const key = parsePrivateKey(raw, options.keyEnv);
  const provider = await connectRpc(options.rpc);
  try {
    const ledger = new Contract(
      getAddress(options.ledger),
      loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger"),
      new Wallet(key, provider),
    );
    const records = await fetchEvidence(options.enclave, Number(options.after));
    const outcomes = await reportEvidence(records, ledger);
    if (options.json === true) {
      console.log(stringifyJson(outcomes));
      return;
    }
    if (outcomes.length === 0) console.log("no evidence published after that index");
    for (const o of outcomes) {
      const what = `#${o.index} ${o.kind} against node ${o.node}`;
      if (o.status === "slashed")
        console.log(`SLASHED  ${what}: ${o.slashed} wei (tx ${o.txHash})`);
      else if (o.status === "already-slashed") console.log(`SKIPPED  ${what}: already slashed`);
      else console.log(`REFUSED  ${what}: ${o.reason}`);
    }
  } finally {
    provider.destroy();
  }
}

export function register(program: Command): void {
  const evidence = program
    .command("evidence")
    .description("evidence an enclave published, reported on chain (anyone may, for the bounty)");
  evidence
    .command("report")
    .description("report the enclave's published evidence (GET /evidence) to InferenceLedger")
    .requiredOption("--enclave <url>", "the enclave's HTTP API")
    .requiredOption("--rpc <url>", "JSON-RPC URL of the chain")
    .requiredOption("--ledger <address>", "InferenceLedger address")
    .option("--key-env <name>", "variable holding the reporter's private key", "OPG_REPORTER_KEY")
    .option("--after <index>", "only records after this index", "0")
    .option("--json", "print the outcomes as JSON")
    .action((options: ReportOptions) => reportCommand(options));
}
