// Request attributes as Envoy sends them (through the real codec), into ctx.peer's facts.
import { describe, expect, it } from 'vitest';
import { requestAttributes } from '../../test/harness/run-stage.ts';
import { readPeerFacts } from './attributes.ts';
import { decodeProcessingRequest, encodeProcessingRequest } from './protocol.ts';

describe('readPeerFacts', () => {
  it('reads the four attributes Envoy sends for a client certificate', () =>
    expect(
      readPeerFacts(
        requestAttributes({
          'connection.mtls': true,
          'connection.uri_san_peer_certificate': 'spiffe://example.org/ns/a/sa/b',
          'connection.subject_peer_certificate': 'CN=b',
          'connection.peer_certificate': '-----BEGIN CERTIFICATE-----\n',
          'request.path': '/v1/models',
        }),
      ),
    ).toEqual({
      mtls: true,
      uriSan: 'spiffe://example.org/ns/a/sa/b',
      subject: 'CN=b',
      certificate: '-----BEGIN CERTIFICATE-----\n',
    }));

  it('a plain connection: Envoy sends connection.mtls false and leaves the rest out', () =>
    expect(readPeerFacts(requestAttributes({ 'connection.mtls': false }))).toEqual({
      mtls: false,
      uriSan: undefined,
      subject: undefined,
      certificate: undefined,
    }));

  it('nothing when Envoy sends no attributes (request_attributes not configured)', () => {
    const msg = decodeProcessingRequest(encodeProcessingRequest({ requestHeaders: {} }));
    expect(readPeerFacts(msg.attributes)).toBeUndefined();
    expect(readPeerFacts(undefined)).toBeUndefined();
  });

  it('nothing when connection.mtls is missing or not a bool: other attributes cannot say a certificate was seen', () => {
    expect(readPeerFacts(requestAttributes({ 'connection.uri_san_peer_certificate': 'spiffe://a/b' }))).toBeUndefined();
    expect(readPeerFacts(requestAttributes({ 'connection.mtls': 'true' }))).toBeUndefined();
  });

  it('a string attribute sent as another type is absent, not coerced', () =>
    expect(
      readPeerFacts(requestAttributes({ 'connection.mtls': true, 'connection.peer_certificate': true }))?.certificate,
    ).toBeUndefined());
});
