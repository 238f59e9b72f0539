import { describe, expect, it } from "vitest";
import { code, LifeboatError } from "../errors.ts";
import { credentialRejected, isDenied } from "./audit-probe.ts";

/** An SDK error as S3Target wraps it: the service error is the cause of a LifeboatError. */
const s3Error = (name: string) => {
  const sdk = Object.assign(new Error(name), { name, $metadata: { httpStatusCode: 403 } });
  return new LifeboatError(code.storage, `target "offsite": put: ${name}`, { cause: sdk });
};

describe("what a refused request says about a credential", () => {
  it("an unknown key or a wrong secret is a broken credential, not a denied operation", () => {
    expect(credentialRejected(s3Error("InvalidAccessKeyId"))).toBe("access key id not known to the server");
    expect(credentialRejected(s3Error("SignatureDoesNotMatch"))).toMatch(/^the secret access key is wrong/);
    expect(isDenied(s3Error("InvalidAccessKeyId"))).toBe(false);
    expect(isDenied(s3Error("SignatureDoesNotMatch"))).toBe(false);
  });

  it("AccessDenied (a policy saying no) stays a denial", () => {
    expect(credentialRejected(s3Error("AccessDenied"))).toBeUndefined();
    expect(isDenied(s3Error("AccessDenied"))).toBe(true);
  });
});
