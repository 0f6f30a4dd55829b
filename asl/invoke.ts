import { AwsError, type Clients, type Credentials } from "../machines/aws.js";
import type { Service } from "../steps/dsl.js";
import { StatesError, type TaskInvoker } from "./interpreter.js";
import { aslErrorName, pascal } from "./sdk.js";

/**
 * A Task invoker that makes each `aws-sdk` Task's call through kmslab's SDK clients — against the
 * simulator, an endpoint or AWS, as the clients' credentials (a state machine's execution role) —
 * and a Task with `Credentials` as that role, assumed first as Step Functions does. Errors come back
 * named as Step Functions names them. With the interpreter this runs an exported definition.
 */

export interface InvokedCall {
  stateName: string;
  service: Service;
  action: string;
  /** Made with the Task's Credentials (the role it names). */
  asRole?: string;
  error?: string;
}

export function parseResource(resource: string): { service: Service; action: string } {
  const m = /^arn:aws:states:::aws-sdk:(\w+):(\w+)$/.exec(resource);
  if (!m) throw new Error(`not an aws-sdk resource: ${resource}`);
  return { service: m[1] as Service, action: pascal(m[2]!) };
}

export function clientsInvoker(clients: Clients, onCall?: (call: InvokedCall) => void): TaskInvoker {
  const sessions = new Map<string, Credentials>();
  const assume = async (roleArn: string): Promise<Credentials> => {
    const known = sessions.get(roleArn);
    if (known) return known;
    const out = await clients.call("sts", "AssumeRole", { RoleArn: roleArn, RoleSessionName: "states-task" });
    const c = out.Credentials as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
    const credentials = {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
    };
    sessions.set(roleArn, credentials);
    return credentials;
  };
  return async (req) => {
    const { service, action } = parseResource(req.resource);
    const role = req.credentials?.RoleArn;
    const call: InvokedCall = {
      stateName: req.stateName,
      service,
      action,
      ...(role ? { asRole: role } : {}),
    };
    try {
      const credentials = role ? await assume(role) : undefined;
      const out = await clients.call(service, action, (req.arguments ?? {}) as Record<string, unknown>, {
        ...(credentials ? { credentials } : {}),
      });
      onCall?.(call);
      return out;
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
      onCall?.({ ...call, error: err.code });
      throw new StatesError(aslErrorName(err.service, err.code), err.message);
    }
  };
}
