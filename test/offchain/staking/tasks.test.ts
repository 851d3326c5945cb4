import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

import { BaseError, InputError } from "../../../offchain/common/errors.js";
import { deployStakingAndTee } from "../../../offchain/staking/deploy.js";
import { runStakingDemo, stakingDemo } from "../../../offchain/staking/demo.js";
import type { NodeStatus } from "../../../offchain/staking/status.js";
import {
  nodeState,
  renderEnclaveTable,
  renderNodeTable,
} from "../../../offchain/staking/status.js";
import * as tasks from "../../../offchain/staking/tasks.js";
import { formatOpg } from "../../../offchain/staking/units.js";
import { EVIDENCE, OPG, SUPPLY, stakingFixtures } from "../../contracts/staking/fixtures.js";

const { ethers, networkHelpers } = await network.create();
const { deployed } = stakingFixtures(ethers);
const loadFixture = networkHelpers.loadFixture.bind(networkHelpers);
const time = networkHelpers.time;

async function withRecord() {
  const f = await deployed();
  const root = await mkdtemp(path.join(tmpdir(), "opg-tasks-"));
  await mkdir(path.join(root, "deployments", "hardhat"), { recursive: true });
  await writeFile(
    path.join(root, "deployments", "hardhat", "addresses.json"),
    JSON.stringify({ OPGToken: await f.token.getAddress(), ...f.addresses }),
  );
  return { ...f, env: { ethers, networkName: "hardhat", root } };
}

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<BaseError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "expected a BaseError").to.be.instanceOf(BaseError);
  expect((error as BaseError).message).to.match(message);
  return error as BaseError;
}

const ZERO = ethers.ZeroAddress;

