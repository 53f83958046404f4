-- The index of jobs by order holds only the jobs that have not settled
-- (issue 18). Its one reader on the hot path, the claim's test "an earlier
-- job of this order has not settled", looks for queued, running and
-- retrying jobs only; a finished job stays in the table for the retention
-- period (30 days by default) but never needs to be found by its order
-- through this index. Indexed whole, every new job went into an index that
-- grew with all the jobs ever kept, at the place of its order number: a
-- page of its own to write for each cancellation, and one more for each
-- job the retention deletes. Indexed partially, the index is as large as
-- the queue. Listing jobs by order reads them through their cancellations
-- instead (every job belongs to one).
--
-- The rule is written as comparisons, not `IN (…)`: SQLite evaluates it
-- on every write of a job, and a list of more than two constants costs a
-- temporary B-tree each time. The claim's test repeats it word for word,
-- which is how SQLite knows the index answers it.
CREATE INDEX jobs_order_unsettled ON jobs (order_number)
WHERE state = 'queued' OR state = 'running' OR state = 'retrying';
DROP INDEX jobs_order;
