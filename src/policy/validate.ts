/**
 * Validation of one Cilium policy rule (a CiliumNetworkPolicy spec, or an item of a bare rule
 * list) into the rule model. Field names are those of upstream's CRD schema; unknown fields are
 * refused, and upstream fields this implementation does not enforce (L7, FQDN, services, node
 * selectors, requirements, authentication) are refused by name instead of being ignored: a
 * security policy must not be half-applied.
 *
 * Checks follow upstream's Rule.Sanitize: one kind of L3 peer per section ("Combining fromEndpoints
 * and fromCIDR is not supported yet"), icmps not together with toPorts, at most 40 ports per port
 * rule and 40 ICMP fields, known entities, except prefixes inside their CIDR.
 */
import { LabelError, LabelSet, parseLabel, type Label } from "../identity/labels.ts";
import { asObject, at, checkFields, describeType, item, notSupported, optionalBoolean, optionalList, optionalString, type Fields, type Issues } from "./fields.ts";
import { ENTITIES, type CidrRule, type Direction, type Entity, type IcmpField, type IcmpRule, type Peers, type PeerRule, type PortProtocol, type PortRule, type Rule } from "./rule.ts";
import { checkMaxItems, readCidr, readEndPort, readExcept, readPort, readProtocol, readSelector } from "./values.ts";
import { icmpTypeNumber } from "./icmp.ts";

const MAX_PORTS = 40;
const MAX_ICMP_FIELDS = 40;

