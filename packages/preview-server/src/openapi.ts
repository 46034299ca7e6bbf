import {
  ERROR_STATUS,
  errorBodySchema,
  getReasonPhrase,
  type PreviewErrorCode,
} from '@sandbox/error-contract';
import { previewPortSchema, sessionIdSchema } from '@sandbox/preview-registry';
import { z } from 'zod';
import { INTERNAL_KEY_HEADER_NAME } from './internal-key.js';

/** Where the internal API is mounted unless told otherwise (`DEFAULT_PREFIXES.api`). */
export const DEFAULT_INTERNAL_API_BASE_PATH = '/api/internal';

/** The version of the internal API's contract (`info.version`), not of the npm package. */
export const INTERNAL_API_VERSION = '1.0.0';

/** Body of a registration: `{"port": <integer 1024..65535>}`; other fields are ignored. */
export const registrationBodySchema = z.object({
  port: previewPortSchema,
  stripPrefix: z
    .boolean()
    .optional()
    .describe(
      'Default true: the path routes strip `/previews/{id}` before the request reaches the port. false: ' +
        'the port receives the whole path and its Location and Set-Cookie headers pass unchanged, for an ' +
        "app told its public base (`vite --base /previews/{id}/`, Next.js `basePath`, Jupyter's `base_url`).",
    ),
  visibility: z
    .enum(['public', 'private'])
    .optional()
    .describe(
      'Default `public`: whoever has the URL reaches the port. `private`: only requests presenting a preview ' +
        'token (see `POST /sessions/{id}/previews/{port}/tokens`); needs the service to have PREVIEW_TOKEN_SECRET.',
    ),
});

/** 201 of `POST /sessions/:id/previews`. */
export const registeredPreviewSchema = z.object({
  sessionId: sessionIdSchema,
  port: previewPortSchema,
  registered: z.literal(true),
  stripPrefix: z.boolean().optional().describe("Echoed when the registration's body had it."),
  visibility: z
    .enum(['public', 'private'])
    .optional()
    .describe("Echoed when the registration's body had it."),
});

/** One registered port, as the listing describes it. */
export const previewPortDetailSchema = z.object({
  port: previewPortSchema,
  stripPrefix: z.boolean(),
  visibility: z.enum(['public', 'private']),
  active: z.boolean().describe('Whether the path routes use this port (the last registered).'),
  urls: z.object({
    path: z
      .string()
      .nullable()
      .describe(
        'Origin-relative, e.g. `/previews/{id}/`: the active port only, when the public route is on.',
      ),
    host: z
      .string()
      .nullable()
      .describe(
        'Scheme-relative, e.g. `//3000-{id}.preview.example.com/`, when a preview domain is set (the ' +
          'scheme is the one the preview domain is served over).',
      ),
  }),
});

const portListShape = {
  ports: z.array(previewPortSchema).describe('Oldest registration first; the last one is active.'),
  activePort: previewPortSchema.nullable().describe('The port the path routes use; null when none.'),
};

/** 200 of `GET /sessions/:id/previews`. */
export const previewPortsSchema = z.object({
  sessionId: sessionIdSchema,
  ...portListShape,
  previews: z.array(previewPortDetailSchema).describe('Each port of `ports`, in the same order.'),
});

/** 200 of `DELETE /sessions/:id/previews/:port`: the removed port and what remains. */
export const removedPreviewPortSchema = z.object({
  sessionId: sessionIdSchema,
  port: previewPortSchema,
  registered: z.literal(false),
  ...portListShape,
});

/** 200 of `DELETE /sessions/:id/previews`: the ports the session had. */
export const removedPreviewSchema = z.object({
  sessionId: sessionIdSchema,
  ports: z.array(previewPortSchema),
  registered: z.literal(false),
});

/** Body of `POST /sessions/:id/previews/:port/tokens` (an empty body takes the defaults). */
export const tokenRequestSchema = z.object({
  ttlSeconds: z
    .number()
    .int()
    .min(60)
    .max(86_400)
    .optional()
    .describe('How long the token opens the port, in seconds: 60 to 86400, default 3600.'),
});

