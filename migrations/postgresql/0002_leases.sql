-- Several engines on one database: an engine that stopped gracefully says
-- so (it no longer counts towards the fair share of the others), and
-- alert_status names an alert's owner only while its lease runs: a shard
-- whose lease ran out has nobody working on it.
ALTER TABLE engine ADD COLUMN stopped timestamptz;

CREATE OR REPLACE VIEW alert_status AS
SELECT a.name                           AS name,
       s.state                          AS state,
       s.last_value                     AS last_value,
       alert_exec_time(s.last_eval)     AS last_eval,
       alert_exec_time(s.next_eval)     AS next_eval,
       alert_exec_time(s.last_notified) AS last_notified,
       s.failures                       AS failures,
       s.last_error                     AS last_error,
       (SELECT count(*) FROM outbox o
         WHERE o.alert_id = a.id AND o.status = 'pending') AS pending_calls,
       CASE WHEN a.retired IS NULL THEN 0 ELSE 1 END       AS retired,
       a.shard                          AS shard,
       CASE WHEN sh.lease_until > now() THEN sh.owner END  AS owner
  FROM alert a
  JOIN alert_state s ON s.alert_id = a.id
  JOIN shard sh ON sh.id = a.shard;
