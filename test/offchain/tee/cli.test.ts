import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";

import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { AWS_ROOT_PATH, NITRO_DOC_PATH, NITRO_PCRS, REPO } from "./helpers.js";

function opg(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["bin/opg.mjs", ...args], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const AT = "2026-02-12T18:00:00Z";

describe("opg CLI", function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "opg-cli-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  describe("tee verify", () => {
    it("exits 0 and prints module, time, PCRs, public key, user data and the verdict for the real document", () => {
      const r = opg(
        "tee",
        "verify",
        NITRO_DOC_PATH,
        "--at",
        AT,
        "--nonce",
        "0123456789abcdef0123456789abcdef01234567",
      );
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.contain("moduleId   i-0340e0cb833504eb6-enc019c12d31f78864d");
      expect(r.stdout).to.contain("timestamp  2026-02-12T17:56:02.724Z");
      expect(r.stdout).to.contain(`pcr0       ${NITRO_PCRS[0]}`);
      expect(r.stdout).to.contain("publicKey  64756d6d79");
      expect(r.stdout).to.contain("userData   1220b735");
      expect(r.stdout).to.contain("verdict    VALID");
    });

    it("prints JSON with --json", () => {
      const r = opg("tee", "verify", NITRO_DOC_PATH, "--at", AT, "--root", AWS_ROOT_PATH, "--json");
      expect(r.status).to.equal(0);
      const json = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(json).to.deep.include({
        ok: true,
        pcr1: NITRO_PCRS[1],
        moduleId: "i-0340e0cb833504eb6-enc019c12d31f78864d",
      });
      expect(json.chain).to.have.length(5);
    });

    it("exits 1 naming the check when the clock is outside the leaf's validity", () => {
      const r = opg("tee", "verify", NITRO_DOC_PATH, "--at", "2026-02-12T21:00:00Z", "--json");
      expect(r.status).to.equal(1);
      expect(JSON.parse(r.stdout)).to.deep.include({ ok: false, check: "validity" });
    });

    it("exits 1 for a wrong nonce, an unapproved PCR and another root", () => {
      const wrongNonce = opg("tee", "verify", NITRO_DOC_PATH, "--at", AT, "--nonce", "00");
      expect(wrongNonce.status).to.equal(1);
      expect(wrongNonce.stdout).to.contain('verdict    INVALID: attestation check "nonce" failed');
      const policy = join(tmp, "pcrs.json");
      writeFileSync(policy, JSON.stringify([{ 0: "00".repeat(48) }]));
      expect(opg("tee", "verify", NITRO_DOC_PATH, "--at", AT, "--pcrs", policy).stdout).to.contain(
        'check "pcrs" failed',
      );
      const devRoot = join(tmp, "dev-root.pem");
      writeFileSync(devRoot, new DevAttestor().rootPem);
      const r = opg("tee", "verify", NITRO_DOC_PATH, "--at", AT, "--root", devRoot, "--json");
      expect(r.status).to.equal(1);
      expect(JSON.parse(r.stdout)).to.deep.include({ check: "root" });
    });

    it("exits 1 for an altered document", () => {
      const altered = join(tmp, "altered.hex");
      const doc = Buffer.from(readFileSync(NITRO_DOC_PATH, "utf8").trim(), "base64");
      doc[doc.length - 1] = (doc[doc.length - 1] as number) ^ 1;
      writeFileSync(altered, doc.toString("hex"));
      const r = opg("tee", "verify", altered, "--at", AT, "--json");
      expect(r.status).to.equal(1);
      expect(JSON.parse(r.stdout)).to.deep.include({ check: "signature" });
    });

    it("verifies a development document against the development root", () => {
      const dev = new DevAttestor();
      const docPath = join(tmp, "dev.cbor");
      const rootPath = join(tmp, "dev-root-2.pem");
      writeFileSync(docPath, dev.attest({ nonce: Buffer.from("abcdef0123456789", "hex") }));
      writeFileSync(rootPath, dev.rootPem);
      expect(
        opg("tee", "verify", docPath, "--root", rootPath, "--nonce", "abcdef0123456789").status,
      ).to.equal(0);
    });

    it("exits 1 for a debug-mode document (PCRs all zero) unless --allow-debug is given", () => {
      const dev = new DevAttestor({ debug: true });
      const docPath = join(tmp, "debug.cbor");
      const rootPath = join(tmp, "debug-root.pem");
      writeFileSync(docPath, dev.attest());
      writeFileSync(rootPath, dev.rootPem);
      const refused = opg("tee", "verify", docPath, "--root", rootPath);
      expect(refused.status, refused.stderr).to.equal(1);
      expect(refused.stdout).to.contain(
        'verdict    INVALID: attestation check "debug" failed: debug-mode enclave: PCRs are all zero; its memory can be read by the host',
      );
      const allowed = opg("tee", "verify", docPath, "--root", rootPath, "--allow-debug");
      expect(allowed.status, allowed.stderr).to.equal(0);
      expect(allowed.stdout).to.contain("debug      yes: PCRs are all zero");
      expect(allowed.stdout).to.contain("verdict    VALID");
    });

    it("exits 2 for a missing file, a bad --at and a bad --nonce", () => {
      const missing = opg("tee", "verify", join(tmp, "none.b64"));
      expect(missing.status).to.equal(2);
      expect(missing.stderr).to.contain("cannot read attestation document");
      expect(opg("tee", "verify", NITRO_DOC_PATH, "--at", "yesterday").stderr).to.contain(
        "--at is not an ISO time",
      );
      expect(opg("tee", "verify", NITRO_DOC_PATH, "--nonce", "xyz").status).to.equal(2);
      expect(opg("tee", "verify").status).to.equal(2);
    });
  });

  describe("enclave start", () => {
    it("serves the API until SIGTERM, then exits 0", async () => {
      const child = spawn(
        process.execPath,
        [
          "bin/opg.mjs",
          "enclave",
          "start",
          "--port",
          "0",
          "--models",
          "models",
          "--chain-id",
          "31337",
          "--ledger",
          "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        ],
        { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
      );
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out.split("\n")[0] as string);
        });
        child.on("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      const started = JSON.parse(line) as {
        event: string;
        url: string;
        enclave: string;
        models: string[];
      };
      expect(started.event).to.equal("listening");
      expect(started.models).to.have.length(2);
      const info = (await (await fetch(`${started.url}/info`)).json()) as { enclave: string };
      expect(info.enclave).to.equal(started.enclave);
      const code = await new Promise<number | null>((resolve) => {
        child.on("exit", (c) => resolve(c));
        child.kill("SIGTERM");
      });
      expect(code).to.equal(0);
    });

    it("exits 2 for a bad --ledger and for a models folder without models", () => {
      const bad = opg(
        "enclave",
        "start",
        "--port",
        "0",
        "--models",
        "models",
        "--chain-id",
        "1",
        "--ledger",
        "0x12",
      );
      expect(bad.status).to.equal(2);
      expect(bad.stderr).to.contain("--ledger must be an address");
      const empty = opg(
        "enclave",
        "start",
        "--port",
        "0",
        "--models",
        tmp,
        "--chain-id",
        "1",
        "--ledger",
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
      );
      expect(empty.status).to.equal(2);
      expect(empty.stderr).to.contain("no models");
    });
  });
});
