/** Method + path-template routing ("/v1/endpoint/{id}") for the agent's small REST API. */
import { AgentError } from "../errors.ts";

export type Handler = (request: Request, params: Record<string, string>, url: URL) => Response | Promise<Response>;

export type RouteMatch =
  | { found: true; template: string; handler: Handler; params: Record<string, string> }
  /** No such path (404), or the path exists but not for this method (405, with the methods it has). */
  | { found: false; allow: string[] };

interface Route {
  method: string;
  template: string;
  segments: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, template: string, handler: Handler): this {
    this.routes.push({ method, template, segments: template.split("/"), handler });
    return this;
  }

  match(method: string, pathname: string): RouteMatch {
    const segments = pathname.split("/");
    const allow: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, segments);
      if (!params) continue;
      if (route.method === method) return { found: true, template: route.template, handler: route.handler, params };
      allow.push(route.method);
    }
    return { found: false, allow };
  }
}

function matchSegments(template: string[], actual: string[]): Record<string, string> | undefined {
  if (template.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const expected = template[i]!;
    const given = actual[i]!;
    if (expected.startsWith("{") && expected.endsWith("}")) {
      if (given === "") return undefined;
      params[expected.slice(1, -1)] = decodeSegment(given);
    } else if (expected !== given) {
      return undefined;
    }
  }
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AgentError("invalid", `the path segment ${JSON.stringify(segment)} is not valid percent-encoding`);
  }
}
