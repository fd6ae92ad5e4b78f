-- The traffic source of each event, decided at ingest (src/source.rs): utm_source if set, else
-- the referrer host grouped by who runs it ("Google" for www.google.nl), else the referrer host;
-- empty for direct visits. Stored rather than computed in SQL so that reports group by a column.
ALTER TABLE {db}.events ADD COLUMN source String AFTER referrer_host;
