#!/usr/bin/env node
import { asksForHelp, type FlagSpec } from "./config/flags.js";
import { exitCodes, type Command, type CommandIo } from "./commands/io.js";

interface LoadedCommand {
  readonly run: Command;
  readonly usage: () => string;
  readonly flags: readonly FlagSpec[];
}

interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<LoadedCommand>;
}

// Loaded on demand: `client` must not pay for the Azure SDK, nor `serve` for the emulator.
const commands: Record<string, CommandEntry> = {
  serve: {
    summary: "serve the KMS socket (the default: the Go plugin's command lines work unchanged)",
    load: async () => {
      const [{ serveCommand }, { serveFlags, serveUsage }] = await Promise.all([
        import("./commands/serve.js"),
        import("./config/serve-flags.js"),
      ]);
      return { run: serveCommand, usage: serveUsage, flags: serveFlags };
    },
  },
  doctor: {
    summary: "check serve's configuration against Key Vault, one verdict per line",
    load: async () => {
      const [{ doctorCommand, doctorUsage }, { serveFlags }] = await Promise.all([
        import("./commands/doctor.js"),
        import("./config/serve-flags.js"),
      ]);
      return { run: doctorCommand, usage: doctorUsage, flags: serveFlags };
    },
  },
  client: {
    summary: "call a running plugin: status, encrypt, decrypt",
    load: async () => {
      const m = await import("./commands/client.js");
      return { run: m.clientCommand, usage: m.clientUsage, flags: m.clientFlags };
    },
  },
  dev: {
    summary: "the plugin against the embedded Key Vault emulator (what npm start runs)",
    load: async () => {
      const m = await import("./commands/dev.js");
      return { run: m.devCommand, usage: m.devUsage, flags: m.devFlags };
    },
  },
  emulator: {
    summary: "the Key Vault + Entra ID emulator alone, for tests and demos",
    load: async () => {
      const m = await import("./commands/emulator.js");
      return { run: m.emulatorCommand, usage: m.emulatorUsage, flags: m.emulatorFlags };
    },
  },
};

const helpWords = new Set(["help", "-h", "--h", "-help", "--help"]);

async function overview(): Promise<string> {
  const names = Object.keys(commands);
  const width = Math.max(...names.map((n) => n.length)) + 2;
  const rows = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}${c.summary}`);
  const serve = await commands["serve"]?.load();
  return (
    "Usage: keyvault-kms [command] [flags]\n\n" +
    "A Kubernetes KMS v2 plugin that keeps kube-apiserver's keys sealed under Azure Key Vault.\n\n" +
    `Commands:\n${rows.join("\n")}\n  ${"help".padEnd(width)}this help; help <command> for a command's flags\n\n` +
    "Each command takes -h or --help. With no command, or a flag first, the command is serve:\n\n" +
    (serve?.usage() ?? "")
  );
}

/** The only module that touches process.*: arguments, signals, streams and the exit code. */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const first = argv[0];
  if (first !== undefined && helpWords.has(first)) {
    // `help <command>`; a flag after it (`--help --key-name k`) asks for the overview.
    const topic = argv[1]?.startsWith("-") === true ? undefined : argv[1];
    const entry = topic === undefined ? undefined : commands[topic];
    if (topic !== undefined && entry === undefined) {
      process.stderr.write(
        `keyvault-kms: no help for "${topic}": ${Object.keys(commands).join(", ")}\n`,
      );
      return exitCodes.usage;
    }
    process.stdout.write(entry === undefined ? await overview() : (await entry.load()).usage());
    return exitCodes.ok;
  }
  // No subcommand, or a flag first: `serve`, so the Go plugin's command lines work unchanged.
  const name = first === undefined || first.startsWith("-") ? "serve" : first;
  const entry = commands[name];
  const rest = first === name ? argv.slice(1) : argv;
  if (entry === undefined) {
    process.stderr.write(
      `keyvault-kms: unknown command "${name}" (${Object.keys(commands).join(", ")}; keyvault-kms --help)\n`,
    );
    return exitCodes.usage;
  }
  const loaded = await entry.load();
  // `client status --help` and `client help` too: the scan passes over the action word.
  const [word] = rest;
  if ((word !== undefined && helpWords.has(word)) || asksForHelp(rest, loaded.flags)) {
    process.stdout.write(loaded.usage());
    return exitCodes.ok;
  }
  const command = loaded.run;
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      process.stderr.write(`keyvault-kms: second ${signal}, exiting now\n`);
      process.exit(exitCodes.failed);
    }
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // Without a listener, SIGUSR1 opens Node's inspector on 127.0.0.1:9229, and whoever reaches that
  // port (anyone on the node, with the host network of a static pod) can read the seeds out of
  // memory or run code in the plugin. A listener replaces that default. To debug, start with
  // --inspect instead.
  process.on("SIGUSR1", () => {
    process.stderr.write("keyvault-kms: SIGUSR1 ignored: the inspector is not opened on signal\n");
  });
  const io: CommandIo = {
    env: process.env,
    cwd: process.cwd(),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    stop: stop.signal,
    stdin: process.stdin,
  };
  return command(rest, io);
}

// Exit explicitly: idle keep-alive sockets of the Azure SDK must not hold a stopped plugin open.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`keyvault-kms: unexpected failure: ${String(err)}\n`);
    process.exit(exitCodes.failed);
  },
);
