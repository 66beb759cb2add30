/**
 * Who the plugin logs in as: from azure.json, with the Go plugin's precedence, or from the
 * environment (workload identity, service principal) when there is no azure.json.
 */
import type { AzureJson } from "./azure-json.js";
import { UsageError } from "./flags.js";

/** Where a service principal's credentials came from; absent = azure.json. */
export type IdentitySource = "environment";

export interface ClientSecretIdentity {
  readonly kind: "client-secret";
  readonly tenantId: string;
  readonly clientId: string;
  /** Never logged: `describeConfig` leaves it out. */
  readonly clientSecret: string;
  readonly source?: IdentitySource;
}

export interface ClientCertificateIdentity {
  readonly kind: "client-certificate";
  readonly tenantId: string;
  readonly clientId: string;
  /** PKCS#12 (.pfx/.p12) or PEM with the private key and the certificate. */
  readonly certificatePath: string;
  /** Never logged. Empty: a password-less PFX or an unencrypted PEM key. */
  readonly certificatePassword: string;
  readonly source?: IdentitySource;
}

/** Through IMDS; a clientId selects a user-assigned identity, none the system-assigned one. */
export interface ManagedIdentity {
  readonly kind: "managed-identity";
  readonly clientId?: string;
}

/** A federated (Kubernetes service account) token exchanged for an Entra token. */
export interface WorkloadIdentity {
  readonly kind: "workload-identity";
  readonly tenantId: string;
  readonly clientId: string;
  readonly tokenFilePath: string;
}

export type Identity =
  ClientSecretIdentity | ClientCertificateIdentity | ManagedIdentity | WorkloadIdentity;

/**
 * azure.json, with the Go plugin's precedence: managed identity, then client secret, then client
 * certificate. Without an azure.json (and only then): workload identity, then environment
 * credentials.
 */
export function identityFrom(az: AzureJson, path: string, env: NodeJS.ProcessEnv): Identity {
  if (!az.found) return identityFromEnvironment(path, env);
  if (az.useManagedIdentityExtension) {
    refuseWorkloadIdentityTakeover(path, env);
    return az.userAssignedIdentityID === ""
      ? { kind: "managed-identity" }
      : { kind: "managed-identity", clientId: az.userAssignedIdentityID };
  }
  const tenantFor = (field: string): string => {
    if (az.tenantId === "") throw new UsageError(`${path}: "tenantId" is required with ${field}`);
    return az.tenantId;
  };
  if (az.aadClientId !== "" && az.aadClientSecret !== "") {
    return {
      kind: "client-secret",
      tenantId: tenantFor("aadClientSecret"),
      clientId: az.aadClientId,
      clientSecret: az.aadClientSecret,
    };
  }
  if (az.aadClientId !== "" && az.aadClientCertPath !== "") {
    return {
      kind: "client-certificate",
      tenantId: tenantFor("aadClientCertPath"),
      clientId: az.aadClientId,
      certificatePath: az.aadClientCertPath,
      certificatePassword: az.aadClientCertPassword,
    };
  }
  const missing =
    az.aadClientId === "" && (az.aadClientSecret !== "" || az.aadClientCertPath !== "")
      ? ' ("aadClientId" is missing)'
      : "";
  throw new UsageError(
    `${path}: no credentials provided for accessing Key Vault${missing}; set useManagedIdentityExtension (+ userAssignedIdentityID), or tenantId + aadClientId + aadClientSecret, or tenantId + aadClientId + aadClientCertPath (+ aadClientCertPassword)`,
  );
}

const workloadIdentityVars = ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"];

function envValue(env: NodeJS.ProcessEnv, name: string): string {
  return (env[name] ?? "").trim();
}

/**
 * The Azure SDK's ManagedIdentityCredential silently logs in with workload identity when these
 * three variables are set; azure.json asked for managed identity, so say so instead of guessing.
 */
function refuseWorkloadIdentityTakeover(path: string, env: NodeJS.ProcessEnv): void {
  if (workloadIdentityVars.every((name) => envValue(env, name) !== "")) {
    throw new UsageError(
      `${path} selects managed identity (useManagedIdentityExtension), but ${workloadIdentityVars.join(", ")} are set, which would switch the Azure SDK to workload identity: unset them, or remove azure.json to use workload identity`,
    );
  }
}

function identityFromEnvironment(path: string, env: NodeJS.ProcessEnv): Identity {
  const tenantId = envValue(env, "AZURE_TENANT_ID");
  const clientId = envValue(env, "AZURE_CLIENT_ID");
  const tokenFilePath = envValue(env, "AZURE_FEDERATED_TOKEN_FILE");
  const clientSecret = envValue(env, "AZURE_CLIENT_SECRET");
  const certificatePath = envValue(env, "AZURE_CLIENT_CERTIFICATE_PATH");
  if (tenantId !== "" && clientId !== "") {
    if (tokenFilePath !== "")
      return { kind: "workload-identity", tenantId, clientId, tokenFilePath };
    if (clientSecret !== "") {
      return { kind: "client-secret", tenantId, clientId, clientSecret, source: "environment" };
    }
    if (certificatePath !== "") {
      return {
        kind: "client-certificate",
        tenantId,
        clientId,
        certificatePath,
        // A password is taken verbatim: spaces may be part of it.
        certificatePassword: env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] ?? "",
        source: "environment",
      };
    }
  }
  const missing = ["AZURE_CLIENT_ID", "AZURE_TENANT_ID"].filter((n) => envValue(env, n) === "");
  if (tokenFilePath === "" && clientSecret === "" && certificatePath === "") {
    missing.push(
      "one of AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH",
    );
  }
  throw new UsageError(
    `no azure.json at ${path} and no identity in the environment (missing: ${missing.join(", ")}); provide azure.json at --config-file-path, or set AZURE_FEDERATED_TOKEN_FILE + AZURE_CLIENT_ID + AZURE_TENANT_ID (workload identity), or AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (service principal)`,
  );
}

/** Who the plugin logs in as, for the startup log: never a secret, password or token. */
export function identitySummary(identity: Identity): Record<string, unknown> {
  switch (identity.kind) {
    case "managed-identity":
      return identity.clientId === undefined
        ? { kind: identity.kind, assignment: "system" }
        : { kind: identity.kind, assignment: "user", clientId: identity.clientId };
    case "workload-identity":
      return {
        kind: identity.kind,
        tenantId: identity.tenantId,
        clientId: identity.clientId,
        tokenFile: identity.tokenFilePath,
      };
    case "client-certificate":
      return {
        kind: identity.kind,
        source: identity.source ?? "azure.json",
        tenantId: identity.tenantId,
        clientId: identity.clientId,
        certificatePath: identity.certificatePath,
      };
    case "client-secret":
      return {
        kind: identity.kind,
        source: identity.source ?? "azure.json",
        tenantId: identity.tenantId,
        clientId: identity.clientId,
      };
  }
}
