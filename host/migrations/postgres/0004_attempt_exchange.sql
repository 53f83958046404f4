-- The ERP exchange of each attempt (issue 17): what the plugin sent and
-- what the ERP answered, bounded and with the connection's secrets
-- redacted, as JSON. NULL when no plugin ran, and for attempts recorded
-- before this column existed.
ALTER TABLE job_attempts ADD COLUMN exchange TEXT;
