/**
 * A network of operators on one `hardhat node`: three GPU operators (stakes 1, 2 and 3 times the
 * minimum), each with its own relayer, and three TEE operators, each with its own enclave, with
 * InferenceLedger's assignment window on. On-chain requests are served in each node's turn
 * (InferenceLedger.eligibleAt): every request is fulfilled once, by a node whose turn had come; the
 * other relayers record it as lost, not done; killing the relayer of the largest stake with SIGKILL
 * only hands its turns to the others (fall-back); every fulfilled receipt is anchored by its own
 * relayer and verifies.
 */
import { expect } from "chai";
import { NonceManager, Wallet, getAddress } from "ethers";

import { eligibleAt } from "../../offchain/chain/assignment.js";
import { parseReceiptBundle } from "../../offchain/chain/bundle.js";
import { verifyReceiptProof } from "../../offchain/chain/merkle.js";
import { encodeInputs, type InputTensor } from "../../offchain/inference/tensor.js";
import { openDatabaseReadOnly } from "../../offchain/relayer/db.js";
import * as actions from "../../offchain/staking/actions.js";
import { roleAccounts } from "../helpers/accounts.js";
import type { HardhatNode } from "../helpers/processes.js";
import { rpc, startHardhatNode } from "../helpers/processes.js";
import {
  RISK_MLP,
  deploySystem,
  devMeasurement,
  getJson,
  riskInput,
  startEnclave,
  startOpg,
  stopProc,
  until,
  writeRelayerConfig,
  type Proc,
  type System,
} from "./relayer-system.js";

const WINDOW = 12;
const REQUESTS = 18;
/** Seconds an earlier turn is left to its node (the relayers' listener.turnGraceSeconds). */
const GRACE = 20;

interface Operator {
  gpuNode: string;
  nodeSigner: Wallet;
  txKey: Wallet;
  stake: bigint;
  config: string;
  store: string;
  relayer: (Proc & { url: string }) | null;
  enclave: Proc & { url: string; address: string };
}

