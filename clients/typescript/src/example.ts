// A typed call as a front-end would write it: read a patient, keep its ETag, change the
// contact with If-Match, and read every error as the RFC 9457 problem type.
import type { components, paths } from "./api";

type Problem = components["schemas"]["Problem"];
type ReadPatient = paths["/api/patient/patients/{patient_id}"]["get"];
type Patient = ReadPatient["responses"][200]["content"]["application/json"];
type ETag = NonNullable<ReadPatient["responses"][200]["headers"]["ETag"]>;
type UpdateContact = paths["/api/patient/patients/{patient_id}/contact"]["put"];
type Contact = UpdateContact["requestBody"]["content"]["application/json"];
type Stale = UpdateContact["responses"][412]["content"]["application/problem+json"];
type ContactHeaders = UpdateContact["parameters"]["header"];

export type Result<T> = { ok: true; value: T; etag: ETag } | { ok: false; problem: Problem };

async function problemOf(response: Response): Promise<Problem> {
  return (await response.json()) as Problem;
}

export async function readPatient(
  base: string,
  token: string,
  patientId: ReadPatient["parameters"]["path"]["patient_id"],
): Promise<Result<Patient>> {
  const response = await fetch(`${base}/api/patient/patients/${patientId}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!response.ok) {
    return { ok: false, problem: await problemOf(response) };
  }
  const etag: ETag = response.headers.get("ETag") ?? "";
  return { ok: true, value: (await response.json()) as Patient, etag };
}

export async function updateContact(
  base: string,
  token: string,
  patient: Patient,
  etag: ETag,
  contact: Contact,
): Promise<Result<Patient>> {
  // If-Match is required by the contract (428 without it): the type says so.
  const conditional: Pick<ContactHeaders, "if-match"> = { "if-match": etag };
  const response = await fetch(`${base}/api/patient/patients/${patient.id}/contact`, {
    method: "PUT",
    headers: {
      ...conditional,
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify(contact),
  });
  if (response.status === 412) {
    const stale: Stale = await problemOf(response);
    return { ok: false, problem: stale };
  }
  if (!response.ok) {
    return { ok: false, problem: await problemOf(response) };
  }
  return {
    ok: true,
    value: (await response.json()) as Patient,
    etag: response.headers.get("ETag") ?? etag,
  };
}

export function describe(problem: Problem): string {
  const fields = (problem.errors ?? []).map((error) => `${error.field}: ${error.message}`);
  return [`${problem.status} ${problem.title}: ${problem.detail}`, ...fields].join("\n");
}
