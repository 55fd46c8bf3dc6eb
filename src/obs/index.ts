// obs: the logger (and later metrics and the event log).
// Guarantees: logs go to stderr as JSON lines, never to stdout (stdout is for command output).
// Never: decides anything; it only records.
export { createLogger, type Logger } from './logger.js';
