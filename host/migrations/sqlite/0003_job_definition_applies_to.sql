-- Which cancellations a job definition makes jobs for: 'any' (every one, what
-- every definition did before), 'full' (only those that leave no active line)
-- or 'partial' (only those that leave some line active).
ALTER TABLE job_definitions
    ADD COLUMN applies_to TEXT NOT NULL DEFAULT 'any'
    CHECK (applies_to IN ('any', 'full', 'partial'));
