/** Tiny DOM helpers: every text goes in through textContent (nothing read from the chain is HTML). */
type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** An accessible table: caption, column headers with scope, the first cell of a row as its header. */
export function table(
  caption: string,
  head: string[],
  rows: Array<Array<string | Node>>,
  attrs: Record<string, string> = {},
): HTMLTableElement {
  return el(
    "table",
    attrs,
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      {},
      ...rows.map((cells) =>
        el(
          "tr",
          {},
          ...cells.map((c, i) => (i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c))),
        ),
      ),
    ),
  );
}

/** Replaces a section's content and marks it loaded. */
export function fill(sectionId: string, ...children: Child[]): void {
  const section = document.getElementById(sectionId)!;
  const content = section.querySelector(".content")!;
  content.replaceChildren();
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    content.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  section.setAttribute("aria-busy", "false");
  section.dataset.loaded = "true";
}

export function failed(sectionId: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  fill(
    sectionId,
    el("p", { class: "fail", role: "alert" }, `Could not read this view: ${message}`),
  );
}

export function short(hex: string): string {
  return hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex;
}

/** A hash or address: shortened on screen, whole in the title and for screen readers. */
export function code(hex: string): HTMLElement {
  return el("code", { title: hex, "aria-label": hex }, short(hex));
}

export function isoTime(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

export function verdict(ok: boolean, text: string): HTMLElement {
  return el(
    "p",
    { class: ok ? "verdict pass" : "verdict fail", role: "status" },
    ok ? "✔ " : "✘ ",
    text,
  );
}

/** "1 batch", "2 batches". */
export function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
