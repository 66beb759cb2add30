import { randomBytes, randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { writeFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import type { Server } from "node:https";
import { setTimeout as delay } from "node:timers/promises";
import { KEY_PERMISSIONS, parseKeyPermissions } from "./access-policy.js";
import { KNOWN_API_VERSIONS } from "./api-versions.js";
import { caNeedsRenewal, createCa, issueServerCertificate } from "./certificates.js";
import { generateClientCertificate, writeClientCertificateFiles } from "./client-certificates.js";
import type { EmulatorCore } from "./context.js";
import { Counters } from "./counters.js";
import { IdentityDirectory } from "./directory.js";
import { FederatedTokens } from "./federated-tokens.js";
import { startImdsServer } from "./imds-api.js";
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
    directory:
      saved?.directory ??
      IdentityDirectory.initial(options.managedIdentities?.systemAssigned !== false),
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
  const directory = new IdentityDirectory(
    state.directory ?? IdentityDirectory.initial(true),
    () => {
      persist();
    },
  );
  for (const certPem of options.clientCertificates ?? []) {
    directory.addClientCertificate(state.clientId, certPem);
  }
  for (const clientId of options.managedIdentities?.userAssigned ?? []) {
    directory.addUserAssigned(clientId);
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
  // Every delayed request listens on it: hundreds at once under a latency fault is normal here.
  setMaxListeners(0, closing.signal);
  let port = 0;
  const core: EmulatorCore = {
    flavor,
    registration: state,
    keys,
    tokens: new TokenIssuer(Buffer.from(state.tokenKey, "base64")),
    directory,
    federation: new FederatedTokens(Buffer.from(state.tokenKey, "base64")),
    counters: new Counters(),
    faults: new FaultQueue(),
    apiVersions: options.apiVersions ?? KNOWN_API_VERSIONS,
    keyPermissions:
      options.keyPermissions === undefined
        ? new Set(KEY_PERMISSIONS)
        : parseKeyPermissions(options.keyPermissions),
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
  let imds: Awaited<ReturnType<typeof startImdsServer>>;
  try {
    imds = await startImdsServer(core, options.imdsPort ?? 0);
  } catch (err) {
    started.server.close();
    throw err;
  }
  const files: PublicFiles | undefined =
    stateDir === undefined ? undefined : writePublicFiles(stateDir, state);

  return buildHandle(core, state, { https: started.server, imds: imds.server }, port, imds.port, {
    files,
    closing,
    stateDir,
  });
}

function buildHandle(
  core: EmulatorCore,
  state: EmulatorState,
  servers: { https: Server; imds: HttpServer },
  port: number,
  imdsPort: number,
  extra: { files: PublicFiles | undefined; closing: AbortController; stateDir: string | undefined },
): Emulator {
  const { files, closing, stateDir } = extra;
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
    imdsUrl: `http://127.0.0.1:${imdsPort}`,
    get systemAssignedClientId() {
      return core.directory.systemAssignedClientId;
    },
    addUserAssignedIdentity: (clientId = randomUUID()) => {
      core.directory.addUserAssigned(clientId);
      return clientId.toLowerCase();
    },
    registerClientCertificate: (certPem, clientId = state.clientId) => {
      core.directory.addClientCertificate(clientId, certPem);
    },
    createClientCertificate: async (options = {}) => {
      const dir = options.dir ?? stateDir;
      if (dir === undefined) throw new Error("createClientCertificate needs a dir (no state dir)");
      const material = await generateClientCertificate();
      const files = writeClientCertificateFiles(
        dir,
        options.name ?? "client",
        material,
        options.password ?? "",
      );
      if (options.register !== false) {
        core.directory.addClientCertificate(state.clientId, material.certPem);
      }
      return files;
    },
    issueFederatedToken: (options) => {
      const token = core.federation.issue(options);
      if (options.file !== undefined) writeFileSync(options.file, token, { mode: 0o600 });
      return token;
    },
    counters: () => core.counters.snapshot(),
    issuedTokens: () => core.tokens.issued(),
    resetCounters: () => {
      core.counters.reset();
    },
    addFault: (fault) => {
      core.faults.add(validateFault(fault));
    },
    clearFaults: () => {
      core.faults.clear();
    },
    quotaUsage: () => core.faults.quotaUsage(),
    setKeyPermissions: (permissions) => {
      core.keyPermissions =
        permissions === undefined ? new Set(KEY_PERMISSIONS) : parseKeyPermissions(permissions);
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
        let open = 2;
        const done = () => {
          open -= 1;
          if (open === 0) resolve();
        };
        for (const server of [servers.https, servers.imds]) {
          server.close(done);
          server.closeAllConnections();
        }
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
