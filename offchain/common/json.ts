/** JSON with bigints written as decimal strings (amounts never lose precision). */
export function stringifyJson(value: unknown, space = 2): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v),
    space,
  );
}
