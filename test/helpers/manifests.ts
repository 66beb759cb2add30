/** Reading deploy/: kustomize rendering, YAML documents and the plugin's container in them. */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { parseFlags, serveFlags, type ParsedFlags } from "../../src/config/index.js";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
export const deployDir = join(repoRoot, "deploy");

export type Obj = Record<string, unknown>;

export interface KubeObject extends Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Obj;
}

/** Whether `kubectl` (client only is enough: `kubectl kustomize` renders offline) is on PATH. */
export function hasKubectl(): boolean {
  const probe = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
  return probe.status === 0;
}

/** Directories under deploy/ holding a kustomization.yaml, relative to the repository root. */
export function kustomizationDirs(dir = deployDir): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...kustomizationDirs(path));
    else if (entry === "kustomization.yaml") found.push(relative(repoRoot, dir));
  }
  return found.sort();
}

export function parseYamlDocuments(text: string, source: string): Obj[] {
  return parseAllDocuments(text).flatMap((doc, i) => {
    if (doc.errors.length > 0) {
      throw new Error(`${source} document ${i}: ${doc.errors.map((e) => e.message).join("; ")}`);
    }
    const value = doc.toJS() as Obj | null;
    return value === null ? [] : [value];
  });
}

export function readYaml(path: string): Obj[] {
  return parseYamlDocuments(readFileSync(join(repoRoot, path), "utf8"), path);
}

/** `kubectl kustomize <dir>`, parsed. */
export function renderKustomization(dir: string): KubeObject[] {
  const text = execFileSync("kubectl", ["kustomize", join(repoRoot, dir)], {
    encoding: "utf8",
    timeout: 30_000,
  });
  return parseYamlDocuments(text, dir) as KubeObject[];
}

export interface Probe {
  httpGet: { host?: string; path: string; port: number | string; scheme?: string };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface Container extends Obj {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    runAsNonRoot?: boolean;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
}

export interface PodSpec extends Obj {
  containers: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
  securityContext?: { seccompProfile?: { type: string } } & Obj;
  automountServiceAccountToken?: boolean;
}

/** The pod spec of a Pod or of a workload's pod template. */
export function podSpecOf(obj: KubeObject): PodSpec {
  if (obj.kind === "Pod") return obj["spec"] as PodSpec;
  return (obj["spec"] as { template: { spec: PodSpec } }).template.spec;
}

/** The pod labels of a Pod or of a workload's pod template. */
export function podLabelsOf(obj: KubeObject): Record<string, string> {
  if (obj.kind === "Pod") return obj.metadata.labels ?? {};
  const template = (obj["spec"] as { template: { metadata?: { labels?: Record<string, string> } } })
    .template;
  return template.metadata?.labels ?? {};
}

/** A plugin container's args through the plugin's own flag parser: unknown flags throw. */
export function pluginFlags(container: Container): ParsedFlags {
  const argv = [...(container.command?.slice(1) ?? []), ...(container.args ?? [])];
  return parseFlags(argv, serveFlags);
}

/** The TCP port of `--metrics-addr` (a port, or host:port). */
export function metricsPort(flags: ParsedFlags): number {
  const raw = flags.get("metrics-addr");
  const port = raw.includes(":") ? raw.slice(raw.lastIndexOf(":") + 1) : raw;
  return Number(port);
}
