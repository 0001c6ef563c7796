/**
 * PUT and DELETE /v1/cni/attachment/{container-id}:{ifname}: the CNI plugin's ADD and DEL, done
 * by the agent (src/agent/cni/attachments.ts). Errors carry the CNI code the plugin answers with.
 */
import type { Attachment } from "../../../cni/attachment.ts";
import { validInterfaceName } from "../../../cni/env.ts";
import { CniError, CniErrorCode, isCniName, PluginErrorCode } from "../../../cni/spec.ts";
import type { CniAttachments } from "../../cni/attachments.ts";
import { AgentError } from "../../errors.ts";
import { readBody } from "../body.ts";
import { json } from "../responses.ts";
import type { Router } from "../router.ts";
import { cniAttachRequestSchema } from "../schemas.ts";
import type { CniApiError } from "../types.ts";

/** HTTP statuses for the CNI codes; anything else is 500. */
const STATUS_BY_CNI_CODE: Record<number, number> = {
  [CniErrorCode.UnknownContainer]: 404,
  [CniErrorCode.InvalidEnvironment]: 400,
  [CniErrorCode.TryAgainLater]: 503,
  [PluginErrorCode.IpAllocationFailed]: 507,
  [PluginErrorCode.AttachmentExists]: 409,
};

export function addCniRoutes(router: Router, attachments: CniAttachments): void {
  router.add("PUT", "/v1/cni/attachment/{attachment}", async (request, params) =>
    answer(async () => {
      const attachment = parseAttachment(params.attachment!);
      const body = await readBody(request, cniAttachRequestSchema, "CNI attach request", '({"netns-path": "/var/run/netns/pod"})');
      return json(201, await attachments.add(attachment, body));
    }),
  );
  router.add("DELETE", "/v1/cni/attachment/{attachment}", (_request, params) =>
    answer(async () => {
      await attachments.remove(parseAttachment(params.attachment!));
      return new Response(null, { status: 200 });
    }),
  );
}

/** "<container id>:<ifname>"; the container id cannot hold ':', so the first one splits. */
function parseAttachment(text: string): Attachment {
  const colon = text.indexOf(":");
  const containerId = text.slice(0, colon);
  const ifname = text.slice(colon + 1);
  if (colon < 0 || !isCniName(containerId) || !validInterfaceName(ifname)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `invalid attachment ${JSON.stringify(text)}: expected <container id>:<ifname>`);
  }
  return { containerId, ifname };
}

async function answer(handle: () => Promise<Response>): Promise<Response> {
  try {
    return await handle();
  } catch (error) {
    if (error instanceof AgentError && error.kind === "invalid") return cniError(new CniError(CniErrorCode.InvalidNetworkConfig, error.message));
    if (!(error instanceof CniError)) throw error;
    return cniError(error);
  }
}

function cniError(error: CniError): Response {
  const status = STATUS_BY_CNI_CODE[error.code] ?? 500;
  const body: CniApiError = { code: status, message: error.message, "cni-code": error.code };
  if (error.details) body.details = error.details;
  return json(status, body);
}
