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
const REQUEST_COMPONENTS: readonly string[] = ['RegistrationBody', 'TokenRequest'];

/** A query parameter of an operation. */
export interface InternalApiQueryParameter {
  name: string;
  description: string;
  required: boolean;
  /** A component name, or a JSON Schema of its own. */
  schema: string | JsonSchema;
}

/**
 * One operation of the internal API, as the document describes it. Schemas are named by component (those
 * of this package, or those an {@link InternalApiExtension} brings).
 */
export interface InternalApiOperation {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Under the base path, with OpenAPI's `{param}` (Express's `:param`). */
  path: string;
  operationId: string;
  summary: string;
  /** Longer words than the summary, when the operation needs them. */
  description?: string;
  /** A JSON body's component, or a body of another media type (a file's bytes, say). */
  requestBody?: string | { contentType: string; description: string };
  query?: readonly InternalApiQueryParameter[];
  /** `contentType` defaults to JSON; a streamed answer (NDJSON, SSE, bytes) names its own. */
  success: {
    status: 200 | 201;
    description: string;
    schema?: string;
    contentType?: string;
    /** Further media types the same answer may take (content negotiation by `Accept`). */
    alternatives?: readonly string[];
  };
  /** Every contract row the operation can answer; each is documented under its `ERROR_STATUS`. */
  errorCodes: readonly PreviewErrorCode[];
}

/**
 * Operations another package mounts under the internal API (behind the same key), with the schemas they
 * refer to: the document then describes them beside the registration routes.
 */
export interface InternalApiExtension {
  operations: readonly InternalApiOperation[];
  /** Component schemas by name; names must not clash with this package's or another extension's. */
  schemas?: Readonly<Record<string, z.ZodType>>;
  /** Components that are request bodies (converted as input, so defaults are optional). */
  requestSchemas?: readonly string[];
  /** Path parameters beyond `{id}` and `{port}`. */
  pathParameters?: Readonly<Record<string, { schema: string; description: string }>>;
}

// Behind the key, anything unexpected is the generic 500; a target with a fragment, or a path parameter that
// is not valid percent-encoding, fails before any handler runs.
const EVERY_OPERATION: readonly PreviewErrorCode[] = ['FORBIDDEN', 'INTERNAL', 'MALFORMED_PATH'];
const SESSION_PATH: readonly PreviewErrorCode[] = [...EVERY_OPERATION, 'INVALID_SESSION_ID'];

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

const PATH_PARAMETERS: Readonly<Record<string, { schema: string; description: string }>> = {
  id: { schema: 'SessionId', description: 'The session; its container is `sandbox-session-{id}`.' },
  port: { schema: 'PreviewPort', description: 'A registered port of the session, in decimal digits.' },
};

/** A JSON Schema (draft 2020-12, OpenAPI 3.1's dialect). */
export type JsonSchema = z.core.JSONSchema.BaseSchema;

/** A response object of the document; error responses list their contract codes in `x-error-codes`. */
export interface OpenApiResponse {
  description: string;
  content: Record<string, { schema: JsonSchema }>;
  'x-error-codes'?: PreviewErrorCode[];
}

/** An operation object of the document. */
export interface OpenApiOperation {
  operationId: string;
  summary: string;
  security: Array<Record<string, string[]>>;
  description?: string;
  parameters: Array<{
    name: string;
    in: 'path' | 'query';
    required: boolean;
    description: string;
    schema: JsonSchema;
  }>;
  requestBody?: { required: true; description?: string; content: Record<string, { schema: JsonSchema }> };
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
  /** Operations mounted beside the registration routes (the sessions API, say). */
  extensions?: readonly InternalApiExtension[];
}

const SECURITY_SCHEME = 'internalServiceKey';
const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ 'application/json': { schema } });

