-- The jobs table's rule on `state`, written as comparisons instead of
-- `IN (…)` (issue 18). SQLite evaluates an `IN` list of more than two
-- constants by building a temporary B-tree of the list, and a CHECK is
-- evaluated on every insert and on every update that sets the column: each
-- cancellation's outbox job, each claim and each recorded attempt built
-- one. Five comparisons cost next to nothing. The rule is the same, so
-- every row already follows it.
--
-- SQLite cannot alter a CHECK constraint; its documented way to change one
-- without copying the table is to edit the table's definition in the
-- schema. Any later change of the schema (the table made and dropped
-- below, which changes nothing else) counts the schema's version up, so
-- that every connection reads the definition again.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(
    sql,
    'CHECK (state IN (''queued'', ''running'', ''succeeded'', ''retrying'', ''failed''))',
    'CHECK (state = ''queued'' OR state = ''running'' OR state = ''succeeded'' OR state = ''retrying'' OR state = ''failed'')'
)
WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = OFF;
CREATE TABLE rescind_schema_changed (unused INTEGER);
DROP TABLE rescind_schema_changed;
