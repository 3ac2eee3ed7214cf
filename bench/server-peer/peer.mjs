// The Node peer of `cargo bench -p tessera-server`: an express + jose resource-server
// verifier doing the same work as tessera-server's `POST /auth/introspect` minus the session
// lookup: the caller's `Authorization: Bearer <secret>` checked, a JSON body `{token}`
// parsed, the token verified (EdDSA only, `typ` at+jwt, `iss`, `aud`, `exp` with the same
// 5 s leeway) and an RFC 7662 body returned. One process, as a Node service runs by default.
//
// Environment (set by the bench): PEER_JWK_X (base64url Ed25519 public key), PEER_KID,
// PEER_ISSUER, PEER_AUDIENCE, PEER_SECRET. Prints `listening on http://127.0.0.1:PORT/`.
//   npm ci --prefix bench/server-peer    (installs express and jose)
import { timingSafeEqual } from "node:crypto";
import express from "express";
import { importJWK, jwtVerify } from "jose";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const key = await importJWK(
  { kty: "OKP", crv: "Ed25519", x: env("PEER_JWK_X"), kid: env("PEER_KID") },
  "EdDSA",
);
const options = {
  algorithms: ["EdDSA"],
  typ: "at+jwt",
  issuer: env("PEER_ISSUER"),
  audience: env("PEER_AUDIENCE"),
  requiredClaims: ["exp", "iat", "sub"],
  clockTolerance: 5,
};
const expected = Buffer.from(`Bearer ${env("PEER_SECRET")}`);

const app = express();
app.disable("x-powered-by");
app.disable("etag");
app.post("/auth/introspect", express.json({ limit: "16kb" }), async (req, res) => {
  const auth = Buffer.from(req.get("authorization") ?? "");
  if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) {
    res.status(401).type("application/problem+json").send('{"code":"unauthorized"}');
    return;
  }
  const token = req.body?.token;
  if (typeof token !== "string") {
    res.status(400).type("application/problem+json").send('{"code":"invalid_request"}');
    return;
  }
  try {
    const { payload: c } = await jwtVerify(token, key, options);
    res.json({
      active: true, sub: c.sub, sid: c.sid, username: c.username, exp: c.exp, iat: c.iat,
      iss: c.iss, aud: c.aud, jti: c.jti, token_type: "Bearer",
    });
  } catch {
    res.json({ active: false });
  }
});
const server = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
server.keepAliveTimeout = 60_000;
