/**
 * deploy/ is provably right, offline: every kustomization renders (`kubectl kustomize`), every
 * object validates against the Kubernetes OpenAPI schemas (kubernetes-models), the plugin's args
 * parse with the plugin's own flag parser, probes and ports match what the plugin serves, two
 * instances never share a socket or port, and every EncryptionConfiguration follows kube-apiserver's
 * rules (docs/kms-contract.md §4) and points at a plugin socket.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Pod } from "kubernetes-models/v1";
import { parseBool, parseUint, serveFlags, type ParsedFlags } from "../../src/config/index.js";
import { parseDuration } from "../../src/config/index.js";
import {
  deployDir,
  hasKubectl,
  kustomizationDirs,
  metricsPort,
  pluginFlags,
  podLabelsOf,
  podSpecOf,
  readYaml,
  renderKustomization,
  repoRoot,
  type Container,
  type KubeObject,
  type Obj,
  type PodSpec,
} from "../helpers/manifests.js";
import { report } from "../helpers/report.js";

const kubectl = hasKubectl();
if (!kubectl) {
  report(
    "manifests.test.ts: kubectl not found on PATH; skipping the kustomize rendering checks " +
      "(install a kubectl client: `kubectl kustomize` renders offline)",
  );
}
const withKubectl = kubectl ? describe : describe.skip;

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  version: string;
};

/** Schema validators for the built-in kinds deploy/ uses. */
const schemaValidators: Record<string, (obj: Obj) => void> = {
  "v1/Pod": (obj) => {
    new Pod(obj).validate();
  },
  "v1/ConfigMap": (obj) => {
    new ConfigMap(obj).validate();
  },
  "apps/v1/DaemonSet": (obj) => {
    new DaemonSet(obj).validate();
  },
};
/** Custom resources: checked by the tests below instead of an OpenAPI schema. */
const customKinds = new Set([
  "monitoring.coreos.com/v1/PrometheusRule",
  "monitoring.coreos.com/v1/PodMonitor",
]);

const staticPodPath = "deploy/static-pod/keyvault-kms.yaml";
const encryptionConfigDir = "deploy/encryption-config";

function staticPod(): KubeObject {
  const docs = readYaml(staticPodPath);
  expect(docs).toHaveLength(1);
  return docs[0] as KubeObject;
}

