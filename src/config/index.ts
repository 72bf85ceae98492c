export { ConfigSchema, sections, type Config, type ConfigFile } from './schema.js';
export {
  loadConfig,
  validateConfig,
  resolveDataDir,
  readSecretFile,
  resolveConfigPath,
  processEnv,
  ConfigError,
  CONFIG_FILE,
  type Env,
} from './load.js';
export {
  EDITABLE,
  applySettings,
  editableView,
  type EditableField,
  type EditableView,
  type FieldProblem,
} from './edit.js';
