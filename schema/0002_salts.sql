-- Daily salts, shared by every collector writing to this database. One partition per day,
-- so that an expired salt is removed by dropping its partition, not by a mutation that
-- leaves the old part behind. `old_parts_lifetime` shortens how long ClickHouse keeps the
-- dropped part's files before deleting them from disk.
CREATE TABLE IF NOT EXISTS {db}.salts
(
    day Date,
    salt String,
    created DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY day
ORDER BY (day, created)
SETTINGS old_parts_lifetime = 10;
