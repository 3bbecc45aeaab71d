-- Finished commands are kept for their retention period from when they
-- finished, not from when they were queued: a command that waited weeks for
-- an offline device keeps its result as long as any other.
UPDATE commands SET completed_at = created_at
	WHERE completed_at = 0 AND state NOT IN ('queued', 'sent', 'notnow');
DROP INDEX commands_created;
CREATE INDEX commands_completed ON commands(completed_at);
