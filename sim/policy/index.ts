/**
 * The IAM policy engine: parsing and validation of identity, resource (key, bucket) and trust
 * policies, evaluation of one policy, and the authorisation decision combining them.
 */

export {
  type AuthzInput,
  type AuthzResult,
  authorize,
  denialReason,
  identityDenial,
  type PolicyType,
} from "./authorize.js";
export {
  type ConditionBlock,
  type Policy,
  PolicyError,
  type PolicyKind,
  type PrincipalMap,
  parsePolicy,
  policyKind,
  policyPrincipals,
  policyProblems,
  type Statement,
} from "./document.js";
export { type EvalRequest, type EvalResult, evaluatePolicy, principalKeys } from "./evaluate.js";