function componentSchemas(
  components: Readonly<Record<string, z.ZodType>>,
  requests: readonly string[],
): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(components)) registry.add(schema, { id });
  const convert = (io: 'input' | 'output') =>
    z.toJSONSchema(registry, { target: 'draft-2020-12', io, uri: (id) => `#/components/schemas/${id}` })
      .schemas;
  const [inputs, outputs] = [convert('input'), convert('output')];
  const schemas: Record<string, JsonSchema> = {};
  for (const id of Object.keys(components)) {
    // `$id` (a fragment, invalid as an id) and `$schema` belong to standalone schemas, not components.
    const { $id: _id, $schema: _schema, ...schema } = (requests.includes(id) ? inputs : outputs)[id] ?? {};
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

type PathParameters = Readonly<Record<string, { schema: string; description: string }>>;

function toOperationObject(
  operation: InternalApiOperation,
  pathParameters: PathParameters,
): OpenApiOperation {
  const inPath = [...operation.path.matchAll(/\{(\w+)\}/g)].map(([, name = '']) => {
    const parameter = pathParameters[name];
    if (parameter === undefined) throw new Error(`Undocumented path parameter {${name}}`);
    return { name, in: 'path' as const, required: true, ...parameter, schema: ref(parameter.schema) };
  });
  const inQuery = (operation.query ?? []).map(({ name, description, required, schema }) => ({
    name,
    in: 'query' as const,
    required,
    description,
    schema: typeof schema === 'string' ? ref(schema) : schema,
  }));
  const { success, requestBody } = operation;
  const successSchema: JsonSchema = success.schema === undefined ? { type: 'object' } : ref(success.schema);
  const successContent: Record<string, { schema: JsonSchema }> = {
    [success.contentType ?? 'application/json']: { schema: successSchema },
  };
  for (const type of success.alternatives ?? []) successContent[type] = { schema: { type: 'string' } };
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    ...(operation.description === undefined ? {} : { description: operation.description }),
    security: [{ [SECURITY_SCHEME]: [] }],
    parameters: [...inPath, ...inQuery],
    ...(requestBody !== undefined && {
      requestBody:
        typeof requestBody === 'string'
          ? { required: true as const, content: json(ref(requestBody)) }
          : {
              required: true as const,
              description: requestBody.description,
              content: { [requestBody.contentType]: { schema: { type: 'string', format: 'binary' } } },
            },
    }),
    responses: {
      [success.status]: { description: success.description, content: successContent },
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
  extensions = [],
}: InternalApiDocumentOptions = {}): InternalApiDocument {
  const base = basePath.replace(/\/+$/, '');
  const components: Record<string, z.ZodType> = { ...COMPONENT_SCHEMAS };
  const requests = [...REQUEST_COMPONENTS];
  let pathParameters: PathParameters = PATH_PARAMETERS;
  const operations = [...INTERNAL_API_OPERATIONS];
  for (const extension of extensions) {
    for (const [name, schema] of Object.entries(extension.schemas ?? {})) {
      if (name in components) throw new Error(`Component schema ${name} is defined twice`);
      components[name] = schema;
    }
    requests.push(...(extension.requestSchemas ?? []));
    pathParameters = { ...pathParameters, ...extension.pathParameters };
    operations.push(...extension.operations);
  }
  const paths: InternalApiDocument['paths'] = {};
  for (const operation of operations) {
    const path = `${base}${operation.path}`;
    if (paths[path]?.[operation.method] !== undefined)
      throw new Error(`${operation.method.toUpperCase()} ${path} is documented twice`);
    paths[path] = { ...paths[path], [operation.method]: toOperationObject(operation, pathParameters) };
  }
  const schemas = componentSchemas(components, requests);
  for (const name of refsOf(paths)) {
    if (!(name in schemas)) throw new Error(`The document refers to an unknown component ${name}`);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Preview routing: internal API',
      version: INTERNAL_API_VERSION,
      description:
        'Registration of session preview ports (and what extensions mount beside it, such as sessions, ' +
        'exec and files). Every error is the contract JSON (`ErrorBody`); ' +
        '`x-error-codes` lists the codes each error response can carry. Any other path or method ' +
        'under the base path answers 404 ROUTE_NOT_FOUND (403 first without the key).',
    },
    paths,
    components: {
      schemas,
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

// The component names an operation's objects refer to, to catch a typo when the document is built.
function refsOf(node: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const item of node) refsOf(item, found);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.add(value.replace('#/components/schemas/', ''));
      else refsOf(value, found);
    }
  }
  return found;
}
