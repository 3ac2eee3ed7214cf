// AES-256-GCM through WebCrypto (native code: no cipher in the Wasm module). The record
// format and associated data come from src/vault.rs; WebCrypto's output layout
// (ciphertext ‖ 128-bit tag) is the same as the aes-gcm crate's, so records interoperate.
export async function gcm(encrypt, key, iv, aad, data) {
  const s = crypto.subtle;
  const op = encrypt ? "encrypt" : "decrypt";
  const k = await s.importKey("raw", key, "AES-GCM", false, [op]);
  return new Uint8Array(await s[op]({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, k, data));
}
