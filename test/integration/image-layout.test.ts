/**
 * The image, as far as it can be checked without a Docker engine: the Dockerfile's structure
 * (stages, non-root user, no dev dependencies or shell use in the runtime stage, exec-form
 * ENTRYPOINT), and the runtime stage's contents rebuilt in a temp dir the way the Dockerfile builds
 * them (package.json + package-lock.json + dist/, `npm ci --omit=dev`, the build-info step): the
 * plugin starts with production dependencies only.
 *
 * `npm ci --prefer-offline` uses the npm cache (filled by the repository's own `npm ci`) and only
 * asks the registry for what is missing from it.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { serveFlags } from "../../src/config/index.js";
import { repoRoot } from "../helpers/manifests.js";

const run = promisify(execFile);

interface Instruction {
  readonly op: string;
  readonly args: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile instructions: comments dropped, `\` continuations joined. */
function instructions(text: string): Instruction[] {
  const logical = text
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ");
  return logical
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const m = /^(\S+)\s+(.*)$/.exec(line);
      return { op: (m?.[1] ?? line).toUpperCase(), args: m?.[2] ?? "" };
    });
}

/** Stages, with FROM images resolved through the global ARG defaults. */
function stages(all: readonly Instruction[]): Stage[] {
  const globalArgs = new Map<string, string>();
  const out: Stage[] = [];
  for (const ins of all) {
    if (ins.op === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      const image = (m?.[1] ?? "").replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_s, a?: string, b?: string) => globalArgs.get(a ?? b ?? "") ?? "",
      );
      out.push({ from: image, name: m?.[2], instructions: [] });
    } else if (out.length === 0) {
      const arg = /^(\w+)=(.*)$/.exec(ins.args);
      if (ins.op === "ARG" && arg) globalArgs.set(arg[1]!, arg[2]!);
    } else {
      out[out.length - 1]!.instructions.push(ins);
    }
  }
  return out;
}

const dockerfile = await readFile(join(repoRoot, "Dockerfile"), "utf8");
const nodeMajor = (await readFile(join(repoRoot, ".nvmrc"), "utf8")).trim();
const all = instructions(dockerfile);
const allStages = stages(all);
const runtime = allStages[allStages.length - 1]!;
const ops = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);
const stageNamed = (name: string) => allStages.find((s) => s.name === name);
const buildInfoStep = allStages
  .flatMap((s) => ops(s, "RUN"))
  .find((i) => i.args.includes("build-info.json"));

describe("Dockerfile", () => {
  it("builds and runs on the Node major that .nvmrc names and these tests run on", () => {
    expect(process.versions.node.split(".")[0]).toBe(nodeMajor);
    expect(allStages.length).toBeGreaterThanOrEqual(2);
    for (const stage of allStages.slice(0, -1)) {
      expect(stage.from).toMatch(new RegExp(`^node:${nodeMajor}-bookworm-slim$`));
    }
    expect(runtime.from).toBe(`gcr.io/distroless/nodejs${nodeMajor}-debian12:nonroot`);
    const builder = allStages.find((s) =>
      ops(s, "RUN").some((r) => r.args.includes("npm run build")),
    );
    expect(builder).toBeDefined();
    expect(ops(builder!, "RUN").some((r) => /^npm ci\b/.test(r.args))).toBe(true);
  });

  it("installs production dependencies only into the runtime image", () => {
    const copies = ops(runtime, "COPY");
    const modules = copies.find((c) => /\bnode_modules\b/.test(c.args));
    const from = /--from=(\S+)/.exec(modules?.args ?? "")?.[1];
    expect(from).toBeDefined();
    const deps = stageNamed(from!)!;
    const installs = ops(deps, "RUN").filter((r) => /\bnpm (ci|install|i)\b/.test(r.args));
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install.args).toMatch(/--omit=dev/);
    // dist/ comes from the build stage; nothing else brings a node_modules along.
    expect(copies.some((c) => /--from=\S+\s+\S*dist\b/.test(c.args))).toBe(true);
    expect(copies.filter((c) => /node_modules/.test(c.args))).toHaveLength(1);
  });

  it("runs no shell command in the runtime stage (distroless has no shell)", () => {
    expect(ops(runtime, "RUN")).toEqual([]);
    expect(runtime.instructions.map((i) => i.args).join("\n")).not.toMatch(
      /\bnpm (ci|install|i)\b/,
    );
  });

  it("runs as a numeric non-root user, so kubelet can enforce runAsNonRoot", () => {
    const users = ops(runtime, "USER");
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1]!.args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
  });

  it("starts dist/cli.js with an exec-form ENTRYPOINT", () => {
    const entrypoints = ops(runtime, "ENTRYPOINT");
    expect(entrypoints).toHaveLength(1);
    const argv = JSON.parse(entrypoints[0]!.args) as unknown;
    expect(Array.isArray(argv)).toBe(true);
    const words = argv as string[];
    expect(words[0]).toMatch(/\/node$/);
    // Node options (the bench reads them from here), then the CLI.
    const cli = words.findIndex((w) => /dist\/cli\.js$/.test(w));
    expect(cli).toBeGreaterThan(0);
    for (const flag of words.slice(1, cli)) expect(flag).toMatch(/^--[a-z-]+(=\S+)?$/);
    expect(words.slice(1, cli)).toContain("--max-semi-space-size=4");
    for (const cmd of ops(runtime, "CMD"))
      expect(() => JSON.parse(cmd.args) as unknown).not.toThrow();
  });

  it("exposes the plugin's default metrics and health ports", () => {
    const defaultOf = (name: string) => serveFlags.find((f) => f.name === name)!.default;
    const exposed = ops(runtime, "EXPOSE").flatMap((e) => e.args.split(/\s+/));
    expect(exposed.sort()).toEqual([defaultOf("metrics-addr"), defaultOf("healthz-port")].sort());
  });

  it("stamps --version from GIT_COMMIT and BUILD_DATE build args", () => {
    expect(buildInfoStep?.args).toMatch(/GIT_COMMIT/);
    expect(buildInfoStep?.args).toMatch(/BUILD_DATE/);
    const args = all.filter((i) => i.op === "ARG").map((i) => i.args.split("=")[0]);
    expect(args).toEqual(expect.arrayContaining(["GIT_COMMIT", "BUILD_DATE"]));
  });

  it(".dockerignore sends only what the build copies", async () => {
    const lines = (await readFile(join(repoRoot, ".dockerignore"), "utf8"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    expect(lines[0]).toBe("*");
    const included = lines
      .filter((l) => l.startsWith("!"))
      .map((l) => l.slice(1).replace(/\/$/, ""));
    const sources = allStages
      .flatMap((s) => ops(s, "COPY"))
      .filter((c) => !c.args.startsWith("--from"))
      .flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    for (const source of sources) expect(included).toContain(source.replace(/\/$/, ""));
    expect(included).not.toContain("node_modules");
    expect(included).not.toContain("dist");
  });
});

