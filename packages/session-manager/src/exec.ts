import { randomUUID } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import { containerNameFor, previewErrors } from '@sandbox/error-contract';
import type Docker from 'dockerode';
import { dockerStatusOf, sessionCallError } from './docker-errors.js';
import { createFrameDemuxer } from './exec-frames.js';
import type { ExecRequest } from './schemas.js';

/** How an exec ended. */
export interface ExecResult {
  /** The process's exit code; `null` when the engine could not tell. */
  exitCode: number | null;
  /** Whether it was killed because `timeoutMs` passed. */
  timedOut: boolean;
}

/** A command running in a session's container. */
export interface RunningExec {
  /** {@link OutputChunk}s (objects) as the command writes them; ends when every writer has exited. */
  output: Readable;
  /** Kills the command and every process it started (SIGKILL); resolves once the kill was sent. */
  kill(): Promise<void>;
  /** Once `output` has ended: the exit code. */
  result(): Promise<ExecResult>;
}

/** The Docker calls an exec makes. */
export type ExecDocker = Pick<Docker, 'getContainer'>;

// Every process an exec starts inherits this variable: the kill finds them all by it, without knowing any
// pid (the engine reports host pids, which mean nothing inside the container or on a remote engine).
const EXEC_ID_VARIABLE = 'SANDBOX_EXEC_ID';
const KILL_SCRIPT =
  'for d in /proc/[0-9]*; do grep -qsa "$1" "$d/environ" && kill -KILL "$(basename "$d")"; done; true';

async function waitForExitCode(exec: Docker.Exec): Promise<number | null> {
  // The stream can end a moment before the engine records the exit.
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const info = await exec.inspect();
    if (!info.Running) return info.ExitCode ?? null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return null;
}

/**
 * Starts `request.cmd` in the session's running container, without a TTY. Rejects with SESSION_NOT_FOUND,
 * SESSION_NOT_RUNNING or DOCKER_ENGINE_ERROR before anything runs. The kill (on `timeoutMs`, or when the
 * caller calls `kill()`) runs `/bin/sh` in the container as root: an image without a shell cannot be killed
 * early, and its command runs to its end.
 */
export async function startExec(
  docker: ExecDocker,
  sessionId: string,
  request: ExecRequest,
): Promise<RunningExec> {
  const container = docker.getContainer(containerNameFor(sessionId));
  const inspect = await container.inspect().catch((error: unknown) => {
    throw sessionCallError(sessionId, error);
  });
  if (!inspect.State.Running || inspect.State.Paused) throw previewErrors.sessionNotRunning(sessionId);
  const marker = `${EXEC_ID_VARIABLE}=${randomUUID()}`;
  let exec: Docker.Exec;
  let socket: Duplex;
  try {
    exec = await container.exec({
      Cmd: request.cmd,
      Env: [...Object.entries(request.env ?? {}).map(([name, value]) => `${name}=${value}`), marker],
      ...(request.workdir === undefined ? {} : { WorkingDir: request.workdir }),
      ...(request.user === undefined ? {} : { User: request.user }),
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    socket = (await exec.start({ hijack: true, stdin: false })) as Duplex;
  } catch (error) {
    // 409: it stopped (or was paused) between the inspect and the exec.
    if (dockerStatusOf(error) === 409) throw previewErrors.sessionNotRunning(sessionId);
    throw sessionCallError(sessionId, error);
  }
  const output = socket.pipe(createFrameDemuxer());
  socket.on('error', (error) => output.destroy(error));
  let timedOut = false;
  let killing: Promise<void> | undefined;
  const kill = () => {
    killing ??= (async () => {
      const killer = await container.exec({
        Cmd: ['/bin/sh', '-c', KILL_SCRIPT, 'kill', marker],
        User: '0',
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = (await killer.start({ hijack: true, stdin: false })) as Duplex;
      stream.resume();
      await new Promise((resolve) => stream.once('close', resolve).once('end', resolve));
    })().catch(() => {});
    return killing;
  };
  const timer =
    request.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          void kill();
        }, request.timeoutMs);
  const ended = new Promise<void>((resolve) => {
    output
      .once('end', resolve)
      .once('close', resolve)
      .once('error', () => resolve());
  });
  return {
    output,
    kill,
    async result() {
      await ended;
      if (timer) clearTimeout(timer);
      await killing;
      const exitCode = await waitForExitCode(exec).catch(() => null);
      return { exitCode, timedOut };
    },
  };
}
