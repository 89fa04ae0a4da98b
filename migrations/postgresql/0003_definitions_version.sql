-- The version of the definitions: every transaction that changes a
-- definition (adds, changes, retires or revives an alert) moves it, so
-- an engine's scheduler keeps the definitions its picks read and takes
-- an alert's columns again only when the version its pick sees has
-- moved: a refresh by any engine is seen by every engine's next pick.

CREATE TABLE definitions (
    id       integer PRIMARY KEY CHECK (id = 1),  -- one row
    version  bigint  NOT NULL
);
INSERT INTO definitions (id, version) VALUES (1, 0);
