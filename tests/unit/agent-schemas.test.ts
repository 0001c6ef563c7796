import { describe, expect, test } from "bun:test";
import { endpointChangeRequestSchema, endpointSchema, parseWith } from "../../src/agent/api/schemas.ts";
import { endpointLabels, formatLabel, parseLabel } from "../../src/agent/endpoint/labels.ts";
import { formatEndpointReference, parseEndpointReference } from "../../src/agent/endpoint/reference.ts";
import { AgentError } from "../../src/agent/errors.ts";

const valid = {
  "container-id": "c0ffee",
  "container-interface-name": "eth0",
  "interface-name": "lxc1234",
  "interface-index": 7,
  mac: "0A:58:0A:C8:00:05",
  "host-mac": "0a:58:0a:c8:00:01",
  addressing: { ipv4: "10.200.0.5" },
};

function messageOf(value: unknown): string {
  try {
    parseWith(endpointChangeRequestSchema, value, "endpoint change request");
  } catch (error) {
    if (error instanceof AgentError && error.kind === "invalid") return error.message;
    throw error;
  }
  throw new Error("accepted");
}

describe("the endpoint change request schema", () => {
  test("accepts a CNI plugin's request, lower-casing MACs and dropping unknown fields", () => {
    const parsed = parseWith(endpointChangeRequestSchema, { ...valid, extra: true, labels: ["k8s:a=b"] }, "endpoint change request");
    expect(parsed.mac).toBe("0a:58:0a:c8:00:05");
    expect(parsed).not.toHaveProperty("extra");
  });

  test("names every bad field", () => {
    expect(messageOf({ ...valid, "container-id": undefined, "interface-index": 1.5 })).toBe(
      "invalid endpoint change request: container-id: is required; interface-index: expected int, received number",
    );
    expect(messageOf({ ...valid, addressing: { ipv4: "10.200.0" } })).toBe(
      "invalid endpoint change request: addressing.ipv4: must be an IPv4 address such as 10.200.0.5",
    );
    expect(messageOf({ ...valid, labels: ["ok", 3] })).toBe("invalid endpoint change request: labels[1]: expected string, received number");
    expect(messageOf({ ...valid, mac: "0a:58" })).toBe("invalid endpoint change request: mac: must be a MAC address such as 0a:58:0a:c8:00:05");
    expect(messageOf({ ...valid, "container-interface-name": "eth0:1" })).toContain("container-interface-name: must be an interface name");
    expect(messageOf({ ...valid, "interface-name": "a-very-long-ifname" })).toContain("interface-name: must be an interface name");
    expect(messageOf({ ...valid, "container-id": "-bad" })).toContain("container-id: must be letters, digits");
    expect(messageOf({ ...valid, "netns-path": "var/run/netns/x" })).toContain("netns-path: must be an absolute path");
    expect(messageOf([valid])).toBe("invalid endpoint change request: body: expected object, received array");
  });

  test("stored endpoint records are checked too", () => {
    const record = { ...valid, mac: "0a:58:0a:c8:00:05", id: 3, state: "ready", labels: [], "created-at": "2025-01-01T00:00:00.000Z" };
    expect(parseWith(endpointSchema, record, "endpoint record").id).toBe(3);
    expect(() => parseWith(endpointSchema, { ...record, state: "dancing" }, "endpoint record")).toThrow(/state: /);
  });
});

describe("labels", () => {
  test("source:key=value, with unspec as the default source and an optional value", () => {
    expect(parseLabel("k8s:app=web")).toEqual({ label: { source: "k8s", key: "app", value: "web" } });
    expect(parseLabel("app=web")).toEqual({ label: { source: "unspec", key: "app", value: "web" } });
    expect(parseLabel("reserved:host")).toEqual({ label: { source: "reserved", key: "host" } });
    expect(parseLabel("app=a:b")).toEqual({ label: { source: "unspec", key: "app", value: "a:b" } });
    expect(parseLabel("k8s:app.kubernetes.io/name=x")).toEqual({ label: { source: "k8s", key: "app.kubernetes.io/name", value: "x" } });
    expect(parseLabel("key=")).toEqual({ label: { source: "unspec", key: "key", value: "" } });
    expect(formatLabel({ source: "k8s", key: "a", value: "" })).toBe("k8s:a=");
  });

  test("problems in words", () => {
    expect(parseLabel("k8s:")).toEqual({ problem: "the key is empty" });
    expect(parseLabel("=x")).toEqual({ problem: "the key is empty" });
    expect(parseLabel("a b=c")).toEqual({ problem: "the key must not contain whitespace or control characters" });
    expect(parseLabel("a=b=c")).toEqual({ problem: "the value must not contain '=', whitespace or control characters" });
    expect(parseLabel(" k:a")).toEqual({ problem: `source " k" must be letters, digits, '.', '_' or '-'` });
  });

  test("an endpoint's labels: canonical, sorted, deduplicated, with the pod namespace", () => {
    expect(endpointLabels(["b=1", "k8s:a=2", "unspec:b=1"], "prod")).toEqual(["k8s:a=2", "k8s:io.kubernetes.pod.namespace=prod", "unspec:b=1"]);
    expect(() => endpointLabels(["b=1", "b=2"])).toThrow('labels[1] "b=2": unspec:b is given twice with different values');
  });
});

describe("endpoint references", () => {
  test("every upstream form round-trips", () => {
    for (const text of ["17", "container-id:abc", "cni-attachment-id:abc:eth0", "pod-name:default/web-0", "ipv4:10.200.0.5"]) {
      expect(formatEndpointReference(parseEndpointReference(text))).toBe(text);
    }
  });

  test("malformed ones are invalid, with the accepted forms", () => {
    expect(() => parseEndpointReference("65536")).toThrow('invalid endpoint ID "65536": a numeric endpoint ID must be 0-65535');
    expect(() => parseEndpointReference("container-id:")).toThrow("the container ID is empty");
    expect(() => parseEndpointReference("cni-attachment-id:a:b:c")).toThrow("expected cni-attachment-id:<container id>:<interface name>");
    expect(() => parseEndpointReference("pod-name:web")).toThrow("expected pod-name:<namespace>/<pod name>");
    expect(() => parseEndpointReference("ipv4:1.2.3")).toThrow('"1.2.3" is not an IPv4 address');
    expect(() => parseEndpointReference("abc")).toThrow("expected a numeric ID or one of the prefixes");
  });
});
