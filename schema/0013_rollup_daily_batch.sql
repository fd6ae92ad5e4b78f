-- Aggregate-only mode (src/aggregate.rs): the id of the batch a row of counts came from, so that
-- a spooled batch whose insert was written although tally never heard so (the answer lost, a
-- time-out after ClickHouse took the rows) is not counted a second time when it is replayed:
-- the replayer looks for the batch's id first (src/sink.rs). 0 in the rows the rollup job
-- writes. A number derived from the random ids of the batch's events: it identifies no one.
ALTER TABLE {db}.rollup_daily ADD COLUMN batch UInt64;
