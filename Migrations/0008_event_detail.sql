-- What went wrong, in the engine's or the store's own words, beside the plain message the student
-- sees (environment_events.message): for operators reading an environment's history.
ALTER TABLE environment_events ADD COLUMN detail text;
