import { randomBytes, randomUUID } from "node:crypto";
import type { Server } from "node:https";
import { setTimeout as delay } from "node:timers/promises";
import { caNeedsRenewal, createCa, issueServerCertificate } from "./certificates.js";
import type { EmulatorCore } from "./context.js";
import { Counters } from "./counters.js";
import { FaultQueue } from "./faults.js";
import { kidOf } from "./key-bundle.js";
import { KeyStore, type KeyVersion } from "./key-store.js";
import { ClosingError, startServer } from "./server.js";
import {
  ensureStateDir,
  readState,
  writePublicFiles,
  writeState,
  type EmulatorState,
  type PublicFiles,
} from "./state-file.js";
import { TokenIssuer } from "./tokens.js";
import type { Emulator, EmulatorKeySpec, EmulatorOptions, KeyVersionRef } from "./types.js";
import { validateFault } from "./faults.js";

/** Starts the Key Vault + Entra ID emulator on https://127.0.0.1:PORT. */
export async function createEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const stateDir = options.stateDir;
  if (stateDir !== undefined) ensureStateDir(stateDir);
  const saved = stateDir === undefined ? undefined : readState(stateDir);

  const ca = saved !== undefined && !caNeedsRenewal(saved.ca) ? saved.ca : await createCa();
  const state: EmulatorState = {
    format: 1,
    tenantId: options.tenantId ?? saved?.tenantId ?? randomUUID(),
    clientId: options.clientId ?? saved?.clientId ?? randomUUID(),
    clientSecret: options.clientSecret ?? saved?.clientSecret ?? generateSecret(),
    tokenKey: saved?.tokenKey ?? randomBytes(32).toString("base64"),
    ca,
    keys: [],
  };
  const flavor = options.flavor ?? "vault";

  const keys = new KeyStore(() => {
    persist();
  });
  keys.load(saved?.keys ?? []);
  function persist(): void {
    if (stateDir === undefined) return;
    state.keys = keys.toJSON();
    writeState(stateDir, state);
  }
  persist();

  for (const spec of options.keys ?? []) {
    if (!keys.has(spec.name)) {
      try {
        keys.purge(spec.name);
      } catch {
        // not in the deleted state either
      }
      await keys.create(spec.name, createParams(spec));
    }
  }

  const closing = new AbortController();
  let port = 0;
  const core: EmulatorCore = {
    flavor,
    registration: state,
    keys,
    tokens: new TokenIssuer(Buffer.from(state.tokenKey, "base64")),
    counters: new Counters(),
    faults: new FaultQueue(),
    sleep: async (ms) => {
      try {
        await delay(ms, undefined, { signal: closing.signal });
      } catch {
        throw new ClosingError("emulator closed");
      }
    },
    defaultHost: () => `127.0.0.1:${port}`,
  };

  const tls = await issueServerCertificate(ca);
  const started = await startServer(core, tls, options.port ?? 0);
  port = started.port;
  const files: PublicFiles | undefined =
    stateDir === undefined ? undefined : writePublicFiles(stateDir, state);

  return buildHandle(core, state, started.server, port, files, closing);
}

function buildHandle(
  core: EmulatorCore,
  state: EmulatorState,
  server: Server,
  port: number,
  files: PublicFiles | undefined,
  closing: AbortController,
): Emulator {
  const base = `https://127.0.0.1:${port}`;
  const ref = (key: KeyVersion): KeyVersionRef => ({
    kid: kidOf(`127.0.0.1:${port}`, key.name, key.version),
    version: key.version,
  });
  let closed: Promise<void> | undefined;
  const handle: Emulator = {
    vaultUrl: base,
    authorityHost: base,
    port,
    flavor: core.flavor,
    tenantId: state.tenantId,
    clientId: state.clientId,
    clientSecret: state.clientSecret,
    caPem: state.ca.certPem,
    counters: () => core.counters.snapshot(),
    resetCounters: () => {
      core.counters.reset();
    },
    addFault: (fault) => {
      core.faults.add(validateFault(fault));
    },
    clearFaults: () => {
      core.faults.clear();
    },
    createKey: async (spec) => ref(await core.keys.create(spec.name, createParams(spec))),
    rotateKey: async (name) => ref(await core.keys.rotate(name)),
    updateKeyVersion: (name, version, update) => {
      core.keys.update(name, version, update);
    },
    deleteKey: (name, options) => {
      core.keys.delete(name);
      if (options?.purge !== false) core.keys.purge(name);
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
      return closed;
    },
  };
  if (files !== undefined) {
    Object.assign(handle, { caFile: files.caFile, azureJsonFile: files.azureJsonFile });
  }
  return handle;
}

function createParams(spec: EmulatorKeySpec): Parameters<KeyStore["create"]>[1] {
  const params: Parameters<KeyStore["create"]>[1] = { kty: spec.kty };
  if (spec.size !== undefined) params.size = spec.size;
  if (spec.keyOps !== undefined) params.keyOps = spec.keyOps;
  if (spec.tags !== undefined) params.tags = spec.tags;
  return params;
}

/** Shaped like an Entra client secret: 40 characters with the "~" marker. */
function generateSecret(): string {
  const raw = randomBytes(30).toString("base64url");
  return `${raw.slice(0, 3)}8Q~${raw.slice(3, 37)}`;
}
