/**
 * A minimal DER (X.690) writer and an X.509 v3 certificate builder for EC P-384 keys signed with
 * ecdsa-with-SHA384: enough for the development enclave's root CA and leaf certificates, which
 * node:crypto can then parse and verify with X509Certificate. Keys never leave memory.
 */
import { sign, type KeyObject } from "node:crypto";

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

export const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
export const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);
export const explicit = (n: number, ...c: Buffer[]): Buffer => tlv(0xa0 | n, ...c);

/** A non-negative INTEGER from big-endian bytes (leading zeros trimmed, 0x00 added for a set top bit). */
export function uint(bytes: Uint8Array): Buffer {
  let b = Buffer.from(bytes);
  while (b.length > 1 && b[0] === 0) b = b.subarray(1);
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out = [40 * a + b];
  for (const p of rest) {
    const chunk = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128))
      chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, "utf8"));
export const octets = (b: Uint8Array): Buffer => tlv(0x04, Buffer.from(b));
export const bits = (b: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), Buffer.from(b));
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));

/** UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5). */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "");
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, "ascii"));
  return tlv(0x18, Buffer.from(`${digits}Z`, "ascii"));
}

const OID_ECDSA_SHA384 = "1.2.840.10045.4.3.3";
const OID_CN = "2.5.4.3";
const OID_O = "2.5.4.10";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_KEY_USAGE = "2.5.29.15";

function name(commonName: string, organisation: string): Buffer {
  return seq(set(seq(oid(OID_O), utf8(organisation))), set(seq(oid(OID_CN), utf8(commonName))));
}

export interface CertificateRequest {
  serial: Uint8Array;
  subject: string;
  issuer: string;
  organisation: string;
  notBefore: Date;
  notAfter: Date;
  /** The certified key (its SPKI goes into the certificate). */
  publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed root). */
  signingKey: KeyObject;
  ca: boolean;
}

/** Builds and signs an X.509 v3 certificate; returns its DER bytes. */
export function buildCertificate(req: CertificateRequest): Buffer {
  const algorithm = seq(oid(OID_ECDSA_SHA384));
  // keyUsage bits: CA -> keyCertSign | cRLSign (bits 5, 6); leaf -> digitalSignature (bit 0).
  const keyUsage = req.ca ? Buffer.from([0x01, 0x06]) : Buffer.from([0x07, 0x80]);
  const extensions = explicit(
    3,
    seq(
      seq(oid(OID_BASIC_CONSTRAINTS), bool(true), octets(seq(...(req.ca ? [bool(true)] : [])))),
      seq(oid(OID_KEY_USAGE), bool(true), octets(tlv(0x03, keyUsage))),
    ),
  );
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(req.serial),
    algorithm,
    name(req.issuer, req.organisation),
    seq(time(req.notBefore), time(req.notAfter)),
    name(req.subject, req.organisation),
    req.publicKey.export({ type: "spki", format: "der" }),
    extensions,
  );
  const signature = sign("sha384", tbs, { key: req.signingKey, dsaEncoding: "der" });
  return seq(tbs, algorithm, bits(signature));
}
