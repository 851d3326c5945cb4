/** Vesting view: cumulative unlocked supply per category and in total, the tranches, the audit verdict. */
import uPlot from "uplot";
import { formatUnits } from "ethers";

import { OPGToken__factory, VestingVault__factory } from "../../types/ethers-contracts/index.js";
import { auditVault } from "../../offchain/vesting/audit.js";
import { buildCalendar } from "../../offchain/vesting/calendar.js";
import type { CalendarEntry } from "../../offchain/vesting/calendar.js";
import { readVault } from "../../offchain/vesting/chain.js";
import { vestedAt } from "../../offchain/vesting/math.js";
import { formatOpg, parsePlan } from "../../offchain/vesting/plan.js";

import type { ChainContext } from "./chain.js";
import { code, el, fill, isoTime, table, verdict } from "./dom.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function opg(wei: bigint): number {
  return Number(formatUnits(wei, 18));
}

export async function renderVesting(ctx: ChainContext): Promise<void> {
  const plan = parsePlan(ctx.view.plan, ctx.view.record.vesting?.planFile ?? "the published plan");
  const vault = VestingVault__factory.connect(ctx.address("VestingVault"), ctx.provider);
  const token = OPGToken__factory.connect(ctx.address("OPGToken"), ctx.provider);
  const [state, audit] = await Promise.all([readVault(vault), auditVault(vault, token, plan)]);
  const names = new Map(plan.schedules.map((s) => [s.id, s.name]));
  const schedules = state.schedules;

  // The calendar over the whole plan, month by month, with every cliff and tranche.
  const from =
    schedules.reduce((m, s) => (s.start < m ? s.start : m), schedules[0]?.start ?? 0n) - 1n;
  const to = schedules.reduce((m, s) => (s.terms.end > m ? s.terms.end : m), 0n);
  const rows = buildCalendar(schedules, { from, to, period: "month", names });
  const jumps = rows
    .flatMap((r) => r.entries)
    .filter((e) => e.kind === "tranche" || e.kind === "cliff");

  // Chart points: every calendar date, and the second before each jump so steps read as steps.
  const times = [
    ...new Set([from, ...rows.map((r) => r.at), ...jumps.map((e) => e.at - 1n), ctx.now]),
  ]
    .filter((t) => t >= from && t <= to)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const categories = [...new Set(schedules.map((s) => s.category))];
  const perCategory = categories.map((c) =>
    times.map((t) =>
      opg(
        schedules
          .filter((s) => s.category === c)
          .reduce((sum, s) => sum + vestedAt(s.terms, t), 0n),
      ),
    ),
  );
  const total = times.map((t) => opg(schedules.reduce((sum, s) => sum + vestedAt(s.terms, t), 0n)));
  const jumpTimes = new Set(jumps.map((e) => e.at));
  const markers = times.map((t, i) => (jumpTimes.has(t) ? total[i]! : null));

  const chartBox = el("figure", { class: "chart", "aria-labelledby": "vesting-chart-caption" });
  const caption = el(
    "figcaption",
    { id: "vesting-chart-caption" },
    `Cumulative unlocked ${plan.symbol} over time, per category and in total; dots mark the ${jumps.length} cliff and tranche unlocks (listed in the table below). Chain time now: ${isoTime(ctx.now)}.`,
  );
  const nextUnlocks = rows.filter((r) => r.at > ctx.now).slice(0, 5);
  const nowTotal = schedules.reduce((sum, s) => sum + vestedAt(s.terms, ctx.now), 0n);

  fill(
    "vesting",
    verdict(
      audit.ok,
      audit.ok
        ? `Audit: the chain matches the published plan. Plan hash on chain ${audit.planHash.chain} = hash of the published file; vault sealed; ${audit.schedules} schedules checked field by field.`
        : `Audit: ${audit.differences.length} difference(s) between the chain and the published plan.`,
    ),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Plan hash on chain"),
      el("dd", { "data-testid": "plan-hash-chain" }, code(audit.planHash.chain)),
      el("dt", {}, "Plan hash of the published file"),
      el("dd", { "data-testid": "plan-hash-file" }, code(audit.planHash.file)),
      el("dt", {}, "Vault"),
      el("dd", {}, code(state.address), state.sealed ? " (sealed)" : " (NOT sealed)"),
      el("dt", {}, "Unlocked now"),
      el("dd", {}, `${formatOpg(nowTotal, 2)} ${plan.symbol} of ${formatOpg(plan.totalSupply)}`),
    ),
    audit.differences.length > 0 &&
      el("ul", { class: "fail" }, ...audit.differences.map((d) => el("li", {}, d))),
    audit.notes.length > 0 &&
      el("ul", { class: "notes" }, ...audit.notes.map((d) => el("li", {}, d))),
    chartBox,
    table(
      "Next unlocks",
      ["Date (UTC)", "Unlocks", `Amount (${plan.symbol})`, "Total unlocked after"],
      nextUnlocks.map((r) => [
        r.date,
        r.entries.map((e) => `${e.name} (${e.kind})`).join(", "),
        formatOpg(r.amount, 2),
        formatOpg(r.totalVested, 2),
      ]),
      { "data-testid": "next-unlocks" },
    ),
    table(
      "Cliff and tranche unlocks",
      ["Date (UTC)", "Schedule", "Category", "Kind", `Amount (${plan.symbol})`],
      jumps.map((e: CalendarEntry) => [e.date, e.name, e.category, e.kind, formatOpg(e.amount, 2)]),
      { "data-testid": "tranches" },
    ),
  );
  chartBox.append(caption);

  const width = Math.max(480, Math.min(1100, chartBox.clientWidth || 900));
  const options: uPlot.Options = {
    width,
    height: 360,
    scales: { x: { time: true } },
    axes: [{}, { size: 80, values: (_u, ticks) => ticks.map((v) => `${(v / 1e6).toFixed(1)}M`) }],
    series: [
      { label: "Date" },
      ...categories.map((c, i) => ({ label: c, stroke: PALETTE[i % PALETTE.length]!, width: 2 })),
      { label: "total", stroke: "#222", width: 3 },
      {
        label: "unlock events",
        stroke: "#ff7f0e",
        width: 0,
        points: { show: true, size: 9, fill: "#ff7f0e" },
      },
    ],
  };
  const data: uPlot.AlignedData = [times.map((t) => Number(t)), ...perCategory, total, markers];
  const plot = new uPlot(options, data, chartBox);
  plot.root.setAttribute("aria-hidden", "true"); // the tables above carry the same figures as text
  chartBox.append(caption);
}
