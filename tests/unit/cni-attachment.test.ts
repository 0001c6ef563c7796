import { describe, expect, test } from "bun:test";
import { attachmentKey, endpointId, hostInterfaceName } from "../../src/cni/attachment.ts";
import { validInterfaceName } from "../../src/cni/env.ts";
import { endpointLabels } from "../../src/cni/endpoint-request.ts";

const attachment = { containerId: "0123456789abcdef0123456789abcdef", ifname: "eth0" };

describe("attachment naming", () => {
  test("keys and endpoint ids follow the agent's cni-attachment-id form", () => {
    expect(attachmentKey(attachment)).toBe("0123456789abcdef0123456789abcdef:eth0");
    expect(endpointId(attachment)).toBe("cni-attachment-id:0123456789abcdef0123456789abcdef:eth0");
  });

  test("the host veth name is lxc + 11 hex digits of sha256(key), a valid interface name", () => {
    const expected = `lxc${new Bun.CryptoHasher("sha256").update("0123456789abcdef0123456789abcdef:eth0").digest("hex").slice(0, 11)}`;
    expect(hostInterfaceName(attachment)).toBe(expected);
    expect(hostInterfaceName(attachment)).toMatch(/^lxc[0-9a-f]{11}$/);
    expect(validInterfaceName(hostInterfaceName(attachment))).toBe(true);
  });

  test("names are deterministic, and differ per container and per interface", () => {
    expect(hostInterfaceName({ ...attachment })).toBe(hostInterfaceName(attachment));
    const names = new Set([
      hostInterfaceName(attachment),
      hostInterfaceName({ ...attachment, ifname: "net1" }),
      hostInterfaceName({ ...attachment, containerId: "other" }),
    ]);
    expect(names.size).toBe(3);
  });
});

describe("endpoint labels from CNI_ARGS and the network config", () => {
  test("carry the Kubernetes namespace (as a label too) and pod name, and the config's labels", () => {
    const args = new Map([
      ["IgnoreUnknown", "1"],
      ["K8S_POD_NAMESPACE", "shop"],
      ["K8S_POD_NAME", "web-0"],
    ]);
    expect(endpointLabels(args, ["app=web"])).toEqual({
      "k8s-namespace": "shop",
      "k8s-pod-name": "web-0",
      labels: ["k8s:io.kubernetes.pod.namespace=shop", "k8s:app=web"],
    });
  });

  test("a Kubernetes pod's labels carry source k8s, as upstream's; without a namespace they are unspec", () => {
    const k8s = new Map([["K8S_POD_NAMESPACE", "shop"]]);
    const labels = (cniArgs: Map<string, string>) => endpointLabels(cniArgs, ["app=web", "tier=front"]).labels;
    expect(labels(k8s)).toEqual(["k8s:io.kubernetes.pod.namespace=shop", "k8s:app=web", "k8s:tier=front"]);
    expect(labels(new Map([["K8S_POD_NAME", "web-0"]]))).toEqual(["unspec:app=web", "unspec:tier=front"]);
    expect(labels(new Map())).toEqual(["unspec:app=web", "unspec:tier=front"]);
  });

  test("without Kubernetes args or labels those fields are absent", () => {
    expect(endpointLabels(new Map(), [])).toEqual({});
  });
});
