/** The dev IdP (design.md §8): a small but honest OpenID Provider for local use and tests. */
export { buildDevIdp, devIdpLoggerOptions, type DevIdp, type DevIdpDeps } from './server.ts'
export { ConfigError, derivedSub, loadDevIdpConfig, parseDevIdpConfig, type DevIdpClient, type DevIdpConfig, type DevIdpGrant, type DevIdpUser } from './config.ts'
export { DEFAULT_DEV_IDP_YAML, DEMO_CLIENT, DEMO_PASSWORDS } from './defaults.ts'
export { GRANT_PASSWORD, GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ID_JAG, TOKEN_TYPE_ID_TOKEN, TYP_ID_JAG } from './oauth.ts'