/** 201 of `POST /sessions/:id/previews/:port/tokens`. */
export const issuedTokenSchema = z.object({
  token: z.string().describe('Opens this port of this session only, until it expires or is revoked.'),
  sessionId: sessionIdSchema,
  port: previewPortSchema,
  expiresAt: z.string().describe('ISO 8601, UTC.'),
  urls: z
    .object({
      path: z
        .string()
        .optional()
        .describe(
          '`/previews/{id}/?preview_token=...`, when the port is the active one and the route is on.',
        ),
      host: z
        .string()
        .optional()
        .describe('`//{port}-{id}.{domain}/?preview_token=...`, with a preview domain.'),
    })
    .describe('Links that carry the token: a browser opening one gets the cookie and the page.'),
});

/** 200 of `DELETE /sessions/:id/previews/:port/tokens`. */
export const revokedTokensSchema = z.object({
  sessionId: sessionIdSchema,
  port: previewPortSchema,
  revoked: z.literal(true),
});

/** A registration body. */
export type RegistrationBody = z.input<typeof registrationBodySchema>;
/** The answer to a registration. */
export type RegisteredPreview = z.output<typeof registeredPreviewSchema>;
/** One port of a listing. */
export type PreviewPortDetail = z.output<typeof previewPortDetailSchema>;
/** The answer to a listing of a session's ports. */
export type PreviewPorts = z.output<typeof previewPortsSchema>;
/** The answer to the removal of one port. */
export type RemovedPreviewPort = z.output<typeof removedPreviewPortSchema>;
/** The answer to the removal of a session's ports. */
export type RemovedPreview = z.output<typeof removedPreviewSchema>;
/** A token request. */
export type TokenRequest = z.input<typeof tokenRequestSchema>;
/** An issued token. */
export type IssuedToken = z.output<typeof issuedTokenSchema>;
/** The answer to a revocation. */
export type RevokedTokens = z.output<typeof revokedTokensSchema>;

// Every schema of the document, by component name; only request bodies are converted as input.
const COMPONENT_SCHEMAS = {
  SessionId: sessionIdSchema,
  PreviewPort: previewPortSchema,
  RegistrationBody: registrationBodySchema,
  RegisteredPreview: registeredPreviewSchema,
  PreviewPortDetail: previewPortDetailSchema,
  PreviewPorts: previewPortsSchema,
  RemovedPreviewPort: removedPreviewPortSchema,
  RemovedPreview: removedPreviewSchema,
  TokenRequest: tokenRequestSchema,
  IssuedToken: issuedTokenSchema,
  RevokedTokens: revokedTokensSchema,
  ErrorBody: errorBodySchema,
} as const;
type ComponentName = keyof typeof COMPONENT_SCHEMAS;
const REQUEST_COMPONENTS: readonly ComponentName[] = ['RegistrationBody', 'TokenRequest'];

/** One operation of the internal API, as the document describes it. */
export interface InternalApiOperation {
  method: 'get' | 'post' | 'delete';
  /** Under the base path, with OpenAPI's `{param}` (Express's `:param`). */
  path: string;
  operationId: string;
  summary: string;
  requestBody?: ComponentName;
  success: { status: 200 | 201; description: string; schema?: ComponentName };
  /** Every contract row the operation can answer; each is documented under its `ERROR_STATUS`. */
  errorCodes: readonly PreviewErrorCode[];
}

// Behind the key, anything unexpected is the generic 500; a path parameter that is not valid
// percent-encoding fails before any handler runs.
const EVERY_OPERATION: readonly PreviewErrorCode[] = ['FORBIDDEN', 'INTERNAL'];
const SESSION_PATH: readonly PreviewErrorCode[] = [
  ...EVERY_OPERATION,
  'MALFORMED_PATH',
  'INVALID_SESSION_ID',
];

