-- alert-exec schema, version 4: the version of the definitions. Every
-- transaction that changes a definition (adds, changes, retires or
-- revives an alert) moves it, so the scheduler keeps the definitions its
-- picks read and reads an alert's row again only when the version its
-- pick sees has moved: a refresh is seen by the next pick.

CREATE TABLE definitions (
    id       INTEGER PRIMARY KEY CHECK (id = 1),  -- one row
    version  INTEGER NOT NULL
);
INSERT INTO definitions (id, version) VALUES (1, 0);
