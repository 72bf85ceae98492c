import type { Generated } from 'kysely';

/**
 * Tables of the keys module (migrations/2026-11-22T1500-keys.ts).
 *
 * `data_keys`: one row per data key (DEK), holding it wrapped by a KEK version inside the HSM.
 * `name` is set for the few long-lived named keys (`field:<scope>`, `blind:<purpose>`), unique, so
 * concurrent first uses agree on one key. Deleting a row crypto-shreds what the key encrypted.
 */
export interface KeysTables {
  data_keys: {
    id: string;
    name: string | null;
    scope: string;
    kek_label: string;
    kek_version: number;
    mechanism: string;
    /** base64 (text on every dialect) */
    wrapped: string;
    created_at: number;
    rewrapped_at: number | null;
  };
  /** KEK versions known to the appliance (migrations/2026-11-22T1600-keys-rotation.ts) */
  kek_versions: {
    version: number;
    label: string;
    /** 'active' | 'retired' | 'destroyed' */
    state: string;
    created_at: number;
    retired_at: number | null;
    destroy_after: number | null;
    destroyed_at: number | null;
  };
  /** rotation runs: a 'running' one is resumed by the next `coffre keys rotate` */
  kek_rotations: {
    id: Generated<number>;
    to_version: number;
    /** 'running' | 'done' */
    state: string;
    actor: string;
    started_at: number;
    finished_at: number | null;
    rewrapped: number;
  };
}
