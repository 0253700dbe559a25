/**
 * QMP and guest-agent clients over unix sockets: persistent connections, replies
 * matched by id, events as streams, deadlines and cancellation on every call.
 *
 * @module
 */
export type { CallOptions, ProtocolEvent } from "./json_channel.ts";
export {
  type ExecOptions,
  type ExecResult,
  QgaClient,
  type QgaConnectOptions,
  type RunningExec,
} from "./qga.ts";
export {
  type MigrationInfo,
  type QemuVersion,
  QmpClient,
  type QmpConnectOptions,
  type VmStatus,
} from "./qmp.ts";
export { connectUnix } from "./unix_socket.ts";
