import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { readDocumentText } from "../../../offchain/tee/attestation.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const NITRO_DIR = join(REPO, "test/fixtures/nitro");
export const NITRO_DOC_PATH = join(NITRO_DIR, "attestation_doc.b64");
export const AWS_ROOT_PATH = join(NITRO_DIR, "aws_nitro_root_g1.pem");

/** The real AWS Nitro document (decoded) and the AWS root PEM. */
export const nitroDoc = (): Buffer => Buffer.from(readDocumentText(readFileSync(NITRO_DOC_PATH)));
export const awsRoot = (): string => readFileSync(AWS_ROOT_PATH, "utf8");

/** Inside the leaf certificate's validity (17:55:59Z .. 20:56:02Z), 4 minutes after the timestamp. */
export const INSIDE = new Date("2026-02-12T18:00:00Z");
export const NITRO_NONCE = Buffer.from("0123456789abcdef0123456789abcdef01234567", "hex");
export const NITRO_PCRS = {
  0: "9baef83909784e4d2cb84466c02931bb8125e948b62029029e80bfa1698bfd7069408e4ab20d1c99c859e8f774cce0ff",
  1: "4b4d5b3661b3efc12920900c80e126e4ce783c522de6c02a2a5bf7af3a2b9327b86776f188e4be1c1c404a129dbda493",
  2: "769925c8ae0c5c2d1aa86de149213b1c5dec642557bf0c426c6581f0e562a042d1c7d2578443515d103f74ce55337666",
};

/** Runs fn and returns the `check` of the AttestationError it throws (fails the test otherwise). */
export function failingCheck(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    const check = (error as { check?: unknown }).check;
    if (typeof check === "string") return check;
    throw error;
  }
  throw new Error("expected an AttestationError, but verification passed");
}
