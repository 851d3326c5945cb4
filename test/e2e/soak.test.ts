/**
 * The soak's short variant (a simulated week; `npm run soak` runs a month): see test/e2e/soak-run.ts.
 */
import { expect } from "chai";

import { runSoak, type SoakReport } from "./soak-run.js";

describe("e2e: a simulated week of a node that runs itself", function () {
  this.timeout(900_000);
  let report: SoakReport;
  const lines: string[] = [];

  before(async () => {
    report = await runSoak({
      days: 7,
      stepHours: 3,
      requestsPerStep: 6,
      outageSeconds: 3,
      log: (line) => lines.push(line),
    });
  });

  it("anchors every accepted request exactly once and loses none", () => {
    expect(report.requests.accepted, lines.join("\n")).to.be.greaterThan(200);
    expect(report.anchored.lost).to.equal(0);
    expect(report.anchored.duplicates).to.equal(0);
    expect(report.anchored.receipts).to.equal(report.anchored.onChainCount);
    expect(report.anchored.receipts).to.be.greaterThanOrEqual(report.requests.accepted);
    expect(report.requests.fulfilled).to.equal(report.requests.onChain);
    expect(report.bundlesVerified).to.be.greaterThan(0);
  });

  it("went through the outages, the kills, the key rotation and the image change", () => {
    expect(report.events.outages).to.equal(3);
    expect(report.events.kills).to.equal(3);
    expect(report.events.enclaveRotations).to.be.greaterThanOrEqual(2);
    expect(report.events.imageApproved, lines.join("\n")).to.equal(true);
    expect(report.events.imageRetired, lines.join("\n")).to.equal(true);
    // The keepers heartbeat every 2 hours (a third of the 6-hour timeout) and time moves in 3-hour
    // steps, so each of the two nodes sends at most one per step and must send at least one every
    // other step; what matters is that no node was ever past its timeout.
    const steps = (7 * 24) / 3;
    expect(report.events.heartbeats, lines.join("\n")).to.be.at.least(steps);
    expect(report.readiness.nodesOverdue, lines.join("\n")).to.equal(0);
    expect(report.events.registrations).to.be.greaterThanOrEqual(3);
  });

  it("never stalled anchoring past the bound, and readiness told the truth", () => {
    expect(report.anchoringStall.maxSeconds).to.be.at.most(report.anchoringStall.boundSeconds);
    expect(report.readiness.readyDuringOutage).to.equal(0);
    expect(report.readiness.outagesUnreported).to.equal(0);
    expect(report.readiness.keeperReadyWhileOverdue).to.equal(0);
  });
});
