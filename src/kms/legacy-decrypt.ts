/**
 * Decrypt of ciphertexts written by Azure/kubernetes-kms (docs/architecture.md, "Legacy
 * ciphertexts"), so that a cluster can swap plugins and keep reading etcd. Each one is a Key Vault `decrypt`:
 * v2 ciphertexts under the version whose URL hashes to the request's key_id (RSA-OAEP-256), v1
 * ones under the current version, then the newest usable others (RSA1_5), a bounded few.
 * Nothing is cached: the plaintexts are kube-apiserver's DEKs, which it caches itself.
 */
import { abortError, raceAbort } from "./abort.js";
import type { KeyAllowlist } from "./allowlist.js";
import { validateAnnotations } from "./annotations.js";
import { KmsError } from "./errors.js";
import { keyIdOf } from "./key-id.js";
import type { KeyReference, KeyState, KeyWrapper, LegacyAlgorithm } from "./key-wrapper.js";
import { decodeLegacyCiphertext } from "./legacy-ciphertext.js";
import { notify, type KmsObserver } from "./observer.js";
import { closedError, type SeedKeeper } from "./seed-keeper.js";
import type { CallContext, DecryptInput } from "./service-types.js";

/** v1 ciphertexts name no version: at most this many Key Vault decrypts per request. */
export const MAX_LEGACY_V1_VERSIONS = 5;

/**
 * A key_id that matches no listed version may name one created since the last poll (the Go
 * plugin, on another node during a migration, writes under the version it started with): the
 * versions are read again, at most this often, so that unknown key_ids cannot drive Key Vault.
 */
export const UNKNOWN_KEY_ID_REFRESH_MS = 5_000;

const AKV_DOMAIN = ".azure.akv.io";
const VERSION_ANNOTATION = "version.azure.akv.io";
const ALGORITHM_ANNOTATION = "algorithm.azure.akv.io";
/** The Go plugin's `encryptionResponseVersion` and its only v2 algorithm. */
const EXPECTED: ReadonlyArray<readonly [string, string]> = [
  [VERSION_ANNOTATION, "1"],
  [ALGORITHM_ANNOTATION, "RSA-OAEP-256"],
];

export interface LegacyDecryptOptions {
  readonly wrapper: KeyWrapper;
  readonly allowlist: KeyAllowlist;
  readonly keeper: SeedKeeper;
  readonly observer?: KmsObserver | undefined;
}

export type LegacyDecrypt = (input: DecryptInput, ctx: CallContext) => Promise<Uint8Array>;

function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

function invalid(message: string): KmsError {
  return new KmsError("INVALID_ARGUMENT", message);
}

/** The Go plugin's v2 annotations: its two checked ones exactly, others only under azure.akv.io. */
function checkAnnotations(annotations: ReadonlyMap<string, Uint8Array>): void {
  validateAnnotations(annotations);
  for (const [key, value] of EXPECTED) {
    const got = annotations.get(key);
    if (got === undefined) {
      throw invalid(
        `ciphertext looks like one written by Azure/kubernetes-kms, but annotation ${key} is missing`,
      );
    }
    const text = Buffer.from(got).toString("latin1");
    if (text !== value) {
      throw invalid(`annotation ${key} is ${quoted(text)}; Azure/kubernetes-kms writes ${value}`);
    }
  }
  for (const key of annotations.keys()) {
    // date, x-ms-request-id, x-ms-keyvault-region: informational, as the Go plugin treats them.
    if (!key.endsWith(AKV_DOMAIN)) {
      throw invalid(
        `annotation ${quoted(key)} is not one Azure/kubernetes-kms writes (only *${AKV_DOMAIN})`,
      );
    }
  }
}