/** The operations of the internal API and the error rows each can answer (see docs/contract.md, Errors). */
export const INTERNAL_API_OPERATIONS: readonly InternalApiOperation[] = [
  {
    method: 'post',
    path: '/sessions/{id}/previews',
    operationId: 'registerPreviewPort',
    summary: 'Register a preview port and make it the active one (last write wins).',
    requestBody: 'RegistrationBody',
    success: { status: 201, description: 'Registered', schema: 'RegisteredPreview' },
    errorCodes: [
      ...SESSION_PATH,
      'UNSUPPORTED_MEDIA_TYPE',
      'PAYLOAD_TOO_LARGE',
      'MALFORMED_JSON',
      'PORT_REQUIRED',
      'INVALID_PORT',
      'INVALID_STRIP_PREFIX',
      'INVALID_VISIBILITY',
      'PREVIEW_TOKENS_DISABLED',
      'CONTAINER_LOOKUP_FAILED',
      'CONTAINER_NOT_RUNNING',
    ],
  },
  {
    method: 'post',
    path: '/sessions/{id}/previews/{port}/tokens',
    operationId: 'issuePreviewToken',
    summary: 'Issue a token that opens this port (private ports), and links that carry it.',
    requestBody: 'TokenRequest',
    success: { status: 201, description: 'Issued', schema: 'IssuedToken' },
    errorCodes: [
      ...SESSION_PATH,
      'INVALID_PORT',
      'UNSUPPORTED_MEDIA_TYPE',
      'PAYLOAD_TOO_LARGE',
      'MALFORMED_JSON',
      'INVALID_TOKEN_TTL',
      'PREVIEW_TOKENS_DISABLED',
      'PORT_NOT_REGISTERED',
    ],
  },
  {
    method: 'delete',
    path: '/sessions/{id}/previews/{port}/tokens',
    operationId: 'revokePreviewTokens',
    summary: 'Revoke every token of this port issued so far.',
    success: { status: 200, description: 'Revoked', schema: 'RevokedTokens' },
    errorCodes: [...SESSION_PATH, 'INVALID_PORT', 'PORT_NOT_REGISTERED'],
  },
  {
    method: 'get',
    path: '/sessions/{id}/previews',
    operationId: 'listPreviewPorts',
    summary: "List a session's ports, the active one last.",
    success: { status: 200, description: 'The ports ([] and null when none)', schema: 'PreviewPorts' },
    errorCodes: SESSION_PATH,
  },
  {
    method: 'delete',
    path: '/sessions/{id}/previews/{port}',
    operationId: 'removePreviewPort',
    summary: 'Remove one port; the most recently registered remaining one becomes active.',
    success: { status: 200, description: 'Removed', schema: 'RemovedPreviewPort' },
    errorCodes: [...SESSION_PATH, 'INVALID_PORT', 'PORT_NOT_REGISTERED'],
  },
  {
    method: 'delete',
    path: '/sessions/{id}/previews',
    operationId: 'removePreview',
    summary: "Remove all of a session's ports.",
    success: { status: 200, description: 'Removed', schema: 'RemovedPreview' },
    errorCodes: [...SESSION_PATH, 'PREVIEW_NOT_REGISTERED'],
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getInternalApiDocument',
    summary: 'This OpenAPI document.',
    success: { status: 200, description: 'The OpenAPI 3.1 document of the internal API' },
    errorCodes: EVERY_OPERATION,
  },
];

const PATH_PARAMETERS: Readonly<Record<string, { schema: ComponentName; description: string }>> = {
  id: { schema: 'SessionId', description: 'The session; its container is `sandbox-session-{id}`.' },
  port: { schema: 'PreviewPort', description: 'A registered port of the session, in decimal digits.' },
};

/** A JSON Schema (draft 2020-12, OpenAPI 3.1's dialect). */
export type JsonSchema = z.core.JSONSchema.BaseSchema;

/** A response object of the document; error responses list their contract codes in `x-error-codes`. */
export interface OpenApiResponse {
  description: string;
  content: { 'application/json': { schema: JsonSchema } };
  'x-error-codes'?: PreviewErrorCode[];
}

/** An operation object of the document. */
export interface OpenApiOperation {
  operationId: string;
  summary: string;
  security: Array<Record<string, string[]>>;
  parameters: Array<{ name: string; in: 'path'; required: true; description: string; schema: JsonSchema }>;
  requestBody?: { required: true; content: { 'application/json': { schema: JsonSchema } } };
  responses: Record<string, OpenApiResponse>;
}

