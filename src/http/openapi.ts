// The OpenAPI document of the public API, served at GET /openapi.json.

/** OpenAPI 3.1 description of the public endpoints. */
export function openapiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'sqlfleet', version: '0.1.0', description: 'Replicated SQLite over HTTP' },
    paths: {},
  };
}
