export { type CliIo, DEFAULT_MANAGER_URL, runCli, USAGE } from './cli.js';
export {
  type ContractErrorBody,
  type CreateSession,
  createManagerClient,
  type ExecEvent,
  type LogEntry,
  type LogFollower,
  type ManagerClient,
  type ManagerClientOptions,
  ManagerError,
  ManagerUnreachableError,
  type PreviewPort,
  type Session,
  type SessionPort,
} from './client.js';
export { logLine, sessionTable } from './format.js';
