import { task } from "hardhat/config";

import { withEnv } from "./stake.js";

const from = {
  name: "from",
  description: "Sending account (an address among the network's accounts; default: the first)",
  defaultValue: "",
};

export const teeTasks = [
  task("opg:tee:approve-measurement", "Approve an enclave image (governance)")
    .addOption({
      name: "measurement",
      description: "keccak256(PCR0‖PCR1‖PCR2), 0x + 64 hex",
      defaultValue: "",
    })
    .addOption({
      name: "pcr0",
      description: "PCR0 (48 bytes hex), instead of --measurement",
      defaultValue: "",
    })
    .addOption({ name: "pcr1", description: "PCR1 (48 bytes hex)", defaultValue: "" })
    .addOption({ name: "pcr2", description: "PCR2 (48 bytes hex)", defaultValue: "" })
    .addOption({
      name: "label",
      description: "Release name recorded in the event",
      defaultValue: "",
    })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.teeApproveMeasurement(env, args)))
    .build(),
  task("opg:tee:heartbeat", "Extend an enclave's registration (by its node's operator or signer)")
    .addOption({ name: "enclave", description: "The enclave key (address)", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.teeHeartbeat(env, args)))
    .build(),
  task("opg:tee:renew", "Renew an enclave's registration with a fresh attestation document")
    .addOption({ name: "enclave", description: "The enclave key (address)", defaultValue: "" })
    .addOption({
      name: "attestation",
      description: "Attestation bytes: 0x<hex>, or @file (raw CBOR, or base64/hex text)",
      defaultValue: "",
    })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.teeRenew(env, args)))
    .build(),
  task("opg:tee:register", "Register a VERIFIER node's enclave key with its attestation")
    .addOption({ name: "node", description: "The VERIFIER node id", defaultValue: "" })
    .addOption({
      name: "enclave",
      description: "The enclave's signing key (address)",
      defaultValue: "",
    })
    .addOption({
      name: "measurement",
      description: "The enclave image measurement",
      defaultValue: "",
    })
    .addOption({
      name: "attestation",
      description: "Attestation bytes: 0x<hex> or @file",
      defaultValue: "",
    })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.teeRegister(env, args)))
    .build(),
  task("opg:tee:status", "Table of registered enclaves and whether they are active")
    .setInlineAction((_args, hre) => withEnv(hre, (env, t) => t.teeStatus(env)))
    .build(),
];
