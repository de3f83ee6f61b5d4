// oidc-provider ships no types; the harness uses this much of it (a Koa application).
declare module 'oidc-provider' {
  import type { Server } from 'node:http';
  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    listen(port: number, host: string): Server;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
