-- alert-exec schema on PostgreSQL, version 1: what SQLite's migrations 1
-- to 3 built, in one step, and what several engines sharing a database
-- will need (shards, engines). Times are bigint milliseconds since the
-- epoch, as on SQLite; the views show them as ISO-8601 text in UTC.

CREATE TABLE alert (
    id            bigserial        PRIMARY KEY,
    name          text             NOT NULL UNIQUE,
    -- hash_str(name) mod 1024 (src/hash.c, FNV-1a): the shard whose
    -- owner evaluates the alert and delivers its calls
    shard         integer          NOT NULL CHECK (shard >= 0 AND shard < 1024),
    query         text             NOT NULL,
    interval_ms   bigint           NOT NULL CHECK (interval_ms > 0),
    repeat_ms     bigint           NOT NULL CHECK (repeat_ms > 0),
    sustain_ms    bigint           NOT NULL DEFAULT 0 CHECK (sustain_ms >= 0),
    warn_value    double precision NOT NULL,
    warn_message  text             NOT NULL,
    crit_value    double precision NOT NULL,
    crit_message  text             NOT NULL,
    created       bigint           NOT NULL,
    updated       bigint           NOT NULL,  -- the definition's version
    retired       bigint                      -- set when the server stopped serving it
);
CREATE INDEX alert_shard ON alert (shard);

CREATE TABLE alert_state (
    alert_id       bigint  PRIMARY KEY REFERENCES alert (id) ON DELETE CASCADE,
    state          text    NOT NULL DEFAULT 'PASS'
                           CHECK (state IN ('PASS', 'WARN', 'CRITICAL')),
    warn_since     bigint,            -- sustain clock: run of values > warn
    crit_since     bigint,            -- sustain clock: run of values > critical
    last_value     double precision,
    last_eval      bigint,            -- last evaluation attempt
    last_ok        bigint,            -- last successful evaluation
    next_eval      bigint  NOT NULL,
    last_notified  bigint,            -- last delivered notify
    notify_gave_up bigint,            -- last notify given up
    failures       integer NOT NULL DEFAULT 0,  -- consecutive failed queries
    last_error     text
);
-- The pick reads it alone: the alerts due, in order, with their ids.
CREATE INDEX alert_state_due ON alert_state (next_eval, alert_id);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    alert_id      bigint  NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    kind          text    NOT NULL CHECK (kind IN ('notify', 'resolve')),
    message       text,
    created       bigint  NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt  bigint  NOT NULL,
    lease_until   bigint,             -- claimed by a delivery until then
    lease_token   bigint,             -- the claim's: every write of its outcome names it
    delivered     bigint,
    finished      bigint,             -- delivered or given up at
    not_before    bigint,             -- the server asked for no attempt before
    last_error    text,
    status        text    NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'delivered', 'dead')),
    is_repeat     integer NOT NULL DEFAULT 0 CHECK (is_repeat IN (0, 1))
);
-- The head of each alert's queue, the next row to become deliverable,
-- and what pruning deletes.
CREATE INDEX outbox_pending_alert ON outbox (alert_id, id) WHERE status = 'pending';
CREATE INDEX outbox_pending_next ON outbox (next_attempt) WHERE status = 'pending';
CREATE INDEX outbox_finished ON outbox (finished) WHERE status <> 'pending';

CREATE TABLE transition (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    at          bigint NOT NULL,
    from_state  text   NOT NULL,
    to_state    text   NOT NULL,
    value       double precision
);
CREATE INDEX transition_alert ON transition (alert_id, at);
CREATE INDEX transition_at ON transition (at);

-- The engines that use the database, as each last said it was alive.
CREATE TABLE engine (
    id         text        PRIMARY KEY,   -- --engine-id (host:pid)
    started    timestamptz NOT NULL,
    heartbeat  timestamptz NOT NULL
);

-- The 1024 shards of the alerts and who holds each: lease times are the
-- database's clock; epoch goes up at every claim, and a write for an
-- alert is fenced by its shard's owner and epoch. An engine that runs
-- alone holds no lease (owner stays NULL).
CREATE TABLE shard (
    id           integer     PRIMARY KEY CHECK (id >= 0 AND id < 1024),
    owner        text        REFERENCES engine (id) ON DELETE SET NULL,
    epoch        bigint      NOT NULL DEFAULT 0,
    lease_until  timestamptz
);
INSERT INTO shard (id) SELECT generate_series(0, 1023);

-- A time for people, as SQLite's views show it: ISO-8601 in UTC, NULL
-- outside the years 0000 to 9999 (a retired alert's next_eval is 2^62).
CREATE FUNCTION alert_exec_time(ms bigint) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    RETURN CASE WHEN ms >= -62167219200000 AND ms < 253402300800000
                THEN to_char(to_timestamp(ms / 1000.0) AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END;

CREATE VIEW alert_status AS
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
       sh.owner                         AS owner
  FROM alert a
  JOIN alert_state s ON s.alert_id = a.id
  JOIN shard sh ON sh.id = a.shard;

CREATE VIEW outbox_pending AS
SELECT o.id                            AS id,
       a.name                          AS name,
       o.kind                          AS kind,
       o.message                       AS message,
       alert_exec_time(o.created)      AS created,
       o.attempts                      AS attempts,
       alert_exec_time(o.next_attempt) AS next_attempt,
       o.last_error                    AS last_error
  FROM outbox o JOIN alert a ON a.id = o.alert_id
 WHERE o.status = 'pending'
 ORDER BY o.id;

-- The migrations applied, one row each (the schema's version is the
-- highest): a database of a version above the binary's is refused.
CREATE TABLE schema_version (
    version  integer     PRIMARY KEY,
    name     text        NOT NULL,
    applied  timestamptz NOT NULL DEFAULT now()
);
