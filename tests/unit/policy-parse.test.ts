import { describe, expect, test } from "bun:test";
import { LabelSet } from "../../src/identity/labels.ts";
import { formatCidr } from "../../src/net/ipv4.ts";
import { PolicyValidationError } from "../../src/policy/errors.ts";
import { parsePolicyDocuments, parsePolicyText } from "../../src/policy/parse.ts";
import { Repository } from "../../src/policy/repository.ts";
import type { PeerRule, Rule } from "../../src/policy/rule.ts";
import { SelectorCache } from "../../src/policy/selector-cache.ts";

/** The messages of a refused import. */
function problems(input: string | unknown[]): string[] {
  try {
    if (typeof input === "string") parsePolicyText(input);
    else parsePolicyDocuments(input);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyValidationError);
    return (error as PolicyValidationError).message.split("\n").filter((l) => !/^\d+ problems:$/.test(l));
  }
  throw new Error("the input was accepted");
}

/** Problems of one bare rule. */
const ruleProblems = (rule: object) => problems(JSON.stringify([rule]));
const base = { endpointSelector: { matchLabels: { app: "db" } } };
const ingress = (section: object) => ruleProblems({ ...base, ingress: [section] });
const ports = (...list: object[]) => ingress({ toPorts: [{ ports: list }] });

