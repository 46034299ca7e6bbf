import { readFileSync } from 'node:fs';
import { isPreviewError, type PreviewErrorCode } from '@sandbox/error-contract';
import type Docker from 'dockerode';
import { describe, expect, it, vi } from 'vitest';
import type { ContainerInspect } from './parse-inspect.js';
import { type ContainerInspector, createContainerResolver } from './resolver.js';

function recorded(name: string): ContainerInspect {
  return JSON.parse(readFileSync(new URL(`../test/recorded/${name}.json`, import.meta.url), 'utf8'));
}

type Inspect = (options?: { abortSignal?: AbortSignal }) => Promise<unknown>;

/** A fake behind the `getContainer` interface: records the names asked for and answers with `inspect`. */
function fakeDocker(inspect: Inspect): ContainerInspector & { names: string[]; inspect: typeof inspect } {
  const spy = vi.fn(inspect);
  const names: string[] = [];
  return {
    names,
    inspect: spy,
    getContainer(name: string) {
      names.push(name);
      return { inspect: spy } as unknown as Docker.Container;
    },
  };
}

/** dockerode's error for a 404, as observed from dockerd 20.10. */
function notFound(name: string): Error {
  return Object.assign(new Error(`(HTTP code 404) no such container - No such container: ${name} `), {
    reason: 'no such container',
    statusCode: 404,
    json: { message: `No such container: ${name}` },
  });
}

async function rejection(
  promise: Promise<unknown>,
): Promise<{ code: PreviewErrorCode; message: string; status: number }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isPreviewError(error)) throw new Error(`expected a PreviewError, got ${String(error)}`);
  return { code: error.code, message: error.message, status: error.status };
}

describe('createContainerResolver', () => {
  it('resolves a running container with one inspect of the session container', async () => {
    const doc = recorded('bridge');
    const docker = fakeDocker(async () => doc);
    const resolved = await createContainerResolver({ docker }).resolve('abc');
    expect(resolved).toEqual({
      ip: doc.NetworkSettings?.Networks?.bridge?.IPAddress,
      network: 'bridge',
      containerId: doc.Id,
      labels: doc.Config?.Labels,
    });
    expect(docker.names).toEqual(['sandbox-session-abc']);
    expect(docker.inspect).toHaveBeenCalledTimes(1);
    expect(docker.inspect).toHaveBeenCalledWith({ abortSignal: expect.any(AbortSignal) });
  });

  it('prefers the configured network', async () => {
    const doc = recorded('multi-network');
    const resolver = createContainerResolver({ docker: fakeDocker(async () => doc), network: 'crrec-zeta' });
    await expect(resolver.resolve('abc')).resolves.toMatchObject({
      network: 'crrec-zeta',
      ip: doc.NetworkSettings?.Networks?.['crrec-zeta']?.IPAddress,
    });
  });

  it.each<[string, string, PreviewErrorCode, string]>([
    ['exited', 'exited', 'CONTAINER_NOT_RUNNING', 'Container for session s1 is not running'],
    ['paused', 'paused', 'CONTAINER_NOT_RUNNING', 'Container for session s1 is not running'],
    ['restarting', 'restarting', 'CONTAINER_NOT_RUNNING', 'Container for session s1 is not running'],
    ['created', 'created', 'CONTAINER_NOT_RUNNING', 'Container for session s1 is not running'],
    ['--network none', 'network-none', 'CONTAINER_NO_IP', 'Container for session s1 has no IP address'],
    ['--network host', 'network-host', 'CONTAINER_NO_IP', 'Container for session s1 has no IP address'],
  ])('%s -> %s', async (_case, file, code, message) => {
    const resolver = createContainerResolver({ docker: fakeDocker(async () => recorded(file)) });
    expect(await rejection(resolver.resolve('s1'))).toEqual({ code, message, status: 500 });
  });

  it.each<[string, unknown, string]>([
    ['404', notFound('sandbox-session-s1'), 'No such container: sandbox-session-s1'],
    [
      'refused',
      new Error('connect ECONNREFUSED /var/run/docker.sock'),
      'connect ECONNREFUSED /var/run/docker.sock',
    ],
    [
      'missing socket',
      new Error('connect ENOENT /var/run/docker.sock'),
      'connect ENOENT /var/run/docker.sock',
    ],
    ['not an Error', 'boom', 'boom'],
  ])('a Docker failure (%s) is CONTAINER_LOOKUP_FAILED with the reason', async (_case, failure, reason) => {
    const resolver = createContainerResolver({ docker: fakeDocker(() => Promise.reject(failure)) });
    expect(await rejection(resolver.resolve('s1'))).toEqual({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: `Failed to validate container for session s1: ${reason}`,
      status: 500,
    });
  });

  it('an unexpected document is CONTAINER_LOOKUP_FAILED', async () => {
    const doc = recorded('bridge');
    const docker = fakeDocker(async () => ({ ...doc, State: { ...doc.State, Status: 'zombie' } }));
    expect(await rejection(createContainerResolver({ docker }).resolve('s1'))).toMatchObject({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: 'Failed to validate container for session s1: Unknown container status "zombie"',
    });
  });

  it('gives up after timeoutMs with a reason that says so', async () => {
    // Like dockerode: the request fails once the signal aborts.
    const hang: Inspect = (options) =>
      new Promise((_resolve, reject) => {
        options?.abortSignal?.addEventListener('abort', () => reject(new Error('The operation was aborted')));
      });
    const resolver = createContainerResolver({ docker: fakeDocker(hang), timeoutMs: 20 });
    expect(await rejection(resolver.resolve('s1'))).toMatchObject({
      code: 'CONTAINER_LOOKUP_FAILED',
      message: 'Failed to validate container for session s1: Docker did not answer within 20 ms',
    });
  });

  it('rejects an invalid session id before asking Docker', async () => {
    const docker = fakeDocker(async () => recorded('bridge'));
    expect(await rejection(createContainerResolver({ docker }).resolve('../x'))).toMatchObject({
      code: 'INVALID_SESSION_ID',
      status: 400,
    });
    expect(docker.names).toEqual([]);
  });
});
