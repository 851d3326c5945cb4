/**
 * The enclave's HTTP API on 127.0.0.1 (real HTTP, the enclave on the in-process chain of
 * fixture.ts), and the relayer's EnclaveClient against it: the client's routes open only to
 * requests signed by the node's signer for this enclave, inside the credential's window; public
 * routes answer anyone; bad requests get their 4xx and the server stays up; every answer the client
 * gets is checked, so a man in the middle cannot substitute its own.
 */
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { connect } from "node:net";

import { expect } from "chai";
import { Wallet, hexlify, keccak256, randomBytes } from "ethers";

import { VerificationError } from "../../../offchain/common/errors.js";
import { stringifyJson } from "../../../offchain/common/json.js";
import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import { measurementFromPcrs } from "../../../offchain/staking/units.js";
import { verifyAttestation } from "../../../offchain/tee/attestation.js";
import { AUTH_HEADER, AUTH_WINDOW_SECONDS, authHeader } from "../../../offchain/tee/auth.js";
import {
  EnclaveClient,
  EnclavePayloadTooLargeError,
  fetchEvidence,
  EnclaveRequestError,
  type EnclaveClientOptions,
} from "../../../offchain/tee/client.js";
import { bindingUserData, readBinding, type Enclave } from "../../../offchain/tee/enclave.js";
import { MAX_SUBMIT_ITEMS, createEnclaveServer, listen } from "../../../offchain/tee/server.js";
import { InferenceEngine } from "../../../offchain/inference/index.js";
import { mixedModelsDir } from "../inference/models-dir.js";
import { silent, world, type Item, type World } from "./fixture.js";

const MAX_BODY = 64 * 1024;

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

interface Listening {
  server: Server;
  url: string;
  close: () => Promise<void>;
}

async function serve(server: Server): Promise<Listening> {
  const url = await listen(server, 0);
  return {
    server,
    url,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (e: unknown) => e as Error,
  );
}

