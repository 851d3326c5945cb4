/**
 * A quorum attester's own check of a Nitro document (offchain/tee/attester.ts) and `opg attester sign`:
 * the real AWS document (clock pinned inside its leaf's validity) passes the root, PCR and freshness checks
 * and is refused on the key binding (it binds no enclave key); a refusal for each other failed check; a
 * development document that binds an enclave key is signed, and QuorumAttestationVerifier accepts M of
 * those signatures.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet, getAddress, getBytes, keccak256 } from "ethers";
import { network } from "hardhat";

import { signCommand } from "../../../offchain/cli/commands/attester.js";
import { encodeQuorumAttestation } from "../../../offchain/staking/attestation.js";
import { measurementFromPcrs } from "../../../offchain/staking/units.js";
import {
  AttesterRefusal,
  checkForAttestation,
  collectAttesterSignatures,
  signChecked,
  type AttesterCheckInput,
} from "../../../offchain/tee/attester.js";
import { createDevRoot, DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { bindingUserData } from "../../../offchain/tee/enclave.js";
import { hardhatKeystoreSet, keystorePathIn } from "../../helpers/keystore.js";
import { INSIDE, NITRO_DOC_PATH, NITRO_PCRS, awsRoot, nitroDoc } from "./helpers.js";

const NODE = getAddress("0x00000000000000000000000000000000000000aa");
const LEDGER = getAddress("0x00000000000000000000000000000000000000bb");
const GPU = getAddress("0x00000000000000000000000000000000000000cc");
const VERIFIER = getAddress("0x00000000000000000000000000000000000000dd");
const REAL_MEASUREMENT = measurementFromPcrs([NITRO_PCRS[0], NITRO_PCRS[1], NITRO_PCRS[2]]);

async function refusal(input: AttesterCheckInput): Promise<AttesterRefusal> {
  const error = await checkForAttestation(input).catch((e: unknown) => e);
  expect(error).to.be.instanceOf(AttesterRefusal);
  return error as AttesterRefusal;
}

describe("opg attester: checking a Nitro document before signing", function () {
  this.timeout(60_000);

  describe("the real AWS document", () => {
    const base = (): AttesterCheckInput => ({
      document: nitroDoc(),
      roots: [awsRoot()],
      node: NODE,
      chainId: 4242n,
      verifier: VERIFIER,
      isApproved: (m) => Promise.resolve(m === REAL_MEASUREMENT),
      maxAgeMs: 10 * 60_000,
      at: INSIDE,
    });

    it("passes the root, PCR and freshness checks and is refused on the key binding (it binds no enclave key)", async () => {
      const r = await refusal(base());
      expect(r.check).to.equal("key_binding");
      expect(r.message).to.contain("does not bind an enclave key");
    });

    it("is refused under another root", async () => {
      const r = await refusal({ ...base(), roots: [createDevRoot(INSIDE).certificate.toString()] });
      expect(r.check).to.equal("root");
    });

    it("is refused when its image is not approved on chain, or not in the PCR policy given", async () => {
      const chain = await refusal({ ...base(), isApproved: () => Promise.resolve(false) });
      expect(chain.check).to.equal("pcrs");
      expect(chain.message).to.contain(`measurement ${REAL_MEASUREMENT} is not approved`);
      const policy = await refusal({
        ...base(),
        approvedPcrs: [{ ...NITRO_PCRS, 2: "00".repeat(48) }],
      });
      expect(policy.check).to.equal("pcrs");
    });

    it("is refused when stale at the attester's clock", async () => {
      const r = await refusal({ ...base(), maxAgeMs: 60_000 });
      expect(r.check).to.equal("age");
      expect(r.message).to.match(/document is \d+ s old \(max 60 s\)/);
    });
  });

  describe("a development document that binds an enclave key", () => {
    // Whole seconds near the wall clock: the in-process chain below starts there.
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 120_000);
    const root = createDevRoot(now);
    const attestor = new DevAttestor({ root, now: () => now });
    const enclave = Wallet.createRandom();
    const m = attestor.measurement();
    const measurement = measurementFromPcrs([m[0]!, m[1]!, m[2]!]);
    const doc = (chainId = 4242n, key = enclave) =>
      attestor.attest({
        publicKey: getBytes(key.signingKey.publicKey),
        userData: bindingUserData(key.address, chainId, LEDGER, GPU),
      });
    const base = (document = doc()): AttesterCheckInput => ({
      document,
      roots: [root.certificate.toString()],
      node: NODE,
      chainId: 4242n,
      verifier: VERIFIER,
      ledger: LEDGER,
      enclaveKey: enclave.address,
      isApproved: (x) => Promise.resolve(x === measurement),
      maxAgeMs: 600_000,
      at: new Date(now.getTime() + 30_000),
    });

    it("yields the statement every attester signs: the document's hash and its own timestamp", async () => {
      const document = doc();
      const checked = await checkForAttestation(base(document));
      expect(checked.statement).to.deep.equal({
        node: NODE,
        enclaveKey: enclave.address,
        measurement,
        documentHash: keccak256(document),
        issuedAt: BigInt(Math.floor(now.getTime() / 1000)),
      });
      expect(checked.clientNode).to.equal(GPU);
    });

    it("is refused when it binds another key, another chain or another ledger", async () => {
      const other = Wallet.createRandom();
      expect((await refusal(base(doc(4242n, other)))).check).to.equal("key_binding");
      expect((await refusal(base(doc(1n)))).message).to.contain("binds chain 1, not 4242");
      expect((await refusal({ ...base(), ledger: VERIFIER })).message).to.contain(
        "another InferenceLedger",
      );
    });

    it("is refused when it comes from a debug-mode enclave (PCRs all zero)", async () => {
      const debug = new DevAttestor({ root, now: () => now, debug: true });
      const document = debug.attest({
        publicKey: getBytes(enclave.signingKey.publicKey),
        userData: bindingUserData(enclave.address, 4242n, LEDGER, GPU),
      });
      const r = await refusal({ ...base(document), isApproved: () => Promise.resolve(true) });
      expect(r.check).to.equal("pcrs");
      expect(r.message).to.contain("debug-mode enclave");
    });

    it("is refused when stale", async () => {
      const r = await refusal({ ...base(), at: new Date(now.getTime() + 601_000) });
      expect(r.check).to.equal("age");
    });

    it("is accepted by QuorumAttestationVerifier with 2 of 3 attesters' signatures", async () => {
      const { ethers, networkHelpers } = await network.create({ override: { chainId: 4242 } });
      const [admin] = await ethers.getSigners();
      const attesters = [Wallet.createRandom(), Wallet.createRandom(), Wallet.createRandom()];
      const q = await ethers.deployContract("QuorumAttestationVerifier", [
        admin!.address,
        attesters.map((a) => a.address),
        2n,
        3_600n,
      ]);
      // A minute after the document, unless the chain is past that already (in a long run the
      // fresh network starts at the wall clock, later than `now`; the document stays within age).
      const target = Math.floor(now.getTime() / 1000) + 60;
      if ((await networkHelpers.time.latest()) < target)
        await networkHelpers.time.increaseTo(target);
      const input = { ...base(), verifier: await q.getAddress() };
      const files = [];
      for (const a of attesters.slice(0, 2))
        files.push({
          name: a.address,
          json: await signChecked(a, await checkForAttestation(input)),
        });
      const {
        statement,
        domain,
        signatures,
        attesters: signers,
      } = collectAttesterSignatures(JSON.parse(JSON.stringify(files)) as typeof files);
      expect(signers).to.deep.equal(attesters.slice(0, 2).map((a) => a.address));
      const encoded = encodeQuorumAttestation(domain, statement, signatures);
      expect(
        await q.getFunction("verifyAttestation")(NODE, enclave.address, measurement, encoded),
      ).to.equal(statement.documentHash);
    });

    it("refuses to combine signatures over different statements", async () => {
      const a = Wallet.createRandom();
      const b = Wallet.createRandom();
      const one = await signChecked(a, await checkForAttestation(base()));
      const two = await signChecked(b, await checkForAttestation(base()));
      expect(() =>
        collectAttesterSignatures([
          { name: "a.json", json: one },
          { name: "b.json", json: two },
        ]),
      ).to.throw(/b\.json signs another statement than a\.json/);
    });
  });

  describe("opg attester sign", () => {
    it("takes the attester's key from the Hardhat keystore (--keystore FILE --key NAME)", async () => {
      const home = await mkdtemp(path.join(tmpdir(), "opg-attester-ks-"));
      const saved = process.env.OPG_KEYSTORE_PASSWORD;
      try {
        const key = Wallet.createRandom();
        await hardhatKeystoreSet(home, "attester-pw", "ATTESTER_A", key.privateKey);
        process.env.OPG_KEYSTORE_PASSWORD = "attester-pw";
        const now = new Date();
        const root = createDevRoot(now);
        const attestor = new DevAttestor({ root, now: () => now });
        const enclave = Wallet.createRandom();
        const files = {
          doc: path.join(home, "doc.cbor"),
          root: path.join(home, "root.pem"),
          pcrs: path.join(home, "pcrs.json"),
        };
        await writeFile(
          files.doc,
          attestor.attest({
            publicKey: getBytes(enclave.signingKey.publicKey),
            userData: bindingUserData(enclave.address, 4242n, LEDGER, GPU),
          }),
        );
        await writeFile(files.root, root.certificate.toString());
        await writeFile(files.pcrs, JSON.stringify(attestor.measurement()));
        const signed = await signCommand({
          attestation: files.doc,
          node: NODE,
          chainId: "4242",
          verifier: VERIFIER,
          root: files.root,
          pcrs: files.pcrs,
          maxAge: "600",
          key: "ATTESTER_A",
          keystore: keystorePathIn(home),
        });
        expect(signed.attester).to.equal(key.address);
        expect(signed.statement.enclaveKey).to.equal(enclave.address);
      } finally {
        if (saved === undefined) delete process.env.OPG_KEYSTORE_PASSWORD;
        else process.env.OPG_KEYSTORE_PASSWORD = saved;
        await rm(home, { recursive: true, force: true });
      }
    });

    let dir: string;
    before(async () => (dir = await mkdtemp(path.join(tmpdir(), "opg-attester-"))));
    after(async () => rm(dir, { recursive: true, force: true }));
    const opg = (args: string[], key: string) =>
      spawnSync(process.execPath, ["bin/opg.mjs", "attester", "sign", ...args], {
        encoding: "utf8",
        env: { ...process.env, OPG_ATTESTER_KEY: key },
      });

    it("refuses the real document (key binding, exit 1) and signs a bound one to --out (exit 0)", async () => {
      const key = Wallet.createRandom();
      const pcrs = path.join(dir, "pcrs.json");
      await writeFile(pcrs, JSON.stringify(NITRO_PCRS));
      const common = ["--node", NODE, "--chain-id", "4242", "--verifier", VERIFIER];
      const real = opg(
        [...common, "--attestation", NITRO_DOC_PATH, "--pcrs", pcrs, "--at", INSIDE.toISOString()],
        key.privateKey,
      );
      expect(real.status, real.stderr).to.equal(1);
      expect(real.stderr).to.contain("AttesterRefusal: refused to attest (key_binding)");

      const now = new Date();
      const root = createDevRoot(now);
      const attestor = new DevAttestor({ root, now: () => now });
      const enclave = Wallet.createRandom();
      const docFile = path.join(dir, "doc.cbor");
      await writeFile(
        docFile,
        attestor.attest({
          publicKey: getBytes(enclave.signingKey.publicKey),
          userData: bindingUserData(enclave.address, 4242n, LEDGER, GPU),
        }),
      );
      const rootFile = path.join(dir, "root.pem");
      await writeFile(rootFile, root.certificate.toString());
      const policy = path.join(dir, "dev-pcrs.json");
      await writeFile(policy, JSON.stringify(attestor.measurement()));
      const out = path.join(dir, "sig.json");
      const ok = opg(
        [
          ...common,
          ...["--attestation", docFile, "--root", rootFile, "--pcrs", policy, "--out", out],
        ],
        key.privateKey,
      );
      expect(ok.status, ok.stderr).to.equal(0);
      const signed = JSON.parse(ok.stdout) as {
        attester: string;
        statement: { enclaveKey: string };
      };
      expect(signed.attester).to.equal(key.address);
      expect(signed.statement.enclaveKey).to.equal(enclave.address);
    });
  });
});
