/** GET /v1/endpoint, GET, PUT, DELETE /v1/endpoint/{id} and PATCH /v1/endpoint/{id}/labels. */
import type { EndpointManager } from "../../endpoint/manager.ts";
import { readBody } from "../body.ts";
import { json } from "../responses.ts";
import type { Router } from "../router.ts";
import { endpointChangeRequestSchema, endpointLabelsChangeSchema } from "../schemas.ts";

export function addEndpointRoutes(router: Router, endpoints: EndpointManager): void {
  router.add("GET", "/v1/endpoint", () => json(200, endpoints.list()));
  router.add("GET", "/v1/endpoint/{id}", (_request, params) => json(200, endpoints.get(params.id!)));
  router.add("PUT", "/v1/endpoint/{id}", async (request, params) => {
    const change = await readBody(request, endpointChangeRequestSchema, "endpoint change request");
    return json(201, await endpoints.create(params.id!, change));
  });
  router.add("PATCH", "/v1/endpoint/{id}/labels", async (request, params) => {
    const change = await readBody(request, endpointLabelsChangeSchema, "labels change", '({"add": ["k8s:app=web"], "delete": ["k8s:tier"]})');
    return json(200, await endpoints.updateLabels(params.id!, change));
  });
  router.add("DELETE", "/v1/endpoint/{id}", async (_request, params) => {
    await endpoints.delete(params.id!);
    return new Response(null, { status: 200 });
  });
}