describe("validation names the field", () => {
  test("ports", () => {
    expect(ports({ port: "99999" })).toEqual(['[0].ingress[0].toPorts[0].ports[0].port: must be 0-65535, not string "99999"']);
    expect(ports({ port: -1 })).toEqual(["[0].ingress[0].toPorts[0].ports[0].port: must be 0-65535, not number -1"]);
    expect(ports({ port: "http" })).toEqual(['[0].ingress[0].toPorts[0].ports[0].port: port name "http" is not supported yet: give the port number']);
    expect(ports({ protocol: "TCP" })).toEqual(["[0].ingress[0].toPorts[0].ports[0].port: required: a port number, or 0 for every port"]);
    expect(ports({ port: "80", protocol: "ICMP" })).toEqual(['[0].ingress[0].toPorts[0].ports[0].protocol: must be one of TCP, UDP, SCTP, ANY, not string "ICMP" (use icmps for ICMP)']);
    expect(ports({ port: "80", protocol: "GRE" })).toEqual(['[0].ingress[0].toPorts[0].ports[0].protocol: must be one of TCP, UDP, SCTP, ANY, not string "GRE"']);
    expect(ports({ port: "80", endPort: 79 })).toEqual(["[0].ingress[0].toPorts[0].ports[0].endPort: must not be less than port (80)"]);
    expect(ports({ port: "0", endPort: 79 })).toEqual(["[0].ingress[0].toPorts[0].ports[0].endPort: needs a port: port 0 already means every port"]);
    expect(ports({ port: "80", endPort: 70000 })).toEqual(["[0].ingress[0].toPorts[0].ports[0].endPort: must be 1-65535, not number 70000"]);
    expect(ports({ port: "80", endPort: "90" })).toEqual(['[0].ingress[0].toPorts[0].ports[0].endPort: must be 1-65535, not string "90"']);
    expect(ports({ port: "80", name: "x" })).toEqual(["[0].ingress[0].toPorts[0].ports[0].name: unknown field"]);
    expect(ingress({ toPorts: [{ ports: [] }] })).toEqual(["[0].ingress[0].toPorts[0].ports: required: at least one {port, protocol}"]);
    expect(ingress({ toPorts: [{ ports: Array.from({ length: 41 }, (_, i) => ({ port: String(i + 1) })) }] })).toEqual([
      "[0].ingress[0].toPorts[0].ports: too many ports: 41, the maximum is 40",
    ]);
  });

  test("L7 and other upstream features this implementation does not enforce are refused by name", () => {
    expect(ingress({ toPorts: [{ ports: [{ port: "80" }], rules: { http: [{ method: "GET" }] } }] })).toEqual([
      "[0].ingress[0].toPorts[0].rules: not supported: L7 (HTTP, Kafka, DNS) rules are not implemented yet",
    ]);
    expect(ruleProblems({ ...base, egress: [{ toFQDNs: [{ matchName: "example.com" }] }] })).toEqual(["[0].egress[0].toFQDNs: not supported: DNS-based policy is not implemented yet"]);
    expect(ruleProblems({ ...base, egress: [{ toServices: [] }] })).toEqual(["[0].egress[0].toServices: not supported: service selectors are not implemented yet"]);
    expect(ingress({ fromRequires: [{}] })).toEqual(["[0].ingress[0].fromRequires: not supported: fromRequires is deprecated upstream and not implemented"]);
    expect(ruleProblems({ nodeSelector: {} })).toEqual([
      "[0].nodeSelector: not supported: host policies (nodeSelector) are not implemented yet",
      "[0].endpointSelector: required: the endpoints this rule applies to ({} selects all)",
    ]);
  });

  test("unknown fields, with a suggestion when one is close", () => {
    expect(ingress({ fromEndpoint: [{}] })).toEqual(['[0].ingress[0].fromEndpoint: unknown field (did you mean "fromEndpoints"?)']);
    expect(ruleProblems({ ...base, Ingress: [] })).toEqual(['[0].Ingress: unknown field (did you mean "ingress"?)']);
    expect(ruleProblems({ ...base, egress: [{ toCidr: ["10.0.0.0/8"] }] })).toEqual(['[0].egress[0].toCidr: unknown field (did you mean "toCIDR"?)']);
    expect(ruleProblems({ ...base, whatever: 1 })).toEqual(["[0].whatever: unknown field"]);
    // fromX fields are ingress only.
    expect(ruleProblems({ ...base, egress: [{ fromEndpoints: [{}] }] })).toEqual(["[0].egress[0].fromEndpoints: unknown field: fromEndpoints is for ingress; egress uses toEndpoints"]);
    expect(ingress({ toCIDRSet: [] })).toEqual(["[0].ingress[0].toCIDRSet: unknown field: toCIDRSet is for egress; ingress uses fromCIDRSet"]);
  });

  test("peers: one kind per section, known entities, valid CIDRs", () => {
    expect(ingress({ fromEndpoints: [{}], fromCIDR: ["10.0.0.0/8"] })).toEqual([
      "[0].ingress[0]: fromEndpoints and fromCIDR cannot be combined in one rule (as upstream): write one rule for each",
    ]);
    expect(ingress({ fromEntities: ["world", "everything"] })).toEqual([
      '[0].ingress[0].fromEntities[1]: unknown entity string "everything": expected one of all, world, cluster, host, remote-node, init, health, unmanaged, kube-apiserver, ingress, none',
    ]);
    expect(ingress({ fromCIDR: ["10.0.0.1/8"] })).toEqual(['[0].ingress[0].fromCIDR[0]: "10.0.0.1/8" has host bits set: the network is 10.0.0.0/8']);
    expect(ingress({ fromCIDR: ["10.0.0.0/33"] })).toEqual(['[0].ingress[0].fromCIDR[0]: "10.0.0.0/33": prefix length must be 0-32']);
    expect(ingress({ fromCIDR: ["2001:db8::/32"] })).toEqual(['[0].ingress[0].fromCIDR[0]: "2001:db8::/32": IPv6 is not supported yet']);
    expect(ingress({ fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["192.168.0.0/16", "10.1.0.0/16"] }] })).toEqual([
      "[0].ingress[0].fromCIDRSet[0].except[0]: 192.168.0.0/16 is not inside 10.0.0.0/8",
    ]);
    expect(ingress({ fromCIDRSet: [{ cidr: "10.0.0.0/16", except: ["10.0.0.0/8"] }] })).toEqual(["[0].ingress[0].fromCIDRSet[0].except[0]: 10.0.0.0/8 is not inside 10.0.0.0/16"]);
    expect(ingress({ fromCIDRSet: [{ except: ["10.0.0.0/8"] }] })).toEqual(["[0].ingress[0].fromCIDRSet[0].cidr: required: a CIDR prefix"]);
    expect(ingress({ fromCIDRSet: [{ cidr: "10.0.0.5" }] })).toEqual(['[0].ingress[0].fromCIDRSet[0].cidr: "10.0.0.5" is not a CIDR: expected address/prefix-length']);
    expect(ingress({ fromEndpoints: [{ matchLabels: { app: 5 } }] })).toEqual(["[0].ingress[0].fromEndpoints[0].matchLabels.app: must be a string, not number 5 (quote it)"]);
    expect(ingress({ fromEndpoints: {} })).toEqual(["[0].ingress[0].fromEndpoints: must be a list, not an object"]);
  });

  test("icmps", () => {
    expect(ingress({ icmps: [{ fields: [{ type: 256 }] }] })).toEqual(["[0].ingress[0].icmps[0].fields[0].type: must be 0-255 or an IPv4 ICMP type name, not number 256"]);
    expect(ingress({ icmps: [{ fields: [{ type: "PacketTooBig" }] }] })).toEqual([
      '[0].ingress[0].icmps[0].fields[0].type: must be 0-255 or an IPv4 ICMP type name, not string "PacketTooBig"',
    ]);
    expect(ingress({ icmps: [{ fields: [{ type: 8, family: "IPv5" }] }] })).toEqual(['[0].ingress[0].icmps[0].fields[0].family: must be IPv4 or IPv6, not string "IPv5"']);
    expect(ingress({ icmps: [{ fields: [{ family: "IPv4" }] }] })).toEqual(["[0].ingress[0].icmps[0].fields[0].type: required: an ICMP type number or name"]);
    expect(ingress({ icmps: [{ fields: [{ type: 8 }] }], toPorts: [{ ports: [{ port: "80" }] }] })).toEqual([
      "[0].ingress[0]: icmps and toPorts cannot be combined in one rule (as upstream): write one rule for each",
    ]);
  });

  test("rule level: selector required, types of description, labels, enableDefaultDeny", () => {
    expect(ruleProblems({ ingress: [] })).toEqual(["[0].endpointSelector: required: the endpoints this rule applies to ({} selects all)"]);
    expect(ruleProblems({ ...base, description: 5 })).toEqual(["[0].description: must be a string, not number 5"]);
    expect(ruleProblems({ ...base, enableDefaultDeny: { ingress: "no" } })).toEqual(['[0].enableDefaultDeny.ingress: must be true or false, not string "no"']);
    expect(ruleProblems({ ...base, enableDefaultDeny: { both: true } })).toEqual(["[0].enableDefaultDeny.both: unknown field"]);
    expect(ruleProblems({ ...base, labels: ["a=1", "a=2"] })).toEqual(['[0].labels: labels: unspec:a is given twice, with values "1" and "2"']);
    expect(ruleProblems({ ...base, labels: [{ value: "x" }] })).toEqual(["[0].labels[0].key: required: the label key"]);
    expect(ruleProblems({ ...base, ingress: {} })).toEqual(["[0].ingress: must be a list, not an object"]);
    expect(ruleProblems({ ...base, ingress: [5] })).toEqual(["[0].ingress[0]: must be an object, not number 5"]);
  });

  test("every problem is listed, not just the first", () => {
    const messages = ruleProblems({ ...base, ingress: [{ fromEntities: ["x"] }, { toPorts: [{ ports: [{ port: "x!" }] }] }], egress: [{ toCIDR: ["nope"] }] });
    expect(messages).toEqual([
      '[0].ingress[0].fromEntities[0]: unknown entity string "x": expected one of all, world, cluster, host, remote-node, init, health, unmanaged, kube-apiserver, ingress, none',
      '[0].ingress[1].toPorts[0].ports[0].port: must be 0-65535, not string "x!"',
      '[0].egress[0].toCIDR[0]: "nope" is not an IPv4 address',
    ]);
  });
});

