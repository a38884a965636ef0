// Evaluates requests against IAM policies with @cloud-copilot/iam-simulate, an
// implementation of AWS's policy evaluation logic (identity and resource
// policies, every condition operator, explicit and implicit denies).
//
//   node tests/iam/simulate.mjs < requests.json
//
// Reads one JSON object: {"account": "…", "requests": [{"principal": ROLE ARN,
// "policies": [IDENTITY POLICY, …], "resource_policy": POLICY or null,
// "action": "s3:GetObject", "resource": ARN, "context": {KEY: VALUE}}, …]}.
// Prints one JSON array, a decision per request in order: "Allowed",
// "ExplicitlyDenied" or "ImplicitlyDenied", or {"error": …} for a request the
// engine refuses to evaluate (an unknown action, a resource of the wrong type,
// a context key the action does not take).
import { readFileSync } from "node:fs";
import { runSimulation } from "@cloud-copilot/iam-simulate";

const input = JSON.parse(readFileSync(0, "utf8"));
const decisions = [];
for (const request of input.requests) {
  const result = await runSimulation(
    {
      identityPolicies: request.policies.map((policy, i) => ({ name: `policy${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: request.resource_policy ?? undefined,
      request: {
        principal: request.principal,
        action: request.action,
        resource: { resource: request.resource, accountId: input.account },
        contextVariables: request.context ?? {},
      },
    },
    {},
  );
  if (result.resultType === "error") {
    decisions.push({ error: result.errors.message, details: result.errors });
  } else {
    decisions.push(result.overallResult);
  }
}
console.log(JSON.stringify(decisions));
