import {
  constants,
  createCipheriv,
  createDecipheriv,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from "node:crypto";
import { badParameter } from "./http-io.js";

export const RSA_ALGORITHMS = ["RSA-OAEP-256", "RSA-OAEP", "RSA1_5"] as const;
export type RsaAlgorithm = (typeof RSA_ALGORITHMS)[number];

const AES_KW_BITS: Record<string, number> = { A128KW: 128, A192KW: 192, A256KW: 256 };
// RFC 3394 default initial value.
const AES_KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");

export function isRsaAlgorithm(alg: string): alg is RsaAlgorithm {
  return (RSA_ALGORITHMS as readonly string[]).includes(alg);
}

/** Bits of the AES key an A*KW algorithm needs, or undefined when alg is not AES-KW. */
export function aesKwBits(alg: string): number | undefined {
  return AES_KW_BITS[alg];
}

export function rsaEncrypt(publicKey: KeyObject, alg: RsaAlgorithm, data: Buffer): Buffer {
  try {
    if (alg === "RSA1_5") {
      return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, data);
    }
    return publicEncrypt(
      {
        key: publicKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: alg === "RSA-OAEP-256" ? "sha256" : "sha1",
      },
      data,
    );
  } catch {
    throw badParameter();
  }
}

export function rsaDecrypt(privateKey: KeyObject, alg: RsaAlgorithm, data: Buffer): Buffer {
  try {
    if (alg === "RSA1_5") return rsa15Decrypt(privateKey, data);
    return privateDecrypt(
      {
        key: privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: alg === "RSA-OAEP-256" ? "sha256" : "sha1",
      },
      data,
    );
  } catch {
    throw badParameter();
  }
}

// Node 24's RSA_PKCS1_PADDING decryption uses implicit rejection (OpenSSL 3.5; CVE-2023-46809): a
// wrong ciphertext yields random bytes, not an error. An unwrap under the wrong key must fail, so
// do the raw RSA operation and check the PKCS#1 v1.5 type 2 padding here. What Key Vault answers
// to such a ciphertext is not recorded; BadParameter is this emulator's guess.
function rsa15Decrypt(privateKey: KeyObject, data: Buffer): Buffer {
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (data.length !== modulusBytes) throw badParameter();
  const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, data);
  const message = pkcs1Type2Unpad(em);
  if (message === undefined) throw badParameter();
  return message;
}

/** EM = 0x00 || 0x02 || PS (>= 8 non-zero bytes) || 0x00 || M (RFC 8017 §7.2.2). */
export function pkcs1Type2Unpad(em: Buffer): Buffer | undefined {
  if (em.length < 11 || em[0] !== 0x00 || em[1] !== 0x02) return undefined;
  const separator = em.indexOf(0x00, 2);
  if (separator < 10) return undefined;
  return em.subarray(separator + 1);
}

export function aesKeyWrap(key: Buffer, data: Buffer): Buffer {
  if (data.length < 16 || data.length % 8 !== 0) throw badParameter();
  try {
    const cipher = createCipheriv(`id-aes${key.length * 8}-wrap`, key, AES_KW_IV);
    return Buffer.concat([cipher.update(data), cipher.final()]);
  } catch {
    throw badParameter();
  }
}

export function aesKeyUnwrap(key: Buffer, data: Buffer): Buffer {
  if (data.length < 24 || data.length % 8 !== 0) throw badParameter();
  try {
    const decipher = createDecipheriv(`id-aes${key.length * 8}-wrap`, key, AES_KW_IV);
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    throw badParameter();
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

export function decodeBase64Url(value: unknown, field: string): Buffer {
  if (typeof value !== "string" || !BASE64URL.test(value)) {
    throw badParameter(`Property '${field}' must be a base64url string.`);
  }
  return Buffer.from(value, "base64url");
}

export function encodeBase64Url(data: Buffer): string {
  return data.toString("base64url");
}
