/** Named governance actions and raw calls -> proposal calls, and the inputs they refuse. */
import { expect } from "chai";
import { Interface, id, parseUnits } from "ethers";

import { InputError } from "../../../offchain/common/errors.js";
import { buildProposal, parseArgs } from "../../../offchain/governance/actions.js";
import { interfaceOf } from "../../../offchain/governance/contracts.js";

const addresses = {
  NodeStaking: "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
  TeeRegistry: "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853",
  InferenceLedger: "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318",
};
const DAY = 86_400n;
const ctx = {
  addresses,
  latency: () =>
    Promise.resolve({ votingDelay: DAY, votingPeriod: 5n * DAY, timelockDelay: 2n * DAY }),
};
const M = id("image");

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(outcome, "expected a rejection").to.be.instanceOf(Error);
  return outcome!;
}

describe("offchain/governance/actions", () => {
  it("approve-measurement encodes TeeRegistry.approveMeasurement and describes it", async () => {
    const p = await buildProposal(
      { action: "approve-measurement", measurement: M, label: "v1" },
      ctx,
    );
    expect(p.calls).to.deep.equal([
      {
        target: addresses.TeeRegistry,
        value: 0n,
        data: interfaceOf("TeeRegistry")!.encodeFunctionData("approveMeasurement", [M, "v1"]),
      },
    ]);
    expect(p.description).to.equal(
      `approve-measurement: TeeRegistry.approveMeasurement(${M}, "v1")`,
    );
  });

  it("revoke-measurement takes the PCRs instead of the measurement, and whether it is for cause", async () => {
    const pcr = "ab".repeat(48);
    const p = await buildProposal(
      { action: "revoke-measurement", pcr0: pcr, pcr1: pcr, pcr2: pcr, forCause: "true" },
      ctx,
    );
    const [measurement, forCause] = interfaceOf("TeeRegistry")!.decodeFunctionData(
      "revokeMeasurement",
      p.calls[0]!.data,
    );
    expect(String(measurement)).to.match(/^0x[0-9a-f]{64}$/);
    expect(forCause).to.equal(true);
    const missing = await rejection(
      buildProposal({ action: "revoke-measurement", measurement: M }, ctx),
    );
    expect(missing).to.be.instanceOf(InputError);
    expect(missing.message).to.match(/--for-cause is required/);
  });

  it("set-sample-rate takes a rate or parts per million, and refuses 0, above 1 and both", async () => {
    const byRate = await buildProposal({ action: "set-sample-rate", rate: "0.01" }, ctx);
    expect(
      interfaceOf("InferenceLedger")!.decodeFunctionData("setSampleRate", byRate.calls[0]!.data),
    ).to.deep.equal([10_000n]);
    const byPpm = await buildProposal({ action: "set-sample-rate", ppm: "1000000" }, ctx);
    expect(
      interfaceOf("InferenceLedger")!.decodeFunctionData("setSampleRate", byPpm.calls[0]!.data),
    ).to.deep.equal([1_000_000n]);
    for (const bad of [
      { rate: "0" },
      { rate: "1.5" },
      { ppm: "0" },
      { ppm: "1000001" },
      { rate: "0.5", ppm: "1" },
      {},
    ]) {
      const error = await rejection(buildProposal({ action: "set-sample-rate", ...bad }, ctx));
      expect(error, JSON.stringify(bad)).to.be.instanceOf(InputError);
    }
  });

  it("set-slash-params takes the offence by name, set-min-stake the role and OPG", async () => {
    const slash = await buildProposal(
      {
        action: "set-slash-params",
        offence: "contradicted-receipt",
        bps: "2500",
        jail: "true",
        cooldown: "3600",
      },
      ctx,
    );
    expect(
      interfaceOf("InferenceLedger")!.decodeFunctionData("setSlashParams", slash.calls[0]!.data),
    ).to.deep.equal([1n, 2500n, true, 3600n]);
    const min = await buildProposal(
      { action: "set-min-stake", role: "verifier", amount: "30000" },
      ctx,
    );
    expect(
      interfaceOf("NodeStaking")!.decodeFunctionData("setMinStake", min.calls[0]!.data),
    ).to.deep.equal([2n, parseUnits("30000", 18)]);
  });

  it("set-unbonding-delay refuses a delay stakers could not leave within, and accepts a shorter one", async () => {
    const ok = await buildProposal(
      { action: "set-unbonding-delay", seconds: String(7n * DAY) },
      ctx,
    );
    expect(ok.calls[0]!.target).to.equal(addresses.NodeStaking);
    const error = await rejection(
      buildProposal({ action: "set-unbonding-delay", seconds: String(8n * DAY) }, ctx),
    );
    expect(error).to.be.instanceOf(InputError);
    expect(error.message).to.match(
      /unbonding delay 691200 s \(8 d\) is not shorter than .* = 691200 s \(8 d\)/,
    );
  });

  it("set-assignment-window encodes InferenceLedger.setAssignmentWindow and refuses more than an hour or a fraction", async () => {
    const p = await buildProposal({ action: "set-assignment-window", seconds: "30" }, ctx);
    expect(p.calls[0]!.target).to.equal(addresses.InferenceLedger);
    expect(
      interfaceOf("InferenceLedger")!.decodeFunctionData("setAssignmentWindow", p.calls[0]!.data),
    ).to.deep.equal([30n]);
    const tooLong = await rejection(
      buildProposal({ action: "set-assignment-window", seconds: "3601" }, ctx),
    );
    expect(tooLong.message).to.equal("--seconds must be at most 3600");
    const fraction = await rejection(
      buildProposal({ action: "set-assignment-window", seconds: "1.5" }, ctx),
    );
    expect(fraction.message).to.equal("--seconds must be a whole number");
  });

  it("call encodes a raw signature against a contract of the record or an address, with --value", async () => {
    const p = await buildProposal(
      {
        action: "call",
        target: "NodeStaking",
        signature: "setSlashDestination(bool,address)",
        args: `false,${addresses.TeeRegistry}`,
        description: "treasury",
      },
      ctx,
    );
    const iface = new Interface(["function setSlashDestination(bool,address)"]);
    expect(p.calls[0]!.data).to.equal(
      iface.encodeFunctionData("setSlashDestination", [false, addresses.TeeRegistry]),
    );
    expect(p.description).to.equal("treasury");
    const raw = await buildProposal(
      {
        action: "call",
        target: "0x000000000000000000000000000000000000dEaD",
        signature: "ping(uint256[])",
        args: "[[1,2]]",
        value: "5",
      },
      ctx,
    );
    expect(raw.calls[0]!.value).to.equal(5n);
    expect(raw.description).to.match(
      /^call: 0x000000000000000000000000000000000000dEaD 0x[0-9a-f]{8}… \(132 bytes\) \{value: 5\}$/,
    );
  });

  it("refuses what it cannot encode, naming the option", async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /--action is required/],
      [{ action: "mint" }, /unknown action "mint"/],
      [{ action: "approve-measurement" }, /no measurement given/],
      [
        { action: "approve-measurement", measurement: "0x12" },
        /measurement is not a 32-byte hex value/,
      ],
      [
        { action: "set-slash-params", offence: "theft", bps: "1", jail: "no" },
        /unknown offence "theft"/,
      ],
      [
        { action: "set-slash-params", offence: "double-receipt", bps: "10001", jail: "no" },
        /--bps must be at most 10000/,
      ],
      [
        { action: "set-slash-params", offence: "double-receipt", bps: "1", jail: "maybe" },
        /jail must be true or false/,
      ],
      [{ action: "set-min-stake", role: "miner", amount: "1" }, /unknown node role "miner"/],
      [
        { action: "call", target: "Nowhere", signature: "f()" },
        /--target Nowhere is neither an address nor a contract/,
      ],
      [
        { action: "call", target: "NodeStaking", signature: "not a signature" },
        /is not a function signature/,
      ],
      [
        { action: "call", target: "NodeStaking", signature: "f(uint256)", args: "x" },
        /--args do not fit f\(uint256\)/,
      ],
    ];
    for (const [args, message] of cases) {
      const error = await rejection(buildProposal(args, ctx));
      expect(error, JSON.stringify(args)).to.be.instanceOf(InputError);
      expect(error.message, JSON.stringify(args)).to.match(message);
    }
  });

  it("parseArgs reads a JSON array or comma-separated values and checks the count", () => {
    expect(parseArgs('["0x01", [1, 2], true]', ["bytes", "uint256[]", "bool"])).to.deep.equal([
      "0x01",
      [1, 2],
      true,
    ]);
    expect(parseArgs("1, true", ["uint256", "bool"])).to.deep.equal(["1", true]);
    expect(() => parseArgs("1", ["uint256", "bool"])).to.throw(
      InputError,
      "--args has 1 value(s); the signature takes 2",
    );
  });
});
