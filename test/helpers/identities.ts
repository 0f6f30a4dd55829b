import { AttachRolePolicyCommand, CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

/**
 * Callers other than the simulated account's admin user, made through the real SDK as anyone
 * would make them: an IAM Identity Center (SSO) permission set's role, and the account's root user
 * (Simulator.rootCredentials()).
 */

/** What an SDK client needs to reach the account (an in-process `sim.clientConfig()`, or an endpoint). */
export interface ClientSetup {
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  endpoint?: string;
  requestHandler?: unknown;
}

export interface RoleSession {
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
  roleArn: string;
  sessionArn: string;
}

/**
 * IAM Identity Center makes each permission set's role under this path, with the Region of its
 * identity source in it (none when that is us-east-1):
 * arn:aws:iam::<account>:role/aws-reserved/sso.amazonaws.com/<region>/AWSReservedSSO_<set>_<suffix>.
 * Its sessions' ARNs are arn:aws:sts::<account>:assumed-role/AWSReservedSSO_<set>_<suffix>/<user>,
 * without the path.
 * https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html
 */
export const SSO_PATH = "/aws-reserved/sso.amazonaws.com/eu-west-1/";
export const SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef";

/**
 * A session of an SSO-style administrator role: on AWS, Identity Center's role trusts its SAML
 * provider; the simulator has none, so the role trusts the account and the admin assumes it, which
 * gives the session AWS's shape (role with a path, session ARN without it).
 */
export async function ssoAdministrator(
  setup: ClientSetup,
  user = "learner@example.com",
): Promise<RoleSession> {
  const iam = new IAMClient(setup as never);
  const sts = new STSClient(setup as never);
  try {
    const { Account } = await sts.send(new GetCallerIdentityCommand({}));
    const { Role } = await iam.send(
      new CreateRoleCommand({
        RoleName: SSO_ROLE,
        Path: SSO_PATH,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${Account}:root` }, Action: "sts:AssumeRole" },
          ],
        }),
      }),
    );
    await iam.send(
      new AttachRolePolicyCommand({
        RoleName: SSO_ROLE,
        PolicyArn: "arn:aws:iam::aws:policy/AdministratorAccess",
      }),
    );
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: Role!.Arn!, RoleSessionName: user }));
    return {
      credentials: {
        accessKeyId: out.Credentials!.AccessKeyId!,
        secretAccessKey: out.Credentials!.SecretAccessKey!,
        sessionToken: out.Credentials!.SessionToken!,
      },
      roleArn: Role!.Arn!,
      sessionArn: out.AssumedRoleUser!.Arn!,
    };
  } finally {
    iam.destroy();
    sts.destroy();
  }
}

/** The environment a process needs to call with these credentials (what `aws configure export-credentials` prints). */
export function credentialEnv(credentials: ClientSetup["credentials"]): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
  };
}
