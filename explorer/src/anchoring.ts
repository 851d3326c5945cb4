/** Anchoring view: batches over time, and the in-browser receipt verification with each step shown. */
import uPlot from "uplot";

import {
  InferenceLedger__factory,
  NodeStaking__factory,
  TeeRegistry__factory,
} from "../../types/ethers-contracts/index.js";
import { formatReceiptBundle, parseReceiptBundle } from "../../offchain/chain/bundle.js";
import type { ReceiptBundle } from "../../offchain/chain/bundle.js";
import { verifyReceiptBundle } from "../../offchain/chain/verify.js";
import type { Check } from "../../offchain/chain/verify.js";
import { BaseError } from "../../offchain/common/errors.js";

import type { ChainContext } from "./chain.js";
import { code, count, el, fill, isoTime, table } from "./dom.js";

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

export async function renderAnchoring(ctx: ChainContext): Promise<void> {
  const ledger = InferenceLedger__factory.connect(ctx.address("InferenceLedger"), ctx.provider);
  const events = await ledger.queryFilter(ledger.filters.BatchAnchored(), 0);
  const batches = await Promise.all(
    events.map(async (e) => ({
      id: e.args.batchId,
      time: BigInt((await e.getBlock()).timestamp),
      enclave: e.args.enclave,
      sequence: e.args.sequence,
      root: e.args.root,
      count: Number(e.args.count),
      reexecuted: Number(e.args.reexecuted),
      models: e.args.modelIds.map((m, i) => ({ modelId: m, count: Number(e.args.counts[i] ?? 0) })),
      tx: e.transactionHash,
    })),
  );
  const receipts = batches.reduce((s, b) => s + b.count, 0);
  const reexecuted = batches.reduce((s, b) => s + b.reexecuted, 0);
  const chartBox = el("figure", { class: "chart", "aria-labelledby": "batches-caption" });
  fill(
    "anchoring",
    el(
      "p",
      {},
      `${count(batches.length, "batch", "batches")} anchored on ${ledger.target as string}: ${receipts} receipts, ${reexecuted} re-executed by an enclave (${receipts === 0 ? 0 : ((100 * reexecuted) / receipts).toFixed(1)} %).`,
    ),
    chartBox,
    table(
      "Anchored batches",
      [
        "Batch",
        "Time",
        "Receipts",
        "Re-executed",
        "Models (receipts)",
        "Enclave / sequence",
        "Root",
        "Transaction",
      ],
      batches.map((b) => [
        `#${b.id}`,
        isoTime(b.time),
        String(b.count),
        `${b.reexecuted} (${b.count === 0 ? 0 : ((100 * b.reexecuted) / b.count).toFixed(0)} %)`,
        el("span", {}, ...b.models.flatMap((m) => [code(m.modelId), ` (${m.count}) `])),
        el("span", {}, code(b.enclave), ` / ${b.sequence}`),
        code(b.root),
        code(b.tx),
      ]),
      { "data-testid": "batch-table" },
    ),
  );
  if (batches.length > 0) {
    const plot = new uPlot(
      {
        width: Math.max(480, Math.min(1100, chartBox.clientWidth || 900)),
        height: 220,
        scales: {
          x: {
            time: true,
            // One batch (or several in one second): a day either side, not uPlot's years.
            range: (_u, min, max) =>
              max - min < 86_400 ? [min - 86_400, max + 86_400] : [min, max],
          },
        },
        series: [
          { label: "Date" },
          {
            label: "receipts per batch",
            stroke: "#1f77b4",
            width: 2,
            points: { show: true, size: 8 },
          },
          { label: "re-executed", stroke: "#2ca02c", width: 2, points: { show: true, size: 8 } },
        ],
      },
      [
        batches.map((b) => Number(b.time)),
        batches.map((b) => b.count),
        batches.map((b) => b.reexecuted),
      ],
      chartBox,
    );
    plot.root.setAttribute("aria-hidden", "true");
  }
  chartBox.append(
    el(
      "figcaption",
      { id: "batches-caption" },
      "Receipts per batch and how many of them an enclave re-executed, over time.",
    ),
  );
}

