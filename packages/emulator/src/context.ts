import type { IncomingMessage, ServerResponse } from "node:http";
import type { KeyPermission } from "./access-policy.js";
import type { Counters, Operation } from "./counters.js";
import type { IdentityDirectory } from "./directory.js";
import { applyFault, type FaultQueue, type FaultStyle } from "./faults.js";
import type { FederatedTokens } from "./federated-tokens.js";
import type { KeyStore } from "./key-store.js";
import type { TokenIssuer } from "./tokens.js";
import type { EmulatorFlavor } from "./types.js";

export interface ClientRegistration {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** What the request handlers share. */
export interface EmulatorCore {
  readonly flavor: EmulatorFlavor;
  readonly registration: ClientRegistration;
  readonly keys: KeyStore;
  readonly tokens: TokenIssuer;
  /** Client certificates and managed identities. */
  readonly directory: IdentityDirectory;
  /** The emulated cluster's service account token issuer (workload identity). */
  readonly federation: FederatedTokens;
  readonly counters: Counters;
  readonly faults: FaultQueue;
  /** api-versions the keys API accepts, oldest first. */
  readonly apiVersions: readonly string[];
  /** The access policy's key permissions, shared by every identity; changed by control calls. */
  keyPermissions: ReadonlySet<KeyPermission>;
  /** Resolves after ms; rejects when the emulator closes. */
  readonly sleep: (ms: number) => Promise<void>;
  /** host:port to use when a request has no usable Host header. */
  readonly defaultHost: () => string;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** The path split on "/", without the leading empty segment; empty segments kept. */
  readonly segments: readonly string[];
  /** host[:port] as the client addressed us. */
  readonly host: string;
}

export function challengeResource(flavor: EmulatorFlavor): string {
  return flavor === "managedhsm" ? "https://managedhsm.azure.net" : "https://vault.azure.net";
}

/**
 * Counts a request that reached an operation and applies the next matching fault.
 * Returns true when the fault answered the request (or dropped the connection).
 */
export async function enterOperation(
  core: EmulatorCore,
  ctx: RequestContext,
  operation: Operation,
  style: FaultStyle,
): Promise<boolean> {
  core.counters.increment(operation);
  const fault = core.faults.take(operation);
  if (fault === undefined) return false;
  return applyFault(fault, ctx.req, ctx.res, style, core.sleep);
}