const RULE_FIELDS = ["endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "labels", "description", "enableDefaultDeny"];
const RULE_UNSUPPORTED = {
  nodeSelector: notSupported("host policies (nodeSelector) are not implemented yet"),
  log: notSupported("per-policy Hubble log values are not implemented yet"),
};

const PEER_FIELDS: Record<Direction, { endpoints: string; cidr: string; cidrSet: string; entities: string }> = {
  ingress: { endpoints: "fromEndpoints", cidr: "fromCIDR", cidrSet: "fromCIDRSet", entities: "fromEntities" },
  egress: { endpoints: "toEndpoints", cidr: "toCIDR", cidrSet: "toCIDRSet", entities: "toEntities" },
};

const wrongDirection = (own: Direction): Record<string, string> => {
  const other: Direction = own === "ingress" ? "egress" : "ingress";
  return Object.fromEntries(
    (["endpoints", "cidr", "cidrSet", "entities"] as const).map((k) => [PEER_FIELDS[other][k], `unknown field: ${PEER_FIELDS[other][k]} is for ${other}; ${own} uses ${PEER_FIELDS[own][k]}`]),
  );
};

const SECTION_EXPLAINED: Record<Direction, Record<string, string>> = {
  ingress: {
    ...wrongDirection("ingress"),
    fromRequires: notSupported("fromRequires is deprecated upstream and not implemented"),
    fromNodes: notSupported("node selectors are not implemented yet"),
    fromGroups: notSupported("cloud-provider groups are not implemented"),
    authentication: notSupported("mutual authentication is not implemented"),
  },
  egress: {
    ...wrongDirection("egress"),
    toRequires: notSupported("toRequires is deprecated upstream and not implemented"),
    toNodes: notSupported("node selectors are not implemented yet"),
    toGroups: notSupported("cloud-provider groups are not implemented"),
    toServices: notSupported("service selectors are not implemented yet"),
    toFQDNs: notSupported("DNS-based policy is not implemented yet"),
    authentication: notSupported("mutual authentication is not implemented"),
  },
};

const PORT_RULE_UNSUPPORTED = {
  rules: notSupported("L7 (HTTP, Kafka, DNS) rules are not implemented yet"),
  listener: notSupported("Envoy listeners are not implemented"),
  originatingTLS: notSupported("TLS interception is not implemented"),
  terminatingTLS: notSupported("TLS interception is not implemented"),
  serverNames: notSupported("TLS SNI matching is not implemented yet"),
};

function readRuleLabels(list: unknown[], path: string, issues: Issues): LabelSet {
  const labels: Label[] = [];
  list.forEach((raw, i) => {
    const p = item(path, i);
    try {
      if (typeof raw === "string") {
        labels.push(parseLabel(raw));
        return;
      }
      // Upstream's Label JSON form: {key, value, source}.
      const obj = asObject(raw, p, issues);
      if (!obj) return;
      checkFields(obj, p, issues, ["key", "value", "source"]);
      const key = optionalString(obj, "key", p, issues);
      const value = optionalString(obj, "value", p, issues) ?? "";
      const source = optionalString(obj, "source", p, issues) || "unspec";
      if (!key) issues.add(at(p, "key"), "required: the label key");
      else labels.push(parseLabel(`${source}:${key}${value === "" ? "" : `=${value}`}`));
    } catch (error) {
      issues.add(p, (error as Error).message);
    }
  });
  try {
    return LabelSet.of(labels);
  } catch (error) {
    if (error instanceof LabelError) issues.add(path, error.message);
    return LabelSet.empty;
  }
}

function readPortRules(list: unknown[], path: string, issues: Issues, deny: boolean): PortRule[] {
  return list.flatMap((raw, i) => {
    const p = item(path, i);
    const obj = asObject(raw, p, issues);
    if (!obj) return [];
    checkFields(obj, p, issues, ["ports"], deny ? {} : PORT_RULE_UNSUPPORTED);
    const ports = optionalList(obj, "ports", p, issues);
    if (!ports || ports.length === 0) {
      issues.add(at(p, "ports"), "required: at least one {port, protocol}");
      return [];
    }
    checkMaxItems(ports, MAX_PORTS, "ports", at(p, "ports"), issues);
    const out: PortProtocol[] = [];
    ports.forEach((rawPort, j) => {
      const pp = item(at(p, "ports"), j);
      const portObj = asObject(rawPort, pp, issues);
      if (!portObj) return;
      checkFields(portObj, pp, issues, ["port", "endPort", "protocol"]);
      let port: number | undefined;
      if (portObj.port === undefined || portObj.port === null) issues.add(at(pp, "port"), "required: a port number, or 0 for every port");
      else port = readPort(portObj.port, at(pp, "port"), issues);
      const endPort = portObj.endPort === undefined || portObj.endPort === null ? undefined : readEndPort(portObj.endPort, port, at(pp, "endPort"), issues);
      const protocol = readProtocol(portObj.protocol, at(pp, "protocol"), issues, ["TCP", "UDP", "SCTP", "ANY"], "ANY");
      if (port === undefined || protocol === undefined) return;
      out.push(endPort === undefined || endPort === port ? { port, protocol } : { port, endPort, protocol });
    });
    return [{ ports: out }];
  });
}

function readIcmpRules(list: unknown[], path: string, issues: Issues): IcmpRule[] {
  return list.flatMap((raw, i) => {
    const p = item(path, i);
    const obj = asObject(raw, p, issues);
    if (!obj) return [];
    checkFields(obj, p, issues, ["fields"]);
    const fields = optionalList(obj, "fields", p, issues);
    if (!fields || fields.length === 0) {
      issues.add(at(p, "fields"), "required: at least one {type, family}");
      return [];
    }
    checkMaxItems(fields, MAX_ICMP_FIELDS, "ICMP fields", at(p, "fields"), issues);
    const out: IcmpField[] = [];
    fields.forEach((rawField, j) => {
      const fp = item(at(p, "fields"), j);
      const field = asObject(rawField, fp, issues);
      if (!field) return;
      checkFields(field, fp, issues, ["type", "family"]);
      const family = field.family === undefined || field.family === null || field.family === "" ? "IPv4" : field.family;
      if (family !== "IPv4" && family !== "IPv6") {
        issues.add(at(fp, "family"), `must be IPv4 or IPv6, not ${describeType(field.family)}`);
        return;
      }
      if (field.type === undefined || field.type === null) {
        issues.add(at(fp, "type"), "required: an ICMP type number or name");
        return;
      }
      const type = icmpTypeNumber(field.type, family);
      if (type === undefined) issues.add(at(fp, "type"), `must be 0-255 or an ${family} ICMP type name, not ${describeType(field.type)}`);
      else out.push({ family, type });
    });
    return [{ fields: out }];
  });
}

function readEntities(list: unknown[], path: string, issues: Issues): Entity[] {
  return list.flatMap((raw, i) => {
    if (ENTITIES.includes(raw as Entity)) return [raw as Entity];
    issues.add(item(path, i), `unknown entity ${describeType(raw)}: expected one of ${ENTITIES.join(", ")}`);
    return [];
  });
}

function readCidrRules(list: unknown[], path: string, issues: Issues): CidrRule[] {
  return list.flatMap((raw, i) => {
    const p = item(path, i);
    const obj = asObject(raw, p, issues);
    if (!obj) return [];
    checkFields(obj, p, issues, ["cidr", "except"], {
      cidrGroupRef: notSupported("CiliumCIDRGroup references are not implemented yet"),
      cidrGroupSelector: notSupported("CiliumCIDRGroup selectors are not implemented yet"),
    });
    if (obj.cidr === undefined || obj.cidr === null) {
      issues.add(at(p, "cidr"), "required: a CIDR prefix");
      return [];
    }
    const cidr = readCidr(obj.cidr, at(p, "cidr"), issues);
    const except = readExcept(optionalList(obj, "except", p, issues) ?? [], cidr, at(p, "except"), issues);
    return cidr ? [{ cidr, except }] : [];
  });
}

function readPeers(obj: Fields, path: string, issues: Issues, direction: Direction): Peers | undefined {
  const names = PEER_FIELDS[direction];
  const given = Object.values(names).filter((name) => obj[name] !== undefined && obj[name] !== null);
  if (given.length > 1) {
    issues.add(path, `${given.join(" and ")} cannot be combined in one rule (as upstream): write one rule for each`);
    return undefined;
  }
  const endpoints = optionalList(obj, names.endpoints, path, issues);
  if (endpoints) {
    const selectors = endpoints.map((raw, i) => readSelector(raw, item(at(path, names.endpoints), i), issues));
    return { kind: "endpoints", selectors: selectors.filter((s) => s !== undefined) };
  }
  const cidrs = optionalList(obj, names.cidr, path, issues);
  if (cidrs) {
    const rules = cidrs.map((raw, i) => readCidr(raw, item(at(path, names.cidr), i), issues, { bareAddress: true }));
    return { kind: "cidr", rules: rules.filter((c) => c !== undefined).map((cidr) => ({ cidr, except: [] })) };
  }
  const cidrSet = optionalList(obj, names.cidrSet, path, issues);
  if (cidrSet) return { kind: "cidr", rules: readCidrRules(cidrSet, at(path, names.cidrSet), issues) };
  const entities = optionalList(obj, names.entities, path, issues);
  if (entities) return { kind: "entities", entities: readEntities(entities, at(path, names.entities), issues) };
  return undefined;
}

function readSection(raw: unknown, path: string, issues: Issues, direction: Direction, deny: boolean): PeerRule | undefined {
  const obj = asObject(raw, path, issues);
  if (!obj) return undefined;
  const names = PEER_FIELDS[direction];
  checkFields(obj, path, issues, [...Object.values(names), "toPorts", "icmps"], SECTION_EXPLAINED[direction]);
  const rule: PeerRule = {};
  const peers = readPeers(obj, path, issues, direction);
  if (peers) rule.peers = peers;
  const toPorts = optionalList(obj, "toPorts", path, issues);
  const icmps = optionalList(obj, "icmps", path, issues);
  // Upstream: an empty toPorts/icmps list is the same as none (the section is L3-only).
  if (toPorts?.length && icmps?.length) issues.add(path, "icmps and toPorts cannot be combined in one rule (as upstream): write one rule for each");
  if (toPorts?.length) rule.toPorts = readPortRules(toPorts, at(path, "toPorts"), issues, deny);
  if (icmps?.length) rule.icmps = readIcmpRules(icmps, at(path, "icmps"), issues);
  return rule;
}

function readSections(obj: Fields, field: string, path: string, issues: Issues, direction: Direction, deny: boolean): PeerRule[] {
  const list = optionalList(obj, field, path, issues) ?? [];
  return list.map((raw, i) => readSection(raw, item(at(path, field), i), issues, direction, deny)).filter((r) => r !== undefined);
}

/**
 * One rule from its JSON form, without namespace scoping (namespace.ts applies that for
 * CiliumNetworkPolicy). Returns undefined when it reported problems.
 */
export function validateRule(value: unknown, path: string, issues: Issues): Rule | undefined {
  const obj = asObject(value, path, issues);
  if (!obj) return undefined;
  const before = issues.list.length;
  checkFields(obj, path, issues, RULE_FIELDS, RULE_UNSUPPORTED);

  let endpointSelector;
  if (obj.endpointSelector === undefined || obj.endpointSelector === null) {
    issues.add(at(path, "endpointSelector"), "required: the endpoints this rule applies to ({} selects all)");
  } else {
    endpointSelector = readSelector(obj.endpointSelector, at(path, "endpointSelector"), issues);
  }
  const ingress = readSections(obj, "ingress", path, issues, "ingress", false);
  const ingressDeny = readSections(obj, "ingressDeny", path, issues, "ingress", true);
  const egress = readSections(obj, "egress", path, issues, "egress", false);
  const egressDeny = readSections(obj, "egressDeny", path, issues, "egress", true);
  const labels = readRuleLabels(optionalList(obj, "labels", path, issues) ?? [], at(path, "labels"), issues);
  const description = optionalString(obj, "description", path, issues);

  let defaultDeny: { ingress?: boolean; egress?: boolean } = {};
  if (obj.enableDefaultDeny !== undefined && obj.enableDefaultDeny !== null) {
    const p = at(path, "enableDefaultDeny");
    const dd = asObject(obj.enableDefaultDeny, p, issues);
    if (dd) {
      checkFields(dd, p, issues, ["ingress", "egress"]);
      defaultDeny = { ingress: optionalBoolean(dd, "ingress", p, issues), egress: optionalBoolean(dd, "egress", p, issues) };
    }
  }

  if (issues.list.length !== before || !endpointSelector) return undefined;
  const rule: Rule = {
    endpointSelector,
    ingress,
    ingressDeny,
    egress,
    egressDeny,
    // Upstream Rule.Sanitize: unset means "on for each direction the rule has sections in".
    defaultDeny: {
      ingress: defaultDeny.ingress ?? (ingress.length > 0 || ingressDeny.length > 0),
      egress: defaultDeny.egress ?? (egress.length > 0 || egressDeny.length > 0),
    },
    labels,
  };
  if (description !== undefined) rule.description = description;
  return rule;
}
