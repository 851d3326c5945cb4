/**
 * The small part of CBOR (RFC 8949) that Nitro attestation documents use, written out by hand so
 * the bytes are exactly what we mean: unsigned/negative integers, byte and text strings, arrays,
 * maps (kept as `Map`, integer keys stay numbers), tags, null, booleans. The encoder writes
 * definite lengths only; the decoder also reads indefinite-length arrays and maps (the Nitro
 * hypervisor writes its payload map that way), but not indefinite-length strings.
 */
export type CborValue =
  | number
  | bigint
  | Uint8Array
  | string
  | boolean
  | null
  | undefined
  | CborValue[]
  | Map<CborValue, CborValue>
  | CborTagged;

export class CborTagged {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

export class CborError extends Error {
  override name = "CborError";
}

// ---------------------------------------------------------------- encoding

function head(major: number, n: number | bigint): Buffer {
  const v = BigInt(n);
  if (v < 0n) throw new CborError("negative length or argument");
  const m = major << 5;
  if (v < 24n) return Buffer.from([m | Number(v)]);
  if (v < 0x100n) return Buffer.from([m | 24, Number(v)]);
  if (v < 0x10000n) {
    const b = Buffer.alloc(3);
    b[0] = m | 25;
    b.writeUInt16BE(Number(v), 1);
    return b;
  }
  if (v < 0x100000000n) {
    const b = Buffer.alloc(5);
    b[0] = m | 26;
    b.writeUInt32BE(Number(v), 1);
    return b;
  }
  if (v < 2n ** 64n) {
    const b = Buffer.alloc(9);
    b[0] = m | 27;
    b.writeBigUInt64BE(v, 1);
    return b;
  }
  throw new CborError("integer does not fit in 64 bits");
}

/** Encodes a value; maps keep their insertion order (callers order keys as they need). */
export function encodeCbor(value: CborValue): Buffer {
  if (value === null) return Buffer.from([0xf6]);
  if (value === undefined) return Buffer.from([0xf7]);
  if (value === false) return Buffer.from([0xf4]);
  if (value === true) return Buffer.from([0xf5]);
  if (typeof value === "number" || typeof value === "bigint") {
    if (typeof value === "number" && !Number.isSafeInteger(value))
      throw new CborError(`not an integer: ${value}`);
    const v = BigInt(value);
    return v >= 0n ? head(0, v) : head(1, -1n - v);
  }
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(encodeCbor)]);
  if (value instanceof Map) {
    const parts = [head(5, value.size)];
    for (const [k, v] of value) parts.push(encodeCbor(k), encodeCbor(v));
    return Buffer.concat(parts);
  }
  return Buffer.concat([head(6, value.tag), encodeCbor(value.value)]);
}

// ---------------------------------------------------------------- decoding

const MAX_DEPTH = 16;

/** Decodes exactly one item that must span all of `bytes`. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [value, end] = decodeAt(buf, 0, 0);
  if (end !== buf.length)
    throw new CborError(`${buf.length - end} trailing bytes after the CBOR item`);
  return value;
}

function need(buf: Buffer, pos: number, n: number): void {
  if (pos + n > buf.length) throw new CborError(`truncated at byte ${pos}: need ${n} more`);
}

function readArg(buf: Buffer, pos: number, info: number): [bigint, number] {
  if (info < 24) return [BigInt(info), pos];
  if (info === 24) {
    need(buf, pos, 1);
    return [BigInt(buf.readUInt8(pos)), pos + 1];
  }
  if (info === 25) {
    need(buf, pos, 2);
    return [BigInt(buf.readUInt16BE(pos)), pos + 2];
  }
  if (info === 26) {
    need(buf, pos, 4);
    return [BigInt(buf.readUInt32BE(pos)), pos + 4];
  }
  if (info === 27) {
    need(buf, pos, 8);
    return [buf.readBigUInt64BE(pos), pos + 8];
  }
  throw new CborError(`unsupported additional info ${info} (indefinite lengths are not accepted)`);
}

function toLength(n: bigint, buf: Buffer, pos: number): number {
  if (n > BigInt(buf.length - pos))
    throw new CborError(`length ${n} at byte ${pos} runs past the end`);
  return Number(n);
}

function intValue(n: bigint): number | bigint {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(n)
    : n;
}

function decodeAt(buf: Buffer, pos: number, depth: number): [CborValue, number] {
  if (depth > MAX_DEPTH) throw new CborError("nesting too deep");
  need(buf, pos, 1);
  const initial = buf.readUInt8(pos);
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (major === 7) {
    if (info === 20) return [false, pos + 1];
    if (info === 21) return [true, pos + 1];
    if (info === 22) return [null, pos + 1];
    if (info === 23) return [undefined, pos + 1];
    throw new CborError(`unsupported simple/float value 0x${initial.toString(16)} at byte ${pos}`);
  }
  if (info === 31 && (major === 4 || major === 5))
    return decodeIndefinite(buf, pos + 1, major, depth);
  const [arg, p] = readArg(buf, pos + 1, info);
  switch (major) {
    case 0:
      return [intValue(arg), p];
    case 1:
      return [intValue(-1n - arg), p];
    case 2: {
      const len = toLength(arg, buf, p);
      return [new Uint8Array(buf.subarray(p, p + len)), p + len];
    }
    case 3: {
      const len = toLength(arg, buf, p);
      const bytes = buf.subarray(p, p + len);
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      return [text, p + len];
    }
    case 4: {
      const len = toLength(arg, buf, p);
      const items: CborValue[] = [];
      let q = p;
      for (let i = 0; i < len; i++) {
        const [v, next] = decodeAt(buf, q, depth + 1);
        items.push(v);
        q = next;
      }
      return [items, q];
    }
    case 5: {
      const len = toLength(arg, buf, p);
      const map = new Map<CborValue, CborValue>();
      let q = p;
      for (let i = 0; i < len; i++) q = decodeEntry(buf, q, depth, map);
      return [map, q];
    }
    default: {
      const [v, q] = decodeAt(buf, p, depth + 1);
      return [new CborTagged(Number(arg), v), q];
    }
  }
}

function decodeEntry(
  buf: Buffer,
  pos: number,
  depth: number,
  map: Map<CborValue, CborValue>,
): number {
  const [k, afterKey] = decodeAt(buf, pos, depth + 1);
  if (typeof k !== "string" && typeof k !== "number")
    throw new CborError(`map key at byte ${pos} is not a text string or integer`);
  if (map.has(k)) throw new CborError(`duplicate map key ${String(k)}`);
  const [v, afterValue] = decodeAt(buf, afterKey, depth + 1);
  map.set(k, v);
  return afterValue;
}

/** An indefinite-length array or map: items until the 0xff break byte. */
function decodeIndefinite(
  buf: Buffer,
  pos: number,
  major: 4 | 5,
  depth: number,
): [CborValue, number] {
  const items: CborValue[] = [];
  const map = new Map<CborValue, CborValue>();
  let q = pos;
  for (;;) {
    need(buf, q, 1);
    if (buf[q] === 0xff) return [major === 4 ? items : map, q + 1];
    if (major === 5) q = decodeEntry(buf, q, depth, map);
    else {
      const [v, next] = decodeAt(buf, q, depth + 1);
      items.push(v);
      q = next;
    }
  }
}
