-- Dashboard login sessions (src/dashboard/sessions.rs), here rather than in one collector's
-- memory, so that every collector on this database knows a session (no sticky routing needed)
-- and a restart or upgrade logs no one out. A session is kept as the SHA-256 of its cookie's
-- token (the token itself is only in the browser), the configured user name, a fingerprint of
-- the user's password hash when the session was made (a changed password ends it), when it was
-- created, when it was last used (one more row at most once a minute while it is used), and a
-- row marking that it was ended by logging out. Nothing about visitors. Partitioned by the day
-- it was created, so that a day is dropped whole once all its sessions have reached
-- `dashboard.session_max_secs` (the collector does so itself, as it does with salts). On a
-- cluster every server holds the whole table (storage::ddl::EVERYWHERE).
CREATE TABLE IF NOT EXISTS {db}.dashboard_sessions
(
    token_sha256 String,
    user String,
    credential String,
    created DateTime('UTC'),
    seen DateTime('UTC'),
    ended UInt8
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(created)
ORDER BY (token_sha256, seen)
SETTINGS old_parts_lifetime = 10;
