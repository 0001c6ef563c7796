/** Request bodies: JSON, then a schema. Both failures are 400s that say what is wrong. */
import type { z } from "zod";
import { AgentError } from "../errors.ts";
import { parseWith } from "./schemas.ts";

export async function readBody<T>(request: Request, schema: z.ZodType<T>, what: string, emptyHint?: string): Promise<T> {
  return parseBodyText(await request.text(), schema, what, emptyHint);
}

export function parseBodyText<T>(text: string, schema: z.ZodType<T>, what: string, emptyHint?: string): T {
  if (text.trim() === "") throw new AgentError("invalid", `the request body is empty: expected a JSON ${what}${emptyHint ? ` ${emptyHint}` : ""}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AgentError("invalid", `the request body is not valid JSON: ${(error as Error).message}`);
  }
  return parseWith(schema, value, what);
}
