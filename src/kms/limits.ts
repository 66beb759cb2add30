/** kube-apiserver's size limits per API (docs/kms-contract.md §2.2, §2.4). */

/** v2 / v2alpha1: EncryptResponse.ciphertext must be 1..1024 bytes. */
export const MAX_V2_CIPHERTEXT = 1024;
/** v1beta1: the encrypted DEK is stored behind a uint16 length; plaintexts are 32-byte DEKs. */
export const MAX_V1_PLAINTEXT = 32 * 1024;
export const MAX_V1_CIPHERTEXT = 64 * 1024;
