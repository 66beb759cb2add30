import { readFileSync } from "node:fs";

/** The soft open-file limit (`ulimit -n`) from /proc/self/limits, or undefined off Linux. */
export function openFileLimit(): number | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/self/limits", "utf8");
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(text)?.[1];
  if (soft === undefined) return undefined;
  return soft === "unlimited" ? Infinity : Number(soft);
}

/** Descriptors besides the listeners' connections: stdio, epoll, Key Vault and token sockets. */
export const baseDescriptors = 64;
