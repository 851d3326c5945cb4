import { task } from "hardhat/config";

import { withEnv } from "./stake.js";

const from = {
  name: "from",
  description: "Sending account (an address among the network's accounts; default: the first)",
  defaultValue: "",
};

/** An enclave image, by its measurement or its three PCRs (also the governance proposals' options). */
export const image = {
  measurement: {
    name: "measurement" as const,
    description: "keccak256(PCR0‖PCR1‖PCR2), 0x + 64 hex",
    defaultValue: "",
  },
  pcr0: {
    name: "pcr0" as const,
    description: "PCR0 (48 bytes hex), instead of --measurement",
    defaultValue: "",
  },
  pcr1: { name: "pcr1" as const, description: "PCR1 (48 bytes hex)", defaultValue: "" },
  pcr2: { name: "pcr2" as const, description: "PCR2 (48 bytes hex)", defaultValue: "" },
  label: {
    name: "label" as const,
    description: "Release name recorded in the event",
    defaultValue: "",
  },
};

export const teeTasks = [
  task("opg:tee:approve-measurement", "Approve an enclave image (governance)")
    .addOption(image.measurement)
    .addOption(image.pcr0)
    .addOption(image.pcr1)
    .addOption(image.pcr2)
    .addOption(image.label)
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
    .addOption({
      name: "attesterSignatures",
      description:
        "Quorum verifier: comma-separated signature files of the attesters over the fresh document (opg attester sign), instead of --attestation",
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
    .addOption({
      name: "attesterSignatures",
      description:
        "Quorum verifier: comma-separated signature files of the attesters (opg attester sign), instead of --attestation; node, enclave and measurement come from them",
      defaultValue: "",
    })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.teeRegister(env, args)))
    .build(),
  task("opg:tee:deregister", "Retire an enclave key (its binding to the node stays for evidence)")
    .addOption({ name: "enclave", description: "The enclave key (address)", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.teeDeregister(env, args)))
    .build(),
  task("opg:tee:status", "Table of registered enclaves and whether they are active")
    .setInlineAction((_args, hre) => withEnv(hre, (env, t) => t.teeStatus(env)))
    .build(),
];