/** The OpenAPI 3.1 document of the internal API (plain JSON). */
export interface InternalApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  paths: Record<string, Partial<Record<InternalApiOperation['method'], OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, { type: 'apiKey'; in: 'header'; name: string; description: string }>;
  };
}

/** Options of {@link createInternalApiDocument}. */
export interface InternalApiDocumentOptions {
  /** Where the internal API is mounted. Default `/api/internal`. */
  basePath?: string;
}

const SECURITY_SCHEME = 'internalServiceKey';
const ref = (name: ComponentName): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ 'application/json': { schema } });

function componentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENT_SCHEMAS)) registry.add(schema, { id });
  const convert = (io: 'input' | 'output') =>
    z.toJSONSchema(registry, { target: 'draft-2020-12', io, uri: (id) => `#/components/schemas/${id}` })
      .schemas;
  const [inputs, outputs] = [convert('input'), convert('output')];
  const schemas: Record<string, JsonSchema> = {};
  for (const id of Object.keys(COMPONENT_SCHEMAS) as ComponentName[]) {
    // `$id` (a fragment, invalid as an id) and `$schema` belong to standalone schemas, not components.
    const {
      $id: _id,
      $schema: _schema,
      ...schema
    } = (REQUEST_COMPONENTS.includes(id) ? inputs : outputs)[id] ?? {};
    schemas[id] = schema;
  }
  return schemas;
}

function errorResponses(codes: readonly PreviewErrorCode[]): Record<string, OpenApiResponse> {
  const byStatus = new Map<number, PreviewErrorCode[]>();
  for (const code of codes)
    byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  const responses: Record<string, OpenApiResponse> = {};
  for (const [status, rows] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[status] = {
      description: `${getReasonPhrase(status)}: ${rows.join(', ')}`,
      content: json(ref('ErrorBody')),
      'x-error-codes': rows,
    };
  }
  return responses;
}

function toOperationObject(operation: InternalApiOperation): OpenApiOperation {
  const parameters = [...operation.path.matchAll(/\{(\w+)\}/g)].map(([, name = '']) => {
    const parameter = PATH_PARAMETERS[name];
    if (parameter === undefined) throw new Error(`Undocumented path parameter {${name}}`);
    return {
      name,
      in: 'path' as const,
      required: true as const,
      ...parameter,
      schema: ref(parameter.schema),
    };
  });
  const { success } = operation;
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    security: [{ [SECURITY_SCHEME]: [] }],
    parameters,
    ...(operation.requestBody && {
      requestBody: { required: true, content: json(ref(operation.requestBody)) },
    }),
    responses: {
      [success.status]: {
        description: success.description,
        content: json(success.schema === undefined ? { type: 'object' } : ref(success.schema)),
      },
      ...errorResponses(operation.errorCodes),
    },
  };
}

/**
 * The OpenAPI 3.1 document of the internal API, generated from the zod schemas the routes validate
 * with and from the contract's code -> status table, so it cannot drift from what the API answers.
 */
export function createInternalApiDocument({
  basePath = DEFAULT_INTERNAL_API_BASE_PATH,
}: InternalApiDocumentOptions = {}): InternalApiDocument {
  const base = basePath.replace(/\/+$/, '');
  const paths: InternalApiDocument['paths'] = {};
  for (const operation of INTERNAL_API_OPERATIONS) {
    const path = `${base}${operation.path}`;
    paths[path] = { ...paths[path], [operation.method]: toOperationObject(operation) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Preview routing: internal API',
      version: INTERNAL_API_VERSION,
      description:
        'Registration of session preview ports. Every error is the contract JSON (`ErrorBody`); ' +
        '`x-error-codes` lists the codes each error response can carry. Any other path or method ' +
        'under the base path answers 404 ROUTE_NOT_FOUND (403 first without the key).',
    },
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'apiKey',
          in: 'header',
          name: INTERNAL_KEY_HEADER_NAME,
          description: 'The shared internal service key; a missing or wrong key is the 403 FORBIDDEN.',
        },
      },
    },
  };
}
