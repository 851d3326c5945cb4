/**
 * Governance gas: a one-call proposal (approve an enclave measurement) through the governor, as the
 * protocol is deployed (offchain/deploy/system.ts): the queue transaction (the governor schedules it in
 * the timelock) plus the execute transaction (the governor has the timelock run it, which runs the call).
 * No governor with bytecode is on the npm registry to set beside it, so the row carries a goal instead:
 * what governance adds to the call — queue + execute minus the call's own cost (estimated as if the
 * timelock sent it directly) — at most 300,000 gas, 1 % of a 30M block, for a path that runs a few
 * times a year. The goal is on the overhead because the call's own cost is the call's: approving an
 * image writes its id, its record and its approval history (what keeps evidence valid at its date),
 * five fresh slots, and no governance design removes that.
 */
import { keccak256, toUtf8Bytes } from "ethers";

import { buildProposal } from "../../../offchain/governance/actions.js";
import {
  castVote,
  delegateVotes,
  executeProposal,
  governanceOf,
  localClock,
  propose,
  queueProposal,
} from "../../../offchain/governance/proposals.js";
import { deployProtocol } from "./types.js";
import type { BenchContext, GasCheck, GasRow } from "./types.js";

const GOAL = 300_000;
const fmt = (n: number) => n.toLocaleString("en-US");

export async function measure(ctx: BenchContext): Promise<{ rows: GasRow[]; checks: GasCheck[] }> {
  const { ethers } = await ctx.connect();
  const signers = await ethers.getSigners();
  const holder = signers[0]!;
  const system = await deployProtocol(ethers);
  const h = governanceOf(system);
  const clock = localClock(ethers.provider);

  // The path of opg:gov:delegate / propose / vote / queue / execute, step by step.
  await delegateVotes(h.token, holder);
  const input = await buildProposal(
    {
      action: "approve-measurement",
      measurement: keccak256(toUtf8Bytes("bench image")),
      label: "bench",
    },
    { addresses: system.addresses },
  );
  const proposed = await propose(h, holder, input);
  await clock(proposed.voteStart + 1n);
  await castVote(h, holder, proposed.proposalId, "for");
  await clock(proposed.voteEnd + 1n);
  const call = input.calls[0]!;
  const direct = await ethers.provider.estimateGas({
    from: await h.timelock.getAddress(),
    to: call.target,
    data: call.data,
  });
  const queued = await queueProposal(h, holder, proposed.proposalId);
  const queueGas = Number((await ethers.provider.getTransactionReceipt(queued.txHash))!.gasUsed);
  await clock(queued.eta);
  const executed = await executeProposal(h, holder, proposed.proposalId);
  const executeGas = Number(executed.gasUsed);
  const total = queueGas + executeGas;
  const callAlone = Number(direct); // with its own 21,000 intrinsic gas, as a direct transaction
  const overhead = total - callAlone;
  const operation = `governance: queue + execute a one-call proposal (approve-measurement; overhead goal <= ${fmt(GOAL)})`;
  return {
    rows: [{ operation, ours: total, peer: null, peerGas: null }],
    checks: [
      {
        name: `governor proposal: queue ${fmt(queueGas)} + execute ${fmt(executeGas)} = ${fmt(total)}; the call sent directly ${fmt(callAlone)}; governance adds ${fmt(overhead)}`,
        value: overhead,
        limit: GOAL,
        ok: overhead <= GOAL,
      },
    ],
  };
}