describe("documents", () => {
  const cnp = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: db
  namespace: prod
  uid: "1234"
  labels: {team: x}
  annotations: {note: ignored}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
specs:
- endpointSelector: {matchLabels: {app: cache}}
  labels: [k8s:extra=yes]
  egress: [{toEntities: [world]}]
`;

  test("CiliumNetworkPolicy: spec and specs, derived labels, namespace scoping", () => {
    const rules = parsePolicyText(cnp);
    expect(rules).toHaveLength(2);
    expect(rules[0]!.labels.toStrings()).toEqual([
      "k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy",
      "k8s:io.cilium.k8s.policy.name=db",
      "k8s:io.cilium.k8s.policy.namespace=prod",
      "k8s:io.cilium.k8s.policy.uid=1234",
    ]);
    expect(rules[1]!.labels.toStrings()).toContain("k8s:extra=yes");
    expect(rules[0]!.endpointSelector.toString()).toBe("{any:app=db, k8s:io.kubernetes.pod.namespace=prod}");
    expect((rules[0]!.ingress[0]!.peers as { selectors: { toString(): string }[] }).selectors.map(String)).toEqual(["{any:app=web, k8s:io.kubernetes.pod.namespace=prod}"]);
  });

  test("a CNP without a namespace is in default; a clusterwide one is not scoped", () => {
    const [rule] = parsePolicyText("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec: {endpointSelector: {}}");
    expect(rule!.endpointSelector.toString()).toBe("{k8s:io.kubernetes.pod.namespace=default}");
    const [ccnp] = parsePolicyText(
      "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: a, namespace: ignored}\nspec: {endpointSelector: {}, ingress: [{fromEndpoints: [{matchLabels: {app: x}}]}]}",
    );
    expect(ccnp!.endpointSelector.toString()).toBe("{}");
    expect(ccnp!.labels.toStrings()).toEqual(["k8s:io.cilium.k8s.policy.derived-from=CiliumClusterwideNetworkPolicy", "k8s:io.cilium.k8s.policy.name=a"]);
    expect((ccnp!.ingress[0]!.peers as { selectors: object[] }).selectors.map(String)).toEqual(["{any:app=x, k8s:io.kubernetes.pod.namespace}"]);
  });

  test("policy-level problems name their fields", () => {
    expect(problems("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {namespace: x}\nspec: {endpointSelector: {}}")).toEqual([
      "metadata.name: required: the policy's name",
    ]);
    expect(problems("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}")).toEqual(["spec or specs is required (a policy without rules)"]);
    expect(problems("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspecs:\n- endpointSelector: {}\n- endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 70000}]}]}]")).toEqual([
      "specs[1].ingress[0].toPorts[0].ports[0].port: must be 0-65535, not number 70000",
    ]);
    expect(problems("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {endpointSelector: {}}\nextra: 1")).toEqual(["extra: unknown field"]);
    expect(problems("apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: x}")).toEqual([
      'unsupported kind string "CiliumNetworkPolicy" of apiVersion string "cilium.io/v1": expected CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (cilium.io/v2), NetworkPolicy (networking.k8s.io/v1), or bare rules',
    ]);
  });

  test("several YAML documents: all or nothing, problems say which document", () => {
    const good = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec: {endpointSelector: {}}";
    expect(parsePolicyText(`${good}\n---\n${good.replace("name: a", "name: b")}\n---\n`)).toHaveLength(2);
    expect(problems(`${good}\n---\n${good.replace("endpointSelector: {}", "endpointSelector: {matchLabels: {a: [1]}}")}`)).toEqual([
      "document 2: spec.endpointSelector.matchLabels.a: must be a string, not a list (quote it)",
    ]);
  });

  test("a List of policies, as kubectl prints", () => {
    const list = {
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy", metadata: { name: "a" }, spec: { endpointSelector: {} } },
        { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "b" }, spec: { podSelector: {}, policyTypes: ["Egress"] } },
      ],
    };
    expect(parsePolicyText(JSON.stringify(list))).toHaveLength(2);
    list.items[1]!.spec = { podSelector: {}, policyTypes: ["Sideways"] } as never;
    expect(problems(JSON.stringify(list))).toEqual(['items[1].spec.policyTypes[0]: must be Ingress or Egress, not string "Sideways"']);
  });

  test("bare rules: one object or a list, JSON or YAML", () => {
    expect(parsePolicyText('{"endpointSelector": {}}')).toHaveLength(1);
    expect(parsePolicyText("- endpointSelector: {}\n- endpointSelector: {matchLabels: {a: b}}")).toHaveLength(2);
    const [rule] = parsePolicyText('[{"endpointSelector": {"matchLabels": {"app": "x"}}, "ingress": [{"fromEndpoints": [{}]}]}]');
    expect(rule!.endpointSelector.toString()).toBe("{any:app=x}"); // no namespace for bare rules
  });

  test("broken input", () => {
    expect(problems("[{")[0]).toStartWith("invalid JSON:");
    expect(problems("a: [1,\n")[0]).toStartWith("invalid YAML:");
    expect(problems("endpointSelector: {}\nendpointSelector: {}\n")[0]).toMatch(/^invalid YAML: Map keys must be unique \(line 2, column 1\)$/);
    expect(problems("")).toEqual(["no rules in the input"]);
    expect(problems("[]")).toEqual(["no rules in the input"]);
    expect(problems("just text")).toEqual(['must be an object, not string "just text"']);
  });

  test("an invalid import changes nothing in the repository", () => {
    const repo = new Repository(new SelectorCache());
    repo.add(parsePolicyText('{"endpointSelector": {}, "ingress": [{}]}'));
    const revision = repo.revision;
    const text = '[{"endpointSelector": {"matchLabels": {"a": "b"}}}, {"endpointSelector": {}, "ingress": [{"fromEntities": ["moon"]}]}]';
    let imported = false;
    try {
      repo.add(parsePolicyText(text));
      imported = true;
    } catch (error) {
      expect((error as Error).message).toContain("[1].ingress[0].fromEntities[0]");
    }
    expect(imported).toBe(false);
    expect(repo.revision).toBe(revision);
    expect(repo.size).toBe(1);
  });
});

describe("the rule model", () => {
  const one = (rule: object): Rule => parsePolicyText(JSON.stringify(rule))[0]!;

  test("default deny follows upstream Rule.Sanitize", () => {
    expect(one({ endpointSelector: {} }).defaultDeny).toEqual({ ingress: false, egress: false });
    expect(one({ endpointSelector: {}, ingress: [{}] }).defaultDeny).toEqual({ ingress: true, egress: false });
    expect(one({ endpointSelector: {}, egressDeny: [{}] }).defaultDeny).toEqual({ ingress: false, egress: true });
    expect(one({ endpointSelector: {}, ingress: [] }).defaultDeny).toEqual({ ingress: false, egress: false });
    expect(one({ endpointSelector: {}, ingress: [{}], enableDefaultDeny: { ingress: false, egress: true } }).defaultDeny).toEqual({ ingress: false, egress: true });
  });

  test("fromCIDR and fromCIDRSet become the same CIDR rules; empty toPorts counts as none", () => {
    const rule = one({ endpointSelector: {}, ingress: [{ fromCIDR: ["10.0.0.0/8", "192.168.1.1"], toPorts: [] }, { fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }] }] });
    const cidrs = (s: PeerRule) => (s.peers?.kind === "cidr" ? s.peers.rules.map((r) => [formatCidr(r.cidr), r.except.map(formatCidr)]) : []);
    expect(cidrs(rule.ingress[0]!)).toEqual([
      ["10.0.0.0/8", []],
      ["192.168.1.1/32", []],
    ]);
    expect(rule.ingress[0]!.toPorts).toBeUndefined();
    expect(cidrs(rule.ingress[1]!)).toEqual([["10.0.0.0/8", ["10.1.0.0/16"]]]);
  });

  test("rule labels: strings or upstream's {key, value, source} objects", () => {
    const rule = one({ endpointSelector: {}, labels: ["k8s:a=1", { key: "b", value: "2", source: "k8s" }, { key: "c" }] });
    expect(rule.labels.toStrings()).toEqual(["k8s:a=1", "k8s:b=2", "unspec:c"]);
    expect(rule.labels.containsAll(LabelSet.parse(["k8s:b=2"]))).toBe(true);
  });

  test("ports: numbers or numeric strings, protocol case-insensitive, endPort equal to port is one port", () => {
    const rule = one({ endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: "tcp" }, { port: " 443 ", endPort: 443 }, { port: "8000", endPort: 8080, protocol: "Udp" }] }] }] });
    expect(rule.ingress[0]!.toPorts).toEqual([
      {
        ports: [
          { port: 80, protocol: "TCP" },
          { port: 443, protocol: "ANY" },
          { port: 8000, endPort: 8080, protocol: "UDP" },
        ],
      },
    ]);
  });
});

describe("Kubernetes NetworkPolicy translation", () => {
  const np = (spec: object, metadata: object = { name: "np", namespace: "prod" }) =>
    JSON.stringify({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata, spec });
  const translate = (spec: object) => parsePolicyText(np(spec))[0]!;
  const peers = (s: PeerRule) => (s.peers?.kind === "endpoints" ? s.peers.selectors.map(String) : s.peers?.kind === "cidr" ? s.peers.rules.map((r) => formatCidr(r.cidr)) : []);

  test("subject, labels and peers", () => {
    const rule = translate({
      podSelector: { matchLabels: { app: "db" } },
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { app: "web" } } },
            { namespaceSelector: { matchLabels: { team: "blue" } }, podSelector: { matchExpressions: [{ key: "tier", operator: "Exists" }] } },
            { namespaceSelector: {} },
            { ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } },
          ],
          ports: [{ port: 5432 }],
        },
      ],
    });
    expect(rule.endpointSelector.toString()).toBe("{k8s:app=db, k8s:io.kubernetes.pod.namespace=prod}");
    expect(rule.labels.toStrings()).toEqual([
      "k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy",
      "k8s:io.cilium.k8s.policy.name=np",
      "k8s:io.cilium.k8s.policy.namespace=prod",
    ]);
    expect(rule.ingress.map(peers)).toEqual([
      ["{k8s:app=web, k8s:io.kubernetes.pod.namespace=prod}"],
      ["{k8s:io.cilium.k8s.namespace.labels.team=blue, k8s:tier}"],
      ["{k8s:io.kubernetes.pod.namespace}"],
      ["10.0.0.0/8"],
    ]);
    for (const s of rule.ingress) expect(s.toPorts).toEqual([{ ports: [{ port: 5432, protocol: "TCP" }] }]);
    expect(rule.egress).toEqual([]);
    expect(rule.defaultDeny).toEqual({ ingress: true, egress: false });
  });

  test("policyTypes and empty rule lists", () => {
    expect(translate({ podSelector: {} }).ingress).toEqual([{}]);
    expect(translate({ podSelector: {}, policyTypes: ["Egress"] }).ingress).toEqual([]);
    expect(translate({ podSelector: {}, policyTypes: ["Egress"] }).egress).toEqual([{}]);
    expect(translate({ podSelector: {}, policyTypes: ["Ingress", "Egress"], ingress: [] }).defaultDeny).toEqual({ ingress: true, egress: true });
    expect(translate({ podSelector: {}, ingress: [{}] }).ingress.map(peers)).toEqual([["{}"]]);
  });

  test("a namespace-less NetworkPolicy is in default", () => {
    expect(parsePolicyText(np({ podSelector: {} }, { name: "x" }))[0]!.endpointSelector.toString()).toBe("{k8s:io.kubernetes.pod.namespace=default}");
  });

  test("problems name the NetworkPolicy field", () => {
    expect(problems(np({}))).toEqual(["spec.podSelector: required: the pods this policy applies to ({} selects all)"]);
    expect(problems(np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }] }] }))).toEqual([
      "spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector",
    ]);
    expect(problems(np({ podSelector: {}, ingress: [{ from: [{}] }] }))).toEqual(["spec.ingress[0].from[0]: must have podSelector, namespaceSelector or ipBlock"]);
    expect(problems(np({ podSelector: {}, egress: [{ ports: [{ endPort: 90 }] }] }))).toEqual(["spec.egress[0].ports[0].endPort: needs port: the first port of the range"]);
    expect(problems(np({ podSelector: {}, egress: [{ ports: [{ port: "http" }] }] }))).toEqual(['spec.egress[0].ports[0].port: port name "http" is not supported yet: give the port number']);
    expect(problems(np({ podSelector: {}, egress: [{ ports: [{ protocol: "ANY" }] }] }))).toEqual(['spec.egress[0].ports[0].protocol: must be one of TCP, UDP, SCTP, not string "ANY"']);
    expect(problems(np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["11.0.0.0/8"] } }] }] }))).toEqual([
      "spec.egress[0].to[0].ipBlock.except[0]: 11.0.0.0/8 is not inside 10.0.0.0/8",
    ]);
    expect(problems(np({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }], to: [] }] }))).toEqual(["spec.ingress[0].to: unknown field: an ingress rule has from, not to"]);
  });
});
