import { describe, expect, test } from "bun:test";
import { formatLabel, LabelError, LabelSet, parseLabel, parseSelectorKey } from "../../src/identity/labels.ts";

describe("label parsing", () => {
  test("source:key=value, default source unspec, value optional", () => {
    expect(parseLabel("k8s:app=web")).toEqual({ source: "k8s", key: "app", value: "web" });
    expect(parseLabel("app=web")).toEqual({ source: "unspec", key: "app", value: "web" });
    expect(parseLabel("reserved:host")).toEqual({ source: "reserved", key: "host", value: "" });
    expect(parseLabel("container:image=docker.io/nginx:1.25")).toEqual({ source: "container", key: "image", value: "docker.io/nginx:1.25" });
    expect(parseLabel("cidr:10.0.0.0/8")).toEqual({ source: "cidr", key: "10.0.0.0/8", value: "" });
    expect(parseLabel("k8s:io.kubernetes.pod.namespace=default")).toEqual({ source: "k8s", key: "io.kubernetes.pod.namespace", value: "default" });
    expect(parseLabel("app=web", "k8s")).toEqual({ source: "k8s", key: "app", value: "web" });
  });

  test("bad labels are refused with the label in the message", () => {
    expect(() => parseLabel("k8s:=x")).toThrow('label "k8s:=x": the key is empty');
    expect(() => parseLabel("k8s:a b=c")).toThrow("the key must not contain whitespace");
    expect(() => parseLabel("k8s:a=b c")).toThrow("the value must not contain");
    expect(() => parseLabel("k8s:a=b=c")).toThrow("the value must not contain '='");
    expect(() => parseLabel("bad source:a")).toThrow(LabelError);
  });

  test("selector keys default to the any source; k8s: restricts to k8s", () => {
    expect(parseSelectorKey("app")).toEqual({ source: "any", key: "app" });
    expect(parseSelectorKey("k8s:app")).toEqual({ source: "k8s", key: "app" });
    expect(parseSelectorKey("reserved:host")).toEqual({ source: "reserved", key: "host" });
    expect(parseSelectorKey("io.kubernetes.pod.namespace")).toEqual({ source: "any", key: "io.kubernetes.pod.namespace" });
    expect(() => parseSelectorKey("app=web")).toThrow("must not contain '='");
  });

  test("formatting round-trips", () => {
    for (const text of ["k8s:app=web", "reserved:world", "cidr:10.0.0.0/8", "unspec:x=1"]) expect(formatLabel(parseLabel(text))).toBe(text);
  });
});

describe("label sets", () => {
  test("sorted and canonical: order of input does not matter", () => {
    const a = LabelSet.parse(["k8s:b=2", "k8s:a=1", "container:z"]);
    const b = LabelSet.parse(["container:z", "k8s:a=1", "k8s:b=2"]);
    expect(a.toStrings()).toEqual(["container:z", "k8s:a=1", "k8s:b=2"]);
    expect(a.key).toBe(b.key);
    expect(a.equals(b)).toBe(true);
    expect(a.size).toBe(3);
  });

  test("repeats collapse; one key with two values is refused", () => {
    expect(LabelSet.parse(["k8s:a=1", "k8s:a=1"]).size).toBe(1);
    expect(() => LabelSet.parse(["k8s:a=1", "k8s:a=2"])).toThrow("k8s:a is given twice");
  });

  test("the same key from two sources is two labels", () => {
    const set = LabelSet.parse(["k8s:app=web", "container:app=other"]);
    expect(set.size).toBe(2);
    expect(set.withKey("app").map((l) => l.value).sort()).toEqual(["other", "web"]);
    expect(set.withKey("app", "k8s").map((l) => l.value)).toEqual(["web"]);
    expect(set.withKey("nope")).toEqual([]);
  });

  test("containsAll and has", () => {
    const set = LabelSet.parse(["k8s:a=1", "k8s:b=2"]);
    expect(set.containsAll(LabelSet.parse(["k8s:a=1"]))).toBe(true);
    expect(set.containsAll(LabelSet.parse(["k8s:a=2"]))).toBe(false);
    expect(set.containsAll(LabelSet.empty)).toBe(true);
    expect(set.has({ source: "k8s", key: "b", value: "2" })).toBe(true);
    expect(set.has({ source: "container", key: "b", value: "2" })).toBe(false);
  });
});
