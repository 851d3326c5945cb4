/** The explorer page: four views, each read from the chain on load; no wallet, no backend state. */
import "uplot/dist/uPlot.min.css";
import "./style.css";

import { renderAnchoring, setupVerifyForm } from "./anchoring.js";
import { connect } from "./chain.js";
import type { ChainContext } from "./chain.js";
import { failed } from "./dom.js";
import { renderNodes } from "./nodes.js";
import { renderRewards } from "./rewards.js";
import { renderVesting } from "./vesting.js";

async function main(): Promise<void> {
  const line = document.getElementById("chain-line")!;
  let ctx: ChainContext;
  try {
    ctx = await connect();
  } catch (error) {
    line.textContent = `Cannot read the chain: ${error instanceof Error ? error.message : String(error)}`;
    line.setAttribute("role", "alert");
    for (const id of ["vesting", "nodes", "anchoring", "rewards"]) failed(id, error);
    return;
  }
  line.textContent = `Chain ${ctx.chainId} (network "${ctx.view.record.network}"), read through this server's JSON-RPC passthrough; chain time ${new Date(Number(ctx.now) * 1000).toISOString()}.`;
  setupVerifyForm(ctx);
  const views: Array<[string, (c: ChainContext) => Promise<void>]> = [
    ["vesting", renderVesting],
    ["nodes", renderNodes],
    ["anchoring", renderAnchoring],
    ["rewards", renderRewards],
  ];
  await Promise.all(
    views.map(([id, render]) =>
      render(ctx).catch((error: unknown) => {
        console.error(error);
        failed(id, error);
      }),
    ),
  );
  document.body.dataset.ready = "true";
}

void main();
