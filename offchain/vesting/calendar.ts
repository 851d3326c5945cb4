/**
 * The unlock calendar, computed from the schedules read from the chain: every cliff and tranche unlock,
 * linear vesting summed per period (month or week), and the total vested after each date.
 */
import type { OnChainSchedule } from "./chain.js";
import { vestedAt } from "./math.js";
import { formatOpg, formatTime } from "./plan.js";

export type Period = "month" | "week" | "day";

export interface CalendarEntry {
  at: bigint;
  date: string;
  scheduleId: number;
  name: string;
  category: string;
  kind: "cliff" | "tranche" | "linear" | "end";
  amount: bigint;
}

export interface CalendarRow {
  date: string;
  at: bigint;
  entries: CalendarEntry[];
  amount: bigint;
  /** Vested by all schedules at this date. */
  totalVested: bigint;
}

export interface CalendarOptions {
  from: bigint;
  to: bigint;
  period: Period;
  /** Display names by schedule id (from the published plan), else "#id". */
  names?: Map<number, string>;
}

/** Boundaries of calendar periods in (from, to]: first second of each month, week (Monday) or day (UTC). */
export function periodBoundaries(from: bigint, to: bigint, period: Period): bigint[] {
  const out: bigint[] = [];
  const d = new Date(Number(from) * 1000);
  d.setUTCHours(0, 0, 0, 0);
  if (period === "month") d.setUTCDate(1);
  if (period === "week") d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  for (;;) {
    if (period === "month") d.setUTCMonth(d.getUTCMonth() + 1);
    else d.setUTCDate(d.getUTCDate() + (period === "week" ? 7 : 1));
    const t = BigInt(d.getTime() / 1000);
    if (t > to) break;
    if (t > from) out.push(t);
  }
  return out;
}

export function buildCalendar(
  schedules: OnChainSchedule[],
  options: CalendarOptions,
): CalendarRow[] {
  const { from, to } = options;
  const entries: CalendarEntry[] = [];
  const boundaries = periodBoundaries(from, to, options.period);
  for (const s of schedules) {
    const name = options.names?.get(s.id) ?? `#${s.id}`;
    const push = (at: bigint, kind: CalendarEntry["kind"], amount: bigint) => {
      if (amount > 0n && at > from && at <= to) {
        entries.push({
          at,
          date: formatTime(at),
          scheduleId: s.id,
          name,
          category: s.category,
          kind,
          amount,
        });
      }
    };
    const v = (t: bigint) => vestedAt(s.terms, t);
    if (s.kind === "tranches") {
      let cumulative = 0n;
      for (const tr of s.tranches) {
        const after = v(tr.timestamp);
        push(tr.timestamp, "tranche", after - cumulative);
        cumulative = after;
      }
      continue;
    }
    // Linear: the jump at the cliff, what accrues in each period, and the rest at the end.
    const points = [...new Set([s.cliff, ...boundaries, s.end])]
      .filter((t) => t > from && t <= to && t >= s.cliff && t <= s.end)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let previous = v(from);
    for (const at of points) {
      const now = v(at);
      push(at, at === s.cliff ? "cliff" : at === s.end ? "end" : "linear", now - previous);
      previous = now;
    }
  }
  entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.scheduleId - b.scheduleId));

  const rows: CalendarRow[] = [];
  for (const e of entries) {
    let row = rows[rows.length - 1];
    if (row === undefined || row.at !== e.at) {
      row = { date: e.date, at: e.at, entries: [], amount: 0n, totalVested: 0n };
      rows.push(row);
    }
    row.entries.push(e);
    row.amount += e.amount;
  }
  for (const row of rows)
    row.totalVested = schedules.reduce((sum, s) => sum + vestedAt(s.terms, row.at), 0n);
  return rows;
}

export function calendarCsv(rows: CalendarRow[]): string {
  const lines = ["date,schedule_id,name,category,kind,amount_opg,total_vested_opg"];
  for (const row of rows) {
    for (const e of row.entries) {
      lines.push(
        [
          row.date,
          e.scheduleId,
          e.name,
          e.category,
          e.kind,
          plain(e.amount),
          plain(row.totalVested),
        ].join(","),
      );
    }
  }
  return lines.join("\n") + "\n";
}

export function calendarJson(rows: CalendarRow[]): unknown {
  return rows.map((row) => ({
    date: row.date,
    amount: plain(row.amount),
    totalVested: plain(row.totalVested),
    unlocks: row.entries.map((e) => ({
      scheduleId: e.scheduleId,
      name: e.name,
      category: e.category,
      kind: e.kind,
      amount: plain(e.amount),
    })),
  }));
}

/** Terminal table: one line per unlock, the date's total on its first line (amounts to 2 decimals, truncated). */
export function calendarTable(rows: CalendarRow[]): string[][] {
  const out: string[][] = [];
  for (const row of rows) {
    row.entries.forEach((e, i) => {
      out.push([
        i === 0 ? row.date.slice(0, 10) : "",
        `#${e.scheduleId} ${e.name}`,
        e.category,
        e.kind,
        formatOpg(e.amount, 2),
        i === 0 ? formatOpg(row.totalVested, 2) : "",
      ]);
    });
  }
  return out;
}

/** Whole OPG with up to 18 decimals and no separators (for CSV and JSON). */
function plain(wei: bigint): string {
  return formatOpg(wei).replaceAll(",", "");
}
