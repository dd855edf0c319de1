// The library API of qnet; the CLI is built on exactly this.
export { UserError, RuntimeError, HostCommandError, InternalError, exitCodeOf } from './errors.js';
export { parseTopology, validateTopology, loadTopology, formatIssues } from './topology/load.js';
export { topologyJsonSchema } from './topology/schema.js';
export type { ResolvedLab, ResolvedNode, ResolvedNetwork, ResolvedNic } from './topology/model.js';
export { planUp, formatPlan, type Step, type Action } from './plan/plan.js';
export { up, prepareUp, type UpOptions, type Reporter } from './lab/up.js';
export { down } from './lab/down.js';
export { stopNode, startNode, type StopResult } from './lab/lifecycle.js';
export { labStatus, allStatus, type LabStatus } from './lab/status.js';
export { listLabs, findLab } from './lab/discover.js';
export { ensureImage } from './guest/image.js';
export { RealRunner, RecordingRunner, type CommandRunner } from './host/run.js';
export { QmpClient } from './qemu/qmp.js';
export { execInGuest, monitorNetwork } from './lab/exec.js';
export { runDemo, type Check } from './lab/demo.js';
export { exportLab } from './lab/export.js';
export { AgentClient } from './qemu/agent.js';