describe("offchain/staking tasks", () => {
  describe("opg:stake:*", () => {
    it("registers, increases, unbonds, withdraws and shows the status table", async () => {
      const { env, operator, signer, node } = await loadFixture(withRecord);
      const from = operator.address;
      expect(
        await tasks.stakeRegister(env, {
          node,
          role: "gpu",
          signer: signer.address,
          amount: "20000",
          metadata: "https://gpu.example",
          from,
        }),
      ).to.match(
        new RegExp(`^registered node ${node} with 20000 OPG \\(tx 0x[0-9a-f]{64}, \\d+ gas\\)$`),
      );
      expect(await tasks.stakeIncrease(env, { node, amount: "500", from })).to.match(
        /active stake 20500 OPG/,
      );
      expect(await tasks.stakeUnbond(env, { node, amount: "500", from })).to.match(
        /^unbonding 500 OPG from .*withdrawable from \d{4}-/,
      );
      expect(await tasks.stakeUnbond(env, { node, amount: "12000", from })).to.contain(
        "warning: the node's active stake is now below",
      );
      let table = await tasks.stakeStatus(env, {});
      expect(table)
        .to.contain("INFERENCE")
        .and.contain("8000")
        .and.contain("12500")
        .and.contain("inactive (below minimum)");
      expect(table).to.contain("500 at ");
      await time.increase(7n * 86_400n);
      expect(await tasks.stakeWithdraw(env, { node, from })).to.match(/^withdrew 12500 OPG from /);
      table = await tasks.stakeStatus(env, { node });
      expect(table).to.contain(`${node.slice(0, 6)}…${node.slice(-4)}`);
    });

    it("names missing options, unknown accounts and unknown nodes", async () => {
      const { env, signer, node } = await loadFixture(withRecord);
      const missing = await rejects(
        tasks.stakeRegister(env, {
          role: "gpu",
          signer: signer.address,
          amount: "1",
          metadata: "x",
        }),
        /--node is required/,
      );
      expect(missing).to.be.instanceOf(InputError);
      await rejects(
        tasks.stakeIncrease(env, { node, amount: "1", from: "0x" + "99".repeat(20) }),
        /--from is not one of the configured accounts/,
      );
      await rejects(tasks.stakeWithdraw(env, { node }), /unknown node/);
      await rejects(tasks.stakeStatus(env, { node }), /unknown node/);
      await rejects(tasks.stakeUnbond(env, { node, amount: "abc" }), /amount is not an OPG amount/);
    });

    it("rotates the signer, sets the payee, unjails after the cool-down and exits; names each refusal", async () => {
      const { env, operator, signer, slasher, staking, node } = await loadFixture(withRecord);
      const from = operator.address;
      await tasks.stakeRegister(env, {
        node,
        role: "gpu",
        signer: signer.address,
        amount: "20000",
        metadata: "https://gpu.example",
        from,
      });
      const fresh = ethers.Wallet.createRandom().address;
      expect(await tasks.stakeRotateSigner(env, { node, signer: fresh, from })).to.match(
        new RegExp(
          `^rotated ${node}'s signer ${signer.address} -> ${fresh} \\(tx 0x[0-9a-f]{64}\\)`,
        ),
      );
      expect(await staking.signerOf(node)).to.equal(fresh);
      // Keys serve one node once: the old one cannot come back.
      await rejects(
        tasks.stakeRotateSigner(env, { node, signer: signer.address, from }),
        new RegExp(`the key ${signer.address} has signed for a node before`),
      );
      await rejects(
        tasks.stakeRotateSigner(env, {
          node,
          signer: ethers.Wallet.createRandom().address,
          from: signer.address,
        }),
        /the sender is not the node's operator/,
      );
      const payee = ethers.Wallet.createRandom().address;
      expect(await tasks.stakeSetPayee(env, { node, payee, from })).to.contain(
        `fees of ${node} now go to ${payee}`,
      );
      expect(await staking.payeeOf(node)).to.equal(payee);

      await rejects(tasks.stakeUnjail(env, { node, from }), /is not jailed/);
      await staking.connect(slasher).slash(node, 100n, ZERO, true, EVIDENCE);
      await rejects(tasks.stakeUnjail(env, { node, from }), /jail cool-down has not passed/);
      const { jailedUntil } = await staking.getNode(node);
      await time.increaseTo(jailedUntil);
      expect(await tasks.stakeUnjail(env, { node, from })).to.match(/^unjailed /);
      expect((await staking.getNode(node)).jailed).to.equal(false);

      const { active } = await staking.getNode(node);
      expect(await tasks.stakeExit(env, { node, from })).to.contain(
        `exited: ${formatOpg(active)} OPG unbonding`,
      );
      expect((await staking.getNode(node)).exited).to.equal(true);
      await rejects(tasks.stakeExit(env, { node, from }), /has exited/);
    });

    it("says to deploy first without a deployment record", async () => {
      const { node } = await loadFixture(withRecord);
      const env = { ethers, networkName: "nowhere", root: tmpdir() };
      await rejects(
        tasks.stakeWithdraw(env, { node }),
        /no deployment record for network "nowhere"/,
      );
    });
  });

  describe("opg:tee:*", () => {
    it("approves a measurement from PCRs, registers an enclave from a file and shows it", async () => {
      const { env, governance, operator, signer, staking, node } = await loadFixture(withRecord);
      await staking.connect(operator).register(node, 2, signer.address, 30_000n * OPG, "");
      const pcrs = { pcr0: "01".repeat(48), pcr1: "02".repeat(48), pcr2: "03".repeat(48) };
      const approved = await tasks.teeApproveMeasurement(env, {
        ...pcrs,
        label: "v1",
        from: governance.address,
      });
      const measurement = /approved measurement (0x[0-9a-f]{64}) \(v1\)/.exec(approved)![1]!;
      const doc = path.join(env.root, "doc.bin");
      await writeFile(doc, Buffer.from("attestation document"));
      const enclave = ethers.getAddress("0x" + "e1".repeat(20));
      expect(
        await tasks.teeRegister(env, {
          node,
          enclave,
          measurement,
          attestation: `@${doc}`,
          from: signer.address,
        }),
      ).to.match(/^registered enclave .* fresh until \d{4}-/);
      expect((await tasks.teeStatus(env)).toLowerCase())
        .to.contain("0xe1e1…e1e1")
        .and.contain("active");
    });

    it("approves a measurement given directly and rejects ambiguous or missing input", async () => {
      const { env, governance } = await loadFixture(withRecord);
      const m = ethers.id("image");
      expect(
        await tasks.teeApproveMeasurement(env, { measurement: m, from: governance.address }),
      ).to.equal(
        `approved measurement ${m} (tx ${(await ethers.provider.getBlock("latest"))!.transactions[0]})`,
      );
      await rejects(
        tasks.teeApproveMeasurement(env, { measurement: m, pcr0: "01" }),
        /either --measurement or --pcr0/,
      );
      await rejects(tasks.teeApproveMeasurement(env, {}), /no measurement given/);
    });

    it("reads attestations as hex or @file, and names a bad one", async () => {
      expect(await tasks.readAttestation("0x0102")).to.deep.equal(new Uint8Array([1, 2]));
      await rejects(tasks.readAttestation("hello"), /neither hex bytes nor @file/);
      await rejects(
        tasks.readAttestation("@/nonexistent/doc.bin"),
        /cannot read the attestation file/,
      );
    });

    it("says when no enclave is registered", async () => {
      const { env } = await loadFixture(withRecord);
      expect(await tasks.teeStatus(env)).to.equal("no enclaves registered");
      expect(await tasks.stakeStatus(env, {})).to.equal("no nodes registered");
    });
  });

  describe("recordName", () => {
    it("maps Hardhat's implicit in-process network to deployments/hardhat", () => {
      expect(tasks.recordName("default")).to.equal("hardhat");
      expect(tasks.recordName("localhost")).to.equal("localhost");
    });
  });

  describe("runTask", () => {
    async function capture(body: () => Promise<string>) {
      const out: string[] = [];
      const err: string[] = [];
      const [log, error, code] = [console.log, console.error, process.exitCode];
      console.log = (s: string) => out.push(s);
      console.error = (s: string) => err.push(s);
      try {
        await tasks.runTask(body);
        return { out, err, exitCode: process.exitCode };
      } finally {
        [console.log, console.error, process.exitCode] = [log, error, code];
      }
    }

    it("prints the result", async () => {
      expect(await capture(() => Promise.resolve("done"))).to.deep.equal({
        out: ["done"],
        err: [],
        exitCode: undefined,
      });
    });

    it("prints a BaseError with its hint and sets its exit code", async () => {
      const result = await capture(() =>
        Promise.reject(new InputError("bad", { details: { x: 1 }, hint: "fix it" })),
      );
      expect(result.err).to.deep.equal(["InputError: bad\n  x: 1\n  -> fix it"]);
      expect(result.exitCode).to.equal(2);
    });

    it("rethrows anything else", async () => {
      const error = await capture(() => Promise.reject(new Error("bug"))).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(Error).and.have.property("message", "bug");
    });
  });

  describe("status tables", () => {
    const base: NodeStatus = {
      node: "0x" + "11".repeat(20),
      operator: "0x" + "22".repeat(20),
      signer: "0x" + "33".repeat(20),
      role: "VERIFIER",
      metadataURI: "",
      active: 30_000n * OPG,
      unbonding: 0n,
      entries: [],
      jailed: false,
      jailedUntil: 0n,
      exited: false,
      isActive: true,
      lastHeartbeat: 1_000n,
      heartbeatDeadline: 4_600n,
      pendingSlashes: 0n,
    };

    it("names each node state", () => {
      expect(nodeState(base, 2_000n)).to.equal("active");
      expect(nodeState(base, 5_000n)).to.equal("active (heartbeat missed)");
      expect(nodeState({ ...base, isActive: false }, 2_000n)).to.equal("inactive (below minimum)");
      expect(
        nodeState({ ...base, isActive: false, jailed: true, jailedUntil: 3_000n }, 2_000n),
      ).to.equal("jailed until 1970-01-01T00:50:00Z");
      expect(
        nodeState({ ...base, isActive: false, jailed: true, jailedUntil: 3_000n }, 3_000n),
      ).to.equal("jailed (can unjail)");
      expect(nodeState({ ...base, isActive: false, exited: true, jailed: true }, 2_000n)).to.equal(
        "exited",
      );
    });

    it("lists entries and pending slashes", () => {
      const table = renderNodeTable(
        [
          {
            ...base,
            unbonding: 3n * OPG,
            entries: [
              { amount: OPG, releaseTime: 1_000n },
              { amount: 2n * OPG, releaseTime: 9_000n },
            ],
            pendingSlashes: 1n,
          },
        ],
        2_000n,
      );
      expect(table)
        .to.contain("1 withdrawable")
        .and.contain("2 at 1970-01-01T02:30:00Z")
        .and.contain("1 slash request(s) pending");
    });

    it("names each enclave state", () => {
      const e = {
        enclaveKey: base.node,
        node: base.node,
        measurement: "0x" + "ab".repeat(32),
        measurementApproved: true,
        expiresAt: 5_000n,
        isActive: true,
      };
      expect(renderEnclaveTable([e], 1_000n)).to.contain("active");
      expect(
        renderEnclaveTable([{ ...e, measurementApproved: false, isActive: false }], 1_000n),
      ).to.contain("measurement revoked");
      expect(renderEnclaveTable([{ ...e, isActive: false }], 5_000n)).to.contain(
        "expired (heartbeat to renew)",
      );
      expect(renderEnclaveTable([{ ...e, isActive: false }], 1_000n)).to.contain("node inactive");
    });

    it("shows a jailed node and skips deregistered enclaves on chain", async () => {
      const { env, staking, tee, operator, signer, slasher, governance, node } =
        await loadFixture(withRecord);
      await staking.connect(operator).register(node, 2, signer.address, 30_000n * OPG, "");
      await tee.connect(governance).approveMeasurement(ethers.id("m"), "");
      const key = ethers.getAddress("0x" + "e2".repeat(20));
      await tee.connect(operator).registerEnclave(node, key, ethers.id("m"), "0x01");
      await staking.connect(slasher).slash(node, 100n, ZERO, true, EVIDENCE);
      expect(await tasks.stakeStatus(env, {})).to.contain("jailed until");
      expect(await tasks.teeStatus(env)).to.contain("node inactive");
      expect(await tasks.teeDeregister(env, { enclave: key, from: operator.address })).to.match(
        new RegExp(`^deregistered enclave ${key} \\(tx 0x[0-9a-f]{64}\\)`),
      );
      expect(await tasks.teeStatus(env)).to.equal("no enclaves registered");
      await rejects(
        tasks.teeDeregister(env, { enclave: key, from: operator.address }),
        /was deregistered and cannot be used again/,
      );
    });
  });

  describe("runStakingDemo", () => {
    it("registers both nodes and the enclave, unbonds, withdraws, and returns the tables", async () => {
      const { token, staking, tee, deployer, governance } = await loadFixture(deployed);
      const lines: string[] = [];
      const contracts = {
        token,
        staking,
        tee,
        funder: deployer,
        approveMeasurement: async (m: string, label: string) => {
          await (await tee.connect(governance).approveMeasurement(m, label)).wait();
        },
      };
      const result = await stakingDemo(ethers, networkHelpers, contracts, (l) => lines.push(l));
      expect(lines.join("\n"))
        .to.match(/GPU node .* registered/)
        .and.match(/withdraws 10000 OPG/);
      expect(await staking.isActive(result.gpuNode)).to.be.true;
      expect(await staking.isActive(result.teeNode)).to.be.true;
      expect(await tee.isActiveEnclave(result.enclaveKey)).to.be.true;
      expect(await staking.unbondingEntries(result.gpuNode)).to.deep.equal([]);
      expect(result.table).to.contain("INFERENCE").and.contain("VERIFIER").and.contain("active");
    });

    it("returns the same tables as a string (the form the demo script prints)", async () => {
      const { token, staking, tee, deployer, governance } = await loadFixture(deployed);
      const approve = async (m: string, label: string) => {
        await (await tee.connect(governance).approveMeasurement(m, label)).wait();
      };
      const table = await runStakingDemo(
        ethers,
        networkHelpers,
        { token, staking, tee, funder: deployer, approveMeasurement: approve },
        () => undefined,
      );
      expect(table).to.contain("INFERENCE").and.contain("VERIFIER").and.contain("enclave key");
    });
  });

  describe("deployStakingAndTee", () => {
    it("refuses a quorum verifier without quorum options", async () => {
      const [deployer] = await ethers.getSigners();
      await rejects(
        deployStakingAndTee(ethers, {
          token: deployer!.address,
          governance: deployer!.address,
          activeVerifier: "quorum",
        }),
        /no quorum options/,
      );
    });

    it("refuses the development verifier on a chain that is not local, and deploys the quorum one there", async () => {
      const remote = await network.create({ override: { chainId: 11155111 } });
      const [deployer, a1] = await remote.ethers.getSigners();
      const token = await remote.ethers.deployContract("OPGToken", [deployer!.address, SUPPLY]);
      const options = { token: await token.getAddress(), governance: deployer!.address };
      const error = await rejects(
        deployStakingAndTee(remote.ethers, options),
        /only be deployed on a local chain/,
      );
      expect(error.hint).to.contain("quorum");
      const c = await deployStakingAndTee(remote.ethers, {
        ...options,
        quorum: { attesters: [a1!.address], threshold: 1 },
      });
      expect(c.devVerifier).to.equal(undefined);
      expect(await c.tee.verifier()).to.equal(await c.quorumVerifier!.getAddress());
      expect(Object.keys(c.addresses)).to.deep.equal([
        "NodeStaking",
        "TeeRegistry",
        "QuorumAttestationVerifier",
      ]);
      expect(await c.staking.hasRole(await c.staking.GOVERNANCE_ROLE(), deployer!.address)).to.be
        .true;
    });
  });
});