async function bundleFrom(
  input: string,
  relayer: string,
  viaServer: boolean,
): Promise<ReceiptBundle> {
  const text = input.trim();
  if (!BYTES32.test(text)) return parseReceiptBundle(text);
  // A receipt id: from the relayer the user names, else through this server's relayer passthrough.
  let url: URL;
  if (relayer.trim() !== "") url = new URL(`/v1/receipts/${text}`, relayer.trim());
  else if (viaServer) url = new URL(`./relayer/v1/receipts/${text}`, window.location.href);
  else
    throw new Error("a receipt id needs the relayer's URL (or an explorer started with --relayer)");
  const response = await fetch(url);
  const body = (await response.json()) as { bundle?: unknown; message?: string };
  if (!response.ok) {
    throw new Error(`relayer ${url.toString()}: ${body.message ?? `HTTP ${response.status}`}`);
  }
  if (body.bundle === null || body.bundle === undefined) {
    throw new Error(`the relayer has receipt ${text} but has not anchored it yet`);
  }
  return parseReceiptBundle(JSON.stringify(body.bundle));
}

function checkList(checks: Check[]): HTMLOListElement {
  return el(
    "ol",
    { class: "checks", "data-testid": "checks" },
    ...checks.map((c) =>
      el(
        "li",
        {
          class: c.ok ? (c.warning !== undefined ? "warn" : "pass") : "fail",
          "data-check": c.name,
          "data-ok": String(c.ok),
          ...(c.warning !== undefined ? { "data-warning": c.warning } : {}),
        },
        el("strong", {}, c.ok ? (c.warning !== undefined ? "WARN " : "PASS ") : "FAIL "),
        el("span", { class: "check-name" }, c.name),
        ": ",
        c.detail,
        ...(c.warning !== undefined ? [el("em", {}, ` (warning: ${c.warning})`)] : []),
      ),
    ),
  );
}

export function setupVerifyForm(ctx: ChainContext): void {
  const form = document.getElementById("verify-form") as HTMLFormElement;
  const input = document.getElementById("verify-input") as HTMLTextAreaElement;
  const relayer = document.getElementById("verify-relayer") as HTMLInputElement;
  const out = document.getElementById("verify-result")!;
  const abis = {
    ledger: InferenceLedger__factory.abi,
    staking: NodeStaking__factory.abi,
    tee: TeeRegistry__factory.abi,
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    out.replaceChildren(el("p", {}, "Checking…"));
    out.dataset.state = "running";
    const run = async (): Promise<void> => {
      const bundle = await bundleFrom(input.value, relayer.value, ctx.view.relayer);
      if (BYTES32.test(input.value.trim())) input.value = formatReceiptBundle(bundle);
      const checks = await verifyReceiptBundle(bundle, ctx.provider, abis);
      const failed = checks.filter((c) => !c.ok);
      const warnings = checks.filter((c) => c.warning !== undefined);
      out.replaceChildren(
        el(
          "p",
          {
            class: failed.length === 0 ? "verdict pass" : "verdict fail",
            "data-testid": "verify-verdict",
          },
          failed.length === 0
            ? warnings.length === 0
              ? `✔ Receipt verified: all ${checks.length} checks passed.`
              : `✔ Receipt verified: all ${checks.length} checks passed, with warnings: ${warnings.map((c) => c.warning).join(", ")}.`
            : `✘ Receipt NOT verified: ${failed.map((c) => c.name).join(", ")} failed.`,
        ),
        checkList(checks),
      );
      out.dataset.state = failed.length === 0 ? "verified" : "failed";
    };
    run().catch((error: unknown) => {
      const lines =
        error instanceof BaseError
          ? [
              error.message,
              ...Object.entries(error.details).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
            ]
          : [error instanceof Error ? error.message : String(error)];
      out.replaceChildren(
        el(
          "p",
          { class: "verdict fail", role: "alert", "data-testid": "verify-verdict" },
          "✘ ",
          lines[0],
        ),
        el("ul", {}, ...lines.slice(1).map((l) => el("li", {}, l))),
      );
      out.dataset.state = "error";
    });
  });
}
