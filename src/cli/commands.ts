import type { Command } from 'commander';
import type { Io } from './output.js';
import { registerInit } from './init.js';
import { registerServe } from './serve.js';
import { registerDb } from './db.js';
import { registerAudit } from './audit.js';
import { registerDoc } from './doc.js';
import { registerUsers, registerTokens, registerWorkspaces } from './users.js';
import { registerKeys } from './keys.js';
import { registerBackup } from './backup.js';

/** Every verb of `coffre`, one registration per file (one line per module). */
export const registrations: ((program: Command, io: Io) => void)[] = [registerInit, registerServe, registerDb, registerAudit, registerDoc, registerUsers, registerTokens, registerWorkspaces, registerKeys, registerBackup];
