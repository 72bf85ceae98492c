export type { Sealer, SealCertificate, Timestamper, PendingTimestamps } from './types.js';
export type { SealsTables } from './tables.js';
export { HsmSealer, SEAL_KEY, type HsmSealerOptions } from './sealer.js';
export { rawToDer, parseCert, type SealIdentity } from './certificate.js';
export { sealsErrors } from './errors.js';
export type { TsaClient, Timestamp } from './tsa.js';
import type { TsaClient } from './tsa.js';

/**
 * The RFC 3161 client, loaded only when a TSA is configured: pkijs and asn1js cost tens of MB of
 * resident memory (figures: bench/RESULTS.md, "Design measurements"), which an appliance without a TSA does not spend.
 */
export async function openTsaClient(...args: ConstructorParameters<typeof TsaClient>): Promise<TsaClient> {
  const { TsaClient: Client } = await import('./tsa.js');
  return new Client(...args);
}
export {
  DepositReceipts,
  RECEIPT_TYPE,
  RECEIPT_VERSION,
  type DepositFacts,
  type PreparedReceipt,
  type ReceiptView,
  type DepositReceiptsOptions,
} from './receipts.js';
export { TimestampRetrier, type TimestampRetrierOptions } from './retrier.js';
export { ProofStamps, type ProofTimestamp, type ProofStampsOptions } from './stamps.js';
export { ReportArchive, type KeptReport } from './reports.js';
export { receiptFiles, receiptReadme } from './receipt-files.js';
