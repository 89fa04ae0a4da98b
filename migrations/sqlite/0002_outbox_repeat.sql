-- alert-exec schema, version 2: repeat notifies are marked, so that a
-- state change can drop the ones not yet sent (they repeat a state the
-- alert has left).

ALTER TABLE outbox ADD COLUMN is_repeat INTEGER NOT NULL DEFAULT 0 CHECK (is_repeat IN (0, 1));
