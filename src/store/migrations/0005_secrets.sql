-- 0005: the public keys that column secrets are sealed to (crypto/sealed.h,
-- store_secrets.h). key_id: hex of the first 8 bytes of SHA-256(public
-- key); public_key: base64 of the 32-byte X25519 key. The private keys are
-- never stored: they live in the [secrets] private_key_file. The current key
-- is the newest (created_at, strictly increasing) with retired_at NULL.
CREATE TABLE secret_keys (
	key_id TEXT PRIMARY KEY,
	public_key TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	retired_at BIGINT
);
