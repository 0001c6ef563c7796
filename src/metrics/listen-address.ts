/**
 * Listen addresses as upstream's metrics flags take them (Go's net.Listen form): "host:port",
 * ":port" for every address, "[v6]:port". Pure, so config parsing can check them up front.
 */

export interface ListenAddress {
  /** Undefined: every address of the host. */
  hostname?: string;
  /** 0 asks the kernel for a free port. */
  port: number;
}

/** The address, or a problem phrased to follow the flag and its value. */
export function parseListenAddress(text: string): { value: ListenAddress } | { problem: string } {
  const value = text.trim();
  const colon = value.lastIndexOf(":");
  if (colon < 0) return { problem: 'must be "host:port" or ":port" (e.g. ":9962")' };
  let host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) return { problem: `port "${portText}" must be a number from 0 to 65535` };
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  else if (host.includes(":")) return { problem: 'an IPv6 host must be in brackets, e.g. "[::1]:9962"' };
  if (host !== "" && !/^[A-Za-z0-9.:_-]+$/.test(host)) return { problem: `host "${host}" is not an IP address or host name` };
  return { value: host === "" ? { port: Number(portText) } : { hostname: host, port: Number(portText) } };
}