function pluginContainer(obj: KubeObject): Container {
  const containers = podSpecOf(obj).containers.filter((c) => c.name === "keyvault-kms");
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

/** Every value through the flag's own kind (uint, bool, duration), as the plugin would. */
function checkFlagValues(flags: ParsedFlags): void {
  for (const spec of serveFlags) {
    const raw = flags.values.get(spec.name);
    if (raw === undefined) continue;
    if (spec.kind === "uint") parseUint(spec.name, raw);
    if (spec.kind === "bool") parseBool(spec.name, raw);
    if (spec.kind === "duration") parseDuration(spec.name, raw);
  }
}

/** The socket path of `--listen-addr` (unix:// + absolute path; abstract sockets are refused). */
function socketPath(flags: ParsedFlags): string {
  const addr = flags.get("listen-addr");
  expect(addr).toMatch(/^unix:\/\/\/[^@]/);
  return addr.slice("unix://".length);
}

/** The hostPath volume mounted at `dir` in the container, with host path == container path. */
function hostPathMountedAt(spec: PodSpec, container: Container, dir: string): string | undefined {
  const mount = container.volumeMounts?.find((m) => m.mountPath === dir);
  const volume = spec.volumes?.find((v) => v.name === mount?.name);
  return volume?.hostPath?.path;
}

interface Instance {
  readonly where: string;
  readonly obj: KubeObject;
}

/**
 * The plugin deployments: the base DaemonSet, each overlay's and the static pod, rendered once
 * (kubectl may be missing: then only the static pod).
 */
let instancesCache: Instance[] | undefined;
function pluginInstances(): Instance[] {
  if (instancesCache !== undefined) return instancesCache;
  const instances: Instance[] = [{ where: staticPodPath, obj: staticPod() }];
  if (kubectl) {
    for (const dir of kustomizationDirs()) {
      for (const obj of renderKustomization(dir)) {
        if (obj.kind === "DaemonSet") instances.push({ where: dir, obj });
      }
    }
  }
  instancesCache = instances;
  return instances;
}

withKubectl("kustomize rendering and schemas", () => {
  const dirs = kustomizationDirs();

  it("finds the kustomizations", () => {
    expect(dirs).toEqual(
      expect.arrayContaining([
        "deploy/base",
        "deploy/overlays/second-instance",
        "deploy/overlays/nonroot",
        "deploy/kube-apiserver",
        "deploy/monitoring",
      ]),
    );
  });

  it.each(dirs)("%s renders, and every object validates", (dir) => {
    const objects = renderKustomization(dir);
    expect(objects.length).toBeGreaterThan(0);
    for (const obj of objects) {
      const kind = `${obj.apiVersion}/${obj.kind}`;
      const validate = schemaValidators[kind];
      if (validate !== undefined) validate(obj);
      else
        expect({ dir, unknownKind: kind, custom: customKinds.has(kind) }).toMatchObject({
          custom: true,
        });
      expect(obj.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(obj.metadata.namespace).toBe("kube-system");
    }
  });

  it("the static pod validates as a Pod", () => {
    schemaValidators["v1/Pod"]!(staticPod());
  });

  it("the monitoring PodMonitor scrapes every plugin pod's metrics port with the rules' job label", () => {
    const objects = renderKustomization("deploy/monitoring");
    const monitor = objects.find((o) => o.kind === "PodMonitor")!;
    const spec = monitor["spec"] as {
      selector: { matchLabels: Record<string, string> };
      podMetricsEndpoints: { port: string; path: string; relabelings?: Obj[] }[];
    };
    const rules = JSON.stringify(objects.find((o) => o.kind === "PrometheusRule")!["spec"]);
    expect(rules).toContain('job=\\"keyvault-kms\\"');
    expect(spec.podMetricsEndpoints).toHaveLength(1);
    const endpoint = spec.podMetricsEndpoints[0]!;
    expect(endpoint.path).toBe("/metrics");
    expect(endpoint.relabelings).toContainEqual(
      expect.objectContaining({ targetLabel: "job", replacement: "keyvault-kms" }),
    );
    for (const { where, obj } of pluginInstances()) {
      expect({ where, labels: podLabelsOf(obj) }).toMatchObject({
        labels: spec.selector.matchLabels,
      });
      const flags = pluginFlags(pluginContainer(obj));
      const port = pluginContainer(obj).ports?.find((p) => p.name === endpoint.port);
      expect({ where, port: port?.containerPort }).toEqual({ where, port: metricsPort(flags) });
    }
  });
});

describe("the plugin's pods", () => {
  const instances = pluginInstances();

  it("covers the DaemonSets and the static pod", () => {
    expect(instances.map((i) => i.where)).toEqual(
      kubectl
        ? expect.arrayContaining([
            staticPodPath,
            "deploy/base",
            "deploy/overlays/second-instance",
            "deploy/overlays/nonroot",
          ])
        : [staticPodPath],
    );
  });

  describe.each(instances.map((i) => [i.where, i] as const))("%s", (_where, { obj }) => {
    const spec = podSpecOf(obj);
    const container = pluginContainer(obj);
    const flags = pluginFlags(container);

    it("its args are all flags of the plugin, with valid values", () => {
      expect(flags.rest).toEqual([]);
      checkFlagValues(flags);
      expect(flags.values.has("keyvault-name") || flags.values.has("keyvault-url")).toBe(true);
      expect(flags.values.has("key-name")).toBe(true);
    });

    it("runs on control-plane nodes, before anything else, on the host network", () => {
      expect(spec.priorityClassName).toBe("system-node-critical");
      expect(spec.hostNetwork).toBe(true);
      // CoreDNS needs the API server, which needs the plugin: resolve Key Vault with the node's DNS.
      expect(spec.dnsPolicy).toBe("Default");
      expect(spec.automountServiceAccountToken).toBe(false);
      if (obj.kind === "DaemonSet") {
        expect(spec.nodeSelector).toMatchObject({ "node-role.kubernetes.io/control-plane": "" });
        for (const taint of [
          "node-role.kubernetes.io/control-plane",
          "node-role.kubernetes.io/master",
        ]) {
          expect(spec.tolerations).toContainEqual({
            key: taint,
            operator: "Exists",
            effect: "NoSchedule",
          });
        }
      }
    });

    it("probes /livez and /readyz where the plugin serves them", () => {
      const host = flags.get("healthz-addr");
      const port = Number(flags.get("healthz-port"));
      expect(port).toBeGreaterThan(0);
      for (const [probe, path] of [
        [container.livenessProbe, "/livez"],
        [container.readinessProbe, "/readyz"],
      ] as const) {
        expect(probe?.httpGet).toEqual({ host, path, port, scheme: "HTTP" });
        // The plugin's /livez self-check is bounded by --healthz-timeout; the probe waits a while.
        expect(probe?.timeoutSeconds ?? 1).toBeGreaterThanOrEqual(2);
      }
      // Loopback: the health port of a hostNetwork pod is not for the network.
      expect(host).toBe("127.0.0.1");
      expect(container.ports).toContainEqual({
        name: "healthz",
        containerPort: port,
        protocol: "TCP",
      });
      expect(container.ports).toContainEqual({
        name: "metrics",
        containerPort: metricsPort(flags),
        protocol: "TCP",
      });
    });

    it("serves its socket in a host directory of its own, and reads azure.json read-only", () => {
      const socket = socketPath(flags);
      expect(hostPathMountedAt(spec, container, dirname(socket))).toBe(dirname(socket));
      // Never a shared host directory: uid 0 owns what /opt holds (/opt/cni/bin).
      for (const volume of spec.volumes ?? []) {
        expect(["/", "/opt", "/var/run", "/run", "/etc", "/etc/kubernetes"]).not.toContain(
          volume.hostPath?.path,
        );
      }
      const azureJson = flags.get("config-file-path");
      const mount = container.volumeMounts?.find((m) => m.mountPath === azureJson);
      expect(mount?.readOnly).toBe(true);
      const volume = spec.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.hostPath).toEqual({ path: azureJson, type: "File" });
    });

    it("has a strict securityContext", () => {
      const sc = container.securityContext;
      expect(sc).toMatchObject({
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(sc?.capabilities?.add).toBeUndefined();
      expect(spec.securityContext?.seccompProfile?.type).toBe("RuntimeDefault");
      // uid 0 only where azure.json is root-only and the socket goes to the root-owned /opt.
      if (sc?.runAsUser === 0) {
        expect(sc.runAsNonRoot).toBe(false);
        expect(socketPath(flags)).toMatch(/^\/opt\//);
      } else {
        expect(sc?.runAsNonRoot).toBe(true);
        expect(sc?.runAsUser).toBeGreaterThan(0);
      }
    });

    it("requests and limits resources, requests below limits", () => {
      const { requests, limits } = container.resources ?? {};
      expect(requests).toEqual({ cpu: "50m", memory: "128Mi" });
      expect(limits).toEqual({ cpu: "500m", memory: "320Mi" });
      // The V8 heap stays below the memory limit.
      const heap = container["env"] as { name: string; value: string }[];
      const maxOld = /--max-old-space-size=(\d+)/.exec(
        heap.find((e) => e.name === "NODE_OPTIONS")?.value ?? "",
      );
      expect(Number(maxOld?.[1])).toBeLessThan(256);
    });

    it("runs this version's image", () => {
      expect(container.image).toBe(`keyvault-kms:${pkg.version}`);
    });
  });

  it("the static pod runs exactly the base DaemonSet's container", () => {
    if (!kubectl) return;
    const base = instances.find((i) => i.where === "deploy/base")!.obj;
    const pod = staticPod();
    expect(pluginContainer(pod)).toEqual(pluginContainer(base));
    const without = (spec: PodSpec, keys: string[]) =>
      Object.fromEntries(Object.entries(spec).filter(([k]) => !keys.includes(k)));
    // The same pod but for the DaemonSet's node placement (a static pod is on its node already).
    expect(without(podSpecOf(pod), ["containers"])).toEqual(
      without(podSpecOf(base), ["containers", "nodeSelector", "tolerations"]),
    );
  });

  it("two instances on one node differ in socket, metrics port, health port and selector", () => {
    if (!kubectl) return;
    const first = instances.find((i) => i.where === "deploy/base")!.obj;
    const second = instances.find((i) => i.where === "deploy/overlays/second-instance")!.obj;
    const [a, b] = [first, second].map((o) => pluginFlags(pluginContainer(o)));
    expect(socketPath(a!)).not.toBe(socketPath(b!));
    const portsOf = (f: ParsedFlags) => [metricsPort(f), Number(f.get("healthz-port"))];
    const shared = portsOf(a!).filter((p) => portsOf(b!).includes(p));
    expect(shared).toEqual([]);
    expect(first.metadata.name).not.toBe(second.metadata.name);
    const selectorOf = (o: KubeObject) =>
      (o["spec"] as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    expect(selectorOf(first)).not.toEqual(selectorOf(second));
    // Neither selector matches the other's pods.
    for (const [ds, other] of [
      [first, second],
      [second, first],
    ] as const) {
      const labels = podLabelsOf(other);
      const matches = Object.entries(selectorOf(ds)).every(([k, v]) => labels[k] === v);
      expect(matches).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// EncryptionConfiguration (kube-apiserver's validation_encryption.go rules)

interface KmsProvider {
  apiVersion?: string;
  name?: string;
  endpoint?: string;
  cachesize?: number;
  timeout?: string;
}
interface EncryptionConfiguration {
  apiVersion: string;
  kind: string;
  resources: { resources: string[]; providers: ({ kms?: KmsProvider } & Obj)[] }[];
}

const goDurationUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1e3,
  m: 6e4,
  h: 3.6e6,
};

/** Go's time.ParseDuration (as metav1.Duration parses it), in ms; NaN when invalid. */
function goDurationMs(raw: string): number {
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(raw)) return NaN;
  let total = 0;
  for (const m of raw.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * goDurationUnits[m[2]!]!;
  }
  return total;
}

/** The problems kube-apiserver would report for this file (empty when it would load it). */
function encryptionConfigProblems(config: EncryptionConfiguration): string[] {
  const problems: string[] = [];
  if (config.apiVersion !== "apiserver.config.k8s.io/v1")
    problems.push(`apiVersion ${config.apiVersion}`);
  if (config.kind !== "EncryptionConfiguration") problems.push(`kind ${config.kind}`);
  if (!Array.isArray(config.resources) || config.resources.length === 0)
    problems.push("no resources");
  const names = new Set<string>();
  for (const entry of config.resources) {
    if (entry.resources.length === 0) problems.push("a resources entry names no resource");
    if (entry.providers.length === 0) problems.push("a resources entry has no provider");
    for (const provider of entry.providers) {
      if (Object.keys(provider).length !== 1)
        problems.push(`a provider must have exactly one type`);
      const kms = provider.kms;
      if (kms === undefined) continue;
      const version = kms.apiVersion ?? "v1"; // omitted means v1
      if (version !== "v1" && version !== "v2") problems.push(`apiVersion ${version}`);
      if (kms.name === undefined || kms.name === "") problems.push("a kms provider without name");
      else {
        if (version === "v2" && kms.name.includes(":")) {
          problems.push(`invalid KMS provider name ${kms.name}, must not contain ':'`);
        }
        // Stricter than kube-apiserver (which checks v1 names only with automatic reload).
        if (names.has(kms.name)) problems.push(`duplicate KMS provider name ${kms.name}`);
        names.add(kms.name);
      }
      if (kms.endpoint === undefined || !kms.endpoint.startsWith("unix://")) {
        problems.push(`endpoint ${kms.endpoint}: only unix is supported`);
      }
      if (kms.timeout !== undefined && !(goDurationMs(kms.timeout) > 0)) {
        problems.push(`timeout ${kms.timeout} should be a positive value`);
      }
      if (version === "v2" && kms.cachesize !== undefined)
        problems.push("cachesize is not supported in v2");
      if (
        version === "v1" &&
        kms.cachesize !== undefined &&
        !(Number.isInteger(kms.cachesize) && kms.cachesize !== 0)
      ) {
        problems.push("cachesize should be a positive value, or negative to disable");
      }
    }
  }
  return problems;
}

describe("EncryptionConfiguration files", () => {
  const files = readdirSync(join(deployDir, "encryption-config"))
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const configs = new Map(
    files.map((f) => {
      const docs = readYaml(`${encryptionConfigDir}/${f}`);
      expect(docs).toHaveLength(1);
      return [f, docs[0] as unknown as EncryptionConfiguration] as const;
    }),
  );
  const kmsProviders = (c: EncryptionConfiguration) =>
    c.resources.flatMap((r) => r.providers.flatMap((p) => (p.kms === undefined ? [] : [p.kms])));

  it("has v2, v1, the v1 → v2 migration and the two-instance pair", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "v2.yaml",
        "v1.yaml",
        "v1-to-v2-migration.yaml",
        "two-instances.yaml",
      ]),
    );
  });

  it.each(files)("%s follows kube-apiserver's validation rules", (file) => {
    const config = configs.get(file)!;
    expect(encryptionConfigProblems(config)).toEqual([]);
    for (const kms of kmsProviders(config)) {
      expect(kms.timeout).toBe("3s");
      // v2 spelled out: an omitted apiVersion silently means v1.
      if (kms.cachesize === undefined) expect(kms.apiVersion).toBe("v2");
    }
  });

  it("the rule checks catch what kube-apiserver rejects", () => {
    const bad = (kms: KmsProvider): string[] =>
      encryptionConfigProblems({
        apiVersion: "apiserver.config.k8s.io/v1",
        kind: "EncryptionConfiguration",
        resources: [{ resources: ["secrets"], providers: [{ kms }] }],
      });
    const ok = {
      apiVersion: "v2",
      name: "p",
      endpoint: "unix:///opt/azurekms.socket",
      timeout: "3s",
    };
    expect(bad(ok)).toEqual([]);
    expect(bad({ ...ok, name: "a:b" })).toHaveLength(1);
    expect(bad({ ...ok, endpoint: "tcp://127.0.0.1:1" })).toHaveLength(1);
    expect(bad({ ...ok, timeout: "0s" })).toHaveLength(1);
    expect(bad({ ...ok, timeout: "3" })).toHaveLength(1);
    expect(bad({ ...ok, cachesize: 1000 })).toHaveLength(1);
    expect(bad({ ...ok, apiVersion: "v1", cachesize: 0 })).toHaveLength(1);
    expect(bad({ ...ok, apiVersion: "v1", cachesize: -1 })).toEqual([]);
  });

  it("every endpoint is the --listen-addr of a plugin instance in deploy/", () => {
    const listenAddrs = new Set(
      pluginInstances().map((i) => pluginFlags(pluginContainer(i.obj)).get("listen-addr")),
    );
    for (const [file, config] of configs) {
      for (const kms of kmsProviders(config)) {
        expect({
          file,
          endpoint: kms.endpoint,
          served: listenAddrs.has(kms.endpoint ?? ""),
        }).toEqual({
          file,
          endpoint: kms.endpoint,
          served: true,
        });
      }
    }
  });

  it("writes go to KMS v2 first; identity, if present, comes last", () => {
    for (const [file, config] of configs) {
      for (const { providers } of config.resources) {
        if (file !== "v1.yaml")
          expect({ file, first: providers[0]?.kms?.apiVersion }).toEqual({ file, first: "v2" });
        const identityAt = providers.findIndex((p) => "identity" in p);
        if (identityAt !== -1) expect(identityAt).toBe(providers.length - 1);
      }
    }
  });

  it("the v1 → v2 migration keeps the v1 provider for reads, on the same socket", () => {
    const [v2, v1] = kmsProviders(configs.get("v1-to-v2-migration.yaml")!);
    expect(v2?.apiVersion).toBe("v2");
    expect(v1?.apiVersion).toBeUndefined();
    expect(v1?.cachesize).toBeGreaterThan(0);
    // The v1 provider keeps the name its stored data carries (the Go plugin's default).
    expect(v1?.name).toBe(kmsProviders(configs.get("v1.yaml")!)[0]?.name);
    expect(v1?.endpoint).toBe(v2?.endpoint);
  });
});

withKubectl("kube-apiserver wiring (deploy/kube-apiserver)", () => {
  it("adds the flags and mounts the config directory and the socket directory", () => {
    const [pod] = renderKustomization("deploy/kube-apiserver");
    const spec = podSpecOf(pod!);
    const container = spec.containers[0]!;
    const command = container.command ?? [];
    const configFlag = command.find((c) => c.startsWith("--encryption-provider-config="));
    expect(configFlag).toBeDefined();
    expect(command).toContain("--encryption-provider-config-automatic-reload=true");
    const configPath = configFlag!.split("=")[1]!;
    expect(hostPathMountedAt(spec, container, dirname(configPath))).toBe(dirname(configPath));
    expect(container.volumeMounts?.find((m) => m.mountPath === dirname(configPath))?.readOnly).toBe(
      true,
    );
    // The socket of deploy/encryption-config/v2.yaml is reachable in kube-apiserver.
    const [kms] = readYaml(`${encryptionConfigDir}/v2.yaml`).flatMap((c) =>
      (c as unknown as EncryptionConfiguration).resources[0]!.providers.flatMap((p) =>
        p.kms ? [p.kms] : [],
      ),
    );
    const socketDir = dirname(kms!.endpoint!.slice("unix://".length));
    expect(hostPathMountedAt(spec, container, socketDir)).toBe(socketDir);
  });
});