describe("e2e: three operators on one chain, on-chain requests assigned by stake", function () {
  this.timeout(480_000);
  let node: HardhatNode;
  let system: System;
  const operators: Operator[] = [];
  const procs: Proc[] = [];

  async function startRelayer(op: Operator): Promise<void> {
    const proc = await startOpg(["relayer", "start", "--config", op.config], {
      OPG_NODE_SIGNER_KEY: op.nodeSigner.privateKey,
      OPG_RELAYER_TX_KEY: op.txKey.privateKey,
    });
    procs.push(proc);
    op.relayer = { ...proc, url: String(proc.line.url) };
  }

  before(async () => {
    node = await startHardhatNode();
    system = await deploySystem(node.url, { assignmentWindow: WINDOW });
    const params = await system.staking.params();
    const minStake = params.minStakeInference;
    const keys = await roleAccounts(system.admin, system.provider, [
      "gpu1",
      "tee1",
      "gpu2",
      "tee2",
      "tx0",
      "tx1",
      "tx2",
      "signer1",
      "signer2",
    ]);
    const txKeys = [keys.tx0, keys.tx1, keys.tx2];
    // Operator 0 is the system's own GPU and TEE node; 1 and 2 register theirs with 2x and 3x the stake.
    const pairs: Array<{ gpuNode: string; nodeSigner: Wallet; stake: bigint }> = [
      { gpuNode: system.gpuNode, nodeSigner: system.nodeSigner, stake: minStake },
    ];
    const measurement = devMeasurement();
    const registrars: Array<(enclave: string, document: Uint8Array) => Promise<void>> = [
      system.registerEnclave,
    ];
    for (const [i, gpu, tee, signer] of [
      [1, keys.gpu1, keys.tee1, keys.signer1],
      [2, keys.gpu2, keys.tee2, keys.signer2],
    ] as const) {
      const stake = minStake * BigInt(i + 1);
      const gpuNode = Wallet.createRandom().address;
      const teeNode = Wallet.createRandom().address;
      const token = system.token.connect(system.admin);
      await (await token.transfer(gpu.address, stake)).wait();
      await (await token.transfer(tee.address, params.minStakeVerifier)).wait();
      const h = { token: system.token, staking: system.staking };
      await actions.registerNode(h, new NonceManager(gpu), {
        node: gpuNode,
        role: 1,
        signer: signer.address,
        amount: stake,
        metadataURI: `https://gpu-${i}.opg.test`,
      });
      const teeOperator = new NonceManager(tee);
      await actions.registerNode(h, teeOperator, {
        node: teeNode,
        role: 2,
        signer: Wallet.createRandom().address,
        amount: params.minStakeVerifier,
        metadataURI: `https://tee-${i}.opg.test`,
      });
      pairs.push({ gpuNode, nodeSigner: signer, stake });
      registrars.push(async (enclaveKey, attestation) => {
        await actions.registerEnclave(system.tee, system.staking, teeOperator, {
          node: teeNode,
          enclaveKey,
          measurement,
          attestation,
        });
      });
    }
    for (const [i, pair] of pairs.entries()) {
      const enclave = await startEnclave(system, node.url, [], {
        node: pair.gpuNode,
        registerWith: registrars[i]!,
      });
      procs.push(enclave);
      const { file, dir } = await writeRelayerConfig(system, enclave.url, node.url, {
        node: { address: pair.gpuNode },
        listener: { confirmations: 1, turnGraceSeconds: GRACE },
      });
      operators.push({
        ...pair,
        txKey: txKeys[i]!,
        config: file,
        store: `${dir}/relayer.db`,
        relayer: null,
        enclave,
      });
    }
    for (const op of operators) await startRelayer(op);
  });
  after(async () => {
    for (const p of procs) await stopProc(p, "SIGKILL");
    await system?.close();
    await node?.stop();
  });

  it("serves every request once, in a node's turn; the others record it lost; a killed relayer's turns fall to the others", async () => {
    const ledger = system.ledger.connect(system.requester);
    const model = RISK_MLP.modelId;
    // Blocks keep coming (the listeners wait for one confirmation; turns are chain times).
    let mining = true;
    const miner = (async () => {
      while (mining) {
        await rpc(node.url, "evm_mine");
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
    const ids: string[] = [];
    let killedAt = 0n;
    const request = async (i: number) => {
      const tensors: InputTensor[] = [
        {
          name: "features",
          dtype: "float32",
          dims: [1, 16],
          data: Float32Array.from(riskInput(500_000 + i).features.data),
        },
      ];
      const input = `0x${encodeInputs(tensors).toString("hex")}`;
      const mined = await (await ledger.requestInference(model, input, 0, 3_600, 0)).wait();
      const event = mined!.logs
        .map((l) => system.ledger.interface.parseLog(l))
        .find((e) => e?.name === "InferenceRequested")!;
      ids.push(String(event.args.requestId).toLowerCase());
    };
    try {
      for (let i = 0; i < REQUESTS / 2; i++) await request(i);
      // The largest stake's relayer dies: its turns must fall to the other two.
      await stopProc(operators[2]!.relayer!, "SIGKILL");
      killedAt = BigInt((await system.provider.getBlock("latest"))!.timestamp);
      operators[2]!.relayer = null;
      for (let i = REQUESTS / 2; i < REQUESTS; i++) await request(i);
      for (const id of ids) {
        await until(
          `fulfilment of ${id}`,
          async () => (BigInt(await system.ledger.requestHashOf(id)) === 0n ? true : null),
          120_000,
        );
      }
    } finally {
      mining = false;
      await miner;
    }
    // Back on its own store, the killed relayer catches up: what it did not fulfil is lost to it.
    await startRelayer(operators[2]!);

    // Each request fulfilled once, by a node whose turn had come.
    const events = await system.ledger.queryFilter(
      system.ledger.filters.InferenceFulfilled(),
      system.deployBlock,
    );
    expect(events.map((e) => String(e.args.requestId).toLowerCase()).sort()).to.deep.equal(
      [...ids].sort(),
    );
    const winners = new Map<string, string>();
    const window = await system.ledger.assignmentWindow();
    const minStake = (await system.staking.params()).minStakeInference;
    let firstInTurn = 0;
    let counted = 0;
    for (const e of events) {
      const requestId = String(e.args.requestId).toLowerCase();
      const winner = getAddress(String(e.args.node));
      winners.set(requestId, winner);
      const requested = (
        await system.ledger.queryFilter(system.ledger.filters.InferenceRequested(requestId))
      )[0]!;
      const r = {
        requestedAt: BigInt(requested.args.requestedAt),
        seed: String(requested.args.seed),
      };
      const block = await system.provider.getBlock(e.blockNumber);
      const turns = operators.map((op) => ({
        node: getAddress(op.gpuNode),
        at: eligibleAt(r, op.gpuNode, { window, stake: op.stake, minStake }),
      }));
      const mine = turns.find((t) => t.node === winner)!;
      expect(BigInt(block!.timestamp)).to.be.at.least(mine.at);
      // Whether the killed relayer had its whole turn (and the grace after it) before it died; the
      // requests where it died within its turn have no single rightful first node, and are not counted.
      const killedNode = turns[2]!;
      const hadTurn = killedNode.at + BigInt(GRACE) < killedAt;
      if (killedNode.at < killedAt && !hadTurn) continue;
      counted++;
      const live = hadTurn ? turns : turns.slice(0, 2);
      if (live.every((t) => t.at >= mine.at)) firstInTurn++;
    }
    // Mostly the first live turn wins; a slower first node can lose its turn to the next one.
    expect(counted).to.be.at.least(REQUESTS / 2);
    expect(firstInTurn).to.be.at.least(counted - 2);
    // The killed relayer's node fulfilled nothing after it died.
    const afterKill = ids.slice(REQUESTS / 2).map((id) => winners.get(id));
    expect(afterKill).to.not.include(getAddress(operators[2]!.gpuNode));

    // Reverted fulfil transactions (lost races mined): within the rule's bound.
    let reverted = 0;
    const head = await system.provider.getBlockNumber();
    const ledgerAddress = (await system.ledger.getAddress()).toLowerCase();
    const fulfilSelector = system.ledger.interface.getFunction("fulfil").selector;
    for (let b = system.deployBlock; b <= head; b++) {
      const block = await system.provider.getBlock(b, true);
      for (const tx of block!.prefetchedTransactions) {
        if (tx.to?.toLowerCase() !== ledgerAddress || !tx.data.startsWith(fulfilSelector)) continue;
        const receipt = await system.provider.getTransactionReceipt(tx.hash);
        if (receipt!.status === 0) reverted++;
      }
    }
    expect(reverted).to.be.at.most(2);

    // Every relayer: done for what its node fulfilled, lost for what another did, never done for another's.
    const settledRows = (store: string): number => {
      const db = openDatabaseReadOnly(store);
      try {
        const rows = db
          .prepare("SELECT COUNT(*) AS n FROM chain_requests WHERE state IN ('done', 'lost')")
          .get() as { n: number };
        return Number(rows.n);
      } finally {
        db.close();
      }
    };
    await until("the restarted relayer's catch-up", () =>
      Promise.resolve(settledRows(operators[2]!.store) === REQUESTS ? true : null),
    );
    for (const op of operators) {
      const db = openDatabaseReadOnly(op.store);
      try {
        const rows = db
          .prepare("SELECT request_id, state, reason FROM chain_requests")
          .all() as Array<{ request_id: string; state: string; reason: string | null }>;
        for (const row of rows) {
          const mine = winners.get(row.request_id) === getAddress(op.gpuNode);
          if (mine) expect(row.state, row.request_id).to.equal("done");
          else {
            expect(["lost", "new"], `${row.request_id}: ${row.state}`).to.include(row.state);
            if (row.state === "lost") expect(row.reason).to.include(winners.get(row.request_id));
          }
        }
      } finally {
        db.close();
      }
    }

    // Each fulfilled receipt is anchored by the fulfiller's relayer, with its proof.
    for (const id of ids) {
      const op = operators.find((o) => getAddress(o.gpuNode) === winners.get(id))!;
      const view = await until(`anchoring of ${id}`, async () => {
        const res = await getJson(`${op.relayer!.url}/v1/receipts/${id}`);
        return res.json.status === "anchored" ? res.json : null;
      });
      const bundle = parseReceiptBundle(JSON.stringify(view.bundle));
      expect(getAddress(bundle.receipt.node)).to.equal(winners.get(id));
      const root = String(await system.ledger.getFunction("rootOf")(bundle.batchId));
      expect(verifyReceiptProof(root, bundle.receipt, bundle.proof)).to.equal(true);
    }
  });
});
