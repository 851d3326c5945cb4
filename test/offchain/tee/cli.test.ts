import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";

import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { deploySystem, startOpg, type System } from "../../e2e/relayer-system.js";
import { startHardhatNode, type HardhatNode } from "../../helpers/processes.js";
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
    const LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const NODE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const start = (...flags: string[]) =>
      opg("enclave", "start", "--port", "0", "--models", "models", ...flags);

    describe("against a deployment on a hardhat node", () => {
      let node: HardhatNode;
      let system: System;
      before(async () => {
        node = await startHardhatNode();
        system = await deploySystem(node.url);
      });
      after(async () => {
        await system?.close();
        await node?.stop();
      });

      it("serves the API for its node, bound to the chain and ledger, until SIGTERM, then exits 0", async () => {
        const proc = await startOpg([
          "enclave",
          "start",
          "--port",
          "0",
          "--models",
          "models",
          "--chain-id",
          "31337",
          "--ledger",
          await system.ledger.getAddress(),
          "--node",
          system.gpuNode,
          "--rpc",
          node.url,
          "--receipt-window",
          "30",
        ]);
        const started = proc.line as {
          event: string;
          url: string;
          enclave: string;
          clientNode: string;
          models: string[];
          maxBodyBytes: number;
        };
        expect(started.event).to.equal("listening");
        expect(started.clientNode).to.equal(system.gpuNode);
        expect(started.models).to.have.length(2);
        // No --max-body: what the largest shipped model's receipt needs, at least 4 MiB.
        expect(started.maxBodyBytes).to.equal(4 * 1024 * 1024);
        const info = (await (await fetch(`${started.url}/info`)).json()) as Record<string, unknown>;
        expect(info).to.deep.include({
          enclave: started.enclave,
          clientNode: system.gpuNode,
          ledger: await system.ledger.getAddress(),
          sampleRatePpm: Number(await system.ledger.sampleRate()),
          receiptWindowSeconds: 30,
        });
        // Only its node may use the client's routes.
        const res = await fetch(`${started.url}/v1/batches`, { method: "POST", body: "{}" });
        expect(res.status).to.equal(401);
        // The operator's own commands fetch what registration and the relayer need: a fresh
        // document (raw CBOR) and the development root, and opg tee verify accepts them.
        const doc = join(tmp, "enclave-doc.cbor");
        const pem = join(tmp, "enclave-root.pem");
        const fetched = opg("enclave", "attestation", "--url", started.url, "--out", doc);
        expect(fetched.status, fetched.stderr).to.equal(0);
        expect(JSON.parse(fetched.stdout)).to.deep.include({
          enclave: started.enclave,
          measurement: info.measurement,
          file: doc,
        });
        expect(opg("enclave", "dev-root", "--url", started.url, "--out", pem).status).to.equal(0);
        const verified = opg("tee", "verify", doc, "--root", pem);
        expect(verified.status, verified.stdout + verified.stderr).to.equal(0);
        const bad = opg(
          "enclave",
          "attestation",
          "--url",
          started.url,
          "--out",
          doc,
          "--nonce",
          "xyz",
        );
        expect(bad.status).to.equal(2);
        expect(bad.stderr).to.contain("--nonce must be 1 to 64 hex bytes");
        const code = await new Promise<number | null>((resolve) => {
          proc.child.on("exit", (c) => resolve(c));
          proc.child.kill("SIGTERM");
        });
        expect(code).to.equal(0);
      });
    });

    it("exits 2 for a bad --ledger, --node, --rpc or --receipt-window, and for a models folder without models", () => {
      const base = ["--chain-id", "31337", "--rpc", "http://127.0.0.1:1"];
      const cases: Array<[string[], string]> = [
        [[...base, "--ledger", "0x12", "--node", NODE], "--ledger must be an address"],
        [[...base, "--ledger", LEDGER, "--node", "0x12"], "--node must be an address"],
        [
          ["--chain-id", "31337", "--rpc", "ws://x", "--ledger", LEDGER, "--node", NODE],
          "--rpc must be an http(s) JSON-RPC URL",
        ],
        [
          [...base, "--ledger", LEDGER, "--node", NODE, "--receipt-window", "5"],
          "--receipt-window must be an integer in 10..3600",
        ],
      ];
      for (const [flags, message] of cases) {
        const r = start(...flags);
        expect(r.status, r.stderr).to.equal(2);
        expect(r.stderr).to.contain(message);
      }
      const missing = start("--chain-id", "31337", "--ledger", LEDGER, "--rpc", "http://x:1");
      expect(missing.status).to.equal(2);
      expect(missing.stderr).to.contain("--node");
      const empty = opg(
        "enclave",
        "start",
        "--port",
        "0",
        "--models",
        tmp,
        ...base,
        "--ledger",
        LEDGER,
        "--node",
        NODE,
      );
      expect(empty.status).to.equal(2);
      expect(empty.stderr).to.contain("no models");
      const unreachable = opg(
        "enclave",
        "attestation",
        "--url",
        "http://127.0.0.1:1",
        "--out",
        join(tmp, "x"),
      );
      expect(unreachable.status).to.equal(2);
      expect(unreachable.stderr).to.contain("the enclave at http://127.0.0.1:1 is unreachable");
    });

    it("exits 2 for a clock that follows the chain on a chain that is not local", () => {
      const r = start(
        "--chain-id",
        "1",
        "--ledger",
        LEDGER,
        "--node",
        NODE,
        "--rpc",
        "http://127.0.0.1:1",
        "--clock",
        "chain",
      );
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.contain(
        "InputError: a clock that follows the chain is only allowed on local chains",
      );
    });

    it("exits 2 naming the ledger and the RPC when the chain cannot be read", () => {
      const r = start(
        "--chain-id",
        "31337",
        "--ledger",
        LEDGER,
        "--node",
        NODE,
        "--rpc",
        "http://127.0.0.1:1",
      );
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.contain(
        `InputError: cannot read InferenceLedger ${LEDGER} through the chain RPC at http://127.0.0.1:1`,
      );
      expect(r.stderr).to.not.match(/\bat .+:\d+:\d+/); // no stack frame
    });
  });
});
