-- alert-exec schema, version 3.
--
-- A claimed call carries a token, and every write of its outcome names it:
-- a worker whose lease ran out (it stalled) and whose row another worker
-- claimed since cannot overwrite that worker's result.
-- A call that ended (delivered or given up) records when, and pruning
-- goes by that time through an index, not by when the call was created.
-- A call the server asked to wait (Retry-After) is not retried sooner
-- when other calls go through again.

ALTER TABLE outbox ADD COLUMN lease_token INTEGER;
ALTER TABLE outbox ADD COLUMN finished INTEGER;
ALTER TABLE outbox ADD COLUMN not_before INTEGER;

UPDATE outbox SET finished = coalesce(delivered, next_attempt) WHERE status <> 'pending';
DROP INDEX outbox_done;
CREATE INDEX outbox_finished ON outbox (finished) WHERE status <> 'pending';

-- alert_state is rebuilt:
-- - Its rows lie in the order the alerts are evaluated: `slot`, the rowid,
--   is the phase of the alert's schedule (next_eval modulo the interval,
--   in ms) times 2^21 plus a counter, so the evaluations written in one
--   transaction change a few neighbouring pages, not one page each.
-- - A notify that was given up holds back the alert's next repeat notify,
--   as a delivered one does (notify_gave_up).
-- - Evaluations are no longer leased (the scheduler holds what it picked
--   in memory and writes nothing until the evaluation is done): one that
--   an older version leased and died with is due now.
DROP VIEW alert_status;
CREATE TABLE alert_state_v3 (
    slot           INTEGER PRIMARY KEY,   -- where the row lies (see above)
    alert_id       INTEGER NOT NULL UNIQUE REFERENCES alert(id) ON DELETE CASCADE,
    state          TEXT    NOT NULL DEFAULT 'PASS'
                           CHECK (state IN ('PASS', 'WARN', 'CRITICAL')),
    warn_since     INTEGER,               -- sustain clock: run of values > warn
    crit_since     INTEGER,               -- sustain clock: run of values > critical
    last_value     REAL,
    last_eval      INTEGER,               -- last evaluation attempt
    last_ok        INTEGER,               -- last successful evaluation
    next_eval      INTEGER NOT NULL,
    last_notified  INTEGER,               -- last delivered notify
    notify_gave_up INTEGER,               -- last notify given up
    failures       INTEGER NOT NULL DEFAULT 0,  -- consecutive failed queries
    last_error     TEXT
);
INSERT INTO alert_state_v3 (slot, alert_id, state, warn_since, crit_since, last_value,
                            last_eval, last_ok, next_eval, last_notified, failures,
                            last_error)
SELECT (s.next_eval % a.interval_ms) * 2097152
           + row_number() OVER (PARTITION BY s.next_eval % a.interval_ms ORDER BY s.alert_id),
       s.alert_id, s.state, s.warn_since, s.crit_since, s.last_value, s.last_eval, s.last_ok,
       CASE WHEN s.lease_until IS NULL THEN s.next_eval
            ELSE min(s.next_eval,
                     CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) END,
       s.last_notified, s.failures, s.last_error
  FROM alert_state s JOIN alert a ON a.id = s.alert_id;
DROP TABLE alert_state;
ALTER TABLE alert_state_v3 RENAME TO alert_state;
-- The pick reads it alone: the alerts due, in order, with their ids.
CREATE INDEX alert_state_due ON alert_state (next_eval, alert_id);

CREATE VIEW alert_status AS
SELECT a.name                                                      AS name,
       s.state                                                     AS state,
       s.last_value                                                AS last_value,
       strftime('%Y-%m-%dT%H:%M:%fZ', s.last_eval / 1000.0, 'unixepoch')     AS last_eval,
       strftime('%Y-%m-%dT%H:%M:%fZ', s.next_eval / 1000.0, 'unixepoch')     AS next_eval,
       strftime('%Y-%m-%dT%H:%M:%fZ', s.last_notified / 1000.0, 'unixepoch') AS last_notified,
       s.failures                                                  AS failures,
       s.last_error                                                AS last_error,
       (SELECT count(*) FROM outbox o
         WHERE o.alert_id = a.id AND o.status = 'pending')         AS pending_calls,
       CASE WHEN a.retired IS NULL THEN 0 ELSE 1 END               AS retired
  FROM alert a JOIN alert_state s ON s.alert_id = a.id;
