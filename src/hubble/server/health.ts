/**
 * grpc.health.v1 Check: the hubble CLI asks for "hubble.server.Observer" before anything else;
 * "" means the server as a whole.
 */
import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from "@grpc/grpc-js";

export const OBSERVER_HEALTH_SERVICE = "hubble.server.Observer";

/** HealthCheckResponse.ServingStatus.SERVING */
const SERVING = 1;

export function healthImplementation(services: readonly string[] = ["", OBSERVER_HEALTH_SERVICE]): UntypedServiceImplementation {
  return {
    Check(call: ServerUnaryCall<{ service?: string }, unknown>, callback: sendUnaryData<unknown>) {
      const service = call.request.service ?? "";
      if (!services.includes(service)) {
        callback({ code: status.NOT_FOUND, details: `unknown service "${service}"` });
        return;
      }
      callback(null, { status: SERVING });
    },
  };
}
