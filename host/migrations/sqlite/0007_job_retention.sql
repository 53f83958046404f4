-- Job retention (issue 18): finished jobs and their attempts are deleted
-- once older than the retention period. A cancellation is never deleted; it
-- keeps how many of its jobs were pruned in each final state, so that its
-- `erpSync.state` reads the same after its jobs are gone.
ALTER TABLE cancellations ADD COLUMN jobs_pruned_succeeded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cancellations ADD COLUMN jobs_pruned_failed INTEGER NOT NULL DEFAULT 0;