export function createLegacyDecrypt(options: LegacyDecryptOptions): LegacyDecrypt {
  const { wrapper, allowlist, keeper, observer } = options;
  const configured = allowlist.keys[0];
  const keyName = configured?.keyName ?? "";
  // key_id → version, built once per KeyState (a few hashes per version).
  let index: { readonly state: KeyState; readonly byKeyId: Map<string, KeyReference> } | undefined;

  function knownState(): KeyState {
    if (keeper.closed) throw closedError();
    const state = keeper.keyState;
    if (state === undefined) {
      throw new KmsError(
        "UNAVAILABLE",
        `the versions of key ${keyName} have not been read from Key Vault yet; retry`,
      );
    }
    return state;
  }

  function versionOfKeyId(state: KeyState, keyId: string): KeyReference | undefined {
    if (index?.state !== state) {
      const byKeyId = new Map<string, KeyReference>();
      for (const ref of state.versions) {
        byKeyId.set(keyIdOf(ref), ref);
        // The Go plugin hashed the name as configured; Key Vault lists it in its own casing.
        if (configured !== undefined && configured.keyName !== ref.keyName) {
          byKeyId.set(keyIdOf({ ...ref, keyName: configured.keyName }), ref);
        }
      }
      index = { state, byKeyId };
    }
    return index.byKeyId.get(keyId);
  }

  async function keyVaultDecrypt(
    key: KeyReference,
    algorithm: LegacyAlgorithm,
    raw: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<Buffer> {
    // Defence in depth: versions come from Key Vault's listing of the configured key.
    allowlist.check(key);
    if (signal?.aborted === true) throw abortError(signal.reason);
    let call: Promise<Uint8Array>;
    try {
      call = wrapper.decryptLegacy(key, algorithm, raw, signal === undefined ? {} : { signal });
    } catch (error) {
      call = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    let plain: Uint8Array;
    try {
      plain = await (signal === undefined ? call : raceAbort(call, signal));
    } catch (error) {
      // A wrapper that ignores the signal may still answer later: zero what it returns.
      call.then(
        (late) => late.fill(0),
        () => undefined,
      );
      throw error;
    }
    // A fresh buffer the caller alone owns; the wrapper's copy is wiped.
    const out = Buffer.from(plain);
    plain.fill(0);
    notify(observer, "onDecrypt", key);
    return out;
  }

  let lastMissRefresh = -Infinity;

  /** The version of `keyId`, reading the versions again once if it is not among them. */
  async function findVersion(
    keyId: string,
    signal: AbortSignal | undefined,
  ): Promise<{ state: KeyState; key: KeyReference | undefined }> {
    let state = knownState();
    let key = versionOfKeyId(state, keyId);
    const now = performance.now();
    if (key === undefined && now - lastMissRefresh >= UNKNOWN_KEY_ID_REFRESH_MS) {
      lastMissRefresh = now;
      const poll = keeper.poll();
      await (signal === undefined ? poll : raceAbort(poll, signal));
      state = knownState();
      key = versionOfKeyId(state, keyId);
    }
    return { state, key };
  }

  async function decryptV2(input: DecryptInput, ctx: CallContext): Promise<Uint8Array> {
    checkAnnotations(input.annotations);
    const raw = decodeLegacyCiphertext(input.ciphertext);
    if (input.keyId === "") throw invalid("key_id is empty");
    const { state, key } = await findVersion(input.keyId, ctx.signal);
    if (key === undefined) {
      throw new KmsError(
        "FAILED_PRECONDITION",
        `key_id ${quoted(input.keyId)} matches no version of key ${keyName} in Key Vault ` +
          `(${state.versions.length} listed); the data was written under another key or vault`,
      );
    }
    const refused = keeper.refusal(key);
    if (refused !== undefined) throw refused;
    return keyVaultDecrypt(key, "RSA-OAEP-256", raw, ctx.signal);
  }

  /** The current version first (the pinned one, if any), then the other usable ones newest first. */
  function v1Candidates(state: KeyState): {
    readonly tried: KeyReference[];
    readonly revoked: string[];
    readonly more: boolean;
  } {
    const tried: KeyReference[] = [];
    const revoked: string[] = [];
    const seen = new Set<string>();
    let more = false;
    const all = state.current === undefined ? state.versions : [state.current, ...state.versions];
    for (const ref of all) {
      const id = ref.keyVersion.toLowerCase();
      if (seen.has(id)) continue;
      seen.add(id);
      const reason = keeper.revocationOf(ref);
      if (reason !== undefined) revoked.push(`${ref.keyVersion} (${reason})`);
      else if (!allowlist.allows(ref)) continue;
      else if (tried.length < MAX_LEGACY_V1_VERSIONS) tried.push(ref);
      else more = true;
    }
    return { tried, revoked, more };
  }

  async function decryptV1(input: DecryptInput, ctx: CallContext): Promise<Uint8Array> {
    const raw = decodeLegacyCiphertext(input.ciphertext);
    const state = knownState();
    const { tried, revoked, more } = v1Candidates(state);
    let precondition: KmsError | undefined;
    for (const key of tried) {
      try {
        return await keyVaultDecrypt(key, "RSA1_5", raw, ctx.signal);
      } catch (error) {
        if (!(error instanceof KmsError)) throw error;
        // 400 BadParameter: not this version's ciphertext. A disabled or missing version: the
        // next may still hold it. Anything else (outage, auth, deadline) ends the search now.
        if (error.code === "FAILED_PRECONDITION") precondition = error;
        else if (error.code !== "INVALID_ARGUMENT") throw error;
      }
    }
    const triedText =
      tried.length === 0
        ? `no usable version of key ${keyName}`
        : `none of the ${tried.length} ${more ? "newest " : ""}usable versions of key ${keyName} ` +
          `(${tried.map((k) => k.keyVersion).join(", ")})`;
    const what = `${triedText} decrypts this Azure/kubernetes-kms v1 ciphertext (RSA1_5)`;
    if (revoked.length > 0) {
      throw new KmsError(
        "FAILED_PRECONDITION",
        `${what}; versions ${revoked.slice(0, 5).join(", ")} may hold it: ` +
          "re-enable or recover them to read data written under them",
      );
    }
    if (precondition !== undefined) {
      throw new KmsError("FAILED_PRECONDITION", `${what}: ${precondition.message}`, {
        cause: precondition,
      });
    }
    if (tried.length === 0) throw new KmsError("FAILED_PRECONDITION", what);
    throw invalid(`${what}${more ? `; only the ${MAX_LEGACY_V1_VERSIONS} newest are tried` : ""}`);
  }

  return (input, ctx) => (ctx.api === "v1beta1" ? decryptV1(input, ctx) : decryptV2(input, ctx));
}
