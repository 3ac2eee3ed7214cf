// www/totp.js, the one TOTP implementation (the demo's authenticator; the e2e tests answer
// bob's second step with it), in Node: RFC 6238 Appendix B and RFC 4648 vectors, and the
// inputs it must refuse. No server, no browser.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_TOTP_SECRET, base32Decode, secondsLeft, totp } from "../../www/totp.js";

const SEED = new TextEncoder().encode("12345678901234567890");

test("RFC 6238 Appendix B, SHA-1, 8 digits", async () => {
  const vectors = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];
  for (const [t, code] of vectors) assert.equal(await totp(SEED, t * 1000, 8), code, `T=${t}`);
});

test("6 digits are the last 6 of the 8 (same truncation), zero-padded", async () => {
  assert.equal(await totp(SEED, 59_000, 6), "287082");
  assert.equal(await totp(SEED, 1111111109_000, 6), "081804", "a leading zero is kept");
});

test("a code holds for one 30 s step and changes at its boundary", async () => {
  const stepStart = 1_700_000_010_000; // a multiple of 30 s
  assert.equal(stepStart % 30_000, 0);
  const code = await totp(DEMO_TOTP_SECRET, stepStart);
  assert.equal(await totp(DEMO_TOTP_SECRET, stepStart + 29_999), code);
  assert.notEqual(await totp(DEMO_TOTP_SECRET, stepStart + 30_000), code);
  assert.equal(secondsLeft(stepStart), 30);
  assert.equal(secondsLeft(stepStart + 29_999), 1);
});

test("base32: RFC 4648 vectors, case, padding and spaces", () => {
  const text = (s) => new TextDecoder().decode(base32Decode(s));
  for (const [enc, dec] of [
    ["", ""],
    ["MY======", "f"],
    ["MZXQ====", "fo"],
    ["MZXW6===", "foo"],
    ["MZXW6YQ=", "foob"],
    ["MZXW6YTB", "fooba"],
    ["MZXW6YTBOI======", "foobar"],
  ]) {
    assert.equal(text(enc), dec, enc);
  }
  assert.equal(text("mzxw 6ytb oi"), "foobar");
  assert.equal(base32Decode(DEMO_TOTP_SECRET).length, 20, "the demo secret is 160 bits");
});

test("base32: a character outside the alphabet is an error, not a wrong key", async () => {
  for (const bad of ["MZXW1", "MZXW0", "MZXW8", "MZ-XW"]) {
    assert.throws(() => base32Decode(bad), /invalid base32 character/, bad);
  }
  await assert.rejects(totp("NOT-BASE32!"), /invalid base32 character/);
});
