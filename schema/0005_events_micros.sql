-- The microsecond within the second of each event, so that the events of a visit keep the order
-- they arrived in even within one second (a single-page-app navigation sends its engagement and
-- its pageview in the same instant). Rows stored before this column existed read as 0.
ALTER TABLE {db}.events ADD COLUMN micros UInt32 AFTER ts;
