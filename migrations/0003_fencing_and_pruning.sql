-- alert-exec schema, version 3.
-- A claimed call carries a token, and every write of its outcome names it:
-- a worker whose lease ran out (it stalled) and whose row another worker
-- claimed since cannot overwrite that worker's result.
-- A call that ended (delivered or given up) records when, and pruning
-- goes by that time through an index, not by when the call was created.
-- A notify that was given up holds back the alert's next repeat notify,
-- as a delivered one does.
-- A call the server asked to wait (Retry-After) is not retried sooner
-- when other calls go through again.
-- Evaluations are no longer leased (the scheduler holds what it picked
-- in memory and writes nothing until the evaluation is done): an
-- evaluation leased by an older version that died is due now, and the
-- column goes.

ALTER TABLE outbox ADD COLUMN lease_token INTEGER;
ALTER TABLE outbox ADD COLUMN finished INTEGER;
ALTER TABLE outbox ADD COLUMN not_before INTEGER;
ALTER TABLE alert_state ADD COLUMN notify_gave_up INTEGER;

UPDATE outbox SET finished = coalesce(delivered, next_attempt) WHERE status <> 'pending';
UPDATE alert_state
   SET next_eval = min(next_eval, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
 WHERE lease_until IS NOT NULL;
ALTER TABLE alert_state DROP COLUMN lease_until;

DROP INDEX outbox_done;
CREATE INDEX outbox_finished ON outbox (finished) WHERE status <> 'pending';
