// The ext_proc request attributes: CEL attributes Envoy evaluates once per request and sends with
// the request headers message when the filter lists them in `request_attributes`. They arrive as
// ProcessingRequest.attributes["envoy.filters.http.ext_proc"], a Struct keyed by the attribute's
// name; booleans as bool_value, strings as string_value. An attribute without a value (no TLS,
// no URI SAN) is left out by Envoy rather than sent empty (ext_proc matching_utils.cc
// evaluateAttributes; common/expr/context.cc). Verified on Envoy 1.40.
import type { PeerFacts } from '../pipeline/context.ts';

/** The key Envoy files request attributes under, whatever the filter's configured name. */
export const ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';

/** The attributes the gate reads; envoy/envoy-mtls.yaml lists them in request_attributes. */
export const PEER_ATTRIBUTES = {
  mtls: 'connection.mtls',
  uriSan: 'connection.uri_san_peer_certificate',
  subject: 'connection.subject_peer_certificate',
  certificate: 'connection.peer_certificate',
} as const;

/** A decoded google.protobuf.Value (request-codec.ts): `kind` names the member that is set. */
interface DecodedValue {
  kind?: string;
  stringValue?: string;
  boolValue?: boolean;
}

/** The peer certificate facts in a request headers message, or undefined when Envoy sent none
 * (request_attributes not configured). Reads four fields; nothing is copied otherwise. */
export function readPeerFacts(attributes: Record<string, unknown> | undefined): PeerFacts | undefined {
  const fields = (attributes?.[ATTRIBUTES_KEY] as { fields?: Record<string, DecodedValue> } | undefined)?.fields;
  if (fields === undefined) return undefined;
  const mtls = fields[PEER_ATTRIBUTES.mtls];
  // connection.mtls is always set when configured (false without TLS or without a client
  // certificate); without it, whatever else arrived cannot say whether a certificate was seen.
  if (mtls?.kind !== 'boolValue') return undefined;
  return {
    mtls: mtls.boolValue === true,
    uriSan: stringOf(fields[PEER_ATTRIBUTES.uriSan]),
    subject: stringOf(fields[PEER_ATTRIBUTES.subject]),
    certificate: stringOf(fields[PEER_ATTRIBUTES.certificate]),
  };
}

function stringOf(v: DecodedValue | undefined): string | undefined {
  return v?.kind === 'stringValue' ? v.stringValue : undefined;
}
