// Claim mappings of the IdPs most deployments run, so an operator names the IdP instead of
// writing paths. Each is the shape that IdP gives its access tokens by default; an issuer's own
// `claims` override a preset field by field. README ("JWT / OIDC") shows each with a config.

export const PRESET_NAMES = ['okta', 'azure_ad', 'keycloak'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Claim paths per principal field, as in the config (`claims`). */
export interface ClaimSources {
  id?: string | string[] | undefined;
  team?: string | string[] | undefined;
  user?: string | string[] | undefined;
  roles?: string | string[] | undefined;
  attributes?: Record<string, string> | undefined;
}

/** The mapping a preset stands for. `audiences` are the issuer's configured ones: Keycloak puts
 * a client's roles under resource_access.<client id>, and the gate's client id is its audience. */
export function presetClaims(preset: PresetName | undefined, audiences: readonly string[]): ClaimSources {
  switch (preset) {
    case undefined:
      return {};
    // Okta (custom authorization server): sub is the user's login, or the client id for a
    // client_credentials token; uid is the user's immutable id; cid the client; groups is the
    // claim Okta's docs add for group membership.
    case 'okta':
      return { id: ['uid', 'sub'], user: 'sub', roles: 'groups', attributes: { client_id: 'cid' } };
    // Azure AD / Entra ID v2 access tokens: tid is the directory (the issuer's tenant is
    // { claim: tid }, not part of the preset: every issuer states its tenant); oid the object id,
    // stable across applications (sub is pairwise per application); roles the app roles;
    // groups the group object ids (when the app asks for them); azp the calling client.
    case 'azure_ad':
      return {
        id: ['oid', 'sub'],
        user: 'preferred_username',
        roles: ['roles', 'groups'],
        attributes: { client_id: 'azp' },
      };
    // Keycloak: realm roles under realm_access.roles, the gate's client roles under
    // resource_access.<client>.roles, the login name in preferred_username.
    case 'keycloak':
      return {
        id: 'sub',
        user: 'preferred_username',
        roles: ['realm_access.roles', ...audiences.map((a) => `resource_access[${JSON.stringify(a)}].roles`)],
        attributes: { client_id: 'azp' },
      };
  }
}
