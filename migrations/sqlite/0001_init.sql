-- alert-exec schema, version 1. Times are integer milliseconds since the
-- epoch; the views show them as ISO-8601 text.

CREATE TABLE alert (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    query              TEXT    NOT NULL,
    interval_ms        INTEGER NOT NULL CHECK (interval_ms > 0),
    repeat_ms          INTEGER NOT NULL CHECK (repeat_ms > 0),
    sustain_ms         INTEGER NOT NULL DEFAULT 0 CHECK (sustain_ms >= 0),
    warn_value         REAL    NOT NULL,
    warn_message       TEXT    NOT NULL,
    crit_value         REAL    NOT NULL,
    crit_message       TEXT    NOT NULL,
    created            INTEGER NOT NULL,
    updated            INTEGER NOT NULL,
    retired            INTEGER             -- set when the server stopped serving it
);

CREATE TABLE alert_state (
    alert_id       INTEGER PRIMARY KEY REFERENCES alert(id) ON DELETE CASCADE,
    state          TEXT    NOT NULL DEFAULT 'PASS'
                           CHECK (state IN ('PASS', 'WARN', 'CRITICAL')),
    warn_since     INTEGER,               -- sustain clock: run of values > warn
    crit_since     INTEGER,               -- sustain clock: run of values > critical
    last_value     REAL,
    last_eval      INTEGER,               -- last evaluation attempt
    last_ok        INTEGER,               -- last successful evaluation
    next_eval      INTEGER NOT NULL,
    last_notified  INTEGER,               -- last delivered notify
    failures       INTEGER NOT NULL DEFAULT 0,  -- consecutive failed queries
    last_error     TEXT,
    lease_until    INTEGER                -- claimed by an evaluation until then
);
CREATE INDEX alert_state_due ON alert_state (next_eval);

CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    alert_id      INTEGER NOT NULL REFERENCES alert(id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('notify', 'resolve')),
    message       TEXT,
    created       INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  INTEGER NOT NULL,
    lease_until   INTEGER,                -- claimed by a delivery until then
    delivered     INTEGER,
    last_error    TEXT,
    status        TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'delivered', 'dead'))
);
-- The head of each alert's queue, and the next row to become deliverable.
CREATE INDEX outbox_pending_alert ON outbox (alert_id, id) WHERE status = 'pending';
CREATE INDEX outbox_pending_next ON outbox (next_attempt) WHERE status = 'pending';
CREATE INDEX outbox_done ON outbox (delivered) WHERE status <> 'pending';

CREATE TABLE transition (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alert(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    value       REAL
);
CREATE INDEX transition_alert ON transition (alert_id, at);
CREATE INDEX transition_at ON transition (at);

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

CREATE VIEW outbox_pending AS
SELECT o.id                                                         AS id,
       a.name                                                       AS name,
       o.kind                                                       AS kind,
       o.message                                                    AS message,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.created / 1000.0, 'unixepoch')      AS created,
       o.attempts                                                   AS attempts,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.next_attempt / 1000.0, 'unixepoch') AS next_attempt,
       o.last_error                                                 AS last_error
  FROM outbox o JOIN alert a ON a.id = o.alert_id
 WHERE o.status = 'pending'
 ORDER BY o.id;
