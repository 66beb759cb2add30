/** `--metrics-addr` as the Go plugin reads it (a bare port, bound on every interface) or host:port. */
export interface HttpAddress {
  /** Undefined: every interface, as the Go plugin's `":" + port`. */
  readonly host: string | undefined;
  readonly port: number;
}

export class HttpAddressError extends Error {
  override name = "HttpAddressError";
}

export function parseHttpAddress(flag: string, raw: string): HttpAddress {
  const value = raw.trim();
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):)?(\d{1,5})$/.exec(value);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) {
    throw new HttpAddressError(
      `invalid --${flag} "${raw}": a port (8095) or host:port (127.0.0.1:8095)`,
    );
  }
  const host = m[1] === undefined || m[1] === "" ? undefined : m[1].replace(/^\[|\]$/g, "");
  return { host, port };
}