describe("enclave HTTP API", function () {
  this.timeout(120_000);
  let w: World;
  let enclave: Enclave;
  let api: Listening;
  let other: Enclave;
  let otherApi: Listening;
  let logged: Item;
  const closing: Array<() => Promise<void>> = [];

  before(async () => {
    w = await world();
    enclave = await w.enclave({ register: true });
    api = await serve(
      createEnclaveServer({
        enclave,
        clock: w.clock,
        pcrs: w.attestor.measurement(),
        devRootPem: w.attestor.rootPem,
        maxBodyBytes: MAX_BODY,
        logger: silent,
      }),
    );
    other = await w.enclave();
    otherApi = await serve(createEnclaveServer({ enclave: other, clock: w.clock, logger: silent }));
    logged = await w.item(1);
    await enclave.submit([logged]);
  });
  after(async () => {
    for (const close of closing) await close();
    await api?.close();
    await otherApi?.close();
    await w?.close();
  });

  interface CallOptions {
    /** The x-opg-auth value; null: none; default: signed by `signer` for `enclave` at `timestamp`. */
    header?: string | null;
    signer?: DigestSigner;
    enclave?: string;
    timestamp?: bigint;
    /** Sign this body but send `body`. */
    signedBody?: string;
    base?: string;
  }

  async function call(
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    o: CallOptions = {},
  ): Promise<Answer> {
    const payload =
      body === undefined ? "" : typeof body === "string" ? body : stringifyJson(body, 0);
    const header =
      o.header !== undefined
        ? o.header
        : authHeader(
            o.signer ?? w.nodeSigner,
            o.enclave ?? enclave.address,
            method,
            path,
            o.timestamp ?? w.clock.now(),
            Buffer.from(o.signedBody ?? payload),
          );
    const res = await fetch(`${o.base ?? api.url}${path}`, {
      method,
      headers: {
        ...(header === null ? {} : { [AUTH_HEADER]: header }),
        ...(method === "POST" ? { "content-type": "application/json" } : {}),
      },
      ...(method === "POST" ? { body: payload } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  async function stillUp(): Promise<void> {
    const info = await call("GET", "/info", undefined, { header: null });
    expect(info.status).to.equal(200);
    expect((await call("POST", "/v1/batches", { maxSize: 1 })).status).to.equal(200);
  }

  describe("the client's routes", () => {
    const routes: Array<[string, "GET" | "POST", () => string, () => unknown]> = [
      ["POST /v1/receipts", "POST", () => "/v1/receipts", () => ({ items: [logged] })],
      ["POST /v1/batches", "POST", () => "/v1/batches", () => ({ maxSize: 1 })],
      ["GET /v1/batches", "GET", () => "/v1/batches?from=0", () => undefined],
      [
        "GET /v1/receipts/:id",
        "GET",
        () => `/v1/receipts/${logged.receipt.requestId}`,
        () => undefined,
      ],
    ];
    for (const [name, method, path, body] of routes) {
      describe(name, () => {
        it("answers 401 without x-opg-auth", async () => {
          const res = await call(method, path(), body(), { header: null });
          expect(res.status).to.equal(401);
          expect(res.json).to.deep.include({
            error: "UnauthenticatedError",
            message: "missing x-opg-auth header",
          });
        });

        it("answers 401 for a malformed header", async () => {
          const good = authHeader(
            w.nodeSigner,
            enclave.address,
            method,
            path(),
            1n,
            Buffer.alloc(0),
          );
          for (const header of [
            "junk",
            "1.0x12",
            `${good}00`,
            good.replace(/^1\./, "-1."),
            ".0x",
          ]) {
            const res = await call(method, path(), body(), { header });
            expect(res.status, header).to.equal(401);
            expect(res.json.message).to.equal("malformed x-opg-auth header");
          }
        });

        it(`answers 401 outside ${AUTH_WINDOW_SECONDS} s of the enclave's clock, 200 at its edge`, async () => {
          const now = w.clock.now();
          for (const timestamp of [
            now - AUTH_WINDOW_SECONDS - 1n,
            now + AUTH_WINDOW_SECONDS + 1n,
          ]) {
            const res = await call(method, path(), body(), { timestamp });
            expect(res.status).to.equal(401);
            expect(res.json.message).to.equal("x-opg-auth is outside its time window");
          }
          for (const timestamp of [now - AUTH_WINDOW_SECONDS, now + AUTH_WINDOW_SECONDS])
            expect((await call(method, path(), body(), { timestamp })).status).to.equal(200);
        });

        it("answers 403 to a request signed by another key", async () => {
          const res = await call(method, path(), body(), {
            signer: new DigestSigner(Wallet.createRandom().privateKey),
          });
          expect(res.status).to.equal(403);
          expect(res.json.error).to.equal("ForbiddenError");
        });

        it("answers 403 to the client's request replayed to another enclave, or on another path", async () => {
          const header = authHeader(
            w.nodeSigner,
            enclave.address,
            method,
            path(),
            w.clock.now(),
            Buffer.from(body() === undefined ? "" : stringifyJson(body(), 0)),
          );
          const replayed = await call(method, path(), body(), { header, base: otherApi.url });
          expect(replayed.status).to.equal(403);
          // Signed for the other enclave, it is that enclave's client's request.
          expect(
            (await call(method, path(), body(), { enclave: other.address, base: otherApi.url }))
              .status,
          ).to.not.be.oneOf([401, 403]);
          const elsewhere = await call("GET", "/v1/batches?from=1", undefined, { header });
          expect(elsewhere.status).to.equal(403);
        });

        it("answers 200 to the client", async () => {
          expect((await call(method, path(), body())).status).to.equal(200);
        });
      });
    }

    it("answers 403 to a signed request sent with another body", async () => {
      const res = await call(
        "POST",
        "/v1/batches",
        { maxSize: 1000 },
        { signedBody: stringifyJson({ maxSize: 1 }, 0) },
      );
      expect(res.status).to.equal(403);
    });

    it("POST /v1/receipts judges each item alone and answers in order", async () => {
      const honest = await w.item(2);
      const outsider = await w.item(3, {
        signer: new DigestSigner(Wallet.createRandom().privateKey),
      });
      const stale = await w.item(4, { timestamp: w.clock.now() - 1_000n });
      const { status, json } = await call("POST", "/v1/receipts", {
        items: [honest, outsider, stale, logged],
      });
      expect(status).to.equal(200);
      const results = json.results as Array<Record<string, unknown>>;
      expect(results.map((r) => r.ok)).to.deep.equal([true, false, false, true]);
      expect(results[0]!.result).to.deep.include({ selected: true, duplicate: false });
      expect(results[1]).to.include({ status: 403, error: "ForbiddenError" });
      expect(results[2]).to.include({ status: 422, error: "StaleReceiptError" });
      expect(results[3]!.result).to.deep.include({ duplicate: true });
    });

    it("POST /v1/receipts answers 400 for a body that is not { items: [1..1024] }", async () => {
      for (const body of [{ items: [] }, { items: "x" }, {}, { items: [1], more: 1 }, 5, null]) {
        const res = await call("POST", "/v1/receipts", body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
        expect(res.json.message).to.equal("body must be { items: [...] } with 1..1024 receipts");
      }
      const many = await call("POST", "/v1/receipts", {
        items: Array.from({ length: MAX_SUBMIT_ITEMS + 1 }, () => 0),
      });
      expect(many.status).to.equal(400);
    });

    it("POST /v1/batches answers 400 for a body that is not { maxSize }", async () => {
      for (const body of [{}, { maxSize: "1" }, { maxSize: 1, sequence: 0 }]) {
        const res = await call("POST", "/v1/batches", body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
      }
      expect((await call("POST", "/v1/batches", { maxSize: 0 })).json.message).to.match(
        /^maxSize must be an integer in 1\.\./,
      );
    });

    it("GET /v1/receipts/:id answers the logged receipt, and 404 for one it did not log", async () => {
      const found = await call("GET", `/v1/receipts/${logged.receipt.requestId}`);
      expect(found.json).to.deep.include({
        nodeSignature: logged.nodeSignature,
        duplicate: true,
        requestId: logged.receipt.requestId.toLowerCase(),
      });
      const unknown = keccak256("0x99");
      const missing = await call("GET", `/v1/receipts/${unknown}`);
      expect(missing.status).to.equal(404);
      expect(missing.json.message).to.equal(`no logged receipt for request ${unknown}`);
    });
  });

  describe("public routes", () => {
    it("GET /info names the enclave, its deployment, its client, its image and the chain's rate", async () => {
      const { status, json } = await call("GET", "/info", undefined, { header: null });
      expect(status).to.equal(200);
      const pcrs = w.attestor.measurement();
      expect(json).to.deep.include({
        enclave: enclave.address,
        chainId: w.chainId.toString(),
        ledger: w.ledger,
        clientNode: w.protocol.gpuNode,
        pcrs: { 0: pcrs[0], 1: pcrs[1], 2: pcrs[2] },
        measurement: measurementFromPcrs([pcrs[0]!, pcrs[1]!, pcrs[2]!]),
        sampleRatePpm: Number(await w.protocol.ledger.sampleRate()),
        receiptWindowSeconds: enclave.limits.receiptWindowSeconds,
        devRootPem: w.attestor.rootPem,
      });
      expect((json.models as Array<{ modelId: string }>).map((m) => m.modelId)).to.have.members([
        w.risk.modelId,
        w.cnn.modelId,
      ]);
      expect(json.stats).to.include({ logged: enclave.stats().logged });
      expect(json.modelFailures).to.deep.equal([]);
    });

    it("GET /info lists the models that loaded and names each model folder that did not", async () => {
      const mixed = mixedModelsDir();
      const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
      try {
        await engine.loadModels(mixed.root);
        const served = await serve(
          createEnclaveServer({
            enclave: await w.enclave({ engine }),
            clock: w.clock,
            logger: silent,
          }),
        );
        closing.push(served.close);
        const { status, json } = await call("GET", "/info", undefined, {
          header: null,
          base: served.url,
        });
        expect(status).to.equal(200);
        expect((json.models as Array<{ name: string }>).map((m) => m.name)).to.deep.equal([
          "risk-mlp",
          "seq-cnn",
        ]);
        const failures = json.modelFailures as Array<Record<string, unknown>>;
        expect(failures).to.have.length(1);
        expect(failures[0]).to.deep.include({ dir: mixed.broken, error: "ModelLoadError" });
        expect(failures[0]!.message).to.contain("invalid model manifest");
      } finally {
        closing.push(() => engine.close());
        mixed.remove();
      }
    });

    it("GET /attestation answers the nonce, binding address || chainId || ledger || client node", async () => {
      const nonce = Buffer.from(randomBytes(16));
      const { status, json } = await call(
        "GET",
        `/attestation?nonce=${nonce.toString("hex")}`,
        undefined,
        { header: null },
      );
      expect(status).to.equal(200);
      const v = verifyAttestation(Buffer.from(json.document as string, "base64"), {
        roots: [w.attestor.rootPem],
        nonce,
      });
      expect(readBinding(v.document.publicKey, v.document.userData)).to.deep.equal({
        address: enclave.address,
        chainId: w.chainId,
        ledger: w.ledger,
        clientNode: w.protocol.gpuNode,
      });
      expect(`0x${json.userData as string}`).to.equal(
        hexlify(bindingUserData(enclave.address, w.chainId, w.ledger, w.protocol.gpuNode)),
      );
      for (const bad of ["/attestation", "/attestation?nonce=xyz"]) {
        const res = await call("GET", bad, undefined, { header: null });
        expect(res.status).to.equal(400);
        expect(res.json.message).to.equal("nonce query parameter must be hex bytes");
      }
    });

    it("GET /evidence publishes contradicted receipts to anyone, after an index", async () => {
      const before = (await call("GET", "/evidence", undefined, { header: null })).json
        .evidence as unknown[];
      const lie = await w.item(5, { delta: 1_000n });
      await enclave.submit([lie]);
      const { json } = await call("GET", `/evidence?after=${before.length}`, undefined, {
        header: null,
      });
      const evidence = json.evidence as Array<Record<string, unknown>>;
      expect(evidence).to.have.length(1);
      expect(evidence[0]).to.deep.include({
        kind: "contradicted",
        nodeSignature: lie.nodeSignature,
      });
      expect((await call("GET", "/evidence?after=x", undefined, { header: null })).status).to.equal(
        400,
      );
    });
  });

  describe("bad requests: the documented 4xx, and the server stays up", () => {
    it("answers 413 for a body over the limit, declared or streamed", async () => {
      const big = JSON.stringify({ items: ["x".repeat(MAX_BODY)] });
      const declared = await call("POST", "/v1/receipts", big);
      expect(declared.status).to.equal(413);
      expect(declared.json.message).to.equal(`request body over ${MAX_BODY} bytes`);
      const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${api.url}/v1/receipts`, { method: "POST" }, (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on("error", reject);
        for (let i = 0; i < 4; i++) req.write("x".repeat(MAX_BODY / 2));
        req.end();
      });
      expect(streamed.status).to.equal(413);
      await stillUp();
    });

    it("answers 400 for a malformed request URI", async () => {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(api.url).port), "127.0.0.1", () =>
          socket.write("GET // HTTP/1.1\r\nHost: enclave\r\nConnection: close\r\n\r\n"),
        );
        let text = "";
        socket.on("data", (d: Buffer) => (text += d.toString()));
        socket.on("error", reject);
        socket.on("close", () => resolve(text));
      });
      expect(answer).to.match(/^HTTP\/1\.1 400 /);
      expect(answer).to.contain('"message":"malformed request URI"');
      await stillUp();
    });

    it("answers 400 for a body that is not JSON", async () => {
      const res = await call("POST", "/v1/receipts", "{not json");
      expect(res.status).to.equal(400);
      expect(res.json.message).to.equal("request body is not valid JSON");
      await stillUp();
    });

    it("answers 404 for any other route", async () => {
      const res = await call("POST", "/verify", {}, { header: null });
      expect(res.status).to.equal(404);
      expect(res.json.message).to.equal("no route POST /verify");
      await stillUp();
    });
  });

  describe("EnclaveClient", () => {
    const clients: EnclaveClient[] = [];
    after(() => {
      for (const c of clients) c.close();
    });

    function client(o: Partial<EnclaveClientOptions> = {}): EnclaveClient {
      const c = new EnclaveClient({
        url: api.url,
        enclave: enclave.address,
        domain: w.domain,
        node: w.protocol.gpuNode,
        signer: w.nodeSigner,
        clock: w.clock,
        ...o,
      });
      clients.push(c);
      return c;
    }

    /** Forwards `req` to the enclave and answers what it answered, rewritten by `rewrite`. */
    async function forward(
      req: IncomingMessage,
      res: ServerResponse,
      rewrite: (json: Record<string, unknown>) => Record<string, unknown> = (json) => json,
      status?: number,
    ): Promise<void> {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const auth = req.headers[AUTH_HEADER];
      const upstream = await fetch(`${api.url}${req.url}`, {
        method: req.method ?? "GET",
        headers: {
          "content-type": "application/json",
          ...(typeof auth === "string" ? { [AUTH_HEADER]: auth } : {}),
        },
        ...(req.method === "POST" ? { body: Buffer.concat(chunks) } : {}),
      });
      const json = (await upstream.json()) as Record<string, unknown>;
      res.writeHead(status ?? upstream.status, { "content-type": "application/json" });
      res.end(stringifyJson(rewrite(json), 0));
    }

    /** Listens with `server` until the tests end; its URL. */
    async function listening(server: Server): Promise<string> {
      const l = await serve(server);
      closing.push(l.close);
      return l.url;
    }

    /** A man in the middle in front of the enclave: forwards everything, rewrites the answers. */
    const middle = (
      tamper: (json: Record<string, unknown>) => Record<string, unknown>,
      status?: number,
    ): Promise<string> =>
      listening(createServer((req, res) => void forward(req, res, tamper, status)));

    /** Runs `fn`, counting the POST /v1/receipts requests the enclave gets meanwhile. */
    async function countingPosts(fn: () => Promise<void>): Promise<number> {
      let posts = 0;
      const counting = (req: IncomingMessage): void => {
        if (req.method === "POST" && req.url === "/v1/receipts") posts++;
      };
      api.server.on("request", counting);
      try {
        await fn();
      } finally {
        api.server.off("request", counting);
      }
      return posts;
    }

    const anotherKey = () => new DigestSigner(Wallet.createRandom().privateKey);

    it("logs receipts, cuts batches and reads the log, every answer checked", async () => {
      const c = client();
      const item = await w.item(10);
      const answer = await c.submit(item);
      expect(answer.verdict).to.deep.include({ agree: true, timestamp: w.clock.now() });
      const signed = (await c.cutBatch(100))!;
      expect(signed.batch).to.deep.include({ enclave: enclave.address, node: w.protocol.gpuNode });
      expect(signed.requestIds).to.include(item.receipt.requestId.toLowerCase());
      expect(typeof signed.batch.sequence).to.equal("bigint");
      expect((await c.openBatches(signed.batch.sequence)).map((b) => b.digest)).to.deep.equal([
        signed.digest,
      ]);
      const again = (await c.logged(item.receipt.requestId))!;
      expect(again.receipt).to.deep.equal(item.receipt);
      expect(again.signature).to.equal(answer.signature);
      expect(await c.logged(keccak256("0x98"))).to.equal(null);
      expect((await c.attestation(Buffer.alloc(8, 1))).enclave).to.equal(enclave.address);
      expect((await c.info()).clientNode).to.equal(w.protocol.gpuNode);
      expect(await fetchEvidence(c.url, 0)).to.be.an("array");
    });

    it("signs once more at the enclave's time when its clock is outside the window, and only then", async () => {
      const behind = client({ clock: { now: () => w.clock.now() - 3_600n } });
      let requests = 0;
      const counting = (): void => void requests++;
      api.server.on("request", counting);
      try {
        expect(await behind.logged(keccak256("0x97"))).to.equal(null);
        expect(requests).to.equal(2); // refused (401, outside the window), then signed anew
        requests = 0;
        const stranger = client({
          signer: anotherKey(),
          clock: { now: () => w.clock.now() - 3_600n },
        });
        const error = await rejection(stranger.logged(keccak256("0x96")));
        expect(error).to.be.instanceOf(EnclaveRequestError);
        expect((error as EnclaveRequestError).status).to.equal(403); // its own key: refused again
        expect(requests).to.equal(2);
      } finally {
        api.server.off("request", counting);
      }
    });

    it("refuses a verdict whose signature was replaced", async () => {
      const url = await middle((json) => {
        const results = json.results as Array<{ result?: { signature: string } }> | undefined;
        for (const r of results ?? [])
          if (r.result !== undefined) r.result.signature = anotherKey().sign(keccak256("0x01"));
        return json;
      });
      const error = await rejection(client({ url }).submit(await w.item(11)));
      expect(error).to.be.instanceOf(VerificationError);
      expect(error.message).to.equal("verdict is not signed by the expected enclave");
    });

    describe("refuses a batch", () => {
      before(async () => {
        await enclave.submit([await w.item(12), await w.item(13)]);
        await enclave.cutBatch(100);
      });

      /** The problems the client finds in the open batches after `tamper`. */
      async function problems(
        tamper: (batch: Record<string, unknown>) => void,
        o: Partial<EnclaveClientOptions> = {},
      ): Promise<string[]> {
        const url = await middle((json) => {
          for (const b of (json.batches as Array<Record<string, unknown>> | undefined) ?? [])
            tamper(b);
          return json;
        });
        const error = await rejection(client({ url, ...o }).openBatches(0n));
        expect(error).to.be.instanceOf(VerificationError);
        expect(error.message).to.match(/^enclave batch \d+ fails its checks$/);
        return (error as VerificationError).details.problems as string[];
      }

      it("signed by another key", async () => {
        const key = anotherKey();
        expect(
          await problems((b) => {
            b.signature = key.sign(b.digest as string);
          }),
        ).to.deep.equal(["bad signature"]);
      });

      it("naming another node", async () => {
        const node = Wallet.createRandom().address;
        expect(
          await problems((b) => {
            (b.batch as Record<string, unknown>).node = node;
          }),
        ).to.deep.equal(["names another node", "bad signature"]);
        // An honest batch, for another node than this client's.
        expect(await problems(() => undefined, { node })).to.deep.equal(["names another node"]);
      });

      it("whose root is not the tree over the leaves it lists", async () => {
        expect(
          await problems((b) => {
            (b.leafHashes as string[])[0] = keccak256("0x02");
          }),
        ).to.deep.equal(["root is not the tree over the listed leaves"]);
        expect(
          await problems((b) => {
            (b.leafHashes as string[]).pop();
          }),
        ).to.deep.equal(["leaf count differs from the batch count"]);
      });

      it("signed by another enclave than the one attested", async () => {
        // The client talks to `other`; a man in the middle answers with this enclave's batches.
        const captured = (await call("GET", "/v1/batches?from=0")).json;
        const url = await middle(() => captured, 200);
        const error = await rejection(client({ url, enclave: other.address }).openBatches(0n));
        expect(error).to.be.instanceOf(VerificationError);
        expect((error as VerificationError).details.problems).to.deep.equal([
          "signed for another enclave",
          "bad signature",
        ]);
      });
    });

    it("sends the receipts of one event-loop turn in one POST, each answered on its own", async () => {
      const c = client();
      const items = await Promise.all([20, 21, 22, 23, 24].map((s) => w.item(s)));
      const bad = { ...items[4]!, inputs: w.inputs(99) };
      let answers: Array<PromiseSettledResult<unknown>> = [];
      const posts = await countingPosts(async () => {
        answers = await Promise.allSettled([...items.slice(0, 4), bad].map((i) => c.submit(i)));
      });
      expect(posts).to.equal(1);
      expect(answers.map((a) => a.status)).to.deep.equal([
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "rejected",
      ]);
      const reason = (answers[4] as PromiseRejectedResult).reason as EnclaveRequestError;
      expect(reason).to.be.instanceOf(EnclaveRequestError);
      expect(reason.status).to.equal(422);
      expect(reason.message).to.equal(
        "enclave answered 422 to a receipt: inputs do not hash to the receipt's inputHash",
      );
    });

    it("holds receipts while a POST is at the enclave and sends them together after it", async () => {
      const c = client();
      const items = await Promise.all([30, 31, 32, 33].map((s) => w.item(s)));
      const posts = await countingPosts(async () => {
        const first = c.submit(items[0]!);
        await new Promise((r) => setImmediate(r)); // the first POST (one receipt) has left
        const later: Array<Promise<unknown>> = [];
        for (const item of items.slice(1)) {
          later.push(c.submit(item)); // one per turn, while the first is in flight
          await new Promise((r) => setImmediate(r));
        }
        await Promise.all([first, ...later]);
      });
      expect(posts).to.equal(2);
    });

    it("splits a POST larger than maxPayloadBytes", async () => {
      const c = client({ maxPayloadBytes: 2_500 });
      const items = await Promise.all([40, 41, 42, 43].map((s) => w.item(s)));
      const posts = await countingPosts(async () => {
        const answers = await Promise.all(items.map((i) => c.submit(i)));
        expect(answers.map((a) => a.duplicate)).to.deep.equal([false, false, false, false]);
      });
      expect(posts).to.be.greaterThan(1);
    });

    it("fails a receipt too large for the enclave with EnclavePayloadTooLargeError, 413, naming the limit", async () => {
      const c = client();
      const item = await w.item(44);
      const data = Array.from({ length: MAX_BODY / 4 }, () => 0.123456);
      const big = { ...item, inputs: { features: { dims: [1, data.length], data } } };
      try {
        await c.submit(big);
        expect.fail("expected EnclavePayloadTooLargeError");
      } catch (error) {
        expect(error).to.be.instanceOf(EnclavePayloadTooLargeError);
        const e = error as EnclavePayloadTooLargeError;
        expect(e.httpStatus).to.equal(413);
        expect(e.status).to.equal(413);
        expect(e.details.limit).to.equal(MAX_BODY);
        expect(e.message).to.contain(`body limit (--max-body) is ${MAX_BODY} bytes`);
      }
      await stillUp();
    });

    it("sends a request again, once, when a kept-alive socket turns out closed", async () => {
      let requests = 0;
      const served = new WeakSet<object>();
      // Serves each connection's first request, then resets the connection on the next one:
      // what a client sees when the enclave closes an idle socket just as it is reused.
      const flaky = createServer((req, res) => {
        requests++;
        if (served.has(req.socket)) {
          req.socket.destroy();
          return;
        }
        served.add(req.socket);
        void forward(req, res);
      });
      const url = await listening(flaky);
      const c = client({ url, maxSockets: 1 });
      await c.info();
      expect(await c.cutBatch(10)).to.satisfy((b: unknown) => b === null || typeof b === "object");
      expect(requests).to.equal(3); // /info, the reset request, the same request on a new socket
    });

    it("does not retry a request whose fresh connection is reset", async () => {
      let requests = 0;
      const reset = createServer((req) => {
        requests++;
        req.socket.destroy();
      });
      const url = await listening(reset);
      const error = await rejection(client({ url }).cutBatch(1));
      expect(error).to.be.instanceOf(EnclaveRequestError);
      expect(error.message).to.equal(`enclave at ${url} is unreachable`);
      expect(requests).to.equal(1);
    });

    it("fails what it sent when the enclave does not answer within timeoutMs", async () => {
      const mute = createServer(() => {
        /* never answers */
      });
      const url = await listening(mute);
      const c = client({ url, timeoutMs: 200 });
      const item = await w.item(50);
      for (const a of await Promise.allSettled([c.submit(item), c.cutBatch(1)])) {
        const error = (a as PromiseRejectedResult).reason as Error;
        expect(error).to.be.instanceOf(EnclaveRequestError);
        expect(error.message).to.equal(`enclave at ${url} did not answer within 200 ms`);
      }
    });

    it("reports an unreachable enclave to every receipt of a POST, and the enclave's own status", async () => {
      const down = client({ url: "http://127.0.0.1:1" });
      const item = await w.item(51);
      for (const a of await Promise.allSettled([down.submit(item), down.submit(item)])) {
        expect(a.status).to.equal("rejected");
        expect(((a as PromiseRejectedResult).reason as Error).message).to.equal(
          "enclave at http://127.0.0.1:1 is unreachable",
        );
      }
      const error = await rejection(client().cutBatch(0));
      expect((error as EnclaveRequestError).status).to.equal(400);
      const outsider = await rejection(client({ signer: anotherKey() }).cutBatch(1));
      expect((outsider as EnclaveRequestError).status).to.equal(403);
    });
  });

  describe("one relayer per enclave (x-opg-relayer)", () => {
    const LEASE_MS = 1_500;
    let held: Enclave;
    let heldApi: Listening;
    const clients: EnclaveClient[] = [];
    before(async () => {
      held = await w.enclave({ register: true, limits: { relayerLeaseMs: LEASE_MS } });
      heldApi = await serve(createEnclaveServer({ enclave: held, clock: w.clock, logger: silent }));
    });
    after(async () => {
      for (const c of clients) c.close();
      await heldApi?.close();
    });

    function relayer(relayerId: string | undefined): EnclaveClient {
      const c = new EnclaveClient({
        url: heldApi.url,
        enclave: held.address,
        domain: w.domain,
        node: w.protocol.gpuNode,
        signer: w.nodeSigner,
        clock: w.clock,
        ...(relayerId === undefined ? {} : { relayerId }),
      });
      clients.push(c);
      return c;
    }

    async function conflict(promise: Promise<unknown>): Promise<Record<string, unknown>> {
      const error = (await rejection(promise)) as EnclaveRequestError;
      expect(error).to.be.instanceOf(EnclaveRequestError);
      expect(error.status).to.equal(409);
      expect(error.details.error).to.equal("RelayerConflictError");
      return error.details.enclaveDetails as Record<string, unknown>;
    }

    it("serves the first relayer, refuses a second one on every client route, hands over once the first is silent past the lease, and at once on release", async () => {
      const first = relayer("relayer-a");
      const second = relayer("relayer-b");
      const claimed = await first.claimRelayer();
      expect(claimed).to.deep.include({ id: "relayer-a", leaseSeconds: 2 });
      const info = (await first.info()).relayer as Record<string, unknown>;
      expect(info.id).to.equal("relayer-a");

      // The second relayer gets nothing in: no claim, no receipt logged, no batch cut or read.
      const item = await w.item(60);
      const details = await conflict(second.claimRelayer());
      expect(details).to.deep.include({ relayer: "relayer-b", holder: "relayer-a" });
      await conflict(second.submit(item));
      expect(held.logged(item.receipt.requestId)).to.equal(null);
      await conflict(second.cutBatch(10));
      await conflict(second.openBatches(0n));

      // The holder goes on; each of its requests renews the lease.
      expect((await first.submit(item)).requestId).to.equal(item.receipt.requestId.toLowerCase());
      await new Promise((r) => setTimeout(r, LEASE_MS / 2));
      await first.openBatches(0n);
      await new Promise((r) => setTimeout(r, LEASE_MS / 2 + 100));
      await conflict(second.claimRelayer());

      // Silent past the lease: the second relayer takes over, and now the first is refused.
      await new Promise((r) => setTimeout(r, LEASE_MS + 100));
      expect((await second.claimRelayer()).id).to.equal("relayer-b");
      const back = await conflict(first.cutBatch(10));
      expect(back).to.deep.include({ relayer: "relayer-a", holder: "relayer-b" });

      // A relayer stopping cleanly frees the enclave at once; releasing one it does not hold frees nothing.
      await conflict(first.releaseRelayer());
      await second.releaseRelayer();
      expect(held.relayer()).to.equal(null);
      expect((await first.claimRelayer()).id).to.equal("relayer-a");
    });

    it("answers 400 to a malformed x-opg-relayer, and 400 to a claim without one", async () => {
      const path = "/v1/relayer";
      const bad = await fetch(`${heldApi.url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-opg-relayer": "not an id!",
          [AUTH_HEADER]: authHeader(
            w.nodeSigner,
            held.address,
            "POST",
            path,
            w.clock.now(),
            Buffer.from("{}"),
          ),
        },
        body: "{}",
      });
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as { message: string }).message).to.equal(
        "malformed x-opg-relayer header",
      );
      const none = await rejection(relayer(undefined).claimRelayer());
      expect((none as EnclaveRequestError).status).to.equal(400);
    });

    it("does not let an outsider take or hold the enclave with the header", async () => {
      const outsider = new EnclaveClient({
        url: heldApi.url,
        enclave: held.address,
        domain: w.domain,
        node: w.protocol.gpuNode,
        signer: new DigestSigner(Wallet.createRandom().privateKey),
        clock: w.clock,
        relayerId: "outsider",
      });
      clients.push(outsider);
      const error = (await rejection(outsider.claimRelayer())) as EnclaveRequestError;
      expect(error.status).to.equal(403);
      expect(held.relayer()?.id).to.not.equal("outsider");
    });
  });
});
