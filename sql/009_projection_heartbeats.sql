-- When each read model's runner last finished a fold, in whichever process it runs: a runner that died
-- must not look caught up because nothing new arrived (`/readyz`, `/v1/status`).
CREATE TABLE projection_heartbeats (
    name    text PRIMARY KEY,
    beat_at timestamptz NOT NULL
);
