//! A DPoP client key for tests: ES256 (as a browser's WebCrypto key) or EdDSA, and the
//! proofs it signs (RFC 9449 §4.2), built here independently of the server's code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const ORIGIN: &str = "http://127.0.0.1:8080";

/// A client's DPoP key, as a browser (ES256 through WebCrypto) or another client (EdDSA)
/// holds it.
pub enum Key {
    Es256(EcdsaKeyPair),
    Ed25519(ed25519_dalek::SigningKey),
}

pub fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

impl Key {
    pub fn es256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate");
        Key::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key"),
        )
    }

    pub fn ed25519() -> Self {
        Key::Ed25519(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Key::Es256(_) => "ES256",
            Key::Ed25519(_) => "EdDSA",
        }
    }

    pub fn jwk(&self) -> Value {
        match self {
            Key::Es256(k) => {
                let p = k.public_key().as_ref(); // 0x04 || x || y
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Key::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.verifying_key().as_bytes())})
            }
        }
    }

    /// RFC 7638, computed here independently of the server.
    pub fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = match self {
            Key::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
                j["x"], j["y"]
            ),
            Key::Ed25519(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, j["x"]),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Key::Es256(k) => k
                .sign(&SystemRandom::new(), input)
                .expect("sign")
                .as_ref()
                .to_vec(),
            Key::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(input).to_bytes().to_vec()
            }
        }
    }

    /// A JWS with exactly this header and these claims, signed by this key.
    pub fn jws(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// Fresh claims (new `jti`) for `htm` `path` on [`ORIGIN`] at `iat`.
    pub fn claims(&self, htm: &str, path: &str, iat: i64) -> Value {
        self.claims_for(htm, &format!("{ORIGIN}{path}"), iat)
    }

    /// Fresh claims (new `jti`) for `htm` `htu` at `iat`.
    pub fn claims_for(&self, htm: &str, htu: &str, iat: i64) -> Value {
        json!({
            "jti": b64(&rand::random::<[u8; 16]>()),
            "htm": htm,
            "htu": htu,
            "iat": iat,
        })
    }

    /// A valid proof for `htm` `path` (on [`ORIGIN`]) at `iat`, with `extra` claims merged in.
    pub fn proof(&self, htm: &str, path: &str, iat: i64, extra: Value) -> String {
        self.proof_for(htm, &format!("{ORIGIN}{path}"), iat, extra)
    }

    /// A valid proof for `htm` `htu` at `iat`, with `extra` claims merged in.
    pub fn proof_for(&self, htm: &str, htu: &str, iat: i64, extra: Value) -> String {
        let mut c = self.claims_for(htm, htu, iat);
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        self.jws(&self.header(), &c)
    }
}

pub fn ath(token: &str) -> String {
    b64(&Sha256::digest(token.as_bytes()))
}

pub fn claims_of(jwt: &str) -> Value {
    let c = jwt.split('.').nth(1).expect("claims");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).expect("b64")).expect("json")
}