describe("the plugin's npm package", () => {
  it("holds the plugin's dist/ and no emulator", async () => {
    const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: repoRoot,
      timeout: 60_000,
    });
    const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const files = pack?.files.map((f) => f.path) ?? [];
    expect(files.length).toBeGreaterThan(20);
    const outside = files.filter((f) => !f.startsWith("dist/") && !/^[^/]+$/.test(f));
    expect(outside).toEqual([]);
    // The `emulator` command's flags and loader only (it reports the emulator missing).
    expect(files.filter((f) => /emulator/.test(f))).toEqual([
      "dist/commands/emulator.js",
      "dist/commands/emulator.js.map",
    ]);
  });
});

describe("the runtime stage's contents, rebuilt without Docker", () => {
  let dir = "";
  const node = (args: string[]) =>
    run(process.execPath, args, { cwd: dir, timeout: 30_000, encoding: "utf8" });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kvkms-image-"));
    for (const file of ["package.json", "package-lock.json"]) {
      await cp(join(repoRoot, file), join(dir, file));
    }
    await cp(join(repoRoot, "dist"), join(dir, "dist"), { recursive: true });
    // The Dockerfile's own build-info step, run as the build stage runs it.
    await run("sh", ["-c", buildInfoStep!.args], {
      cwd: dir,
      env: { ...process.env, GIT_COMMIT: "0123abc", BUILD_DATE: "2026-01-02T03:04:05Z" },
    });
    await run(
      "npm",
      ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
      { cwd: dir, timeout: 110_000, env: { ...process.env, NODE_ENV: "production" } },
    );
  }, 120_000);

  afterAll(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it("holds no dev dependency, and npm ls --omit=dev is satisfied", async () => {
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as {
      devDependencies: Record<string, string>;
    };
    // What the production tree needs anyway (e.g. @types/node, through protobufjs) may stay.
    const { stdout } = await run("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
      cwd: dir,
      timeout: 30_000,
    });
    const production = new Set(
      stdout
        .split("\n")
        .map((line) => /node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(line.trim())?.[1])
        .filter((name) => name !== undefined),
    );
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => !production.has(name));
    expect(devOnly).toEqual(expect.arrayContaining(["typescript", "jest", "kubernetes-models"]));
    for (const dev of devOnly) {
      await expect(stat(join(dir, "node_modules", dev))).rejects.toMatchObject({ code: "ENOENT" });
    }
  });

  it("--version prints the stamped build information", async () => {
    const { stdout } = await node(["dist/cli.js", "--version"]);
    const version = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as {
      version: string;
    };
    expect(JSON.parse(stdout)).toEqual({
      BuildVersion: version.version,
      GitCommit: "0123abc",
      BuildDate: "2026-01-02T03:04:05Z",
    });
  });

  it("serve --help lists the flags", async () => {
    const { stdout, stderr } = await node(["dist/cli.js", "serve", "--help"]);
    expect(`${stdout}${stderr}`).toContain("listen-addr");
  });

  it("holds no emulator: the emulator and dev commands say it is not installed", async () => {
    await expect(stat(join(dir, "dist", "emulator"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(join(dir, "node_modules", "@keyvault-kms"))).rejects.toMatchObject({
      code: "ENOENT",
    });
    for (const command of [["emulator", "--state-dir", join(dir, "emu")], ["dev"]]) {
      const failed = await node(["dist/cli.js", ...command]).then(
        () => undefined,
        (err: unknown) => err as { code?: number; stderr?: string },
      );
      expect(failed?.code).toBe(2);
      expect(failed?.stderr).toContain("the Key Vault emulator is not part of this installation");
    }
  });

  it("every compiled module loads with production dependencies only", async () => {
    const files: string[] = [];
    const walk = async (sub: string): Promise<void> => {
      for (const entry of await readdir(join(dir, sub), { withFileTypes: true })) {
        const rel = join(sub, entry.name);
        if (entry.isDirectory()) await walk(rel);
        else if (entry.name.endsWith(".js") && rel !== join("dist", "cli.js")) files.push(rel);
      }
    };
    await walk("dist");
    expect(files.length).toBeGreaterThan(20);
    const script = `for (const f of ${JSON.stringify(files)}) await import("./" + f);`;
    await expect(node(["--input-type=module", "-e", script])).resolves.toBeDefined();
  });
});
