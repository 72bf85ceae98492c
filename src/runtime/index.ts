export {
  memoryTuning,
  reexecForTransfers,
  collect,
  engineGcTriggers,
  TRANSFER_V8_FLAGS,
  TRANSFER_MALLOC_ENV,
} from './memory.js';
export { BUNDLED, workerEntry, isCliEntry } from './layout.js';
